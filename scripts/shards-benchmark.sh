#!/usr/bin/env bash
# One scenario two ways against the same standalone `syncstorm stack`: the whole population
# in one `syncstorm run`, then as N shard processes (one run tag, one --start-at, each from its
# own source address) merged into one result. Keeps both under docs/runs/shards-benchmark-<UTC>/
# with RUN.md (commands, commit, machine, load) and a side-by-side table (compare.md).
#
# The stack gets core 0 and the generator (one process or all shards) core 1 (taskset), so
# both arms meet the same server with the same CPU; on a machine with more cores, widen them.
#
# Usage: scripts/shards-benchmark.sh [SCENARIO.toml] [syncstorm run flags…]
#   SHARDS=4, STACK_WORKERS=7 (enough processes for 100k sockets), START_IN=90 (seconds from
#   the shards' launch to their common --start-at: long enough for their setups)
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-scenarios/risk1-token-storm.toml}
shift || true
shards=${SHARDS:-4}
stack_workers=${STACK_WORKERS:-7}
name=$(basename "$scenario" .toml)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
dir=docs/runs/shards-benchmark-$stamp
mkdir -p "$dir"
commit=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
cargo build --release --quiet
bin=target/release/syncstorm
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# The stack, on core 0, until this script ends.
taskset -c 0 "$bin" stack --plan pro --workers "$stack_workers" >"$dir/stack.env" 2>"$dir/stack.log" &
stack_pid=$!
trap 'kill -INT $stack_pid 2>/dev/null; wait $stack_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  grep -q '^SUPABASE_URLS=' "$dir/stack.env" && break
  kill -0 $stack_pid 2>/dev/null || { cat "$dir/stack.log" >&2; exit 1; }
  sleep 1
done
set -a
# shellcheck disable=SC1091
. "$dir/stack.env"
set +a
targets=()
for url in ${SUPABASE_URLS//,/ }; do
  host=${url#http://}
  targets+=(--target-address "${host%:*}")
done
common=(--set target.kind=supabase --set "target.url=$SUPABASE_URL" --database-url "$DATABASE_URL"
  "${targets[@]}" --no-cpu-sets "$@")
timed() { /usr/bin/time -f '%e s wall, %M KiB peak RSS, %P CPU' -o "$1" "${@:2}"; }

# Arm 1: one process.
one_tag=one-process-$stamp.syncstorm.test
status_one=0
timed "$dir/one-process.time" taskset -c 1 "$bin" run "$scenario" "${common[@]}" \
  --run-tag "${one_tag,,}" --source-address 127.0.1.1 --out "$dir/one-process" \
  2>"$dir/one-process.log" || status_one=$?
"$bin" cleanup --run-tag "${one_tag,,}" --database-url "$DATABASE_URL" >/dev/null 2>&1 || true

# Arm 2: N shards, together.
shard_tag=shards-$stamp.syncstorm.test
start_at=$(date -u -d "+${START_IN:-90} seconds" +%FT%TZ)
pids=()
for i in $(seq 0 $((shards - 1))); do
  timed "$dir/shard-$i.time" taskset -c 1 "$bin" run "$scenario" "${common[@]}" \
    --shard "$i/$shards" --run-tag "${shard_tag,,}" --start-at "$start_at" \
    --source-address "127.0.2.$((i + 1))" --out "$dir/shard-$i" 2>"$dir/shard-$i.log" &
  pids+=($!)
done
status_shards=0
for pid in "${pids[@]}"; do
  code=0
  wait "$pid" || code=$?
  if ((code > status_shards)); then status_shards=$code; fi
done
"$bin" merge "$dir"/shard-*/*.json --out "$dir/merged.json" 2>"$dir/merge.log" || true
"$bin" cleanup --run-tag "${shard_tag,,}" --database-url "$DATABASE_URL" >/dev/null 2>&1 || true
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$dir" "$shards" >"$dir/compare.md" <<'PY'
import glob, json, sys
d, n = sys.argv[1], int(sys.argv[2])
one = json.load(open(glob.glob(f"{d}/one-process/*.json")[0]))
merged = json.load(open(f"{d}/merged.json"))
def t(path):
    # GNU time writes "Command exited with non-zero status N" first when the run failed.
    return open(path).read().strip().splitlines()[-1]
def row(label, f):
    print(f"| {label} | {f(one)} | {f(merged)} |")
print(f"| | one process | {n} shards, merged |\n|---|---|---|")
op = lambda r, name, k: r["operations"].get(name, {}).get(k, 0)
row("devices at the peak", lambda r: f'{r["peak"]["devices"]:,}')
row("setup (s, longest shard)", lambda r: f'{r["setup"]["duration_s"]:.1f}')
row("app opens", lambda r: f'{r["counters"].get("app_opens", 0):,}')
row("token checks", lambda r: f'{op(r, "token_check", "count"):,}')
row("failed token checks", lambda r: f'{op(r, "token_check", "errors"):,}')
row("token_check p50 / p99 (ms)", lambda r: f'{op(r, "token_check", "p50_ms"):.0f} / {op(r, "token_check", "p99_ms"):.0f}')
row("sync p99 (ms)", lambda r: f'{op(r, "sync", "p99_ms"):.0f}')
def gen_peak(r, key):
    per = {}
    for s in r["generator"]:
        per[s["t"]] = per.get(s["t"], 0) + s[key]
    return max(per.values(), default=0)
row("generator CPU peak (% of one core, all processes)", lambda r: f'{gen_peak(r, "cpu_pct"):.0f}')
row("generator memory peak (MiB, all processes)", lambda r: f'{gen_peak(r, "rss_bytes") / 1048576:.0f}')
row("worst event-loop lag (ms)", lambda r: f'{max((s["loop_lag_ms"] for s in r["generator"]), default=0):.0f}')
row("exit code", lambda r: r["status"]["exit_code"])
print()
print("Each run process (GNU time; its worker processes are counted in the generator rows above):\n")
print(f"- one process: {t(f'{d}/one-process.time')}")
for i in range(n):
    print(f"- shard {i}/{n}: {t(f'{d}/shard-{i}.time')}")
for s in merged.get("shards", []):
    c = s.get("clock") or {}
    print(f"- {s['label']} started +{s['start_offset_s']:.1f} s, clock offset {c.get('offset_ms', float('nan')):.0f} ms ± {c.get('uncertainty_ms', float('nan')):.0f} ms")
PY

cat >"$dir/RUN.md" <<MD
# shards benchmark: $name, one process vs $shards shards, $stamp

- commands: \`scripts/shards-benchmark.sh $scenario $*\` (release build), which runs
  - \`syncstorm stack --plan pro --workers $stack_workers\` on core 0;
  - \`syncstorm run $scenario ${common[*]//$DATABASE_URL/\$DATABASE_URL} --source-address 127.0.1.1\` on core 1 (exit $status_one);
  - then $shards × \`syncstorm run … --shard i/$shards --run-tag … --start-at … --source-address 127.0.2.(i+1)\` on core 1 together (worst exit $status_shards), and \`syncstorm merge\`.
- commit: $commit$dirty
- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)
- load average (1/5/15 min) before: $load_before; after: $load_after
- files: one-process/ and shard-*/ (each run's JSON and HTML), merged.json/.html, compare.md (the table), *.time (GNU time of each process), *.log (progress)

$(cat "$dir/compare.md")
MD
echo "$dir (one process: exit $status_one; shards: worst exit $status_shards)"
