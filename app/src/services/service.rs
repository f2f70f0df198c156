//! Services on the server: watched processes and scrape targets in PostgreSQL, their state from
//! the latest samples, and the page data. Claiming due scrapes and recording them is in
//! `scrape_runs`, re-exported here.

pub use super::scrape_runs::{claim_due, record_scrape, Claimed, ScrapeResult, Scraped};
use super::{
    process::validate_watch, rss_trend, validate_target, DetailData, Liveness, NewProcess,
    NewTarget, ProcessInfo, ServicesPageData, Sparks, TargetInfo,
};
use crate::auth::service::RequestCtx;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::metrics::charts::{self, LineInput};
use crate::metrics::service::{selector, series};
use crate::metrics::{SeriesPoint, Unit};
use crate::state::AppState;
use crate::timestamp::Timestamp;
use sqlx::PgPool;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

/// The watches of one host, as the collector needs them: (name, pattern, port).
pub async fn watches_for(
    pool: &PgPool,
    host: &str,
) -> AppResult<Vec<(String, String, Option<u16>)>> {
    let rows = sqlx::query!(
        "SELECT name, pattern, port FROM watched_processes WHERE host = $1 AND NOT paused ORDER BY name",
        host
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.name,
                r.pattern,
                r.port.and_then(|p| u16::try_from(p).ok()),
            )
        })
        .collect())
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// Inserts a watch; `replace` updates one of the same host and name instead of failing.
async fn write_process(
    pool: &PgPool,
    host: &str,
    p: &NewProcess,
    replace: bool,
) -> Result<i64, sqlx::Error> {
    let on_conflict = if replace {
        "ON CONFLICT (host, name) DO UPDATE SET pattern = excluded.pattern, port = excluded.port"
    } else {
        ""
    };
    sqlx::query_scalar(&format!(
        "INSERT INTO watched_processes (host, name, pattern, port) VALUES ($1, $2, $3, $4) {on_conflict} RETURNING id"
    ))
    .bind(host)
    .bind(&p.name)
    .bind(&p.pattern)
    .bind(p.port.map(|p| p as i32))
    .fetch_one(pool)
    .await
}

/// Inserts a scrape target; `replace` updates the one of the same name instead of failing.
async fn write_target(
    pool: &PgPool,
    host: &str,
    t: &NewTarget,
    replace: bool,
) -> Result<i64, sqlx::Error> {
    let on_conflict = if replace {
        "ON CONFLICT (name) DO UPDATE SET url = excluded.url, host = excluded.host,
             interval_seconds = excluded.interval_seconds, timeout_seconds = excluded.timeout_seconds,
             max_series = excluded.max_series, bearer_token = excluded.bearer_token"
    } else {
        ""
    };
    sqlx::query_scalar(&format!(
        "INSERT INTO scrape_targets (name, url, host, interval_seconds, timeout_seconds, max_series, bearer_token)
         VALUES ($1, $2, $3, $4, $5, coalesce($6, 10000), $7) {on_conflict} RETURNING id"
    ))
    .bind(&t.name)
    .bind(&t.url)
    .bind(host)
    .bind(t.interval_seconds as i32)
    .bind(t.timeout_seconds as i32)
    .bind(t.max_series.map(|m| m as i32))
    .bind(&t.bearer_token)
    .fetch_one(pool)
    .await
}

/// A conflict named for the user, any other error as it is.
pub(super) fn conflict_as(e: sqlx::Error, message: impl FnOnce() -> String) -> AppError {
    if unique_violation(&e) {
        AppError::conflict(message())
    } else {
        e.into()
    }
}

/// Watches a process (operators), audited either way with the client's address.
pub async fn add_process(ctx: &RequestCtx, p: &NewProcess) -> AppResult<i64> {
    let user = ctx.require(Role::Operator).await?;
    let r = async {
        validate_watch(&p.name, &p.pattern, p.port).map_err(AppError::unprocessable)?;
        let host = p
            .host
            .clone()
            .unwrap_or_else(|| ctx.state.config.host_name.clone());
        crate::metrics::validate_host(&host).map_err(AppError::unprocessable)?;
        write_process(&ctx.state.pool, &host, p, false)
            .await
            .map_err(|e| {
                conflict_as(e, || {
                    format!("host {host} already watches a process named `{}`", p.name)
                })
            })
    }
    .await;
    let detail = serde_json::json!({"pattern": p.pattern, "port": p.port, "host": p.host});
    ctx.audit(&user, "services.process.add", &p.name, r.is_ok(), detail)
        .await?;
    r
}

/// Scrapes an endpoint (operators), audited either way (whether a bearer token was given, never
/// the token).
pub async fn add_target(ctx: &RequestCtx, t: &NewTarget) -> AppResult<i64> {
    let user = ctx.require(Role::Operator).await?;
    let r = async {
        validate_target(t).map_err(AppError::unprocessable)?;
        let host = t
            .host
            .clone()
            .unwrap_or_else(|| ctx.state.config.host_name.clone());
        write_target(&ctx.state.pool, &host, t, false)
            .await
            .map_err(|e| conflict_as(e, || format!("a scrape target named `{}` exists", t.name)))
    }
    .await;
    let detail = serde_json::json!({
        "url": crate::redact::url(&t.url),
        "host": t.host,
        "bearer_token": t.bearer_token.is_some(),
    });
    ctx.audit(&user, "services.target.add", &t.name, r.is_ok(), detail)
        .await?;
    r
}

/// Writes the configuration file's processes and scrape targets (added, or updated by name).
pub async fn apply_config(state: &AppState) -> AppResult<()> {
    let own = &state.config.host_name;
    for p in &state.config.processes {
        write_process(&state.pool, p.host.as_ref().unwrap_or(own), p, true).await?;
    }
    for t in &state.config.scrape_targets {
        write_target(&state.pool, t.host.as_ref().unwrap_or(own), t, true).await?;
    }
    Ok(())
}

/// Deletes row `id` of `table`; 404 naming `what` when there is none.
async fn delete_row(pool: &PgPool, table: &str, what: &str, id: i64) -> AppResult<()> {
    let n = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(AppError::not_found(format!("no {what} {id}")));
    }
    Ok(())
}

/// Stops watching a process (operators; its samples stay), audited either way.
pub async fn delete_process(ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    let r = delete_row(&ctx.state.pool, "watched_processes", "watched process", id).await;
    ctx.audit(
        &user,
        "services.process.delete",
        &id.to_string(),
        r.is_ok(),
        serde_json::json!({}),
    )
    .await?;
    r
}

/// Stops scraping a target (operators; its samples stay), audited either way.
pub async fn delete_target(ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    let r = delete_row(&ctx.state.pool, "scrape_targets", "scrape target", id).await;
    ctx.audit(
        &user,
        "services.target.delete",
        &id.to_string(),
        r.is_ok(),
        serde_json::json!({}),
    )
    .await?;
    r
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    id: i64,
    name: String,
    url: String,
    host: String,
    interval_seconds: i32,
    timeout_seconds: i32,
    max_series: i32,
    up: Option<bool>,
    state_since: Option<OffsetDateTime>,
    last_scrape_at: Option<OffsetDateTime>,
    last_success_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    last_duration_ms: Option<f64>,
    last_samples: Option<i32>,
    last_dropped: i32,
    last_skipped: i32,
    has_token: bool,
    paused: bool,
}

const TARGET_COLUMNS: &str = "id, name, url, host, interval_seconds, timeout_seconds, max_series, up, state_since, last_scrape_at, last_success_at, last_error, last_duration_ms, last_samples, last_dropped, last_skipped, bearer_token IS NOT NULL AS has_token, paused";

/// A target as anyone may see it: its URL and errors redacted (`redact`), the token never.
fn target_info(r: TargetRow) -> TargetInfo {
    TargetInfo {
        id: r.id,
        name: r.name,
        paused: r.paused,
        url: crate::redact::url(&r.url),
        host: r.host,
        interval_seconds: r.interval_seconds,
        timeout_seconds: r.timeout_seconds,
        max_series: r.max_series,
        state: Liveness::from_up(r.up.filter(|_| !r.paused)),
        since: r.state_since.map(Timestamp),
        last_scrape: r.last_scrape_at.map(Timestamp),
        last_success: r.last_success_at.map(Timestamp),
        last_error: r.last_error.map(|e| crate::redact::text(&e)),
        last_duration_ms: r.last_duration_ms,
        last_samples: r.last_samples,
        dropped: r.last_dropped,
        skipped: r.last_skipped,
        has_token: r.has_token,
    }
}

pub async fn list_targets(pool: &PgPool) -> AppResult<Vec<TargetInfo>> {
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "SELECT {TARGET_COLUMNS} FROM scrape_targets ORDER BY name"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(target_info).collect())
}

/// The latest `process_*` values of every watched process, with its state.
pub async fn list_processes(pool: &PgPool, now: OffsetDateTime) -> AppResult<Vec<ProcessInfo>> {
    let watches = sqlx::query!(
        "SELECT id, host, name, pattern, port, paused FROM watched_processes ORDER BY host, name"
    )
    .fetch_all(pool)
    .await?;
    let latest = sqlx::query!(
        r#"SELECT s.host, s.labels->>'process' AS "process!", s.metric, l.ts, l.value
           FROM metric_series s JOIN metric_latest l ON l.series_id = s.id
           WHERE s.metric LIKE 'process\_%'
             AND s.labels = jsonb_build_object('process', s.labels->>'process')"#
    )
    .fetch_all(pool)
    .await?;
    // (host, process) → metric → (time, value)
    type Latest = HashMap<String, (OffsetDateTime, f64)>;
    let mut by: HashMap<(String, String), Latest> = HashMap::new();
    for r in latest {
        by.entry((r.host, r.process))
            .or_default()
            .insert(r.metric, (r.ts, r.value));
    }
    let restarts = sqlx::query!(
        r#"SELECT s.host, s.labels->>'process' AS "process!", sum(r.sum) AS "restarts!"
           FROM metric_series s JOIN metric_rollup_1m r ON r.series_id = s.id
           WHERE s.metric = 'process_restarts' AND r.bucket >= $1
             AND s.labels = jsonb_build_object('process', s.labels->>'process')
           GROUP BY 1, 2"#,
        now - Duration::DAY
    )
    .fetch_all(pool)
    .await?;
    let mut out = vec![];
    for w in watches {
        let (id, host, name, pattern, port) = (w.id, w.host, w.name, w.pattern, w.port);
        let m = by.remove(&(host.clone(), name.clone())).unwrap_or_default();
        let get = |k: &str| m.get(k).map(|v| v.1);
        let last_seen = m.get("process_up").map(|v| v.0);
        // Stale: nothing collected for five minutes means the host (or agent) is silent.
        let fresh = last_seen.is_some_and(|t| now - t < Duration::minutes(5));
        let up = get("process_up").filter(|_| fresh).map(|v| v > 0.0);
        let since = match up {
            Some(true) => get("process_uptime_seconds").map(|s| now - Duration::seconds_f64(s)),
            _ => last_up(pool, &host, &name).await?,
        };
        out.push(ProcessInfo {
            id,
            host: host.clone(),
            name: name.clone(),
            paused: w.paused,
            pattern,
            port,
            state: match up {
                _ if w.paused => Liveness::Unknown,
                None if last_seen.is_some() => Liveness::Down,
                up => Liveness::from_up(up),
            },
            since: since.map(Timestamp),
            count: get("process_count"),
            cpu_percent: get("process_cpu_percent"),
            rss_bytes: get("process_resident_memory_bytes"),
            port_listening: get("process_port_listening").map(|v| v > 0.0),
            restarts_24h: restarts
                .iter()
                .find(|r| r.host == host && r.process == name)
                .map(|r| r.restarts),
            last_seen: last_seen.map(Timestamp),
        });
    }
    Ok(out)
}

/// When a process was last seen up (newest sample of `process_up` = 1).
async fn last_up(pool: &PgPool, host: &str, name: &str) -> AppResult<Option<OffsetDateTime>> {
    Ok(sqlx::query_scalar!(
        "SELECT max(r.bucket) FROM metric_series s JOIN metric_rollup_1m r ON r.series_id = s.id
         WHERE s.host = $1 AND s.metric = 'process_up' AND s.labels = jsonb_build_object('process', $2::text)
           AND r.max > 0",
        host,
        name
    )
    .fetch_one(pool)
    .await?)
}

/// The last hour of one series (a point a minute) as plain values, for a sparkline.
async fn spark(state: &AppState, host: &str, metric: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let now = OffsetDateTime::now_utc();
    series(
        &state.reads,
        host,
        &selector(metric, labels),
        now - Duration::HOUR,
        now,
        60,
        crate::metrics::Retention::from(&*state.config),
    )
    .await
    .ok()
    // Its own series, not a scraped one of the same name with more labels.
    .and_then(|r| r.series.into_iter().min_by_key(|s| s.labels.len()))
    .map(|s| s.points.into_iter().map(|p| p.avg).collect())
    .unwrap_or_default()
}

/// The Services page, of every host or of one.
pub async fn page_data(
    state: &AppState,
    role: Role,
    host: Option<&str>,
) -> AppResult<ServicesPageData> {
    let now = OffsetDateTime::now_utc();
    let mut processes = vec![];
    let on_host = |h: &str| host.is_none_or(|want| want == h);
    for p in list_processes(&state.pool, now)
        .await?
        .into_iter()
        .filter(|p| on_host(&p.host))
    {
        let l = [("process", p.name.as_str())];
        let (first, second) = tokio::join!(
            spark(state, &p.host, "process_cpu_percent", &l),
            spark(state, &p.host, "process_resident_memory_bytes", &l),
        );
        let sparks = Sparks { first, second };
        processes.push((p, sparks));
    }
    let mut targets = vec![];
    for t in list_targets(&state.pool)
        .await?
        .into_iter()
        .filter(|t| on_host(&t.host))
    {
        let l = [("target", t.name.as_str())];
        let (first, second) = tokio::join!(
            spark(state, &t.host, "scrape_requests_per_second", &l),
            spark(state, &t.host, "scrape_duration_seconds", &l),
        );
        let sparks = Sparks { first, second };
        targets.push((t, sparks));
    }
    Ok(ServicesPageData {
        processes,
        targets,
        can_edit: role >= Role::Operator,
        own_host: state.config.host_name.clone(),
        host: host.map(str::to_string),
    })
}

fn fmt_time(t: Option<OffsetDateTime>) -> String {
    t.as_ref()
        .map(crate::components::fmt_time)
        .unwrap_or_else(|| "never".into())
}

/// A process's or a target's page: state, figures and charts over `from`–`to`.
pub async fn detail(
    state: &AppState,
    kind: &str,
    id: i64,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<DetailData> {
    let window = DetailWindow::new(state, from, to);
    match kind {
        "process" => {
            let p = list_processes(&state.pool, window.to)
                .await?
                .into_iter()
                .find(|p| p.id == id)
                .ok_or_else(|| AppError::not_found(format!("no watched process {id}")))?;
            process_detail(&window, p).await
        }
        "target" => {
            let tg = list_targets(&state.pool)
                .await?
                .into_iter()
                .find(|t| t.id == id)
                .ok_or_else(|| AppError::not_found(format!("no scrape target {id}")))?;
            target_detail(&window, tg).await
        }
        k => Err(AppError::bad_request(format!(
            "kind `{k}`: process or target"
        ))),
    }
}

/// One watched thing's series over the page's window, read and charted alike.
struct DetailWindow<'a> {
    reads: &'a crate::db::Reads,
    retention: crate::metrics::Retention,
    from: OffsetDateTime,
    to: OffsetDateTime,
}

/// One line of a detail chart.
fn line<'p>(label: &str, points: &'p [SeriesPoint], band: bool) -> LineInput<'p> {
    LineInput {
        label: label.into(),
        points,
        band,
    }
}

impl DetailWindow<'_> {
    fn new(state: &AppState, from: OffsetDateTime, to: OffsetDateTime) -> DetailWindow<'_> {
        DetailWindow {
            reads: &state.reads,
            retention: crate::metrics::Retention::from(&*state.config),
            from,
            to,
        }
    }

    /// The points of `metric{label}` on `host` and their step in seconds.
    async fn points(
        &self,
        host: &str,
        metric: &str,
        label: (&str, &str),
    ) -> AppResult<(Vec<SeriesPoint>, i64)> {
        let r = series(
            self.reads,
            host,
            &selector(metric, &[label]),
            self.from,
            self.to,
            300,
            self.retention,
        )
        .await?;
        // The watched thing's own series: the one with no label but `label`. A scrape of an
        // exporter (another Opsdeck's /metrics) may bring series of the same name with more
        // labels on the same host; they are not this process's.
        let own = r.series.into_iter().min_by_key(|s| s.labels.len());
        let step = own.as_ref().map(|s| s.step_seconds).unwrap_or(60);
        Ok((own.map(|s| s.points).unwrap_or_default(), step))
    }

    fn chart(
        &self,
        id: &str,
        title: &str,
        unit: Unit,
        step: i64,
        lines: &[LineInput],
    ) -> crate::metrics::Chart {
        let (f, t) = (self.from.unix_timestamp(), self.to.unix_timestamp());
        charts::render(id, title, unit, f, t, step, lines)
    }
}

/// A watched process: CPU, memory with its least-squares trend, files and threads, up.
async fn process_detail(w: &DetailWindow<'_>, p: ProcessInfo) -> AppResult<DetailData> {
    let (host, l) = (p.host.as_str(), ("process", p.name.as_str()));
    let (cpu, step) = w.points(host, "process_cpu_percent", l).await?;
    let (rss, _) = w.points(host, "process_resident_memory_bytes", l).await?;
    let (fds, _) = w.points(host, "process_open_fds", l).await?;
    let (threads, _) = w.points(host, "process_threads", l).await?;
    let (up, _) = w.points(host, "process_up", l).await?;
    let trend = rss_trend(&rss);
    let trend_points: Vec<SeriesPoint> = trend
        .iter()
        .flat_map(|(_, ends)| ends.iter())
        .filter_map(|(ts, v)| {
            Some(SeriesPoint {
                ts: Timestamp(OffsetDateTime::from_unix_timestamp(*ts).ok()?),
                avg: *v,
                min: *v,
                max: *v,
            })
        })
        .collect();
    let charts = vec![
        w.chart(
            "cpu",
            "CPU",
            Unit::Percent,
            step,
            &[line("cpu", &cpu, true)],
        ),
        w.chart(
            "rss",
            "Resident memory",
            Unit::Bytes,
            step,
            &[line("rss", &rss, true), line("trend", &trend_points, false)],
        ),
        w.chart(
            "fds",
            "Open files and threads",
            Unit::Count,
            step,
            &[
                line("open fds", &fds, false),
                line("threads", &threads, false),
            ],
        ),
        w.chart("up", "Up", Unit::Up, step, &[line("up", &up, false)]),
    ];
    let trend_text = Some(match trend {
        Some((per_day, _)) => {
            let dir = if per_day >= 0.0 { "grows" } else { "shrinks" };
            format!(
                "RSS {dir} {}/day (least squares over this range)",
                Unit::Bytes.format(per_day.abs())
            )
        }
        None => "RSS trend: not enough data yet (it needs an hour of samples)".to_string(),
    });
    let warning = (p.port_listening == Some(false))
        .then(|| format!("Nothing listens on port {}.", p.port.unwrap_or(0)));
    Ok(DetailData {
        summary: process_summary(&p),
        title: p.name,
        host: p.host,
        state: p.state,
        trend: trend_text,
        charts,
        warning,
        range_label: String::new(),
    })
}

fn process_summary(p: &ProcessInfo) -> Vec<(String, String)> {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".into());
    let mut summary = vec![
        ("Host".to_string(), p.host.clone()),
        ("Pattern".into(), p.pattern.clone()),
        (
            "Instances".into(),
            or_dash(p.count.map(|c| format!("{c:.0}"))),
        ),
        (
            "CPU".into(),
            or_dash(p.cpu_percent.map(|c| format!("{c:.1} %"))),
        ),
        (
            "RSS".into(),
            or_dash(p.rss_bytes.map(|b| Unit::Bytes.format(b))),
        ),
        (
            "Restarts (24 h)".into(),
            p.restarts_24h
                .map_or_else(|| "0".into(), |r| format!("{r:.0}")),
        ),
        ("Since".into(), fmt_time(p.since.map(|t| t.0))),
    ];
    if let Some(port) = p.port {
        let listening = match p.port_listening {
            Some(true) => "listening",
            Some(false) => "not listening",
            None => "–",
        };
        summary.push((format!("Port {port}"), listening.into()));
    }
    summary
}

/// A scrape target: its request rate, samples per scrape, scrape duration, up.
async fn target_detail(w: &DetailWindow<'_>, tg: TargetInfo) -> AppResult<DetailData> {
    let (host, l) = (tg.host.as_str(), ("target", tg.name.as_str()));
    let (dur, step) = w.points(host, "scrape_duration_seconds", l).await?;
    // Scrapes take milliseconds: shown in ms, as the summary's "Duration" is.
    let dur_ms: Vec<SeriesPoint> = dur
        .iter()
        .map(|p| SeriesPoint {
            ts: p.ts,
            avg: p.avg * 1000.0,
            min: p.min * 1000.0,
            max: p.max * 1000.0,
        })
        .collect();
    let (samples, _) = w.points(host, "scrape_samples", l).await?;
    let (rps, _) = w.points(host, "scrape_requests_per_second", l).await?;
    let (up, _) = w.points(host, "scrape_up", l).await?;
    let charts = vec![
        w.chart(
            "requests",
            "Requests per second",
            Unit::Plain,
            step,
            &[line("requests/s", &rps, true)],
        ),
        w.chart(
            "samples",
            "Samples per scrape",
            Unit::Count,
            step,
            &[line("samples", &samples, false)],
        ),
        w.chart(
            "duration",
            "Scrape duration (ms)",
            Unit::Plain,
            step,
            &[line("duration", &dur_ms, true)],
        ),
        w.chart("up", "Up", Unit::Up, step, &[line("up", &up, false)]),
    ];
    let warning = (tg.dropped > 0).then(|| {
        format!(
            "The last scrape dropped {} series over this target's limit of {} (or not storable).",
            tg.dropped, tg.max_series
        )
    });
    Ok(DetailData {
        summary: target_summary(&tg),
        title: tg.name,
        host: tg.host,
        state: tg.state,
        trend: None,
        charts,
        warning,
        range_label: String::new(),
    })
}

fn target_summary(tg: &TargetInfo) -> Vec<(String, String)> {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".into());
    let mut facts = vec![
        ("URL".into(), tg.url.clone()),
        (
            "Every".into(),
            format!(
                "{} s (timeout {} s)",
                tg.interval_seconds, tg.timeout_seconds
            ),
        ),
        ("Last scrape".into(), fmt_time(tg.last_scrape.map(|t| t.0))),
        (
            "Last success".into(),
            fmt_time(tg.last_success.map(|t| t.0)),
        ),
        (
            "Duration".into(),
            or_dash(tg.last_duration_ms.map(|d| format!("{d:.0} ms"))),
        ),
        (
            "Samples".into(),
            or_dash(tg.last_samples.map(|s| s.to_string())),
        ),
        (
            "Last error".into(),
            tg.last_error.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            "Series stored under".into(),
            format!("host {}, label target={}", tg.host, tg.name),
        ),
    ];
    if tg.skipped > 0 {
        facts.push(("Left out".into(), super::skipped_note(tg.skipped)));
    }
    facts
}
