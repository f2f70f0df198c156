#!/usr/bin/env bash
# Metrics benchmarks (figures only, nothing asserted):
#  1. opsdeck-bench: ingest through HTTP vs COPY of the same rows, 30-day series query p95,
#     host page render with all charts for 24 h;
#  2. `opsdeck serve` RSS and CPU with the collector running, and `opsdeck agent` RSS and CPU,
#     each over a minute at the default 5 s interval.
#   bench/metrics.sh [samples]   (default 1,000,000)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
SAMPLES=${1:-1000000}
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_metrics fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-bench

echo "== opsdeck-bench ($SAMPLES samples)"
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_metrics" RUST_LOG=warn "$CARGO_TARGET_DIR/release/opsdeck-bench" "$SAMPLES"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # pid seconds label
  local pid=$1 secs=$2 label=$3 t0 t1 hz
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid"); sleep "$secs"; t1=$(cpu_ticks "$pid")
  echo "$label: RSS $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MB, CPU $(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f", (b - a) / hz / s * 100 }') % of one core over ${secs} s"
}

echo "== footprint"
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_footprint fresh
PORT=3198
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_footprint" OPSDECK_LISTEN="127.0.0.1:$PORT" OPSDECK_DATA_DIR=$(mktemp -d) \
  OPSDECK_ADMIN_PASSWORD=bench-password-123 RUST_LOG=warn "$OPSDECK_BIN" serve >/dev/null 2>&1 &
serve_pid=$!
trap 'kill $serve_pid ${agent_pid:-} 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break; sleep 0.2; done
sleep 10
measure "$serve_pid" 60 "opsdeck serve (collector every 5 s, no requests)"
TOKEN_FILE=$(mktemp)
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_footprint" "$OPSDECK_BIN" token add bench-agent --scope ingest 2>/dev/null > "$TOKEN_FILE"
RUST_LOG=warn "$OPSDECK_BIN" agent --server "http://127.0.0.1:$PORT" --token-file "$TOKEN_FILE" --host bench-agent-host >/dev/null 2>&1 &
agent_pid=$!
sleep 10
measure "$agent_pid" 60 "opsdeck agent (every 5 s)"
echo "samples stored from the agent: $(psql -tA "$DATABASE_ADMIN_URL/opsdeck_bench_footprint" -c "SELECT count(*) FROM metric_samples s JOIN metric_series m ON m.id = s.series_id WHERE m.host = 'bench-agent-host'")"
