#!/usr/bin/env bash
# Reproduces docs/capacity.md: the token storm (risk 1) modelled at 100k, 500k and 1M devices,
# with the fixed one-second USAP retry the app ships and with exponential backoff and full
# jitter (the roadmap's "what does jitter buy"), then the capacity per plan. Every result
# (JSON and HTML) lands in one folder under docs/runs/ with RUN.md.
#
# Usage: scripts/capacity-answers.sh [--calibration FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=docs/runs/capacity-answers-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dir"
commit=$(git rev-parse --short HEAD)
cargo build --release --quiet
bin=target/release/syncstorm
log="$dir/stderr.log"
for users in 50000 250000 500000; do
  rate=$(( users * 2 / 60 ))
  for retry in fixed exponential_full_jitter; do
    echo "== $((users * 2)) devices, usap.retry=$retry" >>"$log"
    "$bin" model scenarios/risk1-token-storm.toml "$@" --out "$dir/$((users * 2))-$retry" \
      --set population.users=$users --set phases.0.arrival_rate=$rate \
      --set device.usap.retry=$retry >/dev/null 2>>"$log" || true
  done
done
echo "== capacity" >>"$log"
"$bin" capacity scenarios/risk1-token-storm.toml "$@" --out "$dir/capacity" \
  --slo 'token_check.p99 < 1s' --slo 'token_check.error_rate < 1%' \
  --plans free,pro,team --users 1000..200000 >/dev/null 2>>"$log"
cat >"$dir/RUN.md" <<MD
# capacity answers, $(date -u +%FT%TZ)

- command: \`scripts/capacity-answers.sh $*\`
- commit: $commit (built at the start)
- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- files: one modelled result (JSON + HTML) per row of docs/capacity.md, the capacity report, stderr.log with every summary
MD
echo "$dir"
