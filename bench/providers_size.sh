#!/usr/bin/env bash
# Size and duplicate pairs of providers/ (issue 21, item 7): lines per backend, the `duplicates`
# pairs inside providers/ (identical vs same shape), and the module a new OpenAI-compatible
# hosted backend takes (Azure's service module). Usage: bash bench/providers_size.sh [REV]
# (REV: measure that commit in a temporary worktree; default the working tree).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
dir="$root"
if [ $# -gt 0 ]; then
  dir=$(mktemp -d)
  git -C "$root" worktree add -q --detach "$dir" "$1"
  trap 'git -C "$root" worktree remove --force "$dir"' EXIT
fi
cd "$dir/providers"
echo "commit: $(git rev-parse --short HEAD)$( [ $# -gt 0 ] || { git diff --quiet HEAD -- . || echo ' (with changes)'; })"
echo "lines in providers/ (all .py): $(find . -name '*.py' -print0 | xargs -0 cat | wc -l)"
echo "files in providers/ (all .py): $(find . -name '*.py' | wc -l)"
for b in openai openai_api azure together fireworks vertex gcs local hosted chat sdk errormap base; do
  if [ -d "$b" ]; then
    printf '  %-11s %5d lines in %d files (largest %s)\n' "$b/" "$(cat "$b"/*.py | wc -l)" \
      "$(ls "$b"/*.py | wc -l)" "$(wc -l "$b"/*.py | sort -n | sed -n 'x;$p' | awk '{print $2": "$1}')"
  elif [ -f "$b.py" ]; then
    printf '  %-11s %5d lines\n' "$b.py" "$(wc -l < "$b.py")"
  fi
done
[ -f azure/service.py ] && echo "Azure's service module (what a new OpenAI-compatible backend takes): $(wc -l < azure/service.py) lines"
out=$(duplicates --repo . --most 200 --seconds 120)
echo "duplicates: $(echo "$out" | head -1)"
echo "  pairs sharing identical lines: $(echo "$out" | grep -E '^D[0-9]+ ' | grep -vc ' shape' || true)"
echo "  pairs alike only in shape:     $(echo "$out" | grep -E '^D[0-9]+ ' | grep -c ' shape' || true)"
echo "  runs of 6+ lines in all pairs:  $(echo "$out" | grep -E '^D[0-9]+ ' | awk '{n=1} match($0, /\+[0-9]+ more run/) {n+=substr($0, RSTART+1, RLENGTH-10)} {s+=n} END {print s+0}')"
echo "$out" | grep -E '^D[0-9]+ ' | sed 's/^/    /'
