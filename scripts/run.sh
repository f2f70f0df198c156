#!/usr/bin/env bash
# Runs Opsdeck on http://127.0.0.1:3000 (or OPSDECK_LISTEN): installs what is missing, starts a
# project-managed PostgreSQL unless DATABASE_URL is set, builds, migrates and serves.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ -z "${DATABASE_URL:-}" ]; then
  step "starting the local PostgreSQL (set DATABASE_URL to use your own)"
  start_local_pg dev 5433
  create_db "$DATABASE_ADMIN_URL" opsdeck
  export DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck"
fi
build_release
export OPSDECK_DATA_DIR="${OPSDECK_DATA_DIR:-$STATE_DIR/data}"
step "starting Opsdeck (Ctrl-C stops it)"
exec "$OPSDECK_BIN" serve "$@"
