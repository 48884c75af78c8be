#!/usr/bin/env bash
# Fails when git tracks a file over 1 MiB that is not source or docs: a
# committed binary, a data dump or a profile belongs in .gitignore, not in
# the history every clone downloads. Source and docs may be large (go.sum,
# README.md); they are text a reviewer reads in diffs.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=$((1 << 20))
text_ext='go|mod|sum|md|txt|yaml|yml|json|sql|sh|html|css|js|ts|proto|toml'
bad=0
while IFS= read -r -d '' f; do
	[[ -f "$f" ]] || continue
	size=$(stat -c %s "$f")
	((size > limit)) || continue
	base=${f##*/}
	if [[ "$base" =~ \.(${text_ext})$ || "$base" == Makefile || "$base" == LICENSE ]] && grep -Iq . "$f"; then
		continue # source or docs (and really text: no NUL bytes)
	fi
	echo "tracked file over 1 MiB that is not source or docs: $f ($size bytes)" >&2
	bad=1
done < <(git ls-files -z)
exit "$bad"
