//! What the Alerts page and the Overview show: what fires, the rules, channels and history.

use super::*;
use crate::timestamp::Timestamp;

pub async fn overview(pool: &PgPool, history: i64) -> AppResult<AlertsOverview> {
    let silences = active_silences(pool).await?;
    let rows: Vec<(i64, String, sqlx::types::Json<RuleSpec>, String, Option<String>, String, OffsetDateTime, Option<f64>, String, Option<String>)> =
        sqlx::query_as(
            "SELECT s.rule_id, r.name, r.spec, s.instance, s.host, s.phase, s.since, s.value, s.summary, s.acked_by
             FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
             WHERE s.phase <> 'ok'
             ORDER BY s.phase = 'firing' DESC, r.spec->>'severity' = 'critical' DESC, s.since",
        )
        .fetch_all(pool)
        .await?;
    let active = rows
        .into_iter()
        .map(
            |(rule_id, rule, spec, instance, host, phase, since, value, summary, acked_by)| {
                ActiveAlert {
                    silenced: silences.iter().any(|s| s.covers(rule_id, host.as_deref())),
                    rule_id,
                    rule,
                    kind: spec.0.kind.clone(),
                    severity: spec.0.severity.clone().unwrap_or_else(|| "warning".into()),
                    instance,
                    host,
                    status: phase,
                    since: Timestamp(since),
                    value,
                    summary,
                    acked_by,
                }
            },
        )
        .collect();
    let history = sqlx::query_as::<
        _,
        (
            i64,
            String,
            String,
            Option<String>,
            String,
            Option<f64>,
            String,
            bool,
            OffsetDateTime,
        ),
    >(
        "SELECT id, rule_name, instance, host, status, value, summary, silenced, at
         FROM alert_events ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(history)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(
        |(id, rule, instance, host, status, value, summary, silenced, at)| AlertEvent {
            id,
            rule,
            instance,
            host,
            status,
            value,
            summary,
            silenced,
            at: Timestamp(at),
        },
    )
    .collect();
    let silences = sqlx::query_as::<
        _,
        (
            i64,
            Option<String>,
            Option<String>,
            OffsetDateTime,
            String,
            String,
        ),
    >(
        "SELECT s.id, r.name, s.host, s.ends_at, s.comment, s.created_by
         FROM alert_silences s LEFT JOIN alert_rules r ON r.id = s.rule_id
         WHERE s.ends_at > now() ORDER BY s.ends_at",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(
        |(id, rule, host, ends_at, comment, created_by)| SilenceInfo {
            id,
            rule,
            host,
            ends_at: Timestamp(ends_at),
            comment,
            created_by,
        },
    )
    .collect();
    Ok(AlertsOverview {
        active,
        history,
        silences,
    })
}

pub async fn page_data(state: &AppState, role: Role) -> AppResult<AlertsPageData> {
    let pool = &state.pool;
    let last_evaluated: Option<OffsetDateTime> =
        sqlx::query_scalar("SELECT last_finish FROM job_runs WHERE name = 'alerts'")
            .fetch_optional(pool)
            .await?
            .flatten();
    Ok(AlertsPageData {
        overview: overview(pool, 100).await?,
        rules: list_rules(pool).await?,
        channels: if role >= Role::Admin {
            list_channels(pool).await?
        } else {
            vec![]
        },
        can_edit: role >= Role::Operator,
        is_admin: role >= Role::Admin,
        interval_seconds: state.config.alert_interval.secs(),
        last_evaluated: last_evaluated.map(Timestamp),
        smtp_configured: state.config.smtp_url.is_some(),
    })
}

pub async fn wrong(pool: &PgPool) -> AppResult<Wrong> {
    let o = overview(pool, 0).await?;
    let checks: Vec<(String, Option<bool>)> =
        sqlx::query_as("SELECT name, up FROM health_checks ORDER BY name")
            .fetch_all(pool)
            .await?;
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_rules WHERE enabled")
        .fetch_one(pool)
        .await?;
    Ok(Wrong {
        pending: o.active.iter().filter(|a| a.status == "pending").count(),
        firing: o
            .active
            .into_iter()
            .filter(|a| a.status == "firing")
            .collect(),
        checks_down: checks
            .iter()
            .filter(|c| c.1 == Some(false))
            .map(|c| c.0.clone())
            .collect(),
        checks_total: checks.len(),
        rules: rules as usize,
    })
}
