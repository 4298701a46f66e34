#!/usr/bin/env bash
# install.sh - end-to-end: `cmake --install BUILD --prefix TMP` puts a working binary, the
# man page and the bash completion in place; the man page renders and covers every
# subcommand (its whole --help text) and every spec key; the completion completes
# subcommands, options and graph names. Run by CTest (EXPGRAPH, EG_BUILD). Exit 0 pass,
# 1 fail, 77 skip.
. "$(dirname "$0")/lib.sh"
: "${EG_BUILD:?set EG_BUILD to the build directory}"

P="$TMP/prefix"
if ! cmake --install "$EG_BUILD" --prefix "$P" >"$TMP/install.log" 2>&1; then
    bad "cmake --install failed: $(cat "$TMP/install.log")"
    finish
    exit 1
fi
BIN="$P/bin/expgraph"
MAN="$P/share/man/man1/expgraph.1"
COMP="$P/share/bash-completion/completions/expgraph"
for f in "$BIN" "$MAN" "$COMP"; do
    check "installed $f" test -s "$f"
done
check "the installed binary runs (--version)" bash -c "'$BIN' --version | grep -q '^expgraph '"
check "the installed binary validates a spec" bash -c "cat > '$TMP/s.yaml' <<'EOF'
nodes: 2
graph: ring
algorithm: dsgd
model: logreg
data: synthetic
EOF
'$BIN' validate '$TMP/s.yaml' >/dev/null"

# the man page renders (man if installed, else groff) without warnings
if command -v man >/dev/null 2>&1; then
    MANWIDTH=200 LANG=C.UTF-8 man -l "$MAN" >"$TMP/man.txt" 2>"$TMP/man.err"
elif command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 -rLL=200n "$MAN" 2>"$TMP/man.err" | sed 's/.\x08//g' >"$TMP/man.txt"
else
    echo "skip: neither man nor groff"
    exit 77
fi
check "man page renders" test -s "$TMP/man.txt"
if command -v groff >/dev/null 2>&1; then
    groff -man -ww -z "$MAN" 2>"$TMP/groff.err"
    check "groff finds nothing to warn about" test ! -s "$TMP/groff.err"
fi
# every line of every subcommand's --help appears in the page (the same text)
squash() { tr -s ' \t' ' ' | sed 's/^ //; s/ $//'; }
squash <"$TMP/man.txt" >"$TMP/man.sq"
missing=""
for cmd in run sweep validate graph table plot; do
    "$BIN" "$cmd" --help | squash | grep -v '^$' >"$TMP/help.txt"
    while IFS= read -r line; do
        grep -qF -- "$line" "$TMP/man.sq" || missing="$missing
$cmd: $line"
    done <"$TMP/help.txt"
    grep -q "^ *expgraph $cmd\$" "$TMP/man.txt" || missing="$missing
no section for $cmd"
done
if [ -z "$missing" ]; then ok "the man page holds every subcommand's --help text"; else bad "man page lacks:$missing"; fi
# every spec key of summary.csv (the completion's --set words) is documented
keys=$(grep -o "compgen -W '[^']*=' -- \"\$cur\")); compopt" "$COMP" | sed "s/^compgen -W '//; s/' -- .*//")
undoc=""
for k in $keys; do
    k=${k%=}
    grep -qE "(^| )${k##*.}: " "$TMP/man.sq" || undoc="$undoc $k"
done
if [ -n "$keys" ] && [ -z "$undoc" ]; then ok "the man page documents every spec key ($(echo $keys | wc -w))"; else bad "spec keys missing from the man page:$undoc (keys: $keys)"; fi
# every key spec.c accepts (its only_keys lists) is in `expgraph help spec`: a key added to
# the parser without a line in cli/help.c fails here
if [ -n "${EG_SRC:-}" ] && [ -f "$EG_SRC/lib/spec.c" ]; then
    "$BIN" help spec >"$TMP/spec_help.txt"
    accepted=$(awk '/keys\[\] = \{/ {on = 1} on {print} /NULL\};/ {on = 0}' "$EG_SRC/lib/spec.c" |
        grep -o '"[a-z_]*"' | tr -d '"' | sort -u)
    nohelp=""
    for k in $accepted; do
        grep -qE "(^| )$k:" "$TMP/spec_help.txt" || nohelp="$nohelp $k"
    done
    if [ -n "$accepted" ] && [ -z "$nohelp" ]; then
        ok "help spec names every key spec.c accepts ($(echo $accepted | wc -w))"
    else
        bad "keys spec.c accepts but help spec (cli/help.c SPEC_HELP) lacks:$nohelp"
    fi
fi
check "expgraph help spec is the man page's SPEC FILE text" bash -c "'$BIN' help spec | head -n 3 | tr -s ' ' | while IFS= read -r l; do grep -qF -- \"\$l\" '$TMP/man.sq' || exit 1; done"

# the completion: subcommands, options, graph and algorithm names, values from --help
complete_words() { # complete_words WORD... : what <TAB> on the last word offers
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _expgraph; echo "${COMPREPLY[*]}"' _ "$COMP" "$@"
}
check "completion: subcommands" test "$(complete_words expgraph ta)" = "table"
check "completion: graph names" test "$(complete_words expgraph graph onepeer)" = "onepeer_exp onepeer_hypercube"
check "completion: table options" bash -c "[[ ' $(complete_words expgraph table --a) ' == *' --agg '* ]]"
check "completion: plot --band values" test "$(complete_words expgraph plot r --band m)" = "minmax"
check "completion: --set graph=" test "$(complete_words expgraph run s.yaml --set graph = ri)" = "ring"
check "completion: --set algorithm=" bash -c "[[ ' $(complete_words expgraph run s.yaml --set algorithm =) ' == *' dmsgd '* ]]"
check "completion: --set keys" bash -c "[[ ' $(complete_words expgraph run s.yaml --set se) ' == *' seed= '* ]]"
check "completion is loaded by bash -n" bash -n "$COMP"
finish
