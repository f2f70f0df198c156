#!/usr/bin/env bash
# Foundation benchmark: GET /login at 50 connections with wrk, idle RSS of `opsdeck serve`, and
# the size of the WASM bundle as served (brotli and gzip). Prints figures; asserts nothing.
#   bench/web.sh [seconds]    (default 20 s of load)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
DURATION=${1:-20}
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
start_local_pg test 5434 fsync=off synchronous_commit=off full_page_writes=off max_connections=300
create_db "$DATABASE_ADMIN_URL" opsdeck_bench fresh
build_release >/dev/null
PORT=3199
DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench" OPSDECK_LISTEN="127.0.0.1:$PORT" OPSDECK_DATA_DIR=$(mktemp -d) \
  OPSDECK_ADMIN_PASSWORD=bench-password-123 RUST_LOG=warn "$OPSDECK_BIN" serve >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$PORT/login" >/dev/null
sleep 3
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "idle RSS after start and one page: $((rss_idle / 1024)) MB (${rss_idle} kB)"
for enc in br gzip identity; do
  n=$(curl -fsS -H "accept-encoding: $enc" "http://127.0.0.1:$PORT/pkg/opsdeck.wasm" | wc -c)
  echo "WASM as served ($enc): $((n / 1024)) KB ($n bytes)"
done
echo "GET /login, 50 connections, 2 threads, ${DURATION}s:"
wrk -t2 -c50 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/login" | grep -E "Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx|Socket errors"
rss_after=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "RSS after load: $((rss_after / 1024)) MB"
