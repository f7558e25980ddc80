#!/bin/bash
# The default suite's wall time against a reference commit's, back to back on this machine.
#
#   git worktree add /tmp/ref f111b54 && (cd /tmp/ref && python3 -m venv .venv && \
#       .venv/bin/pip install -q -e '.[test]')
#   benchmarks/suite_ratio.sh /tmp/ref [OUT]       # OUT default: suite_ratio.txt
#
# Runs `python -m pytest -n 2 -q` (what .ci/run runs) in the reference checkout with its .venv,
# then in this checkout with its .venv, each with a cold compilation cache of its own
# (XDG_CACHE_HOME in a fresh temporary folder: the commands' persistent JAX cache lives there),
# and appends the commit, the load before each run, the exit status and the wall seconds to OUT.
set -u
ref=${1:?usage: benchmarks/suite_ratio.sh REF_CHECKOUT [OUT]}
new=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${2:-suite_ratio.txt}")
for which in ref new; do
  if [ $which = ref ]; then d=$ref; else d=$new; fi
  cache=$(mktemp -d)
  echo "== $which $(git -C "$d" rev-parse --short HEAD), $(git -C "$d" status --short | wc -l) changed files, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out"
  s=$(date +%s.%N)
  (cd "$d" && XDG_CACHE_HOME=$cache .venv/bin/python -m pytest -n 2 -q -p no:randomly) > "$out.$which.log" 2>&1
  rc=$?
  e=$(date +%s.%N)
  echo "$which rc=$rc wall_s=$(echo "$e - $s" | bc) $(tail -1 "$out.$which.log")" >> "$out"
  rm -rf "$cache"
done
