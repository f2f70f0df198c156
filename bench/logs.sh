#!/usr/bin/env bash
# Logs benchmarks (figures only, nothing asserted): `opsdeck logs import` of JSON and nginx files,
# selective searches over all stored lines for 24 h and 7 d, the analytics over about a million
# lines, and the tailer following a file appended at 5,000 lines/s.
#   bench/logs.sh [total lines]   (default 5,000,000)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
TOTAL=${1:-5000000}
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_logs fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-logs-bench
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_logs" "$OPSDECK_BIN" migrate >/dev/null
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_logs" OPSDECK_BIN="$OPSDECK_BIN" RUST_LOG=warn \
  "$CARGO_TARGET_DIR/release/opsdeck-logs-bench" "$TOTAL"
