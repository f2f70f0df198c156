//! Storing samples: series ids (cached, bounded per host for agents), daily partitions, and one
//! statement that stores a batch with its 1-minute, 5-minute and 1-hour rollups and latest
//! values.

use super::*;
use crate::timestamp::Timestamp;

pub(super) fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

/// The ids of these series of one host, created when new: at most `max_series` for the host,
/// if given (checked under a lock per host, so parallel batches cannot pass it together).
/// Committed on its own, so that the cache only ever holds ids that exist.
async fn series_ids(
    state: &AppState,
    host: &str,
    keys: &[(String, String)],
    max_series: Option<i64>,
) -> AppResult<HashMap<(String, String), i32>> {
    let cache = &state.runtime.series_ids;
    let mut out = HashMap::with_capacity(keys.len());
    let mut missing: Vec<&(String, String)> = Vec::new();
    {
        let ids = cache.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            match ids.get(&(host.to_string(), k.0.clone(), k.1.clone())) {
                Some(id) => {
                    out.insert(k.clone(), *id);
                }
                None => missing.push(k),
            }
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    let metrics: Vec<&str> = missing.iter().map(|k| k.0.as_str()).collect();
    let labels: Vec<&str> = missing.iter().map(|k| k.1.as_str()).collect();
    let mut tx = state.pool.begin().await?;
    if let Some(max) = max_series {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtext('opsdeck.series.' || $1))",
            host
        )
        .execute(&mut *tx)
        .await?;
        let counts = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM metric_series WHERE host = $1) AS "have!",
                      (SELECT count(*) FROM UNNEST($2::text[], $3::text[]) AS t(m, l)
                       WHERE NOT EXISTS (SELECT 1 FROM metric_series s
                                         WHERE s.host = $1 AND s.metric = t.m AND s.labels = t.l::jsonb)) AS "new!""#,
            host,
            &metrics as _,
            &labels as _
        )
        .fetch_one(&mut *tx)
        .await?;
        let (have, new) = (counts.have, counts.new);
        if have + new > max {
            return Err(AppError::unprocessable(format!(
                "host `{host}` has {have} series; this batch would add {new} more, beyond \
                 max_series_per_host ({max}): nothing was stored"
            )));
        }
    }
    // One statement that finds or creates each series through the unique index (the no-op
    // update makes existing rows come back too). A join against the table instead was planned
    // as a scan per key while the table was young and unanalysed: seconds per batch.
    let rows = sqlx::query!(
        r#"INSERT INTO metric_series (host, metric, labels)
           SELECT $1, m, l::jsonb FROM UNNEST($2::text[], $3::text[]) AS t(m, l)
           ORDER BY 1, 2, 3
           ON CONFLICT (host, metric, labels) DO UPDATE SET host = excluded.host
           RETURNING id, metric, labels AS "labels: sqlx::types::Json<Labels>""#,
        host,
        &metrics as _,
        &labels as _
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let rows = rows
        .into_iter()
        .map(|r| (r.id, r.metric, labels_json(&r.labels.0)));
    let mut ids = cache.lock().unwrap_or_else(|p| p.into_inner());
    for (id, metric, labels) in rows {
        ids.insert((host.to_string(), metric.clone(), labels.clone()), id);
        out.insert((metric, labels), id);
    }
    Ok(out)
}

/// Creates the daily partitions of `metric_samples` for these days, once per process and day.
pub async fn ensure_partitions(state: &AppState, days: &[Date]) -> AppResult<()> {
    state
        .runtime
        .metric_partitions
        .ensure(&state.pool, days)
        .await
}

/// Who sent a batch: agents (an `ingest` token) are held to `max_series_per_host`; the
/// server's own collector and scrapes (each with its own `max_series`) are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Agent,
    Scrape,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Agent => "agent",
            Origin::Scrape => "scrape",
        }
    }
}

/// Stores a batch: all of it or nothing. Re-sent samples (same host, metric, labels, time) are
/// counted as duplicates and change nothing, rollups included.
pub async fn ingest(
    state: &AppState,
    batch: &IngestBatch,
    origin: Origin,
) -> AppResult<IngestOutcome> {
    let pool = &state.pool;
    let retention = Retention::from(&*state.config);
    let now = OffsetDateTime::now_utc();
    validate_batch(batch, now, retention.raw_secs).map_err(AppError::BadRequest)?;

    let mut keys: Vec<(String, String)> = batch
        .samples
        .iter()
        .map(|s| (s.metric.clone(), labels_json(&s.labels)))
        .collect();
    let sample_keys = keys.clone();
    keys.sort();
    keys.dedup();
    let mut days: Vec<Date> = batch
        .samples
        .iter()
        .map(|s| s.ts.to_offset(time::UtcOffset::UTC).date())
        .collect();
    days.sort();
    days.dedup();
    ensure_partitions(state, &days).await?;

    let limit = (origin == Origin::Agent).then_some(state.config.max_series_per_host);
    let ids = series_ids(state, &batch.host, &keys, limit).await?;
    let mut rows: Vec<(i32, OffsetDateTime, f64)> = Vec::with_capacity(batch.samples.len());
    for (s, key) in batch.samples.iter().zip(&sample_keys) {
        let id = *ids.get(key).ok_or_else(|| {
            tracing::error!(metric = %s.metric, "series id missing after upsert");
            AppError::Internal
        })?;
        rows.push((id, *s.ts, s.value));
    }

    // Fast path: nothing in the batch is stored yet (the usual case), so plain INSERT and rollups
    // computed here. A re-sent sample breaks the key: then roll back and let PostgreSQL sort out
    // which rows are new (ON CONFLICT DO NOTHING) and roll up only those.
    // Samples of a closed hour may be packed in a chunk already: those are re-sent, dropped.
    let mut tx = pool.begin().await?;
    let fresh = drop_packed(&mut tx, &rows, now).await?;
    let inserted = match insert_new(&mut tx, &fresh).await {
        Ok(()) => fresh.len() as i64,
        Err(e) if is_unique_violation(&e) => {
            tx.rollback().await?;
            tx = pool.begin().await?;
            let fresh = drop_packed(&mut tx, &rows, now).await?;
            insert_deduplicated(&mut tx, &fresh).await?
        }
        Err(e) => return Err(e.into()),
    };
    let newest = batch
        .samples
        .iter()
        .map(|s| s.ts)
        .max()
        .unwrap_or(Timestamp(now))
        .min(Timestamp(now));
    sqlx::query(
        "INSERT INTO hosts (name, source, last_seen) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET last_seen = greatest(hosts.last_seen, excluded.last_seen), source = excluded.source",
    )
    .bind(&batch.host)
    .bind(origin.as_str())
    .bind(newest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let accepted = inserted as usize;
    Ok(IngestOutcome {
        accepted,
        duplicates: batch.samples.len() - accepted,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds a list of buckets as the eight column arrays a rollup CTE's UNNEST reads.
fn bind_buckets<'q>(q: PgQuery<'q>, b: &[Bucket]) -> PgQuery<'q> {
    q.bind(b.iter().map(|b| b.series_id).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.start).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.sum).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.count).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.min).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.max).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.last_ts).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.last_value).collect::<Vec<_>>())
}

/// Stores rows none of which exist yet, with their rollups and latest values, in one statement;
/// fails with a unique violation (and changes nothing) when one does.
async fn insert_new(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[(i32, OffsetDateTime, f64)],
) -> Result<(), sqlx::Error> {
    let minutes = rollup::rollup(rows, 60);
    let fives = rollup::coarsen(&minutes, 300);
    let hours = rollup::coarsen(&fives, 3600);
    let latest = rollup::latest(&minutes);
    let q = sqlx::query(FAST_INGEST_SQL.as_str())
        .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>());
    // In the order of ROLLUP_TIERS.
    bind_buckets(bind_buckets(bind_buckets(q, &minutes), &fives), &hours)
        .bind(latest.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(latest.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(latest.iter().map(|r| r.2).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores the rows not stored yet and merges only those into the rollups; answers how many.
async fn insert_deduplicated(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[(i32, OffsetDateTime, f64)],
) -> AppResult<i64> {
    Ok(sqlx::query_scalar(INGEST_SQL.as_str())
        .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .fetch_one(&mut **tx)
        .await?)
}

const ROLLUP_MERGE: &str = "ON CONFLICT (series_id, bucket) DO UPDATE SET
        sum = r.sum + excluded.sum,
        count = r.count + excluded.count,
        min = least(r.min, excluded.min),
        max = greatest(r.max, excluded.max),
        last_value = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_value ELSE r.last_value END,
        last_ts = greatest(r.last_ts, excluded.last_ts)";

const LATEST_MERGE: &str = "ON CONFLICT (series_id) DO UPDATE SET ts = excluded.ts, value = excluded.value WHERE excluded.ts > x.ts";

/// The rollup tables, finest first, and their buckets in seconds: ingest writes all of them in
/// the statement that stores the samples.
pub const ROLLUP_TIERS: [(&str, i64); 3] = [
    ("metric_rollup_1m", 60),
    ("metric_rollup_5m", 300),
    ("metric_rollup_1h", 3600),
];

/// The fast path's statement: raw rows, then each tier's buckets and the latest values already
/// aggregated by the caller (sorted, so concurrent batches lock rows in one order). Parameters:
/// $1–$3 the rows, eight a tier from $4 on, then three for the latest values.
static FAST_INGEST_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut sql = "WITH ins AS (
    INSERT INTO metric_samples (series_id, ts, value)
    SELECT * FROM UNNEST($1::int[], $2::timestamptz[], $3::float8[])
)"
    .to_string();
    let mut p = 4;
    for (i, (table, _)) in ROLLUP_TIERS.iter().enumerate() {
        sql += &format!(
            ", t{i} AS (
    INSERT INTO {table} AS r (series_id, bucket, sum, count, min, max, last_ts, last_value)
    SELECT * FROM UNNEST(${p}::int[], ${}::timestamptz[], ${}::float8[], ${}::int[], ${}::float8[], ${}::float8[], ${}::timestamptz[], ${}::float8[])
    {ROLLUP_MERGE}
)",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7
        );
        p += 8;
    }
    sql + &format!(
        "
INSERT INTO metric_latest AS x (series_id, ts, value)
SELECT * FROM UNNEST(${p}::int[], ${}::timestamptz[], ${}::float8[])
{LATEST_MERGE}",
        p + 1,
        p + 2
    )
});

/// Merges newly inserted rows (the CTE `ins`) into one rollup table of `secs`-second buckets
/// (aligned on the epoch, as `rollup::bucket_start`).
fn rollup_cte(name: &str, table: &str, secs: i64) -> String {
    format!(
        "{name} AS (
    INSERT INTO {table} AS r (series_id, bucket, sum, count, min, max, last_ts, last_value)
    SELECT series_id, date_bin(interval '{secs} seconds', ts, timestamptz '2000-01-01 00:00:00+00'),
           sum(value), count(*), min(value), max(value), max(ts), (array_agg(value ORDER BY ts DESC))[1]
    FROM ins GROUP BY 1, 2 ORDER BY 1, 2
    {ROLLUP_MERGE}
)"
    )
}

/// The slow path's statement: store the samples, and merge only the rows really inserted into the rollups
/// and the latest values, so a re-send never counts twice.
static INGEST_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH ins AS (
    INSERT INTO metric_samples (series_id, ts, value)
    SELECT * FROM UNNEST($1::int[], $2::timestamptz[], $3::float8[])
    ON CONFLICT DO NOTHING
    RETURNING series_id, ts, value
), {}, l AS (
    INSERT INTO metric_latest AS x (series_id, ts, value)
    SELECT DISTINCT ON (series_id) series_id, ts, value FROM ins ORDER BY series_id, ts DESC
    {LATEST_MERGE}
)
SELECT count(*) FROM ins",
        ROLLUP_TIERS
            .iter()
            .enumerate()
            .map(|(i, (table, secs))| rollup_cte(&format!("t{i}"), table, *secs))
            .collect::<Vec<_>>()
            .join(", ")
    )
});
