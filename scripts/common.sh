# Shared set-up for scripts/run.sh and scripts/test.sh: installs what is missing and starts a
# PostgreSQL that the project manages. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM_BINDGEN_VERSION=0.2.130
PG_VERSION_PREFERRED=15
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opsdeck/target}"
export OPSDECK_SITE_DIR="$CARGO_TARGET_DIR/site"
TOOLS_DIR="${OPSDECK_TOOLS_DIR:-$HOME/.cache/opsdeck/tools}"
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: its files live where the postgres user can reach them.
  STATE_DIR="${OPSDECK_STATE_DIR:-/var/lib/opsdeck-dev}"
else
  STATE_DIR="${OPSDECK_STATE_DIR:-$ROOT/.opsdeck}"
fi
export PATH="$HOME/.cargo/bin:$PATH"
# SQL is checked at build time against .sqlx/, never against the database the scripts start
# (it may be empty when the build runs). See README, "Changing a query".
export SQLX_OFFLINE=true

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_build_tools() {
  command -v cc >/dev/null || apt_install build-essential
  command -v pkg-config >/dev/null || apt_install pkg-config
  if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    step "adding the wasm32 target"
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once, about 3 minutes)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" ]; then
    step "installing wasm-opt (npm binaryen; Debian's is too old to hydrate)"
    mkdir -p "$TOOLS_DIR"
    (cd "$TOOLS_DIR" && npm install --no-audit --no-fund --silent binaryen@132 >/dev/null)
  fi
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/$PG_VERSION_PREFERRED/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

ensure_postgres_installed() {
  if ! pg_bin >/dev/null; then
    step "installing PostgreSQL from Debian"
    apt_install postgresql postgresql-client
  fi
  command -v psql >/dev/null || apt_install postgresql-client
}

# pg_start DIR PORT [postgres -c options...]: starts the cluster in DIR on 127.0.0.1:PORT (as the
# postgres user when root), its socket in DIR, its log in DIR/server.log.
pg_start() {
  local dir=$1 port=$2; shift 2
  local run_as=() opts o
  if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); fi
  opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir"
  for o in "$@"; do opts="$opts -c $o"; done
  "${run_as[@]}" "$(pg_bin)/pg_ctl" -D "$dir" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null
}

# start_local_pg NAME PORT [postgres -c options...]: a cluster under $STATE_DIR/pg-NAME on
# 127.0.0.1:PORT with a generated password; sets DATABASE_ADMIN_URL (no database name).
start_local_pg() {
  local name=$1 port=$2; shift 2
  local bin dir pwfile run_as=()
  ensure_postgres_installed
  bin=$(pg_bin)
  dir="$STATE_DIR/pg-$name"
  pwfile="$STATE_DIR/pg-$name.password"
  mkdir -p "$STATE_DIR"
  if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); chown postgres "$STATE_DIR"; fi
  if [ ! -s "$dir/PG_VERSION" ]; then
    step "creating the $name PostgreSQL cluster in $dir"
    umask 077
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pwfile"
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir" "$pwfile"; fi
    "${run_as[@]}" "$bin/initdb" -D "$dir" -U opsdeck --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    umask 022
  fi
  if ! "${run_as[@]}" "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    pg_start "$dir" "$port" "$@"
  fi
  DATABASE_ADMIN_URL="postgres://opsdeck:$(cat "$pwfile")@127.0.0.1:$port"
}

# start_replica_pg PRIMARY_NAME NAME PORT [postgres -c options...]: a streaming replica of the
# cluster PRIMARY_NAME (started by start_local_pg, whose DATABASE_ADMIN_URL is current), made
# afresh by pg_basebackup on 127.0.0.1:PORT; sets REPLICA_ADMIN_URL (no database name). The
# options must include the primary's max_connections (a replica may not have fewer).
start_replica_pg() {
  local primary=$1 name=$2 port=$3; shift 3
  local bin dir pwfile run_as=() primary_port slot
  bin=$(pg_bin)
  dir="$STATE_DIR/pg-$name"
  pwfile="$STATE_DIR/pg-$primary.password"
  primary_port=${DATABASE_ADMIN_URL##*:}
  if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); fi
  if [ -s "$dir/PG_VERSION" ]; then
    "${run_as[@]}" "$bin/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  # The replica streams through a replication slot, which keeps the primary's WAL until the
  # replica has it. Without one, a checkpoint during heavy writes (the tests write gigabytes
  # on two cores) removed a segment the replica was still reading, and it stopped for good:
  # "requested WAL segment … has already been removed". The slot of an earlier replica goes
  # first (its walsender may take a moment to go); 8 GB of WAL at most is kept for a replica
  # that is down.
  slot="opsdeck_${name//-/_}"
  psql -q "$DATABASE_ADMIN_URL/postgres" -c "ALTER SYSTEM SET max_slot_wal_keep_size = '8GB'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  for _ in $(seq 1 20); do
    psql -qtA "$DATABASE_ADMIN_URL/postgres" -c "SELECT pg_drop_replication_slot(slot_name)
      FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null 2>&1 && break
    sleep 0.5
  done
  "${run_as[@]}" env PGPASSWORD="$(cat "$pwfile")" "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" \
    -U opsdeck -D "$dir" -R -X stream -C -S "$slot" -c fast 2>&1 | grep -v 'skipping special file' || true
  [ -s "$dir/PG_VERSION" ] || { echo "pg_basebackup of the $primary cluster failed" >&2; return 1; }
  rm -f "$dir/server.log" "$dir/postmaster.pid"
  pg_start "$dir" "$port" hot_standby=on "$@"
  REPLICA_ADMIN_URL="postgres://opsdeck:$(cat "$pwfile")@127.0.0.1:$port"
}

# create_db URL_WITHOUT_DB NAME [fresh]
create_db() {
  local base=$1 db=$2 fresh=${3:-}
  if [ -n "$fresh" ]; then psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null; fi
  if [ "$(psql -tA "$base/postgres" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    psql -q "$base/postgres" -c "CREATE DATABASE \"$db\"" >/dev/null
  fi
}

# Builds the WASM bundle and the release binary that embeds it.
build_release() {
  ensure_build_tools
  step "building the WASM bundle"
  cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release
  local pkg="$OPSDECK_SITE_DIR/pkg" out
  mkdir -p "$pkg"
  out=$(mktemp -d)
  wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name opsdeck \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm"
  "$TOOLS_DIR/node_modules/.bin/wasm-opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    "$out/opsdeck_bg.wasm" -o "$out/opsdeck.wasm"
  rm -f "$out/opsdeck_bg.wasm" "$pkg/opsdeck_bg.wasm"
  # Files that did not change keep their time, so the binary that embeds them is not rebuilt.
  local f
  for f in "$out"/*; do
    cmp -s "$f" "$pkg/$(basename "$f")" || mv "$f" "$pkg/"
  done
  rm -rf "$out"
  step "building the opsdeck binary"
  cargo build -p server --release --bin opsdeck
  OPSDECK_BIN="$CARGO_TARGET_DIR/release/opsdeck"
}
