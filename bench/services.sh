#!/usr/bin/env bash
# Scrape benchmark (figures only, nothing asserted): `opsdeck serve` scraping N targets of
# SERIES series each every 15 s (targets from a [[scrape_targets]] config file), its CPU and
# PostgreSQL's over a minute after a warm-up round, and the samples stored.
#   bench/services.sh [targets] [series] [seconds]   (default 50 2000 60)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
N=${1:-50}; SERIES=${2:-2000}; SECS=${3:-60}
start_local_pg bench 5435 ${PG_OPTS:-}
create_db "$DATABASE_ADMIN_URL" opsdeck_bench_scrape fresh
build_release >/dev/null
cargo build -q -p bench --release --bin opsdeck-scrape-fixtures
URL="$DATABASE_ADMIN_URL/opsdeck_bench_scrape"
DATABASE_URL="$URL" "$OPSDECK_BIN" migrate >/dev/null
work=$(mktemp -d)
"$CARGO_TARGET_DIR/release/opsdeck-scrape-fixtures" "$N" "$SERIES" > "$work/ports" &
fixtures=$!
for _ in $(seq 1 100); do [ -s "$work/ports" ] && break; sleep 0.1; done
for p in $(cat "$work/ports"); do
  printf '[[scrape_targets]]\nname = "t%s"\nurl = "http://127.0.0.1:%s/metrics"\ninterval_seconds = 15\ntimeout_seconds = 10\n\n' "$p" "$p"
done > "$work/opsdeck.toml"
PORT=3199
DATABASE_URL="$URL" OPSDECK_CONFIG="$work/opsdeck.toml" OPSDECK_LISTEN="127.0.0.1:$PORT" \
  OPSDECK_DATA_DIR="$work/data" OPSDECK_COLLECT_INTERVAL=0 OPSDECK_ADMIN_PASSWORD=bench-password-123 \
  RUST_LOG=warn "$OPSDECK_BIN" serve > "$work/serve.log" 2>&1 &
serve=$!
trap 'kill $serve $fixtures 2>/dev/null; rm -rf "$work"' EXIT

ticks() { awk '{s += $14 + $15} END {print s + 0}' "$@" 2>/dev/null; }
pg_ticks() { local pm; pm=$(head -1 "$STATE_DIR/pg-bench/postmaster.pid"); ticks $(pgrep -P "$pm" | sed 's|.*|/proc/&/stat|'); }
samples() { psql -tA "$URL" -c "SELECT count(*) FROM metric_samples"; }
sleep "${WARMUP:-60}"   # first rounds: series created, no rates yet, autovacuum catching up
hz=$(getconf CLK_TCK)
s0=$(ticks /proc/$serve/stat); p0=$(pg_ticks); n0=$(samples); t0=$(date +%s.%N)
sleep "$SECS"
s1=$(ticks /proc/$serve/stat); p1=$(pg_ticks); n1=$(samples); t1=$(date +%s.%N)
[ -n "${SHOW_PG:-}" ] && ps -o pid,cputime,args --ppid "$(head -1 "$STATE_DIR/pg-bench/postmaster.pid")" | sort -k2 -r | head -8
el=$(echo "$t1 - $t0" | bc)
echo "scraping $N targets × $SERIES series every 15 s, over ${SECS} s:"
echo "  opsdeck serve: $(echo "scale=2; ($s1 - $s0) / $hz / $el * 100" | bc) % of one core, RSS $(( $(awk '/VmRSS/ {print $2}' /proc/$serve/status) / 1024 )) MB"
echo "  PostgreSQL (all backends): $(echo "scale=2; ($p1 - $p0) / $hz / $el * 100" | bc) % of one core"
echo "  samples stored: $((n1 - n0)) ($(echo "scale=0; ($n1 - $n0) / $el" | bc)/s)"
psql -tA "$URL" -c "SELECT count(*) FILTER (WHERE up), count(*) FILTER (WHERE NOT up), round(avg(last_duration_ms)::numeric, 1), max(last_samples) FROM scrape_targets" \
  | awk -F'|' '{print "  targets up: " $1 ", down: " $2 ", mean scrape: " $3 " ms, samples per scrape: " $4}'
[ -n "${SHOW_PG:-}" ] && psql -q "$URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT round(total_exec_time) ms, calls, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90) q FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8" 2>/dev/null
psql -q "$DATABASE_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS opsdeck_bench_scrape WITH (FORCE)"
