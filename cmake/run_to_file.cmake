# cmake -DEXE=path -DARGS="a;b" -DOUT=file -P run_to_file.cmake
# Runs EXE ARGS with its standard output into OUT (written to OUT.tmp, then renamed), and
# fails the build when EXE fails: how the man page and the bash completion are generated
# from the built binary's --help texts.
execute_process(COMMAND ${EXE} ${ARGS} OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "${EXE} ${ARGS} failed (${rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
