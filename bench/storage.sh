#!/usr/bin/env bash
# Metrics storage benchmark (figures only): a simulated fleet's samples stored through the ingest
# path, then packed into compressed chunks; bytes per sample before and after, by kind of series,
# and of the rollup tiers.
#   bench/storage.sh [hosts] [hours]   (default 100 hosts × 24 h = 10.4 M samples)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_storage fresh
cargo build -q -p bench --release --bin opsdeck-storage-bench
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_storage" RUST_LOG=warn "$CARGO_TARGET_DIR/release/opsdeck-storage-bench" "$@"
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_storage WITH (FORCE)"
