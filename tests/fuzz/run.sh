#!/usr/bin/env bash
# run.sh [SECONDS] [TARGET...] - builds the libFuzzer harnesses in tests/fuzz/ with clang
# (-g -O1 -fsanitize=fuzzer,address,undefined, lib/ sources compiled in directly) and runs
# each for SECONDS (default 30) from its seed corpus tests/fuzz/corpus/<target>/.
# Targets: spec idx csv png jpeg cifar wmat (default: all).
#
# Prints, per target, the executions done and any crash, leak, time-out or out-of-memory
# found (the input is saved as tests/fuzz/crashes/<target>-<kind>-<hash>); exits 1 when
# one was found (or a harness did not build or run), 0 when none. Without clang's
# libFuzzer runtime (apt-get install clang libclang-rt-14-dev) it says "skip" and exits 0,
# or 77 with EG_FUZZ_REQUIRE=1.
#
# Environment:
#   EG_FUZZ_BUILD      build and working-corpus directory (default /tmp/expgraph-fuzz);
#                      new inputs found go to $EG_FUZZ_BUILD/corpus/<target>, so later runs
#                      start where earlier ones stopped
#   EG_FUZZ_CRASHES    where findings are saved (default tests/fuzz/crashes)
#   EG_FUZZ_KEEP_GOING=1  libFuzzer fork mode: keep fuzzing after a finding (collects
#                      several per target) instead of stopping at the first
#   EG_FUZZ_JOBS       parallel fuzzing processes in keep-going mode (default 1)
#   EG_FUZZ_PARALLEL   compilations and harnesses run at a time (default: the cores)
#   EG_FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 25)
#   EG_FUZZ_RSS_MB     memory limit per process (default 2048; a single allocation above
#                      it is reported as out-of-memory)
#   EG_FUZZ_STRICT=1   the harnesses also fail when a loader reports "out of memory" on a
#                      small input (a header that makes it allocate gigabytes)
#   EG_FUZZ_REQUIRE=1  exit 77 instead of 0 when clang's libFuzzer is missing
#   EG_FUZZ_BUILD_ONLY=1  build the harnesses, run none (a later run reuses what is up to date)
#   CC                 the clang to use (default clang)
#
# Reproduce a finding: $EG_FUZZ_BUILD/fuzz_<target> tests/fuzz/crashes/<file>
set -u

SRC=$(cd "$(dirname "$0")/../.." && pwd)
FZ=$SRC/tests/fuzz
SECS=${1:-30}
shift 2>/dev/null || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(spec idx csv png jpeg cifar wmat)
BUILD=${EG_FUZZ_BUILD:-/tmp/expgraph-fuzz}
CRASHES=${EG_FUZZ_CRASHES:-$FZ/crashes}
CC=${CC:-clang}
TIMEOUT=${EG_FUZZ_TIMEOUT:-25}
RSS=${EG_FUZZ_RSS_MB:-2048}

case "$SECS" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [TARGET...]   (targets: spec idx csv png jpeg cifar wmat)" >&2
    exit 2
    ;;
esac

skip() {
    echo "skip: $*"
    [ "${EG_FUZZ_REQUIRE:-0}" != 0 ] && exit 77
    exit 0
}
if ! command -v "$CC" >/dev/null 2>&1; then
    skip "$CC not found (apt-get install clang libclang-rt-14-dev)"
fi
mkdir -p "$BUILD/obj" "$CRASHES" || exit 1
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' >"$BUILD/probe.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$BUILD/probe.c" -o "$BUILD/probe" 2>"$BUILD/probe.log"; then
    head -n 3 "$BUILD/probe.log"
    skip "$CC cannot build libFuzzer targets (apt-get install clang libclang-rt-14-dev)"
fi

# ---- build ---------------------------------------------------------------------------------
PKGS="yaml-0.1 libpng libjpeg zlib openblas cairo"
PKG_CFLAGS=$(pkg-config --cflags $PKGS) || exit 1
PKG_LIBS=$(pkg-config --libs $PKGS) || exit 1
MPI_CFLAGS=$(mpicc -showme:compile 2>/dev/null || true)
MPI_LIBS=$(mpicc -showme:link 2>/dev/null || true)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=c11 $SAN -D_POSIX_C_SOURCE=200809L -DEG_DATA_DIR=\"$BUILD/no-data\" \
-I$SRC/lib $PKG_CFLAGS $MPI_CFLAGS -Wno-unused-command-line-argument"
LIBS="$PKG_LIBS -llapacke $MPI_LIBS -lm -fopenmp"
# oneDNN (the layer engine) when lib/ uses it: headers in the default path, -ldnnl
if [ -n "$(ls /usr/lib/*/libdnnl.so /usr/lib/libdnnl.so /usr/local/lib/libdnnl.so 2>/dev/null | head -n 1)" ]; then
    LIBS="$LIBS -ldnnl"
fi

echo "building the harnesses in $BUILD ..."
# EG_FUZZ_PARALLEL: compilations and harnesses at a time (default: the number of cores)
PAR=${EG_FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}
case "$PAR" in '' | *[!0-9]* | 0) PAR=1 ;; esac
# waits until fewer than $PAR background jobs run
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$PAR" ]; do wait -n; done; }
objs=()
for c in "$SRC"/lib/*.c; do
    o="$BUILD/obj/$(basename "${c%.c}").o"
    if [ ! -f "$o" ] || [ "$c" -nt "$o" ] || [ "$SRC/lib" -nt "$o" ] || [ "$0" -nt "$o" ] ||
        [ -n "$(find "$SRC/lib" -name '*.h' -newer "$o" 2>/dev/null | head -n 1)" ]; then
        rm -f "$o"
        throttle
        # shellcheck disable=SC2086
        "$CC" $CFLAGS -fsanitize=fuzzer-no-link -fopenmp -c "$c" -o "$o" 2>"$o.log" &
    fi
    objs+=("$o")
done
wait
for o in "${objs[@]}"; do
    if [ ! -f "$o" ]; then
        echo "FAIL: cannot compile $SRC/lib/$(basename "${o%.o}").c:"
        head -n 20 "$o.log"
        exit 1
    fi
done
# the archive and the harnesses are remade when something they are made of is newer
stale=1
if [ -f "$BUILD/libeg_fuzz.a" ]; then
    stale=0
    for o in "${objs[@]}"; do [ "$o" -nt "$BUILD/libeg_fuzz.a" ] && stale=1 && break; done
fi
if [ "$stale" = 1 ]; then
    rm -f "$BUILD/libeg_fuzz.a"
    ar rcs "$BUILD/libeg_fuzz.a" "${objs[@]}" || exit 1
fi
for t in "${TARGETS[@]}"; do
    if [ ! -f "$FZ/fuzz_$t.c" ]; then
        echo "FAIL: no harness $FZ/fuzz_$t.c"
        exit 1
    fi
    f="$BUILD/fuzz_$t"
    if [ -x "$f" ] && [ "$f" -nt "$BUILD/libeg_fuzz.a" ] && [ "$f" -nt "$FZ/fuzz_$t.c" ] && [ "$f" -nt "$0" ] &&
        [ -z "$(find "$FZ" -maxdepth 1 -name '*.h' -newer "$f" 2>/dev/null | head -n 1)" ]; then
        continue
    fi
    rm -f "$f"
    throttle
    # shellcheck disable=SC2086
    "$CC" $CFLAGS -fsanitize=fuzzer "$FZ/fuzz_$t.c" "$BUILD/libeg_fuzz.a" $LIBS \
        -o "$BUILD/fuzz_$t" 2>"$BUILD/fuzz_$t.log" &
done
wait
for t in "${TARGETS[@]}"; do
    if [ ! -x "$BUILD/fuzz_$t" ]; then
        echo "FAIL: cannot build fuzz_$t:"
        head -n 20 "$BUILD/fuzz_$t.log"
        exit 1
    fi
done

[ "${EG_FUZZ_BUILD_ONLY:-0}" != 0 ] && exit 0

# ---- run -----------------------------------------------------------------------------------
# Huge allocations come back as NULL (the library then reports out of memory) instead of
# aborting inside ASan; leaks are findings. MPI is never initialised by these harnesses.
export ASAN_OPTIONS="allocator_may_return_null=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# fuzz_one TARGET: runs one harness; writes its summary lines to $BUILD/fuzz_TARGET.summary
# and "1" to $BUILD/fuzz_TARGET.found when it found something (or did not run). The
# harnesses run $PAR at a time, each for SECS seconds; a finding is recognised by its file
# name (TARGET-...), so harnesses running side by side do not see each other's.
fuzz_one() {
    local t=$1 work log before dict mode rc execs after new f reason found=0
    local -a summary=()
    work="$BUILD/corpus/$t"
    mkdir -p "$work"
    log="$BUILD/fuzz_$t.run.log"
    before=$(ls -A "$CRASHES" | sort)
    dict=()
    [ -f "$FZ/$t.dict" ] && dict=(-dict="$FZ/$t.dict")
    mode=()
    if [ "${EG_FUZZ_KEEP_GOING:-0}" != 0 ]; then
        mode=(-fork="${EG_FUZZ_JOBS:-1}" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    echo "fuzz_$t: ${SECS}s ..."
    (cd "$BUILD" && exec "$BUILD/fuzz_$t" "${mode[@]}" "${dict[@]}" \
        -max_total_time="$SECS" -timeout="$TIMEOUT" -rss_limit_mb="$RSS" -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$CRASHES/$t-" "$work" "$FZ/corpus/$t") \
        >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then # fork mode: the last "#N" status line
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    fi
    after=$(ls -A "$CRASHES" | sort)
    new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep "^$t-" || true)
    if [ -z "$new" ] && [ "$rc" -ne 0 ] && ! grep -qE '==ERROR|runtime error:|Test unit written' "$log"; then
        found=1
        summary+=("fuzz_$t: did not run (exit $rc): $(tail -n 1 "$log" | cut -c1-200)")
        summary+=("    log: $log")
    elif [ "$rc" -ne 0 ] || [ -n "$new" ]; then
        found=1
        summary+=("fuzz_$t: ${execs:-?} executions, FOUND (exit $rc)")
        for f in $new; do
            # what the input does, from a rerun of it alone (the first line that says)
            reason=$(cd "$BUILD" && timeout -k 5 $((TIMEOUT + 10)) "$BUILD/fuzz_$t" \
                -rss_limit_mb="$RSS" -timeout="$TIMEOUT" "$CRASHES/$f" 2>&1 |
                grep -v -E '^(INFO|MERGE|Running|Executed|\*\*\*|[^ ]*fuzz_[a-z]+: Running)' |
                grep -m 1 -E '==ERROR|runtime error:|ALARM|out-of-memory|^strict:|^[a-zA-Z_(). ]+: |^the |^implausible|^partition|^NaN|^row |^W\[|^stats' |
                cut -c1-300)
            summary+=("    saved: $CRASHES/$f")
            summary+=("      ${reason:-(does not reproduce alone; see $log)}")
        done
        summary+=("    log: $log")
    else
        summary+=("fuzz_$t: ${execs:-?} executions, no crash")
    fi
    printf '%s\n' "${summary[@]}" >"$BUILD/fuzz_$t.summary"
    echo "$found" >"$BUILD/fuzz_$t.found"
}

for t in "${TARGETS[@]}"; do
    rm -f "$BUILD/fuzz_$t.summary" "$BUILD/fuzz_$t.found"
    throttle
    fuzz_one "$t" &
done
wait
found=0
echo
for t in "${TARGETS[@]}"; do
    if [ ! -s "$BUILD/fuzz_$t.summary" ]; then
        echo "fuzz_$t: did not complete"
        found=1
        continue
    fi
    cat "$BUILD/fuzz_$t.summary"
    [ "$(cat "$BUILD/fuzz_$t.found" 2>/dev/null)" = 0 ] || found=1
done
exit "$found"
