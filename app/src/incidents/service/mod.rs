//! Incidents in the database: opened and joined as alerts fire (in the evaluation round's
//! transaction), listed, told as a timeline with their context (`context`), acted on; and
//! annotations (`annotations`).

mod annotations;
mod context;

pub use annotations::{add_annotation, annotations, check_annotation, NewAnnotation};
pub use context::new_errors;
use context::{context, timeline};

use super::model::{self, Candidate};
use super::{Incident, IncidentDetail, IncidentPageData, Note, TimelineEvent};
use crate::alerts::{AlertStatus, Severity};
use crate::auth::service::{Actor, RequestCtx};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
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
    // Each arm checks its value and names its statement; the statement runs once, below.
    let statement = match action {
        "ack" => sqlx::query!(
            "UPDATE incidents SET acked_by = $2, acked_at = now() WHERE id = $1 AND acked_at IS NULL",
            id,
            actor.name
        ),
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
        }
        "note" => {
            check_text("text", value, 10_000)?;
            sqlx::query!(
                "INSERT INTO incident_notes (incident_id, author, text) SELECT id, $2, $3 FROM incidents WHERE id = $1",
                id,
                actor.name,
                value
            )
        }
        "close" => {
            check_text("summary", value, 20_000)?;
            sqlx::query!(
                "UPDATE incidents SET closed_by = $2, closed_at = now(), summary = $3 WHERE id = $1 AND closed_at IS NULL",
                id,
                actor.name,
                value
            )
        }
        a => {
            return Err(AppError::bad_request(format!(
                "action `{}`: ack, assign, note, publish or close",
                crate::redact::clip(a, 40)
            )))
        }
    };
    let changed = statement.execute(pool).await?.rows_affected();
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
