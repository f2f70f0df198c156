#!/usr/bin/env bash
# Forecast benchmark (figures only): forecasts of 100 hosts × 10 resources from 14 days of
# hourly rollups.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_forecast fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-forecast-bench
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_forecast" "$OPSDECK_BIN" migrate >/dev/null
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_forecast" RUST_LOG=warn "$CARGO_TARGET_DIR/release/opsdeck-forecast-bench"
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_forecast WITH (FORCE)"
