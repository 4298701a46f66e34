#!/bin/bash
# docs.sh - the documentation cannot drift: docs/spec.md is what `expgraph help spec
# --markdown` prints (regenerate it with scripts/gen_spec_md.sh), and every reference to a
# repository file in the documents and in code comments names a file that exists
# (scripts/check_refs.py lists each dangling one as FILE:LINE: REFERENCE).
. "$(dirname "$0")/lib.sh"
SRC=${EG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

"$EXPGRAPH" help spec --markdown > "$TMP/spec.md"
check "help spec --markdown exits 0 and prints a reference" test -s "$TMP/spec.md"
if diff -u "$SRC/docs/spec.md" "$TMP/spec.md" > "$TMP/spec.diff"; then
  ok "docs/spec.md is the output of expgraph help spec --markdown"
else
  head -40 "$TMP/spec.diff"
  bad "docs/spec.md differs from expgraph help spec --markdown (run scripts/gen_spec_md.sh)"
fi
# every key of `help spec` has a row in the reference, under its dotted path
for key in nodes graph.peers algorithm.compress.ratio model.norm_stats data.partition \
           train.eval_every lr.warmup_epochs network.offline output.dir; do
  grep -q "^| \`$key\` |" "$TMP/spec.md" || bad "docs/spec.md has no row for $key"
done
ok "docs/spec.md has a row for each key checked"
# the anchors the code comments cite exist
for a in spec-keys graph algorithm model lr network names graphs algorithms \
         files-a-run-writes metricscsv summarycsv commands environment-and-exit-codes; do
  grep -qiE "^#+ \`?${a}\`?\$|^#+ ${a//-/ }\$|^#+ ${a%csv}\.csv\$" "$TMP/spec.md" || bad "docs/spec.md: no heading for #$a"
done
ok "docs/spec.md's section anchors"

if ! command -v python3 > /dev/null; then
  echo "skipped: file references (no python3)"
elif python3 "$SRC/scripts/check_refs.py" "$SRC" > "$TMP/refs.txt" 2> "$TMP/refs.err"; then
  ok "every file reference in the documents and code comments resolves ($(cat "$TMP/refs.err"))"
else
  cat "$TMP/refs.txt"
  bad "dangling file references: $(cat "$TMP/refs.err")"
fi
# the checker can fail: a reference to a missing file is reported with FILE:LINE
mkdir -p "$TMP/repo/docs" "$TMP/repo/lib"
printf '# T\n\nSee [x](missing.md) and lib/gone.c and [t](#t).\n' > "$TMP/repo/README.md"
printf '# Good\n' > "$TMP/repo/docs/x.md"
printf '/* mod.c - as SPEC.md says; see lib/mod.c */\n/* docs/x.md#good, not docs/x.md#bad */\n' > "$TMP/repo/lib/mod.c"
if command -v python3 > /dev/null; then
  python3 "$SRC/scripts/check_refs.py" "$TMP/repo" > "$TMP/neg.txt" 2> /dev/null
  check "the checker reports a missing link, path, bare name and heading with FILE:LINE" \
    test "$(cat "$TMP/neg.txt")" = "$(printf 'README.md:3: missing.md\nREADME.md:3: lib/gone.c\nlib/mod.c:1: SPEC.md\nlib/mod.c:2: docs/x.md#bad')"
fi
finish
