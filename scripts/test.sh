#!/usr/bin/env bash
# Installs what is needed (Debian 12, as root), builds, and runs the whole test suite:
#   1. the Release build: every Check suite and end-to-end test (ctest);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build: the same tests (valgrind,
#      emulated-cluster and paper-spec tests excepted: the last trains ResNet-56, whose code
#      paths e2e_resnet and e2e_cifar_image run under the sanitizers), leak checking on for
#      the suites that do not start MPI (Open MPI's own allocations are not ours to free);
#   3. the fuzz harnesses for a short bounded time each (tests/fuzz/run.sh), when clang's
#      libFuzzer is available.
# Options: EG_SKIP_SANITIZE=1, EG_SKIP_FUZZ=1, EG_FUZZ_SECONDS=N (default 20),
# EG_TEST_JOBS=N tests at a time (default 2; tests/CMakeLists.txt keeps the ones that start
# MPI ranks from running together, and the emulated cluster alone).
# As root, the ASan build runs during stage 1 and the fuzz harnesses build during stage 2, at
# the lowest priority (they take the idle CPU time), raised to normal when their stage starts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
t0=$(date +%s)
log=$(mktemp)
asan_log= asan_pg= fuzz_pg=
# (the background builds below are stopped with the script)
trap 'rm -f "$log" $asan_log; for g in $asan_pg $fuzz_pg; do kill -- -"$g" 2>/dev/null; done; true' EXIT
# runs ctest, keeping its output for the final count
count_ctest() { ctest -j"${EG_TEST_JOBS:-2}" "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }
asan_build() {
  cmake -S "$here" -B "$here/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEG_SANITIZE=ON >/dev/null &&
    cmake --build "$here/build-asan" -j"$(nproc)" >/dev/null
}
# The sanitizer build starts now, at the lowest priority, in its own process group: it takes
# only the CPU time the Release tests leave idle (ranks waiting, start-ups), and is raised to
# normal priority when they are done (root only: others cannot raise it, so they build after).
if [ "${EG_SKIP_SANITIZE:-0}" != 1 ] && [ "$(id -u)" -eq 0 ]; then
  asan_log=$(mktemp)
  set -m
  nice -n 19 bash -c "$(declare -f asan_build); here='$here'; asan_build" </dev/null >"$asan_log" 2>&1 &
  asan_pg=$!
  set +m
fi
echo "== 1. tests on the Release build"
(cd "$here/build" && count_ctest --output-on-failure) || status=1
echo "== [$(( $(date +%s) - t0 ))s]"

if [ "${EG_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== 2. tests on an ASan + UBSan build"
  if [ -n "$asan_pg" ]; then
    renice -n 0 -g "$asan_pg" >/dev/null 2>&1 || true
    if wait "$asan_pg"; then asan_ok=1; else asan_ok=0; cat "$asan_log" >&2; fi
    asan_pg=
  else
    if asan_build; then asan_ok=1; else asan_ok=0; fi
  fi
  # the fuzz harnesses build meanwhile, the same way (their run, timed, waits for stage 3)
  if [ "${EG_SKIP_FUZZ:-0}" != 1 ] && [ -x "$here/tests/fuzz/run.sh" ] && [ "$(id -u)" -eq 0 ]; then
    set -m
    EG_FUZZ_BUILD_ONLY=1 nice -n 19 bash "$here/tests/fuzz/run.sh" </dev/null >/dev/null 2>&1 &
    fuzz_pg=$!
    set +m
  fi
  # leak checking (tests/CMakeLists.txt): on for the suites that do not start MPI, off for
  # the others (Open MPI's own allocations are not ours to free); one ctest run for all
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if [ "$asan_ok" = 1 ]; then
    (cd "$here/build-asan" && count_ctest --output-on-failure -E 'valgrind|cluster|paper_specs') || status=1
  else
    echo "the ASan + UBSan build failed"; status=1
  fi
  echo "== [$(( $(date +%s) - t0 ))s]"
fi

if [ "${EG_SKIP_FUZZ:-0}" != 1 ] && [ -x "$here/tests/fuzz/run.sh" ]; then
  echo "== 3. fuzzing, ${EG_FUZZ_SECONDS:-20} s per harness"
  if [ -n "$fuzz_pg" ]; then # (what it did not finish, or could not build, run.sh does now)
    renice -n 0 -g "$fuzz_pg" >/dev/null 2>&1 || true
    wait "$fuzz_pg" || true
    fuzz_pg=
  fi
  if bash "$here/tests/fuzz/run.sh" "${EG_FUZZ_SECONDS:-20}"; then fuzz_ok=1; else fuzz_ok=0; status=1; fi
  echo "== [$(( $(date +%s) - t0 ))s]"
fi
# one closing line over all stages: tests counted by ctest, plus the fuzz stage as one test
total=$(awk '/tests passed, .* tests failed out of/ {t += $NF} END {print t + 0}' "$log")
failed=$(awk '/tests passed, .* tests failed out of/ {f += $(NF-5)} END {print f + 0}' "$log")
if [ -n "${fuzz_ok:-}" ]; then total=$((total + 1)); [ "$fuzz_ok" = 1 ] || failed=$((failed + 1)); fi
echo "$((total - failed)) passed, $failed failed"
exit $status
