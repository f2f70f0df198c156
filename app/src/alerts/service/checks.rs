//! HTTP health checks: stored, listed with their uptime and latency, claimed for running and
//! their results recorded.

use super::*;
use crate::timestamp::Timestamp;

pub async fn upsert_check_by(pool: &PgPool, c: &NewCheck, actor: &Actor<'_>) -> AppResult<i64> {
    rules::validate_check(c).map_err(unprocessable)?;
    let host = c.host.as_deref().map(str::trim).filter(|h| !h.is_empty());
    let public_name = c
        .public_name
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    let id = sqlx::query_scalar!("INSERT INTO health_checks (name, url, interval_seconds, timeout_seconds, expected_status, expected_body, host, public, public_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (name) DO UPDATE SET url = excluded.url, interval_seconds = excluded.interval_seconds,
            timeout_seconds = excluded.timeout_seconds, expected_status = excluded.expected_status,
            expected_body = excluded.expected_body, host = excluded.host, public = excluded.public,
            public_name = excluded.public_name, next_check_at = now()
         RETURNING id", c.name.trim(), c.url.trim(), c.interval_seconds, c.timeout_seconds, c.expected_status, c.expected_body.as_deref(), host, c.public, public_name)
    .fetch_one(pool)
    .await?;
    done(
        pool,
        actor,
        "health_check.save",
        &c.name,
        serde_json::json!({"url": c.url}),
    )
    .await?;
    Ok(id)
}

pub async fn delete_check_by(pool: &PgPool, id: i64, actor: &Actor<'_>) -> AppResult<()> {
    delete_named(
        pool,
        "health_checks",
        id,
        "health check",
        "health_check.delete",
        actor,
    )
    .await
}

/// Adds or replaces a check (operators).
pub async fn upsert_check(ctx: &RequestCtx, c: &NewCheck) -> AppResult<i64> {
    let user = ctx.require(Role::Operator).await?;
    upsert_check_by(&ctx.state.pool, c, &ctx.actor(&user)).await
}

pub async fn delete_check(ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    delete_check_by(&ctx.state.pool, id, &ctx.actor(&user)).await
}

#[derive(sqlx::FromRow)]
struct CheckRow {
    id: i64,
    name: String,
    url: String,
    interval_seconds: i32,
    timeout_seconds: i32,
    expected_status: Option<i32>,
    expected_body: Option<String>,
    host: Option<String>,
    public: bool,
    public_name: Option<String>,
    up: Option<bool>,
    state_since: Option<OffsetDateTime>,
    last_latency_ms: Option<f64>,
    last_error: Option<String>,
    last_checked_at: Option<OffsetDateTime>,
    builtin: bool,
    paused: bool,
    recent: Vec<bool>,
    up_1d: i64,
    n_1d: i64,
    up_7d: i64,
    n_7d: i64,
    up_30d: i64,
    n_30d: i64,
}

pub async fn list_checks(pool: &PgPool) -> AppResult<Vec<CheckInfo>> {
    // Results inside a maintenance window over a check do not count against its uptime.
    let now = OffsetDateTime::now_utc();
    let (names, starts, ends) = maintenance_spans(pool, now - Duration::days(30), now).await?;
    let rows: Vec<CheckRow> = sqlx::query_as(
        "SELECT c.id, c.name, c.url, c.interval_seconds, c.timeout_seconds, c.expected_status, c.expected_body,
                c.host, c.public, c.public_name, c.up, c.state_since, c.last_latency_ms, c.last_error, c.last_checked_at, c.builtin, c.paused,
                coalesce((SELECT array_agg(h.up ORDER BY h.at) FROM (SELECT up, at FROM health_results
                          WHERE check_id = c.id ORDER BY at DESC LIMIT 50) h), '{}') AS recent,
                count(*) FILTER (WHERE r.up AND r.at > now() - interval '1 day') AS up_1d,
                count(r.at) FILTER (WHERE r.at > now() - interval '1 day') AS n_1d,
                count(*) FILTER (WHERE r.up AND r.at > now() - interval '7 days') AS up_7d,
                count(r.at) FILTER (WHERE r.at > now() - interval '7 days') AS n_7d,
                count(*) FILTER (WHERE r.up) AS up_30d,
                count(r.at) AS n_30d
         FROM health_checks c LEFT JOIN health_results r ON r.check_id = c.id AND r.at > now() - interval '30 days'
              AND NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS m(name, s, e)
                              WHERE m.name = c.name AND r.at >= m.s AND r.at < m.e)
         GROUP BY c.id ORDER BY c.builtin DESC, c.name",
    )
    .bind(&names)
    .bind(&starts)
    .bind(&ends)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CheckInfo {
            id: r.id,
            check: NewCheck {
                name: r.name,
                url: crate::redact::url(&r.url),
                interval_seconds: r.interval_seconds,
                timeout_seconds: r.timeout_seconds,
                expected_status: r.expected_status,
                expected_body: r.expected_body,
                host: r.host,
                public: r.public,
                public_name: r.public_name,
            },
            paused: r.paused,
            state: Liveness::from_up(r.up.filter(|_| !r.paused)),
            since: r.state_since.map(Timestamp),
            latency_ms: r.last_latency_ms,
            last_error: r.last_error.map(|e| crate::redact::text(&e)),
            last_checked: r.last_checked_at.map(Timestamp),
            builtin: r.builtin,
            recent: r.recent,
            uptime_24h: rules::uptime(r.up_1d, r.n_1d),
            uptime_7d: rules::uptime(r.up_7d, r.n_7d),
            uptime_30d: rules::uptime(r.up_30d, r.n_30d),
        })
        .collect())
}

/// The spans of `from`–`now` each check was under maintenance: (check, start, end).
pub(super) async fn maintenance_spans(
    pool: &PgPool,
    from: OffsetDateTime,
    now: OffsetDateTime,
) -> AppResult<(Vec<String>, Vec<OffsetDateTime>, Vec<OffsetDateTime>)> {
    let windows = windows_ending_after(pool, from, now).await?;
    let mut out = (vec![], vec![], vec![]);
    if windows.is_empty() {
        return Ok(out);
    }
    let checks = sqlx::query_scalar!("SELECT name FROM health_checks")
        .fetch_all(pool)
        .await?;
    for w in &windows {
        let spans = crate::alerts::maintenance::spans(w, from, now);
        for c in checks
            .iter()
            .filter(|c| crate::alerts::maintenance::covers(w, "", None, Some(c)))
        {
            for (s, e) in &spans {
                out.0.push(c.clone());
                out.1.push(*s);
                out.2.push(*e);
            }
        }
    }
    Ok(out)
}

/// Every check with a latency chart over `from`–`to` (`label`: the range as the page names it).
/// Long ranges are averaged into at most about 300 buckets; down results are gaps, not zeros.
pub async fn checks_with_charts(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
    label: &str,
) -> AppResult<Vec<(CheckInfo, Option<Chart>)>> {
    let checks = list_checks(pool).await?;
    let bucket = ((to - from).whole_seconds() / 300).max(1);
    let points = sqlx::query!(
        r#"SELECT check_id, date_bin(make_interval(secs => $3::float8), at, $1) AS "bucket!",
                  avg(latency_ms) FILTER (WHERE up) AS latency_ms
           FROM health_results
           WHERE at > $1 AND at <= $2
           GROUP BY check_id, 2 ORDER BY check_id, 2"#,
        from,
        to,
        bucket as f64
    )
    .fetch_all(pool)
    .await?;
    let mut by_check: HashMap<i64, Vec<crate::metrics::SeriesPoint>> = HashMap::new();
    for p in points {
        if let Some(ms) = p.latency_ms {
            by_check
                .entry(p.check_id)
                .or_default()
                .push(crate::metrics::SeriesPoint {
                    ts: Timestamp(p.bucket),
                    avg: ms,
                    min: ms,
                    max: ms,
                });
        }
    }
    let span = if label == "custom" {
        "this window".to_string()
    } else {
        format!("last {label}")
    };
    Ok(checks
        .into_iter()
        .map(|c| {
            let chart = by_check.remove(&c.id).filter(|p| p.len() >= 2).map(|p| {
                crate::metrics::charts::render(
                    &format!("check-{}", c.id),
                    &format!("{}: latency in ms, {span}", c.check.name),
                    crate::metrics::Unit::Plain,
                    from.unix_timestamp(),
                    to.unix_timestamp(),
                    i64::from(c.check.interval_seconds.max(1)).max(bucket),
                    &[crate::metrics::charts::LineInput {
                        label: "latency ms".into(),
                        points: &p,
                        band: false,
                    }],
                )
            });
            (c, chart)
        })
        .collect())
}

/// A check claimed for running.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueCheck {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub timeout_seconds: i32,
    pub expected_status: Option<i32>,
    pub expected_body: Option<String>,
}

pub async fn claim_checks(pool: &PgPool) -> AppResult<Vec<DueCheck>> {
    Ok(sqlx::query_as(
        "UPDATE health_checks SET next_check_at = now() + make_interval(secs => interval_seconds)
         WHERE id IN (SELECT id FROM health_checks WHERE next_check_at <= now() AND NOT paused
                      ORDER BY next_check_at LIMIT 200 FOR UPDATE SKIP LOCKED)
         RETURNING id, name, url, timeout_seconds, expected_status, expected_body",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn record_check(
    pool: &PgPool,
    id: i64,
    at: OffsetDateTime,
    latency_ms: f64,
    status: Option<u16>,
    result: Result<(), String>,
) -> AppResult<()> {
    let up = result.is_ok();
    let error = result
        .err()
        .map(|e| e.chars().take(500).collect::<String>());
    let mut tx = pool.begin().await?;
    sqlx::query!("INSERT INTO health_results (check_id, at, up, latency_ms, status, error) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING", id, at, up, latency_ms, status.map(i32::from), error.as_deref())
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE health_checks SET state_since = CASE WHEN up IS DISTINCT FROM $2 THEN $3 ELSE state_since END,
            up = $2, last_checked_at = $3, last_latency_ms = $4, last_error = $5
         WHERE id = $1", id, up, at, latency_ms, error.as_deref())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Results older than 30 days go (the uptime looks back that far); each check's daily counts
/// (maintenance excluded) are kept in `health_daily` for the status page's 90 days, added in
/// the same transaction as the results they count are deleted.
pub async fn expire_results(pool: &PgPool, now: OffsetDateTime) -> AppResult<u64> {
    let cutoff = now - Duration::days(31);
    let oldest: Option<OffsetDateTime> =
        sqlx::query_scalar!("SELECT min(at) FROM health_results WHERE at < $1", cutoff)
            .fetch_one(pool)
            .await?;
    let (names, starts, ends) = match oldest {
        Some(oldest) => maintenance_spans(pool, oldest, cutoff).await?,
        None => Default::default(),
    };
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO health_daily (check_id, day, up, total)
         SELECT r.check_id, (r.at AT TIME ZONE 'UTC')::date, count(*) FILTER (WHERE r.up), count(*)
         FROM health_results r JOIN health_checks c ON c.id = r.check_id
         WHERE r.at < $4
           AND NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS m(name, s, e)
                           WHERE m.name = c.name AND r.at >= m.s AND r.at < m.e)
         GROUP BY 1, 2
         ON CONFLICT (check_id, day) DO UPDATE SET up = health_daily.up + excluded.up,
             total = health_daily.total + excluded.total",
        &names,
        &starts,
        &ends,
        cutoff
    )
    .execute(&mut *tx)
    .await?;
    let n = sqlx::query!("DELETE FROM health_results WHERE at < $1", cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query!(
        "DELETE FROM health_daily WHERE day < $1",
        (now - Duration::days(120)).date()
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query!(
        "DELETE FROM alert_outbox WHERE created_at < $1 AND outcome <> 'waiting'",
        cutoff
    )
    .execute(pool)
    .await?;
    sqlx::query!(
        "DELETE FROM alert_notifications WHERE created_at < $1 AND status <> 'queued'",
        cutoff
    )
    .execute(pool)
    .await?;
    Ok(n)
}
