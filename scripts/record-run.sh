#!/usr/bin/env bash
# Runs a scenario and keeps its result as a published run: JSON and HTML under
# docs/runs/<scenario>-<UTC time>/, with RUN.md saying the command, the commit, the machine and
# how busy the machine was. Every figure in README.md or docs/ points at one of these.
#
# Usage: scripts/record-run.sh SCENARIO.toml [syncstorm run flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: record-run.sh SCENARIO.toml [flags…]}
shift
name=$(basename "$scenario" .toml)
dir=docs/runs/$name-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dir"
commit=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cargo build --release --quiet
status=0
started=$(date -u +%FT%TZ)
target/release/syncstorm run "$scenario" --out "$dir" "$@" 2>"$dir/stderr.log" || status=$?
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
busy=$(ps -eo pcpu=,comm= | awk '$2 !~ /syncstorm|postgres|ps|awk/ && $1 > 20 {print $2}' | sort -u | tr '\n' ' ')
cat >"$dir/RUN.md" <<MD
# $name, $started

- command: \`syncstorm run $scenario $*\` (release build), exit $status
- commit: $commit$dirty
- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)
- load average (1/5/15 min) before: $load_before; after: $load_after
- other busy processes at the end: ${busy:-none}
- files: the result JSON and its HTML report beside this file; stderr.log is the progress output
MD
echo "$dir (exit $status)"
