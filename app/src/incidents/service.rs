//! Incidents in the database: opened and joined as alerts fire (in the evaluation round's
//! transaction), listed, told as a timeline with their context, acted on; and annotations.

use super::model::{self, Candidate};
use super::{
    Annotation, Context, Incident, IncidentDetail, IncidentPageData, LogWindow, NewError, Note,
    TimelineEvent,
};
use crate::alerts::{AlertStatus, Severity};
use crate::auth::service::{Actor, RequestCtx};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::logs::LogStats;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};

/// An alert event of an evaluation round, as incidents take it.
#[derive(Debug, Clone)]
pub struct AlertEvent {
    pub event_id: i64,
    pub rule_id: i64,
    pub rule: String,
    pub instance: String,
    pub host: Option<String>,
    pub status: AlertStatus,
    pub severity: Severity,
    pub at: OffsetDateTime,
}

/// Files a round's firing and resolved events into incidents: a firing alert joins an open
/// incident ([`model::join_target`]) or opens one; a resolved one is marked, and the incident
/// ends when none of its alerts fires. Runs in the round's transaction (one evaluator at a time
/// holds the alert lock), so two processes never open two incidents for one outage.
pub async fn file_alert_events(
    tx: &mut PgConnection,
    events: &[AlertEvent],
    join: Duration,
) -> AppResult<()> {
    for e in events {
        match e.status {
            AlertStatus::Firing => firing(tx, e, join).await?,
            AlertStatus::Resolved => resolved(tx, e).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn firing(tx: &mut PgConnection, e: &AlertEvent, join: Duration) -> AppResult<()> {
    let open: Vec<Candidate> = sqlx::query!(
        r#"SELECT id, hosts, last_event_at, ended_at FROM incidents
           WHERE closed_at IS NULL AND (ended_at IS NULL OR ended_at >= $1::timestamptz - $2::interval)
           ORDER BY last_event_at DESC LIMIT 100"#,
        e.at,
        sqlx::postgres::types::PgInterval::try_from(join).unwrap_or_default()
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| Candidate {
        id: r.id,
        hosts: r.hosts,
        last_event_at: r.last_event_at,
        ended_at: r.ended_at,
    })
    .collect();
    let id = match model::join_target(&open, e.host.as_deref(), e.at, join) {
        Some(id) => {
            sqlx::query!(
                "UPDATE incidents SET last_event_at = greatest(last_event_at, $2), ended_at = NULL,
                    severity = CASE WHEN $3 = 'critical' THEN 'critical' ELSE severity END,
                    hosts = CASE WHEN $4::text IS NULL OR $4 = ANY(hosts) THEN hosts ELSE hosts || $4 END
                 WHERE id = $1",
                id,
                e.at,
                e.severity.as_str(),
                e.host
            )
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            sqlx::query_scalar!(
                "INSERT INTO incidents (title, severity, hosts, started_at, last_event_at)
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
                model::title(&e.rule, e.host.as_deref()),
                e.severity.as_str(),
                &e.host.iter().cloned().collect::<Vec<_>>(),
                e.at
            )
            .fetch_one(&mut *tx)
            .await?
        }
    };
    sqlx::query!(
        "INSERT INTO incident_alerts (incident_id, rule_id, instance, firing) VALUES ($1, $2, $3, true)
         ON CONFLICT (incident_id, rule_id, instance) DO UPDATE SET firing = true",
        id,
        e.rule_id,
        e.instance
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE alert_events SET incident_id = $1 WHERE id = $2",
        id,
        e.event_id
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn resolved(tx: &mut PgConnection, e: &AlertEvent) -> AppResult<()> {
    let ids: Vec<i64> = sqlx::query_scalar!(
        "UPDATE incident_alerts SET firing = false WHERE rule_id = $1 AND instance = $2 AND firing
         RETURNING incident_id",
        e.rule_id,
        e.instance
    )
    .fetch_all(&mut *tx)
    .await?;
    for id in ids {
        sqlx::query!(
            "UPDATE incidents SET last_event_at = greatest(last_event_at, $2),
                ended_at = CASE WHEN EXISTS (SELECT 1 FROM incident_alerts a WHERE a.incident_id = $1 AND a.firing)
                                THEN NULL ELSE $2 END
             WHERE id = $1",
            id,
            e.at
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE alert_events SET incident_id = $1 WHERE id = $2",
            id,
            e.event_id
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

const SELECT: &str = "SELECT i.id, i.title, i.severity,
        CASE WHEN i.closed_at IS NULL THEN 'open' ELSE 'closed' END AS status,
        i.hosts, i.started_at, i.last_event_at, i.ended_at,
        (SELECT count(*) FROM incident_alerts a WHERE a.incident_id = i.id) AS alerts,
        (SELECT count(*) FROM incident_alerts a WHERE a.incident_id = i.id AND a.firing) AS firing,
        i.acked_by, i.acked_at, i.assignee, i.closed_by, i.closed_at, i.summary, i.public_title
    FROM incidents i";

/// Incidents, newest first: `open` ones, `closed` ones of the last 90 days, or both.
pub async fn list(pool: &PgPool, status: Option<&str>, limit: i64) -> AppResult<Vec<Incident>> {
    let filter = match status {
        None => "WHERE i.closed_at IS NULL OR i.started_at >= now() - interval '90 days'",
        Some("open") => "WHERE i.closed_at IS NULL",
        Some("closed") => {
            "WHERE i.closed_at IS NOT NULL AND i.started_at >= now() - interval '90 days'"
        }
        Some(s) => {
            return Err(AppError::bad_request(format!(
                "status `{}`: open or closed",
                crate::redact::clip(s, 40)
            )))
        }
    };
    Ok(sqlx::query_as::<_, Incident>(&format!(
        "{SELECT} {filter} ORDER BY i.started_at DESC, i.id DESC LIMIT $1"
    ))
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: i64) -> AppResult<Incident> {
    sqlx::query_as::<_, Incident>(&format!("{SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no incident {id}")))
}

/// The window an incident is judged over: an hour before its start to its end (or now).
pub fn window(i: &Incident, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let to = i.ended_at.map(|t| *t).unwrap_or(now).max(*i.started_at);
    (*i.started_at - Duration::hours(1), to)
}

/// An incident with its timeline, notes and context.
pub async fn detail(state: &AppState, id: i64, now: OffsetDateTime) -> AppResult<IncidentDetail> {
    let pool = &state.pool;
    let incident = get(pool, id).await?;
    let (from, to) = window(&incident, now);
    let notes = notes(pool, id).await?;
    let mut events = timeline(pool, &incident, from, to).await?;
    events.extend(notes.iter().map(|n| TimelineEvent {
        at: n.at,
        kind: "note".into(),
        host: None,
        text: format!("{}: {}", n.author, n.text),
    }));
    events.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.kind.cmp(&b.kind)));
    let context = context(state, from, to).await?;
    Ok(IncidentDetail {
        incident,
        events,
        notes,
        context,
    })
}

async fn notes(pool: &PgPool, id: i64) -> AppResult<Vec<Note>> {
    Ok(sqlx::query!(
        r#"SELECT id, author, text, at AS "at: Timestamp" FROM incident_notes WHERE incident_id = $1 ORDER BY at, id"#,
        id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| Note {
        id: r.id,
        author: r.author,
        text: r.text,
        at: r.at,
    })
    .collect())
}

/// Everything that happened in `[from, to]` that bears on the incident, oldest first.
async fn timeline(
    pool: &PgPool,
    i: &Incident,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<TimelineEvent>> {
    let rows = sqlx::query!(
        r#"
        SELECT at AS "at!", kind AS "kind!", host, text AS "text!" FROM (
            SELECT e.at, 'alert_' || e.status AS kind, e.host, e.rule_name || CASE WHEN e.summary = '' THEN '' ELSE ': ' || e.summary END AS text
              FROM alert_events e WHERE e.incident_id = $1
            UNION ALL
            SELECT x.at, CASE WHEN x.up THEN 'check_up' ELSE 'check_down' END, NULL,
                   x.name || CASE WHEN x.up THEN ' is up' ELSE ' is down' || coalesce(': ' || x.error, '') END
              FROM (SELECT r.at, r.up, r.error, c.name, lag(r.up) OVER (PARTITION BY r.check_id ORDER BY r.at) AS before
                      FROM health_results r JOIN health_checks c ON c.id = r.check_id
                     WHERE r.at >= $2::timestamptz - interval '15 minutes' AND r.at <= $3) x
             WHERE x.at >= $2 AND x.before IS DISTINCT FROM x.up AND x.before IS NOT NULL

            UNION ALL
            SELECT coalesce(r.finished_at, r.started_at), 'backup', NULL,
                   'backup of ' || t.name || ' (' || r.trigger || ') ' || r.status || coalesce(': ' || r.error, '')
              FROM backup_runs r JOIN backup_targets t ON t.id = r.target_id
             WHERE coalesce(r.finished_at, r.started_at) BETWEEN $2 AND $3
            UNION ALL
            SELECT coalesce(j.finished_at, j.started_at), 'restore', NULL,
                   'restore of ' || t.name || ' into ' || j.database_name || ' (' || j.mode || ') by ' || j.requested_by || ': ' || j.status
              FROM restore_jobs j JOIN backup_targets t ON t.id = j.target_id
             WHERE coalesce(j.finished_at, j.started_at) BETWEEN $2 AND $3
            UNION ALL
            SELECT a.ts, 'annotation', a.host, a.text || CASE WHEN cardinality(a.tags) > 0 THEN ' [' || array_to_string(a.tags, ', ') || ']' ELSE '' END
              FROM annotations a WHERE a.ts BETWEEN $2 AND $3 AND (a.host IS NULL OR a.host = ANY($4))
            UNION ALL
            SELECT l.at, 'sign_in', NULL, l.actor || ' (admin) signed in' || coalesce(' from ' || l.ip, '')
              FROM audit_log l JOIN users u ON u.username = l.actor AND u.role = 'admin'
             WHERE l.action = 'auth.login' AND l.success AND l.at BETWEEN $2 AND $3
        ) t ORDER BY at LIMIT 2000"#,
        i.id,
        from,
        to,
        &i.hosts
    )
    .fetch_all(pool)
    .await?;
    let mut events: Vec<TimelineEvent> = rows
        .into_iter()
        .map(|r| TimelineEvent {
            at: Timestamp(r.at),
            kind: r.kind,
            host: r.host,
            text: r.text,
        })
        .collect();
    events.extend(restarts(pool, &i.hosts, from, to).await?);
    events.sort_by_key(|e| e.at);
    events.truncate(2000);
    Ok(events)
}

/// The restarts of the watched processes on `hosts` in `[from, to]`, from the raw samples
/// (rows and compressed chunks alike) of `process_restarts`.
async fn restarts(
    pool: &PgPool,
    hosts: &[String],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<TimelineEvent>> {
    let series = sqlx::query!(
        "SELECT id, host, coalesce(labels->>'process', 'a process') AS \"process!\"
           FROM metric_series WHERE metric = 'process_restarts' AND host = ANY($1)",
        hosts
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<i32> = series.iter().map(|s| s.id).collect();
    let samples =
        crate::metrics::service::raw_samples(pool, &ids, from, to + Duration::microseconds(1))
            .await?;
    Ok(samples
        .into_iter()
        .filter(|s| s.2 > 0.0)
        .filter_map(|(id, at, _)| {
            let s = series.iter().find(|s| s.id == id)?;
            Some(TimelineEvent {
                at: Timestamp(at),
                kind: "process_restart".into(),
                host: Some(s.host.clone()),
                text: format!("{} restarted", s.process),
            })
        })
        .collect())
}

/// The logs around an incident: the busiest services of the window against the same window a
/// day and a week before, errors first seen in it, and its slowest requests. The analytics of
/// the services run side by side (each takes its turn at the heavy reads' gate) as summaries:
/// counts, the histogram's percentiles (within 0.5 %) and the slowest requests, no rankings.
async fn context(state: &AppState, from: OffsetDateTime, to: OffsetDateTime) -> AppResult<Context> {
    use crate::logs::analytics::StatsParams;
    let p = StatsParams {
        exact_percentiles: false,
        summary_only: true,
        ..StatsParams::default()
    };
    let services: Vec<String> = crate::logs::store::services(&state.pool)
        .await?
        .into_iter()
        .take(20)
        .collect();
    // Up to 5 services: their window and the same a day and a week before, all at once; more:
    // the window of each first, then the earlier ones of the 5 busiest.
    let few = services.len() <= 5;
    let earlier = |list: Vec<String>, back: Duration| {
        let p = p.clone();
        async move {
            match few || back.is_zero() {
                true => stats_of_each(state, &list, from, to, back, &p).await,
                false => Ok(vec![]),
            }
        }
    };
    let (now, day, week, new_errors) = tokio::try_join!(
        earlier(services.clone(), Duration::ZERO),
        earlier(services.clone(), Duration::days(1)),
        earlier(services.clone(), Duration::weeks(1)),
        async { new_errors(&mut *state.reads.heavy().await?, from, to, None).await },
    )?;
    let mut windows: Vec<ServiceWindows> = services
        .into_iter()
        .zip(now)
        .enumerate()
        .map(|(i, (service, now))| {
            let before = day.get(i).cloned().zip(week.get(i).cloned());
            (service, now, before)
        })
        .filter(|(_, s, _)| s.total > 0)
        .collect();
    windows.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
    windows.truncate(5);
    if !few {
        let busiest: Vec<String> = windows.iter().map(|w| w.0.clone()).collect();
        let (day, week) = tokio::try_join!(
            stats_of_each(state, &busiest, from, to, Duration::days(1), &p),
            stats_of_each(state, &busiest, from, to, Duration::weeks(1), &p),
        )?;
        for ((w, d), k) in windows.iter_mut().zip(day).zip(week) {
            w.2 = Some((d, k));
        }
    }
    let mut logs = vec![];
    let mut slow = vec![];
    for (service, now, before) in windows {
        let Some((day, week)) = before else { continue };
        let rate = |s: &LogStats| (s.total > 0).then_some(s.error_rate);
        slow.extend(now.slow_requests.iter().cloned());
        logs.push(LogWindow {
            lines: now.total,
            errors: now.errors,
            error_rate: now.error_rate,
            requests: now.requests,
            p95_seconds: now.response_time.p95,
            day_before_lines: day.total,
            day_before_error_rate: rate(&day),
            day_before_p95_seconds: day.response_time.p95,
            week_before_lines: week.total,
            week_before_error_rate: rate(&week),
            week_before_p95_seconds: week.response_time.p95,
            service,
        });
    }
    slow.sort_by(|a, b| b.duration.total_cmp(&a.duration));
    slow.truncate(10);
    Ok(Context {
        from: Timestamp(from),
        to: Timestamp(to),
        logs,
        new_errors,
        slow_requests: slow,
    })
}

/// A service, its analytics over the window, and over the same window a day and a week before.
type ServiceWindows = (String, LogStats, Option<(LogStats, LogStats)>);

/// The analytics of each service over `[from, to)` moved `back` in time, side by side, in the
/// order of `services`.
async fn stats_of_each(
    state: &AppState,
    services: &[String],
    from: OffsetDateTime,
    to: OffsetDateTime,
    back: Duration,
    p: &crate::logs::analytics::StatsParams,
) -> AppResult<Vec<LogStats>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, service) in services.iter().enumerate() {
        let (state, service, p) = (state.clone(), service.clone(), p.clone());
        set.spawn(async move {
            let s = crate::logs::analytics::stats(
                &state,
                "",
                Some(&service),
                from - back,
                to - back,
                &p,
            )
            .await;
            (i, s)
        });
    }
    let mut out: Vec<Option<LogStats>> = vec![None; services.len()];
    while let Some(r) = set.join_next().await {
        let (i, s) = r.map_err(|_| AppError::Internal)?;
        out[i] = Some(s?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Error messages (normalised) logged in `[from, to)` (by `service`, or any) and not once in
/// the 7 days before: the finished hours from their roll-ups (each keeps its most frequent
/// messages), the lines only of the hours not rolled up (the last, unfinished one at least).
pub async fn new_errors(
    conn: &mut PgConnection,
    from: OffsetDateTime,
    to: OffsetDateTime,
    service: Option<&str>,
) -> AppResult<Vec<NewError>> {
    let norm = crate::logs::analytics::NORMALISED_MESSAGE;
    let sql = format!(
        "WITH w AS (
            SELECT service, {norm} AS message, count(*)::bigint AS count FROM log_lines
             WHERE level >= 4 AND ts >= $1 AND ts < $2 AND ($3::text IS NULL OR service = $3)
             GROUP BY 1, 2
         ), seen AS (
            SELECT h.service, k.message
              FROM log_rollup_hours h CROSS JOIN LATERAL jsonb_object_keys(coalesce(h.data->'errors', '{{}}'::jsonb)) AS k(message)
             WHERE h.hour >= $1::timestamptz - interval '7 days' AND h.hour + interval '1 hour' <= $1
               AND h.hour IN (SELECT hour FROM log_rollup_hours_done)
               AND h.service IN (SELECT service FROM w)
            UNION
            SELECT l.service, {norm_l}
              FROM unnest($4::timestamptz[], $5::timestamptz[]) AS u(s, e)
              CROSS JOIN LATERAL (SELECT service, message FROM log_lines
                                   WHERE level >= 4 AND ts >= u.s AND ts < u.e
                                     AND service IN (SELECT service FROM w)) l
         )
         SELECT w.service, w.message, w.count FROM w
          WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.service = w.service AND s.message = w.message)
          ORDER BY w.count DESC, w.service, w.message LIMIT 20",
        norm_l = norm.replace("left(split_part(message", "left(split_part(l.message"),
    );
    // The hours of the week before that are not rolled up (the one `from` falls in at least),
    // as spans: only their lines are read.
    let undone: Vec<OffsetDateTime> = sqlx::query_scalar(
        "SELECT u.h FROM generate_series(date_bin('1 hour', $1::timestamptz - interval '7 days', '2000-01-01 00:00+00'),
                                         $1::timestamptz, interval '1 hour') AS u(h)
          WHERE NOT EXISTS (SELECT 1 FROM log_rollup_hours_done d
                             WHERE d.hour = u.h AND d.hour + interval '1 hour' <= $1)
          ORDER BY 1",
    )
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let (starts, ends) = hour_spans(&undone, from - Duration::days(7), from);
    Ok(sqlx::query_as::<_, NewError>(&sql)
        .bind(from)
        .bind(to)
        .bind(service)
        .bind(starts)
        .bind(ends)
        .fetch_all(conn)
        .await?)
}

/// Hour starts (sorted) as spans of consecutive hours, clipped to `[from, to)`. Pure.
fn hour_spans(
    hours: &[OffsetDateTime],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> (Vec<OffsetDateTime>, Vec<OffsetDateTime>) {
    let mut spans: Vec<(OffsetDateTime, OffsetDateTime)> = vec![];
    for &h in hours {
        match spans.last_mut() {
            Some(last) if last.1 == h => last.1 = h + Duration::HOUR,
            _ => spans.push((h, h + Duration::HOUR)),
        }
    }
    spans
        .into_iter()
        .map(|(s, e)| (s.max(from), e.min(to)))
        .filter(|(s, e)| s < e)
        .unzip()
}

/// The incident page's data: the detail, the CPU, memory and fullest disk of its hosts over the
/// window with the start and the annotations marked, and who it can be assigned to.
pub async fn page(ctx: &RequestCtx, id: i64) -> AppResult<IncidentPageData> {
    let user = ctx.require(Role::Viewer).await?;
    let state = &ctx.state;
    let detail = detail(state, id, OffsetDateTime::now_utc()).await?;
    let (from, to) = (*detail.context.from, *detail.context.to);
    let mut charts = vec![];
    for host in detail.incident.hosts.iter().take(5) {
        let c = crate::metrics::service::host_charts_of(
            state,
            host,
            (
                None,
                Some(&from.unix_timestamp().to_string()),
                Some(&to.unix_timestamp().to_string()),
            ),
            true,
        )
        .await;
        // A host that never reported (an alert on a check's host name) has no charts.
        let Ok(c) = c else { continue };
        for mut chart in c
            .charts
            .into_iter()
            .filter(|c| matches!(c.key.as_str(), "cpu" | "memory") || c.key.starts_with("disk:"))
        {
            chart.title = format!("{host} · {}", chart.title);
            chart.key = format!("{host}:{}", chart.key);
            chart.marks.insert(
                0,
                crate::metrics::ChartMark {
                    at: detail.incident.started_at.unix_timestamp(),
                    label: "incident start".into(),
                },
            );
            charts.push(chart);
        }
    }
    let users =
        sqlx::query_scalar!("SELECT username FROM users WHERE NOT disabled ORDER BY username")
            .fetch_all(&state.pool)
            .await?;
    Ok(IncidentPageData {
        detail,
        charts,
        users,
        can_act: user.can(Role::Operator),
    })
}

/// `ack`, `assign`, `note` or `close`, by an operator; audited.
pub async fn act(ctx: &RequestCtx, id: i64, action: &str, value: &str) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    act_by(&ctx.state.pool, id, action, value, &ctx.actor(&user)).await
}

pub async fn act_by(
    pool: &PgPool,
    id: i64,
    action: &str,
    value: &str,
    actor: &Actor<'_>,
) -> AppResult<()> {
    let value = value.trim();
    let changed = match action {
        "ack" => sqlx::query!(
            "UPDATE incidents SET acked_by = $2, acked_at = now() WHERE id = $1 AND acked_at IS NULL",
            id,
            actor.name
        )
        .execute(pool)
        .await?
        .rows_affected(),
        "assign" => {
            let assignee = (!value.is_empty()).then_some(value);
            if let Some(a) = assignee {
                if a.len() > 64 || has_control(a) {
                    return Err(AppError::bad_request("assignee: not a user name"));
                }
                let known = sqlx::query_scalar!(
                    r#"SELECT EXISTS (SELECT 1 FROM users WHERE username = $1 AND NOT disabled) AS "e!""#,
                    a
                )
                .fetch_one(pool)
                .await?;
                if !known {
                    return Err(AppError::bad_request(format!(
                        "assignee: no user `{}`",
                        crate::redact::clip(a, 64)
                    )));
                }
            }
            sqlx::query!("UPDATE incidents SET assignee = $2 WHERE id = $1", id, assignee)
                .execute(pool)
                .await?
                .rows_affected()
        }
        "publish" => {
            // The title the public status page shows while the incident is open; empty: not shown.
            if !value.is_empty() {
                check_text("title", value, 200)?;
            }
            sqlx::query!(
                "UPDATE incidents SET public_title = NULLIF($2, '') WHERE id = $1",
                id,
                value
            )
            .execute(pool)
            .await?
            .rows_affected()
        }
        "note" => {
            check_text("text", value, 10_000)?;
            sqlx::query!(
                "INSERT INTO incident_notes (incident_id, author, text) SELECT id, $2, $3 FROM incidents WHERE id = $1",
                id,
                actor.name,
                value
            )
            .execute(pool)
            .await?
            .rows_affected()
        }
        "close" => {
            check_text("summary", value, 20_000)?;
            sqlx::query!(
                "UPDATE incidents SET closed_by = $2, closed_at = now(), summary = $3 WHERE id = $1 AND closed_at IS NULL",
                id,
                actor.name,
                value
            )
            .execute(pool)
            .await?
            .rows_affected()
        }
        a => {
            return Err(AppError::bad_request(format!(
                "action `{}`: ack, assign, note, publish or close",
                crate::redact::clip(a, 40)
            )))
        }
    };
    if changed == 0 {
        // Nothing changed: say why (no such incident, or already acknowledged or closed).
        let i = get(pool, id).await?;
        return Err(AppError::conflict(match action {
            "ack" => format!(
                "incident {id} was already acknowledged by {}",
                i.acked_by.unwrap_or_default()
            ),
            _ => format!("incident {id} is already closed"),
        }));
    }
    crate::auth::service::audit(
        pool,
        Some(actor.name),
        &format!("incident.{action}"),
        Some(&format!("incident {id}")),
        true,
        actor.ip,
        serde_json::json!({ "value": matches!(action, "assign" | "publish").then_some(value) }),
    )
    .await
}

fn check_text(field: &str, value: &str, max: usize) -> AppResult<()> {
    if value.is_empty() {
        return Err(AppError::bad_request(format!("{field}: write something")));
    }
    if value.chars().count() > max {
        return Err(AppError::bad_request(format!(
            "{field}: at most {max} characters"
        )));
    }
    if has_control(value) {
        return Err(AppError::bad_request(format!(
            "{field}: control characters are not text"
        )));
    }
    Ok(())
}

/// Control characters other than line breaks and tabs (PostgreSQL refuses NUL in text).
fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// The post-mortem of an incident in Markdown.
pub async fn postmortem(state: &AppState, id: i64) -> AppResult<String> {
    let now = OffsetDateTime::now_utc();
    Ok(model::postmortem(&detail(state, id, now).await?, now))
}

// ---- annotations ----

/// A new annotation as posted: `{"text","tags"?,"host"?,"ts"?}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAnnotation {
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The host it belongs to; absent: every host.
    #[serde(default)]
    pub host: Option<String>,
    /// When (RFC 3339); absent: now.
    #[serde(default)]
    pub ts: Option<Timestamp>,
}

/// Checks an annotation: text 1–1,000 characters, at most 10 tags of 1–64 characters, a host
/// name of at most 255, a time no more than a day ahead. Pure.
pub fn check_annotation(a: &NewAnnotation, now: OffsetDateTime) -> Result<(), String> {
    let text = a.text.trim();
    if text.is_empty() || text.chars().count() > 1000 || has_control(text) {
        return Err("text: 1 to 1000 characters of text".into());
    }
    if a.tags.len() > 10 {
        return Err("tags: at most 10".into());
    }
    if let Some(t) = a
        .tags
        .iter()
        .find(|t| t.trim().is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control))
    {
        return Err(format!(
            "tags: `{}` must be 1 to 64 characters",
            crate::redact::clip(t, 70)
        ));
    }
    if let Some(h) = &a.host {
        if h.trim().is_empty() || h.len() > 255 || h.chars().any(char::is_control) {
            return Err("host: a host name of 1 to 255 characters".into());
        }
    }
    if a.ts.is_some_and(|t| *t > now + Duration::days(1)) {
        return Err("ts: more than a day in the future".into());
    }
    Ok(())
}

pub async fn add_annotation(pool: &PgPool, a: &NewAnnotation, by: &str) -> AppResult<i64> {
    let now = OffsetDateTime::now_utc();
    check_annotation(a, now).map_err(AppError::bad_request)?;
    let tags: Vec<String> = a.tags.iter().map(|t| t.trim().to_string()).collect();
    Ok(sqlx::query_scalar!(
        "INSERT INTO annotations (ts, text, tags, host, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        a.ts.map(|t| *t).unwrap_or(now),
        a.text.trim(),
        &tags,
        a.host.as_deref().map(str::trim),
        by
    )
    .fetch_one(pool)
    .await?)
}

/// Annotations in `[from, to]`, of `host` (and those of every host) when given, oldest first.
pub async fn annotations(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
    host: Option<&str>,
) -> AppResult<Vec<Annotation>> {
    Ok(sqlx::query!(
        r#"SELECT id, ts AS "ts: Timestamp", text, tags, host, created_by FROM annotations
           WHERE ts BETWEEN $1 AND $2 AND ($3::text IS NULL OR host IS NULL OR host = $3)
           ORDER BY ts, id LIMIT 1000"#,
        from,
        to,
        host
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| Annotation {
        id: r.id,
        ts: r.ts,
        text: r.text,
        tags: r.tags,
        host: r.host,
        created_by: r.created_by,
    })
    .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hours_make_spans() {
        use time::macros::datetime;
        let h = |n: i64| datetime!(2026-12-01 00:00 UTC) + Duration::hours(n);
        let (from, to) = (h(1) + Duration::minutes(30), h(6) + Duration::minutes(10));
        let (s, e) = hour_spans(&[h(0), h(1), h(2), h(4), h(6), h(7)], from, to);
        assert_eq!(s, [from, h(4), h(6)]);
        assert_eq!(e, [h(3), h(5), to]);
        assert_eq!(hour_spans(&[], from, to), (vec![], vec![]));
    }

    use super::*;
    use time::macros::datetime;

    #[test]
    fn annotations_are_checked_before_they_are_stored() {
        let now = datetime!(2026-12-01 10:00 UTC);
        let a = |text: &str, tags: &[&str], host: Option<&str>, ts: Option<OffsetDateTime>| {
            NewAnnotation {
                text: text.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                host: host.map(str::to_string),
                ts: ts.map(Timestamp),
            }
        };
        let long = "x".repeat(1001);
        let table: Vec<(NewAnnotation, Option<&str>)> = vec![
            (a("deploy 1.4.2", &["deploy"], Some("web-1"), None), None),
            (a("deploy", &[], None, Some(now - Duration::days(3))), None),
            (a("  ", &[], None, None), Some("text")),
            (a(&long, &[], None, None), Some("text")),
            (a("x", &["ok", ""], None, None), Some("tags")),
            (a("x", &["a"; 11], None, None), Some("tags")),
            (a("x\u{0}y", &[], None, None), Some("text")),
            (a("x", &["a\u{0}"], None, None), Some("tags")),
            (a("x", &[], Some(""), None), Some("host")),
            (a("x", &[], Some("a\nb"), None), Some("host")),
            (a("x", &[], None, Some(now + Duration::days(2))), Some("ts")),
        ];
        for (ann, want) in table {
            let got = check_annotation(&ann, now);
            match want {
                None => assert!(got.is_ok(), "{ann:?}: {got:?}"),
                Some(field) => assert!(
                    got.as_ref().is_err_and(|e| e.starts_with(field)),
                    "{ann:?}: {got:?}"
                ),
            }
        }
    }
}
