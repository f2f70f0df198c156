#!/usr/bin/env bash
# Load run (figures only): 200 requests/s of page views and API calls against a real
# `opsdeck serve` for 5 minutes, while 20 agents push metrics every 5 s and the tailer follows a
# file appended at 5,000 lines/s: error rate, latency percentiles, the server's RSS over time.
#   bench/load.sh [seconds] [requests/s]   (default 300 s at 200/s)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_load fresh
build_release >/dev/null
cargo build -q -p server --release --bin opsdeck-load
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_load" "$OPSDECK_BIN" migrate >/dev/null
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_load" OPSDECK_BIN="$OPSDECK_BIN" RUST_LOG=warn \
  "$CARGO_TARGET_DIR/release/opsdeck-load" "${1:-300}" "${2:-200}"
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_load WITH (FORCE)"
