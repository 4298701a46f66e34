#!/bin/bash
# gen_spec_md.sh - regenerates docs/spec.md from the binary's tables
# (`expgraph help spec --markdown`, cli/help.c). Run it after changing a spec key, a name
# table, a metrics column or a --help text; tests/e2e/docs.sh fails while docs/spec.md
# differs from what the binary prints.
#   bash scripts/gen_spec_md.sh [EXPGRAPH]     (default: build/expgraph)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe=${1:-$root/build/expgraph}
[ -x "$exe" ] || { echo "gen_spec_md.sh: no binary at $exe (build first, or pass its path)" >&2; exit 2; }
"$exe" help spec --markdown > "$root/docs/spec.md.tmp"
mv "$root/docs/spec.md.tmp" "$root/docs/spec.md"
echo "wrote docs/spec.md"
