#!/usr/bin/env bash
# Alert evaluation benchmark (figures only): one round over 1,000 rules (metric rules over 100
# hosts × 10 series, health-check, log and backup rules), timed over many rounds.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_alerts fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-alerts-bench
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_alerts" "$OPSDECK_BIN" migrate >/dev/null
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_alerts" RUST_LOG=warn "$CARGO_TARGET_DIR/release/opsdeck-alerts-bench"
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_alerts WITH (FORCE)"
