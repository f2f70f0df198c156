#!/usr/bin/env bash
# Runs every test: formatting, clippy (server and WASM), unit, database and integration tests
# against a real PostgreSQL, then the browser tests in headless Chromium against the release
# binary. Installs what is missing first.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
started=$(date +%s)
# One-shot builds gain nothing from incremental state, which costs gigabytes of disk.
export CARGO_INCREMENTAL=0

ensure_build_tools
if ! command -v chromium >/dev/null; then
  step "installing Chromium (Debian) for the browser tests"
  apt_install chromium chromium-driver fonts-dejavu-core
fi
command -v curl >/dev/null || apt_install curl ca-certificates
command -v jq >/dev/null || apt_install jq   # the log tests compare with the runbook's jq pipelines
command -v promtool >/dev/null || apt_install prometheus   # promtool checks the /metrics output
command -v rustfmt >/dev/null || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

step "starting the test PostgreSQL"
# Durability is not under test here: fsync off makes the per-test databases cheap.
start_local_pg test 5434 fsync=off synchronous_commit=off full_page_writes=off max_connections=300
export DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_test"
# Fresh each run: the query check migrates it from nothing, whatever an earlier checkout left.
create_db "$DATABASE_ADMIN_URL" opsdeck_test fresh
step "starting a streaming replica of it (the read-replica tests)"
start_replica_pg test test-replica $(( ${DATABASE_ADMIN_URL##*:} + 2 )) fsync=off max_connections=300
export OPSDECK_TEST_REPLICA_URL="$REPLICA_ADMIN_URL"

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (server and WASM builds)"
cargo clippy -p app -p server -p bench --all-targets -- -D warnings
cargo clippy -p frontend --lib --target wasm32-unknown-unknown -- -D warnings

step "cargo audit (RustSec advisories)"
# A copy of the advisory database sits beside the project (GitHub, where it lives, is not
# reachable from the build machines); ignored advisories are in .cargo/audit.toml with reasons.
ADVISORY_DB=${OPSDECK_ADVISORY_DB:-$ROOT/../shared/advisory-db}
if [ -d "$ADVISORY_DB/crates" ]; then
  if ! command -v cargo-audit >/dev/null; then
    step "installing cargo-audit (once, a few minutes)"
    cargo install cargo-audit --locked
  fi
  cargo audit --db "$ADVISORY_DB" --no-fetch --deny warnings
else
  echo "WARNING: no RustSec advisory database at $ADVISORY_DB (set OPSDECK_ADVISORY_DB): dependencies not audited"
fi

step "the query descriptions in .sqlx/ match the migrations (cargo sqlx prepare --check)"
SQLX_CLI_VERSION=0.8.6
if [ "$(sqlx --version 2>/dev/null | awk '{print $2}')" != "$SQLX_CLI_VERSION" ]; then
  step "installing sqlx-cli $SQLX_CLI_VERSION (once, a few minutes)"
  cargo install sqlx-cli --version "$SQLX_CLI_VERSION" --locked --no-default-features --features postgres,rustls
fi
sqlx migrate run --source migrations --database-url "$DATABASE_URL"
SQLX_OFFLINE=false cargo sqlx prepare --workspace --check -- --all-targets

# The release binary first: the tests that run real `opsdeck serve` processes use it (its
# memory and speed are what users get), and the browser tests after them.
build_release

step "unit, database and integration tests"
OPSDECK_TEST_BIN="$OPSDECK_BIN" cargo test -p app -p server

step "browser tests (headless Chromium)"
E2E_PORT=${E2E_PORT:-3187}
# A port nothing listens on yet, so the tests never talk to a stale server.
while (exec 3<>"/dev/tcp/127.0.0.1/$E2E_PORT") 2>/dev/null; do E2E_PORT=$((E2E_PORT + 1)); done
create_db "$DATABASE_ADMIN_URL" opsdeck_e2e fresh
E2E_DIR=$(mktemp -d)
cp "$OPSDECK_BIN" "$E2E_DIR/opsdeck"   # the binary alone, away from the source tree
export OPSDECK_E2E_ADMIN_PASSWORD="e2e-admin-$(head -c 6 /dev/urandom | base64 | tr -d '/+=')"
export OPSDECK_E2E_VIEWER_PASSWORD="e2e-viewer-$(head -c 6 /dev/urandom | base64 | tr -d '/+=')"
(cd "$E2E_DIR" && DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_e2e" OPSDECK_LISTEN="127.0.0.1:$E2E_PORT" \
  OPSDECK_DATA_DIR="$E2E_DIR/data" OPSDECK_ADMIN_PASSWORD="$OPSDECK_E2E_ADMIN_PASSWORD" \
  OPSDECK_HOST_NAME=e2e-host OPSDECK_COLLECT_INTERVAL=2s OPSDECK_ALERT_INTERVAL=2s OPSDECK_STATUS_PAGE=true \
  RUST_LOG="info,tower_http=debug" \
  exec ./opsdeck serve >"$E2E_DIR/server.log" 2>&1) &
server_pid=$!
cleanup() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$E2E_PORT/api/v1/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "opsdeck serve exited:"; cat "$E2E_DIR/server.log"; exit 1; }
  sleep 0.2
done
# The first start created `admin` from OPSDECK_ADMIN_PASSWORD; add a viewer with the CLI.
(cd "$E2E_DIR" && printf '%s\n' "$OPSDECK_E2E_VIEWER_PASSWORD" | \
  DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_e2e" ./opsdeck user add viewer --role viewer --password-stdin)
export BASE_URL="http://127.0.0.1:$E2E_PORT"
(cd end2end && { [ -d node_modules/@playwright/test ] || npm ci --no-audit --no-fund --silent; } && npx playwright test) || {
  echo "--- server log ---"; tail -n 50 "$E2E_DIR/server.log"; exit 1; }
step "schemathesis against /api/v1/openapi.json"
# After the browser tests, on their server and database: generated and mutated requests on
# every operation, with a session and an ingest token. No 5xx, no answer off its own schema.
OPSDECK_FUZZ_EXAMPLES=${OPSDECK_FUZZ_EXAMPLES:-50} \
  "$ROOT/scripts/api-fuzz.sh" "$BASE_URL" admin "$OPSDECK_E2E_ADMIN_PASSWORD" || {
  echo "--- server log ---"; grep -E 'ERROR|panicked' "$E2E_DIR/server.log" | tail -n 30; exit 1; }
if grep -q 'panicked' "$E2E_DIR/server.log"; then
  echo "the server panicked:"; grep -A5 'panicked' "$E2E_DIR/server.log" | head -40; exit 1
fi
cleanup
trap - EXIT
# Secrets never reach the logs: the passwords of this run and the database's, in the log of a
# server that served every browser test (requests traced at debug level).
db_password=$(sed -E 's|^postgres://[^:]+:([^@]+)@.*|\1|' <<<"$DATABASE_ADMIN_URL")
for secret in "$OPSDECK_E2E_ADMIN_PASSWORD" "$OPSDECK_E2E_VIEWER_PASSWORD" "$db_password"; do
  if grep -qF -- "$secret" "$E2E_DIR/server.log"; then
    echo "a secret appears in the server log ($E2E_DIR/server.log)"; exit 1
  fi
done
step "no secret in the server log ($(wc -l <"$E2E_DIR/server.log") lines)"
rm -rf "$E2E_DIR"

step "all tests passed in $(( $(date +%s) - started )) s"
