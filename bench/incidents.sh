#!/usr/bin/env bash
# Incident context benchmark (figures only): an incident over 5 hosts and 3 services, a 2-hour
# window, with 5 M log lines stored: its page data built 30 times (target p95 ≤ 300 ms).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_incidents fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-incident-bench
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_incidents" "$OPSDECK_BIN" migrate >/dev/null
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_incidents" RUST_LOG=warn "$CARGO_TARGET_DIR/release/opsdeck-incident-bench"
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_incidents WITH (FORCE)"
