//! Metrics storage: ingest (one statement that stores samples and merges them into the 1-minute
//! and 1-hour rollups and the latest values), series queries from the right tier, partitions and
//! retention.

use super::rollup::{self, Bucket};
use super::{
    bucket_secs, choose_tier, validate_batch, HostInfo, IngestBatch, IngestOutcome, Labels,
    LatestValue, Retention, Selector, SeriesData, SeriesPoint, SeriesResponse, Tier,
};
use crate::db::{Conns, Reads};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use time::{Date, OffsetDateTime};

fn labels_json(labels: &Labels) -> String {
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
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsdeck.series.' || $1))")
            .bind(host)
            .execute(&mut *tx)
            .await?;
        let (have, new): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM metric_series WHERE host = $1),
                    (SELECT count(*) FROM UNNEST($2::text[], $3::text[]) AS t(m, l)
                     WHERE NOT EXISTS (SELECT 1 FROM metric_series s
                                       WHERE s.host = $1 AND s.metric = t.m AND s.labels = t.l::jsonb))",
        )
        .bind(host)
        .bind(&metrics)
        .bind(&labels)
        .fetch_one(&mut *tx)
        .await?;
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
    let rows: Vec<(i32, String, sqlx::types::Json<Labels>)> = sqlx::query_as(
        "INSERT INTO metric_series (host, metric, labels)
         SELECT $1, m, l::jsonb FROM UNNEST($2::text[], $3::text[]) AS t(m, l)
         ORDER BY 1, 2, 3
         ON CONFLICT (host, metric, labels) DO UPDATE SET host = excluded.host
         RETURNING id, metric, labels",
    )
    .bind(host)
    .bind(&metrics)
    .bind(&labels)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let rows = rows
        .into_iter()
        .map(|(id, metric, labels)| (id, metric, labels_json(&labels.0)));
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
        rows.push((id, s.ts, s.value));
    }

    // Fast path: nothing in the batch is stored yet (the usual case), so plain INSERT and rollups
    // computed here. A re-sent sample breaks the key: then roll back and let PostgreSQL sort out
    // which rows are new (ON CONFLICT DO NOTHING) and roll up only those.
    let mut tx = pool.begin().await?;
    let inserted = match insert_new(&mut tx, &rows).await {
        Ok(()) => rows.len() as i64,
        Err(e) if is_unique_violation(&e) => {
            tx.rollback().await?;
            tx = pool.begin().await?;
            insert_deduplicated(&mut tx, &rows).await?
        }
        Err(e) => return Err(e.into()),
    };
    let newest = batch
        .samples
        .iter()
        .map(|s| s.ts)
        .max()
        .unwrap_or(now)
        .min(now);
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

type Columns<T> = Vec<T>;

/// A list of buckets as the column arrays UNNEST reads.
#[allow(clippy::type_complexity)]
fn bucket_columns(
    b: &[Bucket],
) -> (
    Columns<i32>,
    Columns<OffsetDateTime>,
    Columns<f64>,
    Columns<i32>,
    Columns<f64>,
    Columns<f64>,
    Columns<OffsetDateTime>,
    Columns<f64>,
) {
    (
        b.iter().map(|b| b.series_id).collect(),
        b.iter().map(|b| b.start).collect(),
        b.iter().map(|b| b.sum).collect(),
        b.iter().map(|b| b.count).collect(),
        b.iter().map(|b| b.min).collect(),
        b.iter().map(|b| b.max).collect(),
        b.iter().map(|b| b.last_ts).collect(),
        b.iter().map(|b| b.last_value).collect(),
    )
}

/// Stores rows none of which exist yet, with their rollups and latest values, in one statement;
/// fails with a unique violation (and changes nothing) when one does.
async fn insert_new(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[(i32, OffsetDateTime, f64)],
) -> Result<(), sqlx::Error> {
    let minutes = rollup::rollup(rows, 60);
    let hours = rollup::coarsen(&minutes, 3600);
    let latest = rollup::latest(&minutes);
    let m = bucket_columns(&minutes);
    let h = bucket_columns(&hours);
    sqlx::query(FAST_INGEST_SQL.as_str())
        .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(m.0)
        .bind(m.1)
        .bind(m.2)
        .bind(m.3)
        .bind(m.4)
        .bind(m.5)
        .bind(m.6)
        .bind(m.7)
        .bind(h.0)
        .bind(h.1)
        .bind(h.2)
        .bind(h.3)
        .bind(h.4)
        .bind(h.5)
        .bind(h.6)
        .bind(h.7)
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

/// The fast path's statement: raw rows, then 1-minute and 1-hour buckets and latest values
/// already aggregated by the caller (sorted, so concurrent batches lock rows in one order).
static FAST_INGEST_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH ins AS (
    INSERT INTO metric_samples (series_id, ts, value)
    SELECT * FROM UNNEST($1::int[], $2::timestamptz[], $3::float8[])
), m AS (
    INSERT INTO metric_rollup_1m AS r (series_id, bucket, sum, count, min, max, last_ts, last_value)
    SELECT * FROM UNNEST($4::int[], $5::timestamptz[], $6::float8[], $7::int[], $8::float8[], $9::float8[], $10::timestamptz[], $11::float8[])
    {ROLLUP_MERGE}
), h AS (
    INSERT INTO metric_rollup_1h AS r (series_id, bucket, sum, count, min, max, last_ts, last_value)
    SELECT * FROM UNNEST($12::int[], $13::timestamptz[], $14::float8[], $15::int[], $16::float8[], $17::float8[], $18::timestamptz[], $19::float8[])
    {ROLLUP_MERGE}
)
INSERT INTO metric_latest AS x (series_id, ts, value)
SELECT * FROM UNNEST($20::int[], $21::timestamptz[], $22::float8[])
{LATEST_MERGE}"
    )
});

/// Merges newly inserted rows (the CTE `ins`) into one rollup table, bucketed by `unit`.
fn rollup_cte(name: &str, table: &str, unit: &str) -> String {
    format!(
        "{name} AS (
    INSERT INTO {table} AS r (series_id, bucket, sum, count, min, max, last_ts, last_value)
    SELECT series_id, date_trunc('{unit}', ts, 'UTC'), sum(value), count(*), min(value), max(value),
           max(ts), (array_agg(value ORDER BY ts DESC))[1]
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
), {}, {}, l AS (
    INSERT INTO metric_latest AS x (series_id, ts, value)
    SELECT DISTINCT ON (series_id) series_id, ts, value FROM ins ORDER BY series_id, ts DESC
    {LATEST_MERGE}
)
SELECT count(*) FROM ins",
        rollup_cte("m", "metric_rollup_1m", "minute"),
        rollup_cte("h", "metric_rollup_1h", "hour")
    )
});

pub async fn hosts(pool: &PgPool) -> AppResult<Vec<HostInfo>> {
    Ok(
        sqlx::query_as("SELECT name, source, first_seen, last_seen FROM hosts ORDER BY name")
            .fetch_all(pool)
            .await?,
    )
}

/// The newest value of every series, optionally of one host.
pub async fn latest(pool: &PgPool, host: Option<&str>) -> AppResult<Vec<LatestValue>> {
    let rows: Vec<(
        String,
        String,
        sqlx::types::Json<Labels>,
        OffsetDateTime,
        f64,
    )> = sqlx::query_as(
        "SELECT s.host, s.metric, s.labels, l.ts, l.value
         FROM metric_latest l JOIN metric_series s ON s.id = l.series_id
         WHERE $1::text IS NULL OR s.host = $1
         ORDER BY s.host, s.metric, s.labels",
    )
    .bind(host)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(host, metric, labels, ts, value)| LatestValue {
            host,
            metric,
            labels: labels.0,
            ts,
            value,
        })
        .collect())
}

pub const MAX_POINTS: i64 = 11_000;
pub const DEFAULT_POINTS: i64 = 1_000;

/// Every series of `host` matching the selector over [from, to), at most `points` points each,
/// from the coarsest tier that still gives that many.
pub async fn series(
    reads: &Reads,
    host: &str,
    selector: &Selector,
    from: OffsetDateTime,
    to: OffsetDateTime,
    points: i64,
    retention: Retention,
) -> AppResult<SeriesResponse> {
    if to <= from {
        return Err(AppError::bad_request("`to` must be after `from`"));
    }
    if !(1..=MAX_POINTS).contains(&points) {
        return Err(AppError::bad_request(format!(
            "points: must be 1 to {MAX_POINTS}"
        )));
    }
    let (tier, step) = tier_and_step(from, to, points, retention);
    let matched: Vec<(i32, String, sqlx::types::Json<Labels>)> = sqlx::query_as(
        "SELECT id, metric, labels FROM metric_series WHERE host = $1 AND metric = $2 AND labels @> $3::jsonb ORDER BY labels::text",
    )
    .bind(host)
    .bind(&selector.metric)
    .bind(labels_json(&selector.labels))
    .fetch_all(reads.pool())
    .await?;
    if matched.is_empty() {
        return Ok(SeriesResponse { series: vec![] });
    }
    let ids: Vec<i32> = matched.iter().map(|m| m.0).collect();
    let mut by_id = bucketed_points(reads, tier, &ids, from, to, step).await?;
    Ok(SeriesResponse {
        series: matched
            .into_iter()
            .map(|(id, metric, labels)| SeriesData {
                host: host.to_string(),
                metric,
                labels: labels.0,
                tier: tier.as_str().to_string(),
                step_seconds: step,
                points: by_id.remove(&id).unwrap_or_default(),
            })
            .collect(),
    })
}

/// The coarsest tier that still gives `points` points over [from, to), and its bucket in seconds.
fn tier_and_step(
    from: OffsetDateTime,
    to: OffsetDateTime,
    points: i64,
    retention: Retention,
) -> (Tier, i64) {
    let now = OffsetDateTime::now_utc();
    let range = (to - from).whole_seconds().max(1);
    let tier = choose_tier((now - from).whole_seconds(), range, points, retention);
    (tier, bucket_secs(tier, range, points))
}

/// Per series id, the points of [from, to) averaged into buckets of `step` seconds, from `tier`.
async fn bucketed_points<C: Conns>(
    db: &C,
    tier: Tier,
    ids: &[i32],
    from: OffsetDateTime,
    to: OffsetDateTime,
    step: i64,
) -> AppResult<HashMap<i32, Vec<SeriesPoint>>> {
    let sql = match tier {
        Tier::Raw => {
            "SELECT series_id, date_bin(make_interval(secs => $4), ts, timestamptz '2000-01-01 00:00:00+00') AS b,
                    avg(value), min(value), max(value)
             FROM metric_samples WHERE series_id = ANY($1) AND ts >= $2 AND ts < $3
             GROUP BY 1, 2 ORDER BY 1, 2"
        }
        Tier::Minute => {
            "SELECT series_id, date_bin(make_interval(secs => $4), bucket, timestamptz '2000-01-01 00:00:00+00') AS b,
                    sum(sum) / sum(count), min(min), max(max)
             FROM metric_rollup_1m WHERE series_id = ANY($1) AND bucket >= $2 AND bucket < $3
             GROUP BY 1, 2 ORDER BY 1, 2"
        }
        Tier::Hour => {
            "SELECT series_id, date_bin(make_interval(secs => $4), bucket, timestamptz '2000-01-01 00:00:00+00') AS b,
                    sum(sum) / sum(count), min(min), max(max)
             FROM metric_rollup_1h WHERE series_id = ANY($1) AND bucket >= $2 AND bucket < $3
             GROUP BY 1, 2 ORDER BY 1, 2"
        }
    };
    let rows: Vec<(i32, OffsetDateTime, f64, f64, f64)> = sqlx::query_as(sql)
        .bind(ids)
        .bind(from)
        .bind(to)
        .bind(step as f64)
        .fetch_all(&mut *db.conn().await?)
        .await?;
    let mut by_id: HashMap<i32, Vec<SeriesPoint>> = HashMap::new();
    for (id, ts, avg, min, max) in rows {
        by_id
            .entry(id)
            .or_default()
            .push(SeriesPoint { ts, avg, min, max });
    }
    Ok(by_id)
}

/// For each (host, selector), the points of its closest matching series (the one with the
/// fewest labels: `cpu_usage_percent` is the host's, not a core's) over [from, to), at most
/// `points` each, in two queries whatever the count: the Hosts page's sparklines. A selector
/// with no series gets no points.
pub async fn first_series_points(
    reads: &Reads,
    wanted: &[(String, Selector)],
    from: OffsetDateTime,
    to: OffsetDateTime,
    points: i64,
    retention: Retention,
) -> AppResult<Vec<Vec<SeriesPoint>>> {
    let mut out = vec![vec![]; wanted.len()];
    if wanted.is_empty() || to <= from {
        return Ok(out);
    }
    let (tier, step) = tier_and_step(from, to, points, retention);
    let hosts: Vec<&str> = wanted.iter().map(|w| w.0.as_str()).collect();
    let metrics: Vec<&str> = wanted.iter().map(|w| w.1.metric.as_str()).collect();
    let labels: Vec<String> = wanted.iter().map(|w| labels_json(&w.1.labels)).collect();
    let chosen: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT DISTINCT ON (w.i) w.i, s.id
         FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS w(host, metric, labels, i)
         JOIN metric_series s ON s.host = w.host AND s.metric = w.metric AND s.labels @> w.labels::jsonb
         ORDER BY w.i, (SELECT count(*) FROM jsonb_object_keys(s.labels)), s.labels::text",
    )
    .bind(&hosts)
    .bind(&metrics)
    .bind(&labels)
    .fetch_all(reads.pool())
    .await?;
    if chosen.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i32> = chosen.iter().map(|c| c.1).collect();
    let by_id = bucketed_points(reads, tier, &ids, from, to, step).await?;
    for (i, id) in chosen {
        // WITH ORDINALITY counts from 1.
        if let (Some(slot), Some(p)) = (out.get_mut(i as usize - 1), by_id.get(&id)) {
            *slot = p.clone();
        }
    }
    Ok(out)
}

/// What one retention pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    pub dropped_partitions: Vec<String>,
    pub deleted_minute_rows: u64,
    pub deleted_hour_rows: u64,
}

/// Drops raw partitions wholly past the raw retention, deletes expired rollup rows in bounded
/// batches, and makes sure today's and the next days' partitions exist.
pub async fn enforce_retention(
    state: &AppState,
    now: OffsetDateTime,
) -> AppResult<RetentionReport> {
    let pool = &state.pool;
    let retention = Retention::from(&*state.config);
    let today = now.to_offset(time::UtcOffset::UTC).date();
    let ahead: Vec<Date> = (0..3)
        .filter_map(|i| today.checked_add(time::Duration::days(i)))
        .collect();
    ensure_partitions(state, &ahead).await?;

    let mut report = RetentionReport::default();
    let raw_cutoff = now - time::Duration::seconds(retention.raw_secs);
    report.dropped_partitions = state
        .runtime
        .metric_partitions
        .drop_older_than(pool, raw_cutoff)
        .await?;
    for (table, keep, counter) in [
        (
            "metric_rollup_1m",
            retention.minute_secs,
            &mut report.deleted_minute_rows,
        ),
        (
            "metric_rollup_1h",
            retention.hour_secs,
            &mut report.deleted_hour_rows,
        ),
    ] {
        let cutoff = now - time::Duration::seconds(keep);
        loop {
            let n = sqlx::query(&format!(
                "DELETE FROM {table} WHERE (series_id, bucket) IN
                   (SELECT series_id, bucket FROM {table} WHERE bucket < $1 LIMIT 10000)"
            ))
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected();
            *counter += n;
            if n < 10_000 {
                break;
            }
        }
    }
    Ok(report)
}

// ---- page data ----

use super::charts::{self, LineInput};
use super::{parse_time_param, HostCard, HostCharts, Unit, RANGES};

pub(crate) fn selector(metric: &str, labels: &[(&str, &str)]) -> Selector {
    Selector {
        metric: metric.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A host is silent when nothing arrived for three collection intervals (at least a minute).
fn silent_for(state: &AppState, last_seen: OffsetDateTime, now: OffsetDateTime) -> Option<i64> {
    let limit = (3 * state.config.collect_interval.secs() as i64).max(60);
    let age = (now - last_seen).whole_seconds();
    (age > limit).then_some(age)
}

pub async fn host_cards(state: &AppState) -> AppResult<Vec<HostCard>> {
    let now = OffsetDateTime::now_utc();
    let hosts = hosts(&state.pool).await?;
    let latest = latest(&state.pool, None).await?;
    // The fullest disk of each host, then every sparkline (CPU, memory, that disk) at once.
    let fullest_disk = |host: &str| {
        latest
            .iter()
            .filter(|v| v.host == host && v.metric == "disk_used_percent")
            .max_by(|a, b| a.value.total_cmp(&b.value))
            .map(|v| (v.labels.get("mount").cloned().unwrap_or_default(), v.value))
    };
    let disks: Vec<Option<(String, f64)>> = hosts.iter().map(|h| fullest_disk(&h.name)).collect();
    let mut wanted = vec![];
    for (h, disk) in hosts.iter().zip(&disks) {
        wanted.push((h.name.clone(), selector("cpu_usage_percent", &[])));
        wanted.push((h.name.clone(), selector("memory_used_percent", &[])));
        if let Some((mount, _)) = disk {
            wanted.push((
                h.name.clone(),
                selector("disk_used_percent", &[("mount", mount.as_str())]),
            ));
        }
    }
    let from = now - time::Duration::hours(1);
    let retention = Retention::from(&*state.config);
    let sparks = first_series_points(&state.reads, &wanted, from, now, 30, retention).await?;
    let mut sparks = sparks
        .into_iter()
        .map(|p| p.into_iter().map(|p| p.avg).collect::<Vec<f64>>());
    let mut cards = Vec::with_capacity(hosts.len());
    for (h, disk) in hosts.into_iter().zip(disks) {
        let (cpu_spark, memory_spark) = (
            sparks.next().unwrap_or_default(),
            sparks.next().unwrap_or_default(),
        );
        let disk_spark = match disk {
            Some(_) => sparks.next().unwrap_or_default(),
            None => vec![],
        };
        let value = |metric: &str| {
            latest
                .iter()
                .find(|v| v.host == h.name && v.metric == metric && v.labels.is_empty())
                .map(|v| v.value)
        };
        cards.push(HostCard {
            silent_for_secs: silent_for(state, h.last_seen, now),
            cpu: value("cpu_usage_percent"),
            memory: value("memory_used_percent"),
            name: h.name,
            source: h.source,
            last_seen: h.last_seen,
            disk,
            cpu_spark,
            memory_spark,
            disk_spark,
        });
    }
    Ok(cards)
}

/// Every chart of the Hosts page for one host and range.
pub async fn host_charts(
    state: &AppState,
    host: &str,
    range: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> AppResult<HostCharts> {
    let now = OffsetDateTime::now_utc();
    // The browser's datetime-local gives `2026-11-25T10:00`: read it as UTC.
    let normalise = |s: &str| {
        if s.len() == 16 && s.as_bytes().get(10) == Some(&b'T') {
            format!("{s}:00Z")
        } else {
            s.to_string()
        }
    };
    let (from, to) = (from.map(normalise), to.map(normalise));
    let (from, to) = (from.as_deref(), to.as_deref());
    let (from, to, range_label) =
        match (from.filter(|s| !s.is_empty()), to.filter(|s| !s.is_empty())) {
            (Some(f), t) => {
                let from = parse_time_param(f, now)
                    .map_err(|e| AppError::bad_request(format!("from: {e}")))?;
                let to = match t {
                    Some(t) => parse_time_param(t, now)
                        .map_err(|e| AppError::bad_request(format!("to: {e}")))?,
                    None => now,
                };
                if to <= from {
                    return Err(AppError::bad_request(
                        "the end of the range must be after its start",
                    ));
                }
                (from, to, "custom".to_string())
            }
            _ => {
                let label = range.unwrap_or("24h");
                let secs = RANGES
                    .iter()
                    .find(|(l, _)| *l == label)
                    .map(|(_, s)| *s)
                    .ok_or_else(|| {
                        AppError::bad_request(format!(
                            "range `{label}`: choose 1h, 6h, 24h, 7d or 30d"
                        ))
                    })?;
                (now - time::Duration::seconds(secs), now, label.to_string())
            }
        };
    let known: Option<super::HostInfo> =
        sqlx::query_as("SELECT name, source, first_seen, last_seen FROM hosts WHERE name = $1")
            .bind(host)
            .fetch_optional(&state.pool)
            .await?;
    let Some(info) = known else {
        return Err(AppError::not_found(format!(
            "no host `{host}` has reported"
        )));
    };
    let points = 300;
    let retention = Retention::from(&*state.config);
    let reads = &state.reads;
    let q =
        |sel: Selector| async move { series(reads, host, &sel, from, to, points, retention).await };
    let (cpu, load1, load5, load15, mem, swap, disks, reads, writes, rx, tx, tcp) = tokio::try_join!(
        q(selector("cpu_usage_percent", &[])),
        q(selector("load_average_1m", &[])),
        q(selector("load_average_5m", &[])),
        q(selector("load_average_15m", &[])),
        q(selector("memory_used_percent", &[])),
        q(selector("swap_used_percent", &[])),
        q(selector("disk_used_percent", &[])),
        q(selector("disk_read_bytes_per_second", &[])),
        q(selector("disk_write_bytes_per_second", &[])),
        q(selector(
            "network_receive_bytes_per_second",
            &[("interface", "all")]
        )),
        q(selector(
            "network_transmit_bytes_per_second",
            &[("interface", "all")]
        )),
        q(selector("tcp_connections", &[])),
    )?;
    let (f, t) = (from.unix_timestamp(), to.unix_timestamp());
    let first = |r: &SeriesResponse| {
        r.series
            .first()
            .map(|s| s.points.clone())
            .unwrap_or_default()
    };
    let step = cpu.series.first().map(|s| s.step_seconds).unwrap_or(60);
    let tier = cpu
        .series
        .first()
        .map(|s| s.tier.clone())
        .unwrap_or_else(|| "none".into());
    let mut out = Vec::new();
    let (cpu_p, mem_p, swap_p) = (first(&cpu), first(&mem), first(&swap));
    out.push(charts::render(
        "cpu",
        "CPU",
        Unit::Percent,
        f,
        t,
        step,
        &[LineInput {
            label: "cpu".into(),
            points: &cpu_p,
            band: true,
        }],
    ));
    let (l1, l5, l15) = (first(&load1), first(&load5), first(&load15));
    out.push(charts::render(
        "load",
        "Load average",
        Unit::Plain,
        f,
        t,
        step,
        &[
            LineInput {
                label: "1 min".into(),
                points: &l1,
                band: false,
            },
            LineInput {
                label: "5 min".into(),
                points: &l5,
                band: false,
            },
            LineInput {
                label: "15 min".into(),
                points: &l15,
                band: false,
            },
        ],
    ));
    out.push(charts::render(
        "memory",
        "Memory",
        Unit::Percent,
        f,
        t,
        step,
        &[LineInput {
            label: "used".into(),
            points: &mem_p,
            band: true,
        }],
    ));
    out.push(charts::render(
        "swap",
        "Swap",
        Unit::Percent,
        f,
        t,
        step,
        &[LineInput {
            label: "used".into(),
            points: &swap_p,
            band: true,
        }],
    ));
    for d in &disks.series {
        let mount = d.labels.get("mount").cloned().unwrap_or_default();
        out.push(charts::render(
            &format!("disk:{mount}"),
            &format!("Disk {mount}"),
            Unit::Percent,
            f,
            t,
            step,
            &[LineInput {
                label: "used".into(),
                points: &d.points,
                band: true,
            }],
        ));
    }
    let mut io_lines = Vec::new();
    for (dir, r) in [("read", &reads), ("write", &writes)] {
        for s in r.series.iter().take(3) {
            io_lines.push(LineInput {
                label: format!(
                    "{} {dir}",
                    s.labels.get("device").cloned().unwrap_or_default()
                ),
                points: &s.points,
                band: false,
            });
        }
    }
    out.push(charts::render(
        "disk_io",
        "Disk I/O",
        Unit::BytesPerSecond,
        f,
        t,
        step,
        &io_lines,
    ));
    let (rx_p, tx_p) = (first(&rx), first(&tx));
    out.push(charts::render(
        "network",
        "Network (all interfaces)",
        Unit::BytesPerSecond,
        f,
        t,
        step,
        &[
            LineInput {
                label: "receive".into(),
                points: &rx_p,
                band: false,
            },
            LineInput {
                label: "transmit".into(),
                points: &tx_p,
                band: false,
            },
        ],
    ));
    let tcp_lines: Vec<LineInput> = tcp
        .series
        .iter()
        .filter(|s| {
            matches!(
                s.labels.get("state").map(String::as_str),
                Some("established" | "listen" | "time_wait" | "close_wait")
            )
        })
        .map(|s| LineInput {
            label: s.labels.get("state").cloned().unwrap_or_default(),
            points: &s.points,
            band: false,
        })
        .collect();
    out.push(charts::render(
        "tcp",
        "TCP connections",
        Unit::Count,
        f,
        t,
        step,
        &tcp_lines,
    ));
    Ok(HostCharts {
        host: host.to_string(),
        range_label,
        last_seen: Some(info.last_seen),
        silent: silent_for(state, info.last_seen, now).is_some(),
        tier,
        charts: out,
    })
}
