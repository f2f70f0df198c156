#!/usr/bin/env bash
# Fleet simulation (figures only, nothing asserted): `opsdeck serve` idle with its collector for
# 30 s (RSS), then AGENTS simulated agents (60 series every 5 s each, one process) against it for
# SECS seconds: batches accepted, ingest latency, start lateness, its CPU per 10,000 samples/s
# and its RSS every 30 s; then the same against two serve processes on one database.
#   bench/fleet.sh [agents] [seconds]   (default 1000 600)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
AGENTS=${1:-1000}; SECS=${2:-600}
start_local_pg bench 5435 max_connections=200
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_fleet fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-fleet
URL="$DATABASE_ADMIN_URL/opsdeck_bench_fleet"
DATABASE_URL="$URL" "$OPSDECK_BIN" migrate >/dev/null
TOKEN=$(DATABASE_URL="$URL" "$OPSDECK_BIN" token add fleet --scope ingest | tail -1)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
serve() { # port
  DATABASE_URL="$URL" OPSDECK_LISTEN="127.0.0.1:$1" OPSDECK_DATA_DIR="$work/data" \
    OPSDECK_ADMIN_PASSWORD=bench-password-123 OPSDECK_MAX_CONNECTIONS=20 RUST_LOG=warn \
    "$OPSDECK_BIN" serve > "$work/serve-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$1/api/v1/health" >/dev/null && return; sleep 0.2; done
  echo "serve on $1 did not start"; cat "$work/serve-$1.log"; exit 1
}
rss() { echo $(( $(awk '/VmRSS/ {print $2}' "/proc/$1/status") / 1024 )); }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run() { # label urls servers…
  local label=$1 urls=$2; shift 2
  local t0 t1 c0=() c1=() i
  for p in "$@"; do c0+=("$(ticks "$p")"); done
  t0=$(date +%s.%N)
  "$CARGO_TARGET_DIR/release/opsdeck-fleet" "$urls" "$TOKEN" "$AGENTS" "$SECS" 5 &
  local fleet=$!
  while kill -0 $fleet 2>/dev/null; do
    sleep 30
    kill -0 $fleet 2>/dev/null || break
    echo "  RSS: $(for p in "$@"; do printf '%s MB ' "$(rss "$p")"; done)"
  done
  wait $fleet
  t1=$(date +%s.%N)
  for p in "$@"; do c1+=("$(ticks "$p")"); done
  local el rate
  el=$(echo "$t1 - $t0" | bc)
  rate=$(echo "$AGENTS * 60 / 5" | bc)
  for i in "${!c0[@]}"; do
    cpu=$(echo "scale=3; (${c1[$i]} - ${c0[$i]}) / $hz / $el" | bc)
    echo "$label, serve $((i + 1)): $(echo "scale=1; $cpu * 100" | bc) % of a core = $(echo "scale=3; $cpu * 10000 / $rate * 100 / 1" | bc) % of a core per 10,000 samples/s (of $rate/s); RSS $(rss "${@:$((i + 1)):1}") MB"
  done
}
serve 3311
sleep 30
echo "idle with the collector for 30 s: RSS $(rss "${pids[0]}") MB"
echo "== one serve process"
run "one process" "http://127.0.0.1:3311" "${pids[0]}"
serve 3312
echo "== two serve processes, one database"
run "two processes" "http://127.0.0.1:3311,http://127.0.0.1:3312" "${pids[0]}" "${pids[1]}"
