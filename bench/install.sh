#!/usr/bin/env bash
# Time the README's install command on a clean clone with cold package caches.
#   bash bench/install.sh            # the install command in README.md (ci:install)
#   bash bench/install.sh 'CMD'      # any other install command, for a before/after comparison
# Prints wall/CPU seconds and the size of .venv. Uses throw-away caches under a temp dir, so the
# machine's own pip and uv caches stay warm and untouched.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
cmd=${1:-$(awk '$0 == "<!-- ci:install -->" {f=1; next} f && /^```/ {if (s) exit; s=1; next} f && s {print; exit}' README.md)}
export PIP_CACHE_DIR="$work/pip-cache" UV_CACHE_DIR="$work/uv-cache"
echo "command: $cmd"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
/usr/bin/time -f "wall %e s, user %U s, sys %S s" bash -euo pipefail -c "$cmd" > "$work/out.log" 2>"$work/err.log" || { cat "$work/err.log"; exit 1; }
tail -n 1 "$work/err.log"
echo "venv: $(du -sh .venv | cut -f1), packages: $(.venv/bin/python -m pip list 2>/dev/null | tail -n +3 | wc -l)"
