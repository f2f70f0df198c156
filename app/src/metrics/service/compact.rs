//! Compaction: the samples of each series' closed hours packed into `metric_chunks` (one row a
//! series and hour, `metrics::chunk`), and the raw samples read back from chunks and rows alike.
//!
//! Compaction and ingest meet in one transaction-level advisory lock: compaction holds it
//! exclusively while it moves an hour's rows into chunks (deleting them in the same
//! transaction), ingest holds it shared while it drops, from a batch, the samples already packed
//! (a re-send) and stores the rest. So a sample is stored once, in a chunk or as a row, and
//! counted once in the rollups.

use super::*;
use crate::metrics::chunk;
use std::borrow::Cow;
use time::Duration;

/// An hour is packed once it has been over this long: agents' batches for it have arrived by
/// then; later ones land as rows and the next compaction merges them in.
pub const COMPACT_AFTER: Duration = Duration::minutes(10);

/// The advisory lock between compaction (exclusive) and ingest into closed hours (shared).
const CHUNK_LOCK: i64 = 0x6f70_7364_6b63_6b31; // "opsdkck1"

/// Series-hours packed in one transaction.
const GROUPS_PER_TX: usize = 500;

/// What one compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompactionReport {
    /// Series-hours packed (new chunks, or chunks merged with late rows).
    pub chunks: u64,
    /// Rows moved from `metric_samples` into chunks.
    pub samples: u64,
    /// Bytes of the chunks written.
    pub bytes: u64,
    /// Past days' partitions of `metric_samples` left empty, truncated (their files and indexes
    /// given back).
    pub emptied_partitions: u64,
    /// Indexes left invalid by an index rebuild that was interrupted (a restart, a cancel)
    /// and dropped: they cost disk and slowed every insert.
    pub dropped_invalid_indexes: u64,
}

/// The start of the hour `t` falls in.
pub fn hour_of(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t - Duration::seconds(i64::from(t.minute()) * 60 + i64::from(t.second()))
        - Duration::nanoseconds(i64::from(t.nanosecond()))
}

/// Hours before this one are packed.
pub fn horizon(now: OffsetDateTime) -> OffsetDateTime {
    hour_of(now - COMPACT_AFTER)
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

fn from_micros(us: i64) -> AppResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).map_err(|_| {
        tracing::error!(us, "chunk timestamp out of range");
        AppError::Internal
    })
}

fn decoded(data: &[u8]) -> AppResult<Vec<chunk::Sample>> {
    chunk::decode(data).map_err(|e| {
        tracing::error!(error = %e, "unreadable metric chunk");
        AppError::Internal
    })
}

/// Packs every series' rows of the hours before `horizon(now)` into chunks, a few hundred
/// series-hours a transaction, each moving its rows and deleting them at once. Idempotent: run
/// again, it finds nothing to do; stopped half-way, what it committed is whole.
pub async fn compact(pool: &PgPool, now: OffsetDateTime) -> AppResult<CompactionReport> {
    let mut report = CompactionReport {
        dropped_invalid_indexes: drop_interrupted_rebuilds(pool).await?,
        ..Default::default()
    };
    let end = horizon(now);
    // A day's partition at a time, oldest first: a backlog of days (the job stopped for a
    // while, past days backfilled) is found and packed one day after the other.
    for (_, day) in crate::partitions::DailyPartitions::new("metric_samples")
        .existing(pool)
        .await?
    {
        let start = day.midnight().assume_utc();
        if start >= end {
            continue;
        }
        let groups = pending_groups(pool, start, end.min(start + Duration::DAY)).await?;
        for batch in groups.chunks(GROUPS_PER_TX) {
            pack(pool, batch, &mut report).await?;
        }
    }
    report.emptied_partitions = empty_past_partitions(pool, now).await?;
    if report.samples > 0 {
        shrink_current_index(pool, now).await?;
    }
    Ok(report)
}

/// The series-hours of [from, to) (within one day) that have rows, by hour and series. Found
/// by reading that day's rows: a day of a busy fleet (100 M rows) takes longer than a
/// request may, so this job's read runs without the statement timeout.
async fn pending_groups(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<(i32, OffsetDateTime)>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('statement_timeout', '0', true)")
        .execute(&mut *tx)
        .await?;
    let groups = sqlx::query_as(
        "SELECT DISTINCT series_id, date_trunc('hour', ts, 'UTC') FROM metric_samples
         WHERE ts >= $1 AND ts < $2 ORDER BY 2, 1",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(groups)
}

/// Packs these series-hours in one transaction: their rows deleted and merged into their
/// chunks (new, or read back and rewritten), under the lock ingest takes shared.
async fn pack(
    pool: &PgPool,
    batch: &[(i32, OffsetDateTime)],
    report: &mut CompactionReport,
) -> AppResult<()> {
    let ids: Vec<i32> = batch.iter().map(|g| g.0).collect();
    let hours: Vec<OffsetDateTime> = batch.iter().map(|g| g.1).collect();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHUNK_LOCK)
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(i32, OffsetDateTime, f64)> = sqlx::query_as(
        "DELETE FROM metric_samples m USING UNNEST($1::int[], $2::timestamptz[]) AS g(series_id, hour)
         WHERE m.series_id = g.series_id AND m.ts >= g.hour AND m.ts < g.hour + interval '1 hour'
         RETURNING m.series_id, m.ts, m.value",
    )
    .bind(&ids)
    .bind(&hours)
    .fetch_all(&mut *tx)
    .await?;
    let stored: Vec<(i32, OffsetDateTime, Vec<u8>)> = sqlx::query_as(
        "SELECT c.series_id, c.hour, c.data FROM metric_chunks c
         JOIN UNNEST($1::int[], $2::timestamptz[]) AS g(series_id, hour)
           ON c.series_id = g.series_id AND c.hour = g.hour
         FOR UPDATE OF c",
    )
    .bind(&ids)
    .bind(&hours)
    .fetch_all(&mut *tx)
    .await?;
    let mut packs: HashMap<(i32, OffsetDateTime), (Vec<chunk::Sample>, Vec<chunk::Sample>)> =
        HashMap::new();
    for (id, hour, data) in stored {
        packs.entry((id, hour)).or_default().0 = decoded(&data)?;
    }
    report.samples += rows.len() as u64;
    for (id, ts, value) in rows {
        packs
            .entry((id, hour_of(ts)))
            .or_default()
            .1
            .push((micros(ts), value));
    }
    let (mut c_ids, mut c_hours, mut c_counts, mut c_data) = (vec![], vec![], vec![], vec![]);
    for ((id, hour), (stored, rows)) in packs {
        let all = chunk::merge(stored, rows);
        let data = chunk::encode(&all);
        report.bytes += data.len() as u64;
        c_ids.push(id);
        c_hours.push(hour);
        c_counts.push(all.len() as i32);
        c_data.push(data);
    }
    report.chunks += c_ids.len() as u64;
    sqlx::query(
        "INSERT INTO metric_chunks (series_id, hour, samples, data)
         SELECT * FROM UNNEST($1::int[], $2::timestamptz[], $3::int[], $4::bytea[])
         ON CONFLICT (series_id, hour) DO UPDATE SET samples = excluded.samples, data = excluded.data",
    )
    .bind(&c_ids)
    .bind(&c_hours)
    .bind(&c_counts)
    .bind(&c_data)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Rebuilds the index of the current day's partition when the rows moved out have left it
/// mostly empty pages (more than 4 times what its rows need, and over 8 MiB): the rows kept
/// are an hour or two, so it is quick; `CONCURRENTLY`, so ingest goes on meanwhile.
async fn shrink_current_index(pool: &PgPool, now: OffsetDateTime) -> AppResult<()> {
    let partitions = crate::partitions::DailyPartitions::new("metric_samples");
    let name = partitions.name(horizon(now).date());
    let sizes: Option<(i64, i64)> = sqlx::query_as(
        "SELECT pg_indexes_size(c.oid), (SELECT count(*) FROM metric_samples WHERE ts >= $2 AND ts < $2 + interval '1 day')
         FROM pg_class c WHERE c.relname = $1",
    )
    .bind(&name)
    .bind(horizon(now).replace_hour(0).unwrap_or(horizon(now)))
    .fetch_optional(pool)
    .await?;
    // A B-tree entry of (series_id, ts) takes about 32 bytes with its page's share.
    if let Some((index, rows)) = sizes {
        if index > 8 << 20 && index > 4 * 32 * rows.max(1) {
            untimed(pool, &[format!("REINDEX TABLE CONCURRENTLY \"{name}\"")]).await?;
        }
    }
    Ok(())
}

/// Drops what an interrupted `REINDEX ... CONCURRENTLY` of a `metric_samples` partition left:
/// an invalid index named `..._ccnew` (or `_ccold`), which PostgreSQL keeps updating on every
/// insert but never reads. Only this job rebuilds these indexes, under its lock, so an invalid
/// one found here is never a rebuild in progress.
async fn drop_interrupted_rebuilds(pool: &PgPool) -> AppResult<u64> {
    let leftovers: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(i.relname)
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_namespace n ON n.oid = i.relnamespace
         JOIN pg_inherits h ON h.inhrelid = x.indrelid
         WHERE h.inhparent = 'metric_samples'::regclass AND NOT x.indisvalid
           AND i.relname ~ '_cc(new|old)[0-9]*$'",
    )
    .fetch_all(pool)
    .await?;
    if leftovers.is_empty() {
        return Ok(0);
    }
    let drops: Vec<String> = leftovers
        .iter()
        .map(|index| format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"))
        .collect();
    untimed(pool, &drops).await?;
    tracing::info!(
        dropped = drops.len(),
        "dropped indexes left invalid by an interrupted rebuild"
    );
    Ok(drops.len() as u64)
}

/// Runs `statements` one after the other on one connection without the statement timeout:
/// index work that may take long and cannot run in a transaction (`... CONCURRENTLY`), so
/// `SET LOCAL` is not available. The timeout is reset before the connection goes back to the
/// pool, whether a statement failed or not.
async fn untimed(pool: &PgPool, statements: &[String]) -> AppResult<()> {
    let mut c = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *c)
        .await?;
    let mut result = Ok(());
    for sql in statements {
        result = sqlx::query(sql).execute(&mut *c).await.map(drop);
        if result.is_err() {
            break;
        }
    }
    sqlx::query("RESET statement_timeout")
        .execute(&mut *c)
        .await?;
    Ok(result?)
}

/// Truncates the partitions of past days that compaction has left without a row: deleted rows
/// leave their pages and index pages behind until then. Under a lock that holds off a late
/// insert between the check and the truncation; a partition busy for more than 2 s waits for
/// the next round.
async fn empty_past_partitions(pool: &PgPool, now: OffsetDateTime) -> AppResult<u64> {
    let partitions = crate::partitions::DailyPartitions::new("metric_samples");
    let today = horizon(now).date();
    let mut emptied = 0;
    for (name, day) in partitions.existing(pool).await? {
        if day >= today {
            continue;
        }
        // An emptied partition keeps its index's root pages: 16 KiB. One already that small is
        // left alone without a lock, so a run blocks nobody's reads of days long emptied.
        let (size,): (i64,) = sqlx::query_as("SELECT pg_total_relation_size($1::regclass)")
            .bind(format!("\"{name}\""))
            .fetch_one(pool)
            .await?;
        if size <= 16_384 {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '2s'")
            .execute(&mut *tx)
            .await?;
        // `name` is a partition's own name, checked by `existing` (`metric_samples_YYYYMMDD`).
        if sqlx::query(&format!("LOCK TABLE \"{name}\" IN ACCESS EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await
            .is_err()
        {
            continue;
        }
        let (empty, bytes): (bool, i64) = sqlx::query_as(&format!(
            "SELECT NOT EXISTS (SELECT 1 FROM \"{name}\"), pg_total_relation_size('\"{name}\"')"
        ))
        .fetch_one(&mut *tx)
        .await?;
        if empty && bytes > 16_384 {
            sqlx::query(&format!("TRUNCATE \"{name}\""))
                .execute(&mut *tx)
                .await?;
            emptied += 1;
        }
        tx.commit().await?;
    }
    Ok(emptied)
}

/// Of a batch about to be stored, drops the samples already packed in a chunk (re-sent ones),
/// holding the compaction lock shared until the caller's transaction ends. Batches of the
/// current hour only (the usual case) pass untouched, without a lock.
pub(super) async fn drop_packed<'r>(
    tx: &mut Transaction<'_, Postgres>,
    rows: &'r [(i32, OffsetDateTime, f64)],
    now: OffsetDateTime,
) -> AppResult<Cow<'r, [(i32, OffsetDateTime, f64)]>> {
    let current = hour_of(now);
    let mut closed: Vec<(i32, OffsetDateTime)> = rows
        .iter()
        .filter(|r| r.1 < current)
        .map(|r| (r.0, hour_of(r.1)))
        .collect();
    if closed.is_empty() {
        return Ok(Cow::Borrowed(rows));
    }
    closed.sort();
    closed.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(CHUNK_LOCK)
        .execute(&mut **tx)
        .await?;
    let chunks: Vec<(i32, Vec<u8>)> = sqlx::query_as(
        "SELECT c.series_id, c.data FROM metric_chunks c
         JOIN UNNEST($1::int[], $2::timestamptz[]) AS g(series_id, hour)
           ON c.series_id = g.series_id AND c.hour = g.hour",
    )
    .bind(closed.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(closed.iter().map(|c| c.1).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    if chunks.is_empty() {
        return Ok(Cow::Borrowed(rows));
    }
    let mut packed = std::collections::HashSet::new();
    for (id, data) in chunks {
        packed.extend(decoded(&data)?.into_iter().map(|s| (id, s.0)));
    }
    Ok(Cow::Owned(
        rows.iter()
            .filter(|r| !packed.contains(&(r.0, micros(r.1))))
            .copied()
            .collect(),
    ))
}

/// The raw samples of `ids` in `[from, to)`, from chunks and rows alike, by series and time.
pub async fn raw_samples<C: Conns>(
    db: &C,
    ids: &[i32],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<(i32, OffsetDateTime, f64)>> {
    let rows = async {
        let rows: Vec<(i32, OffsetDateTime, f64)> = sqlx::query_as(
            "SELECT series_id, ts, value FROM metric_samples
             WHERE series_id = ANY($1) AND ts >= $2 AND ts < $3",
        )
        .bind(ids)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *db.conn().await?)
        .await?;
        Ok::<_, AppError>(rows)
    };
    let chunks = async {
        let chunks: Vec<(i32, Vec<u8>)> = sqlx::query_as(
            "SELECT series_id, data FROM metric_chunks
             WHERE series_id = ANY($1) AND hour >= $2 AND hour < $3",
        )
        .bind(ids)
        .bind(hour_of(from))
        .bind(to)
        .fetch_all(&mut *db.conn().await?)
        .await?;
        Ok::<_, AppError>(chunks)
    };
    let (mut out, chunks) = tokio::try_join!(rows, chunks)?;
    let (lo, hi) = (micros(from), micros(to));
    for (id, data) in chunks {
        for (us, v) in decoded(&data)? {
            if (lo..hi).contains(&us) {
                out.push((id, from_micros(us)?, v));
            }
        }
    }
    out.sort_by_key(|s| (s.0, s.1));
    Ok(out)
}

/// Samples sorted by series and time, averaged into buckets of `step` seconds aligned as
/// PostgreSQL's `date_bin(step, ts, 2000-01-01)`: per series, (bucket start, avg, min, max).
pub fn bucket_samples(
    samples: &[(i32, OffsetDateTime, f64)],
    step: i64,
) -> Vec<(i32, OffsetDateTime, f64, f64, f64)> {
    const ORIGIN_US: i64 = 946_684_800_000_000;
    let stride = step.max(1) * 1_000_000;
    let mut out: Vec<(i32, OffsetDateTime, f64, f64, f64)> = vec![];
    let mut acc: Option<(i32, i64, f64, u64, f64, f64)> = None;
    let flush = |a: (i32, i64, f64, u64, f64, f64), out: &mut Vec<_>| {
        if let Ok(b) = from_micros(a.1) {
            out.push((a.0, b, a.2 / a.3 as f64, a.4, a.5));
        }
    };
    for &(id, ts, v) in samples {
        let us = micros(ts);
        let b = ORIGIN_US + (us - ORIGIN_US).div_euclid(stride) * stride;
        match acc.as_mut() {
            Some(a) if a.0 == id && a.1 == b => {
                a.2 += v;
                a.3 += 1;
                a.4 = a.4.min(v);
                a.5 = a.5.max(v);
            }
            _ => {
                if let Some(a) = acc.take() {
                    flush(a, &mut out);
                }
                acc = Some((id, b, v, 1, v, v));
            }
        }
    }
    if let Some(a) = acc {
        flush(a, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hours_and_horizon() {
        for (t, hour, horizon_) in [
            (
                datetime!(2026-12-01 10:09:59.5 UTC),
                datetime!(2026-12-01 10:00 UTC),
                datetime!(2026-12-01 09:00 UTC),
            ),
            (
                datetime!(2026-12-01 10:10 UTC),
                datetime!(2026-12-01 10:00 UTC),
                datetime!(2026-12-01 10:00 UTC),
            ),
            (
                datetime!(2026-12-01 00:05 +02:00),
                datetime!(2026-11-30 22:00 UTC),
                datetime!(2026-11-30 21:00 UTC),
            ),
        ] {
            assert_eq!(hour_of(t), hour, "{t}");
            assert_eq!(horizon(t), horizon_, "{t}");
        }
    }

    #[test]
    fn buckets_follow_date_bin() {
        let t = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let samples = vec![
            (1, t("2026-12-01T10:00:01Z"), 1.0),
            (1, t("2026-12-01T10:00:59Z"), 3.0),
            (1, t("2026-12-01T10:01:00Z"), 5.0),
            (2, t("2026-12-01T10:00:30Z"), -2.0),
            (2, t("1999-12-31T23:59:30Z"), 7.0),
        ];
        let mut sorted = samples.clone();
        sorted.sort_by_key(|s| (s.0, s.1));
        assert_eq!(
            bucket_samples(&sorted, 60),
            vec![
                (1, t("2026-12-01T10:00:00Z"), 2.0, 1.0, 3.0),
                (1, t("2026-12-01T10:01:00Z"), 5.0, 5.0, 5.0),
                (2, t("1999-12-31T23:59:00Z"), 7.0, 7.0, 7.0),
                (2, t("2026-12-01T10:00:00Z"), -2.0, -2.0, -2.0),
            ]
        );
    }
}
