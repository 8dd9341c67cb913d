#!/usr/bin/env bash
# Replaces the generated block NAME of a Markdown FILE (from its "<!-- NAME: ..." line to its
# "<!-- NAME end -->" line, both included) with standard input, which should carry the same
# markers. Used by mesa/before.sh and mesa/experiment.sh to put their tables in the READMEs.
#
#   mesa/put-block.sh FILE NAME < BLOCK
set -euo pipefail
file="$1" name="$2"
grep -q "^<!-- $name: " "$file" && grep -q "^<!-- $name end -->" "$file" || {
    echo "put-block: $file has no $name markers" >&2
    exit 1
}
block="$(cat)"
awk -v block="$block" -v start="^<!-- $name: " -v end="^<!-- $name end -->" '
    $0 ~ start { print block; skip = 1; next }
    $0 ~ end { skip = 0; next }
    !skip { print }
' "$file" >"$file.new"
mv "$file.new" "$file"
