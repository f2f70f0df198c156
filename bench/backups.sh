#!/usr/bin/env bash
# Backup benchmark: `opsdeck backup run` against a plain `pg_dump -Fc > file` of the same ~1 GB
# database, side by side in one run (alternating, best of N each). Prints figures; asserts nothing.
#   bench/backups.sh [pgbench scale] [rounds]   (default scale 68 ≈ 1 GB, 2 rounds)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
SCALE=${1:-68}
ROUNDS=${2:-2}
command -v bc >/dev/null || apt_install bc
start_local_pg bench 5435
build_release >/dev/null
PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -1)
[ -n "$PGBENCH" ] || { echo "pgbench not found (it ships with the postgresql package)"; exit 1; }

DB=opsdeck_bench_backup_src
if [ "$(psql -tA "$DATABASE_ADMIN_URL/postgres" -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" != 1 ] \
   || [ "$(psql -tA "$DATABASE_ADMIN_URL/$DB" -c "SELECT count(*) FROM pgbench_branches" 2>/dev/null)" != "$SCALE" ]; then
  create_db "$DATABASE_ADMIN_URL" "$DB" fresh
  echo "== filling $DB with pgbench scale $SCALE"
  "$PGBENCH" -i -q -s "$SCALE" "$DATABASE_ADMIN_URL/$DB" >/dev/null
fi
SIZE=$(psql -tA "$DATABASE_ADMIN_URL/$DB" -c "SELECT pg_database_size(current_database())")
echo "database: $(( SIZE / 1024 / 1024 )) MiB"

create_db "$DATABASE_ADMIN_URL" opsdeck_bench_backup fresh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export DATABASE_URL="$DATABASE_ADMIN_URL/opsdeck_bench_backup" OPSDECK_DATA_DIR="$WORK/data" RUST_LOG=warn
"$OPSDECK_BIN" migrate >/dev/null
psql -q "$DATABASE_URL" -c "INSERT INTO backup_targets (name, database_url, keep_min, keep_days) VALUES ('bench', '$DATABASE_ADMIN_URL/$DB', 100, 30) ON CONFLICT DO NOTHING"

now() { date +%s.%N; }
best_plain=999999; best_ops=999999; best_ops_run=999999
for r in $(seq 1 "$ROUNDS"); do
  sync
  t0=$(now); pg_dump -Fc -d "$DATABASE_ADMIN_URL/$DB" > "$WORK/plain.dump"; sync "$WORK/plain.dump"; t1=$(now)
  plain=$(echo "$t1 - $t0" | bc); plain_size=$(stat -c %s "$WORK/plain.dump"); rm -f "$WORK/plain.dump"
  sync
  t0=$(now); "$OPSDECK_BIN" backup run bench > "$WORK/out.txt"; t1=$(now)
  ops=$(echo "$t1 - $t0" | bc)
  id=$(awk '/^backup/ {print $2}' "$WORK/out.txt")
  ops_run=$(psql -tA "$DATABASE_URL" -c "SELECT extract(epoch FROM finished_at - started_at) FROM backup_runs WHERE id = $id")
  ops_size=$(psql -tA "$DATABASE_URL" -c "SELECT size FROM backup_runs WHERE id = $id")
  printf 'round %s: pg_dump -Fc > file %.2f s (%s bytes) | opsdeck run %.2f s, with the check after it %.2f s (%s bytes)\n' \
    "$r" "$plain" "$plain_size" "$ops_run" "$ops" "$ops_size"
  best_plain=$(echo "if ($plain < $best_plain) $plain else $best_plain" | bc)
  best_ops=$(echo "if ($ops < $best_ops) $ops else $best_ops" | bc)
  best_ops_run=$(echo "if ($ops_run < $best_ops_run) $ops_run else $best_ops_run" | bc)
  rm -f "$WORK"/data/backups/bench/*.dump
done
mb=$(( SIZE / 1024 / 1024 ))
printf 'best: plain pg_dump %.2f s = %.1f MiB/s of database\n' "$best_plain" "$(echo "$mb / $best_plain" | bc -l)"
printf 'best: opsdeck backup (dump, manifest, SHA-256, fsync, rename) %.2f s = %.1f MiB/s → %.0f %% of plain\n' \
  "$best_ops_run" "$(echo "$mb / $best_ops_run" | bc -l)" "$(echo "$best_plain / $best_ops_run * 100" | bc -l)"
printf 'best: opsdeck backup incl. the checksum re-read and pg_restore --list %.2f s → %.0f %% of plain\n' \
  "$best_ops" "$(echo "$best_plain / $best_ops * 100" | bc -l)"
