#!/usr/bin/env bash
# Runs a benchmark and keeps what it printed as a published run: docs/runs/<name>-<UTC time>/
# with output.txt and RUN.md (the command, the commit, the machine and how busy it was).
#
# Usage: scripts/record-bench.sh NAME COMMAND [ARGS…]
#   e.g. scripts/record-bench.sh device-memory cargo bench --bench device_memory
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: record-bench.sh NAME COMMAND [ARGS…]}
shift
dir=docs/runs/$name-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dir"
commit=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%FT%TZ)
status=0
"$@" >"$dir/output.txt" 2>"$dir/stderr.log" || status=$?
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
busy=$(ps -eo pcpu=,comm= | awk '$2 !~ /syncstorm|postgres|ps|awk|cargo|device_memory|http_generation/ && $1 > 20 {print $2}' | sort -u | tr '\n' ' ')
env_vars=$(env | grep -E '^(SYNCSTORM_|BENCH_|HELD_)' | tr '\n' ' ' || true)
cat >"$dir/RUN.md" <<MD
# $name, $started

- command: \`${env_vars}$*\`, exit $status
- commit: $commit$dirty
- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)
- load average (1/5/15 min) before: $load_before; after: $load_after
- other busy processes at the end: ${busy:-none}
- files: output.txt is what the benchmark printed; stderr.log its build and progress output
MD
echo "$dir (exit $status)"
