//! Reading samples: hosts, latest values, and series from the coarsest tier that gives the
//! points asked for.

use super::*;
use crate::timestamp::Timestamp;

pub async fn hosts(pool: &PgPool) -> AppResult<Vec<HostInfo>> {
    Ok(sqlx::query_as!(
        HostInfo,
        r#"SELECT name, source, first_seen AS "first_seen: Timestamp",
                  last_seen AS "last_seen: Timestamp"
           FROM hosts ORDER BY name"#
    )
    .fetch_all(pool)
    .await?)
}

/// The newest value of every series, optionally of one host.
pub async fn latest(pool: &PgPool, host: Option<&str>) -> AppResult<Vec<LatestValue>> {
    let rows = sqlx::query!(
        r#"SELECT s.host, s.metric, s.labels AS "labels: sqlx::types::Json<Labels>", l.ts, l.value
           FROM metric_latest l JOIN metric_series s ON s.id = l.series_id
           WHERE $1::text IS NULL OR s.host = $1
           ORDER BY s.host, s.metric, s.labels"#,
        host
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LatestValue {
            host: r.host,
            metric: r.metric,
            labels: r.labels.0,
            ts: Timestamp(r.ts),
            value: r.value,
        })
        .collect())
}

pub const MAX_POINTS: i64 = 11_000;
pub const DEFAULT_POINTS: i64 = 1_000;
/// Most points one answer may hold (series × points), about 60 MB of JSON: a fleet-wide
/// selector asks for fewer points per series.
pub const MAX_TOTAL_POINTS: i64 = 1_000_000;

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
    series_of(reads, Some(host), selector, from, to, points, retention).await
}

/// Like `series`, of one host or (`None`) of every host: a fleet overview, one entry per host
/// and series, by host. At most `MAX_TOTAL_POINTS` points in all.
pub async fn series_of(
    reads: &Reads,
    host: Option<&str>,
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
    let matched = sqlx::query!(
        r#"SELECT id, host, metric, labels AS "labels: sqlx::types::Json<Labels>"
           FROM metric_series WHERE ($1::text IS NULL OR host = $1) AND metric = $2 AND labels @> $3::jsonb
           ORDER BY host, labels::text"#,
        host,
        &selector.metric,
        labels_json(&selector.labels) as _
    )
    .fetch_all(reads.pool())
    .await?;
    if matched.is_empty() {
        return Ok(SeriesResponse { series: vec![] });
    }
    if matched.len() as i64 * points > MAX_TOTAL_POINTS {
        return Err(AppError::bad_request(format!(
            "points: {} series × {points} points is over {MAX_TOTAL_POINTS}: ask at most {} points, or narrow the selector",
            matched.len(),
            (MAX_TOTAL_POINTS / matched.len() as i64).max(1)
        )));
    }
    let ids: Vec<i32> = matched.iter().map(|m| m.id).collect();
    let mut by_id = bucketed_points(reads, tier, &ids, from, to, step).await?;
    Ok(SeriesResponse {
        series: matched
            .into_iter()
            .map(|m| SeriesData {
                host: m.host,
                metric: m.metric,
                labels: m.labels.0,
                tier: tier.as_str().to_string(),
                step_seconds: step,
                points: by_id.remove(&m.id).unwrap_or_default(),
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

/// Rows a rollup read may take before it gets more sort memory and a second connection.
pub const BIG_READ_ROWS: i64 = 200_000;

/// The read of one rollup table's buckets merged into output buckets of $4 seconds.
macro_rules! rollup_sql {
    ($table:literal) => {
        concat!(
            "SELECT series_id, date_bin(make_interval(secs => $4), bucket, timestamptz '2000-01-01 00:00:00+00') AS b,
                    sum(sum) / sum(count), min(min), max(max)
             FROM ", $table, " WHERE series_id = ANY($1) AND bucket >= $2 AND bucket < $3
             GROUP BY 1, 2"
        )
    };
}

/// Per series id, the points of [from, to) averaged into buckets of `step` seconds, from `tier`.
/// A read of many rows (a fleet overview: 1,000 series × 24 h of minutes) is split in two
/// halves read at once, each hashed in memory instead of sorted on disk.
async fn bucketed_points<C: Conns>(
    db: &C,
    tier: Tier,
    ids: &[i32],
    from: OffsetDateTime,
    to: OffsetDateTime,
    step: i64,
) -> AppResult<HashMap<i32, Vec<SeriesPoint>>> {
    let sql = match tier {
        // Rows and compressed chunks alike, bucketed here. (Boxed: pages await many series
        // at once, and this future is large.)
        Tier::Raw => {
            let samples = Box::pin(raw_samples(db, ids, from, to)).await?;
            return Ok(by_series(bucket_samples(&samples, step)));
        }
        Tier::Minute => rollup_sql!("metric_rollup_1m"),
        Tier::FiveMinutes => rollup_sql!("metric_rollup_5m"),
        Tier::Hour => rollup_sql!("metric_rollup_1h"),
    };
    let read = |ids, big| rollup_rows(db, sql, ids, (from, to, step), big);
    let rows_read = ids.len() as i64 * ((to - from).whole_seconds() / tier.step_secs()).max(1);
    // Boxed, like the raw read: a page awaits many of these at once.
    let rows = Box::pin(async {
        if rows_read >= BIG_READ_ROWS && ids.len() >= 2 {
            let (a, b) = ids.split_at(ids.len() / 2);
            let (mut a, b) = tokio::try_join!(read(a, true), read(b, true))?;
            a.extend(b);
            Ok::<_, AppError>(a)
        } else {
            read(ids, false).await
        }
    })
    .await?;
    Ok(by_series(rows))
}

type BucketRow = (i32, OffsetDateTime, f64, f64, f64);

/// One rollup query's rows, unordered; `big`: in a transaction that has it hash its groups in
/// memory (64 MB, where 200,000 groups fit) rather than sort 1.4 M rows on disk.
async fn rollup_rows<C: Conns>(
    db: &C,
    sql: &'static str,
    ids: &[i32],
    (from, to, step): (OffsetDateTime, OffsetDateTime, i64),
    big: bool,
) -> AppResult<Vec<BucketRow>> {
    let query = sqlx::query_as(sql)
        .bind(ids)
        .bind(from)
        .bind(to)
        .bind(step as f64);
    let mut conn = db.conn().await?;
    if !big {
        return Ok(query.fetch_all(&mut *conn).await?);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query(
        "SELECT set_config('work_mem', '64MB', true), set_config('enable_sort', 'off', true)",
    )
    .execute(&mut *tx)
    .await?;
    let rows = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Bucketed points (series, start, avg, min, max) grouped by series, each in time order.
fn by_series(rows: Vec<BucketRow>) -> HashMap<i32, Vec<SeriesPoint>> {
    let mut by_id: HashMap<i32, Vec<SeriesPoint>> = HashMap::new();
    for (id, ts, avg, min, max) in rows {
        by_id.entry(id).or_default().push(SeriesPoint {
            ts: Timestamp(ts),
            avg,
            min,
            max,
        });
    }
    for points in by_id.values_mut() {
        points.sort_unstable_by_key(|p| p.ts.0);
    }
    by_id
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
    let chosen: Vec<(i64, i32)> = sqlx::query!(
        r#"SELECT DISTINCT ON (w.i) w.i AS "i!", s.id
           FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS w(host, metric, labels, i)
           JOIN metric_series s ON s.host = w.host AND s.metric = w.metric AND s.labels @> w.labels::jsonb
           ORDER BY w.i, (SELECT count(*) FROM jsonb_object_keys(s.labels)), s.labels::text"#,
        &hosts as _,
        &metrics as _,
        &labels
    )
    .fetch_all(reads.pool())
    .await?
    .into_iter()
    .map(|r| (r.i, r.id))
    .collect();
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
