#!/usr/bin/env bash
# Log analytics of the last 6 hours of a service writing RATE lines/s (figures only): the
# ranges start inside a busy past hour; answered with the minute tier and, side by side,
# without it (target p95 ≤ 200 ms at 5,000 lines/s).
#   bench/log-minutes.sh [rate]   (default 5000)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
RATE=${1:-5000}
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_log_minutes fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-log-minutes-bench
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_log_minutes" "$OPSDECK_BIN" migrate >/dev/null
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_log_minutes" RUST_LOG=warn "$CARGO_TARGET_DIR/release/opsdeck-log-minutes-bench" "$RATE"
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_log_minutes WITH (FORCE)"
