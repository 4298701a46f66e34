#!/usr/bin/env bash
# bad_inputs.sh - the broken-input catalogue (docs/spec.md#spec-keys, #environment-and-exit-codes).
#
# Every tests/bad/NNN-name.yaml is a spec with one thing wrong. Its header says what the
# error message must contain:
#   # expect: SUBSTRING      (line 1, required) the message must contain it
#   # file: NAME             (optional) the message must also name this data file
#   # known-bad: TEXT        (optional) a known defect in expgraph: the case fails until
#                            it is fixed; TEXT says what is wrong
#   # timeout: SECONDS       (optional) per-command limit when the defect is a hang
#   # command: sweep         (optional) a sweep: block problem: check `expgraph sweep SPEC
#                            --list --out DIR` instead of run and validate
# Placeholders in a spec are replaced in a copy: @TMP@ -> the generated fixtures
# (tests/bad/make_fixtures.py: truncated idx.gz, corrupt PNGs, ...), @DATA@ -> the shipped
# text fixtures in tests/bad/data.
#
# For each spec, `expgraph run SPEC --out DIR --quiet` and `expgraph validate SPEC` (or
# `expgraph sweep SPEC --list --out DIR`) must:
# exit 2 (not 0, not 1, no signal, no time-out), print to stderr a first line starting
# with "expgraph: " that names the spec file (and the data file, with # file:) and holds
# the expected substring, print nothing on stdout (run), show no sanitizer report, and
# create neither DIR nor anything in the working directory.
#
# Run by CTest with EXPGRAPH=path/to/expgraph, EG_SRC=repo root. Exit 0 pass, 1 fail,
# 77 skip. By hand: EXPGRAPH=build/expgraph tests/e2e/bad_inputs.sh [PATTERN]
# (PATTERN: a substring of the case names to run, e.g. "png").
# EG_BAD_TIMEOUT: seconds per command (default 120; a spec may lower it with
# "# timeout: SECONDS" when the defect it records is a hang).
# EG_BAD_JOBS: cases checked at a time (default 2).
# EG_BAD_VMEM_KB: address-space cap per command for non-sanitizer builds (default 8000000).
set -u
shopt -s nullglob

EXPGRAPH=${EXPGRAPH:-}
if [ -z "$EXPGRAPH" ] || [ ! -x "$EXPGRAPH" ]; then
    echo "skip: set EXPGRAPH to the expgraph binary (got '${EXPGRAPH}')"
    exit 77
fi
EXPGRAPH=$(cd "$(dirname "$EXPGRAPH")" && pwd)/$(basename "$EXPGRAPH")
EG_SRC=${EG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BAD=$EG_SRC/tests/bad
if [ ! -d "$BAD" ]; then
    echo "skip: no $BAD"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "skip: python3 is needed to generate the broken binary fixtures"
    exit 77
fi
PATTERN=${1:-}
TIMEOUT=${EG_BAD_TIMEOUT:-120}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg_bad.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/fx"
if ! python3 "$BAD/make_fixtures.py" "$TMP/fx"; then
    echo "FAIL: tests/bad/make_fixtures.py could not write the fixtures"
    exit 1
fi

# a sanitizer build must not fail on MPI's own leaks at exit; real errors still abort
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
unset EXPGRAPH_DATA

# sed replacement text: escape \ & and the delimiter |
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
FX=$(sed_escape "$TMP/fx")
DATA=$(sed_escape "$BAD/data")

# A runaway allocation must not take the machine down: cap the address space, except
# for sanitizer builds (ASan reserves terabytes of shadow memory up front).
VMEM_KB=${EG_BAD_VMEM_KB:-8000000}
if grep -qa -e __asan_init -e __ubsan_handle "$EXPGRAPH" 2>/dev/null; then
    VMEM_KB=unlimited
fi
# and no output file may grow past 20 MB (a runaway loop printing forever)
limits() {
    ulimit -v "$VMEM_KB" 2>/dev/null || true
    ulimit -f 20000 2>/dev/null || true
}

passed=0
failed=0
failed_names=()

# check_common LABEL RC STDERR SECONDS: appends what is wrong to $why
check_common() {
    local label=$1 rc=$2 err=$3 secs=$4
    # timeout(1): 124 after SIGTERM worked, 137 when SIGKILL was needed (run catches TERM)
    if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ "$secs" -ge "$tmo" ]; }; then
        why+="$label: hung (no exit within ${tmo}s); "
        return
    fi
    if [ "$rc" -eq 153 ]; then
        why+="$label: wrote more than 20 MB of output (killed by SIGXFSZ); "
    elif [ "$rc" -ge 128 ]; then
        why+="$label: crashed (exit $rc, signal $((rc - 128))); "
    elif [ "$rc" -ne 2 ]; then
        why+="$label: exit $rc, expected 2; "
    fi
    # (bash builtins only from here: a case is ~400 checks of files, and a fork per check
    # cost more than the commands under test on a busy machine)
    local all="" first="" text
    IFS= read -r -d '' all <"$err"
    IFS= read -r first <"$err"
    if [[ "$all" == *"ERROR: AddressSanitizer"* || "$all" == *"ERROR: LeakSanitizer"* ||
        "$all" == *"runtime error:"* || "$all" == *"SUMMARY: UndefinedBehaviorSanitizer"* ]]; then
        why+="$label: sanitizer report; "
    fi
    case "$first" in
    "expgraph: "*) ;;
    *) why+="$label: stderr does not start with 'expgraph: '; " ;;
    esac
    # the expected text must come from the message, not from the spec's own name
    text=${all//"$base"/}
    if [[ "$text" != *"$expect"* ]]; then
        why+="$label: message lacks '$expect'; "
    fi
    if [[ "$all" != *"$base"* ]]; then
        why+="$label: message does not name the spec $base; "
    fi
    if [ -n "$file" ] && [[ "$all" != *"$file"* ]]; then
        why+="$label: message does not name the data file '$file'; "
    fi
}

# run_case SPEC N: checks one case in its own directory; writes the result to $TMP/res/N
# (first line "ok" or "FAIL", then the lines to print)
run_case() {
    local spec=$1 n=$2
    local base expect file known why="" tmo copy nest k open close content out command label
    local cdir="$TMP/case-$n" msg rc t0 line lineno=0 hasnest=0
    local -a cmd left
    mkdir -p "$cdir/cwd" "$cdir/spec"
    base=${spec##*/}
    # the header: "# expect:" on line 1; the first "# file:", "# known-bad:", "# timeout:",
    # "# command:" anywhere (read with builtins: no process per field)
    expect="" file="" known="" tmo="" command=""
    while IFS= read -r line || [ -n "$line" ]; do
        lineno=$((lineno + 1))
        case "$line" in
        "# expect: "*) [ "$lineno" -eq 1 ] && expect=${line#"# expect: "} ;;
        "# file: "*) [ -z "$file" ] && file=${line#"# file: "} ;;
        "# known-bad: "*) [ -z "$known" ] && known=${line#"# known-bad: "} ;;
        "# timeout: "*) [ -z "$tmo" ] && tmo=${line#"# timeout: "} ;;
        "# command: "*) [ -z "$command" ] && command=${line#"# command: "} ;;
        esac
        [[ "$line" == *@NEST* ]] && hasnest=1
    done <"$spec"
    if [ -z "$expect" ]; then
        why="the spec's first line is not '# expect: SUBSTRING'; "
    fi
    tmo=${tmo:-$TIMEOUT}
    copy="$cdir/spec/$base"
    sed -e "s|@TMP@|$FX|g" -e "s|@DATA@|$DATA|g" "$spec" >"$copy"
    # @NESTn@: n nested empty flow sequences, [[[...]]] (kept out of the repository)
    while [ "$hasnest" = 1 ] && nest=$(grep -o '@NEST[0-9]*@' "$copy" | head -n 1) && [ -n "$nest" ]; do
        k=${nest//[^0-9]/}
        open=$(printf '%*s' "$k" '' | tr ' ' '[')
        close=$(printf '%*s' "$k" '' | tr ' ' ']')
        content=$(<"$copy")
        printf '%s\n' "${content//"$nest"/"$open$close"}" >"$copy"
    done
    out="$cdir/out"

    if [ "$command" = sweep ]; then
        # a sweep block problem: `sweep --list` must refuse the spec
        cmd=(sweep "$copy" --list --out "$out")
    else
        cmd=(run "$copy" --out "$out" --quiet)
    fi
    label=${cmd[0]}

    t0=$SECONDS
    { (cd "$cdir/cwd" && limits && exec timeout -k 5 "$tmo" "$EXPGRAPH" "${cmd[@]}") \
        >"$cdir/run.out" 2>"$cdir/run.err" </dev/null; } 2>/dev/null
    rc=$? # (the group hides bash's own "Killed" notice)
    check_common "$label" "$rc" "$cdir/run.err" $((SECONDS - t0))
    if [ -s "$cdir/run.out" ]; then
        why+="$label: printed on stdout; "
    fi
    if [ -e "$out" ]; then
        why+="$label: created the --out directory; "
    fi
    msg=""
    IFS= read -r msg <"$cdir/run.err"

    if [ "$command" != sweep ]; then
        t0=$SECONDS
        { (cd "$cdir/cwd" && limits && exec timeout -k 5 "$tmo" "$EXPGRAPH" validate "$copy") \
            >"$cdir/val.out" 2>"$cdir/val.err" </dev/null; } 2>/dev/null
        rc=$?
        check_common validate "$rc" "$cdir/val.err" $((SECONDS - t0))
    fi
    left=("$cdir/cwd"/* "$cdir/cwd"/.[!.]* "$cdir/cwd"/..?*)
    if [ "${#left[@]}" -gt 0 ]; then
        why+="wrote into the working directory: $(ls -A "$cdir/cwd" | tr '\n' ' '); "
    fi

    {
        if [ -z "$why" ]; then
            echo ok
            echo "ok   $base: $msg"
        else
            echo FAIL
            echo "FAIL $base: ${why%; }"
            [ -n "$known" ] && echo "     known defect: $known"
            echo "     $label stderr: $(head -c 600 "$cdir/run.err" | head -n 3 | tr '\n' ' ')"
        fi
    } >"$TMP/res/$n"
    rm -rf "$cdir"
}

# EG_BAD_JOBS cases at a time (default 2)
JOBS=${EG_BAD_JOBS:-2}
mkdir -p "$TMP/res"
n=0
names=()
for spec in "$BAD"/[0-9]*.yaml; do
    base=$(basename "$spec")
    case "$base" in *"$PATTERN"*) ;; *) continue ;; esac
    n=$((n + 1))
    names[n]=$base
    run_case "$spec" "$n" &
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
        wait -n
    done
done
wait
for ((i = 1; i <= n; i++)); do
    if [ ! -s "$TMP/res/$i" ]; then
        failed=$((failed + 1))
        failed_names+=("${names[i]}")
        echo "FAIL ${names[i]}: the checks did not complete"
    elif [ "$(head -n 1 "$TMP/res/$i")" = ok ]; then
        passed=$((passed + 1))
        tail -n +2 "$TMP/res/$i"
    else
        failed=$((failed + 1))
        failed_names+=("${names[i]}")
        tail -n +2 "$TMP/res/$i"
    fi
done

if [ "$n" -eq 0 ]; then
    echo "no case matches '$PATTERN'"
    exit 1
fi
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
