#!/usr/bin/env bash
# Load run (figures only): 200 requests/s of page views and API calls against a real
# `opsdeck serve` for 5 minutes, while 20 agents push metrics every 5 s and the tailer follows a
# file appended at 5,000 lines/s: error rate, latency percentiles, the server's RSS over time.
#   bench/load.sh [seconds] [requests/s]   (default 300 s at 200/s)
# The page views and API calls come from oha (crates.io; installed under ~/.cache/opsdeck/tools
# on first use, about 4 minutes), rate-limited with latency correction; opsdeck-load starts the
# server, the agents, the tailed file and oha, and reads every request back from oha's record.
# OPSDECK_LOAD_CLIENT=builtin sends them from opsdeck-load itself instead.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
OHA_VERSION=1.16.0
if [ "${OPSDECK_LOAD_CLIENT:-oha}" = oha ]; then
  OHA="$TOOLS_DIR/oha-$OHA_VERSION/bin/oha"
  if [ ! -x "$OHA" ]; then
    step "installing oha $OHA_VERSION from crates.io"
    cargo install --locked oha --version "$OHA_VERSION" --root "$TOOLS_DIR/oha-$OHA_VERSION"
  fi
  command -v sqlite3 >/dev/null || apt_install sqlite3
  export OPSDECK_OHA="$OHA"
fi
start_local_pg bench 5435
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_load fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-load
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_load" "$OPSDECK_BIN" migrate >/dev/null
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_load" OPSDECK_BIN="$OPSDECK_BIN" RUST_LOG=warn \
  "$CARGO_TARGET_DIR/release/opsdeck-load" "${1:-300}" "${2:-200}"
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_load WITH (FORCE)"
