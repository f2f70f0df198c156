//! What the Alerts page and the Overview show: what fires, the rules, channels and history.

use super::*;
use crate::timestamp::Timestamp;

pub async fn overview(pool: &PgPool, history: i64) -> AppResult<AlertsOverview> {
    let silences = active_silences(pool).await?;
    let windows = active_windows(pool, time::OffsetDateTime::now_utc()).await?;
    let rows = sqlx::query!(
        r#"SELECT s.rule_id, r.name, r.spec AS "spec: sqlx::types::Json<RuleSpec>", s.instance,
                  s.host, s.phase AS "phase: Phase", s.since, s.value, s.summary, s.acked_by
           FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
           WHERE s.phase <> 'ok'
           ORDER BY s.phase = 'firing' DESC, r.spec->>'severity' = 'critical' DESC, s.since"#
    )
    .fetch_all(pool)
    .await?;
    let active = rows
        .into_iter()
        .map(|r| ActiveAlert {
            silenced: silences
                .iter()
                .any(|s| s.covers(r.rule_id, r.host.as_deref())),
            maintenance: window_of(
                &windows,
                &r.name,
                &r.spec.0.kind,
                &r.instance,
                r.host.as_deref(),
            )
            .map(|w| w.name.clone()),
            rule_id: r.rule_id,
            rule: r.name,
            kind: r.spec.0.kind.clone(),
            severity: r.spec.0.severity.unwrap_or_default(),
            instance: r.instance,
            host: r.host,
            status: if r.phase == Phase::Firing {
                AlertStatus::Firing
            } else {
                AlertStatus::Pending
            },
            since: Timestamp(r.since),
            value: r.value,
            summary: r.summary,
            acked_by: r.acked_by,
        })
        .collect();
    let history = sqlx::query_as!(
        AlertEvent,
        r#"SELECT id, rule_name AS rule, instance, host, status AS "status: AlertStatus", value,
                  summary, silenced, at AS "at: Timestamp"
           FROM alert_events ORDER BY at DESC, id DESC LIMIT $1"#,
        history
    )
    .fetch_all(pool)
    .await?;
    let silences = sqlx::query_as!(
        SilenceInfo,
        r#"SELECT s.id, r.name AS "rule?", s.host, s.ends_at AS "ends_at: Timestamp", s.comment,
                  s.created_by
           FROM alert_silences s LEFT JOIN alert_rules r ON r.id = s.rule_id
           WHERE s.ends_at > now() ORDER BY s.ends_at"#
    )
    .fetch_all(pool)
    .await?;
    Ok(AlertsOverview {
        active,
        history,
        silences,
    })
}

pub async fn page_data(state: &AppState, role: Role) -> AppResult<AlertsPageData> {
    let pool = &state.pool;
    let last_evaluated: Option<OffsetDateTime> =
        sqlx::query_scalar!("SELECT last_finish FROM job_runs WHERE name = 'alerts'")
            .fetch_optional(pool)
            .await?
            .flatten();
    let maintenance = list_windows(pool, time::OffsetDateTime::now_utc())
        .await?
        .into_iter()
        .map(|w| crate::alerts::maintenance_view::WindowRow {
            what: crate::alerts::maintenance_view::scope(w.host.as_deref(), &w.checks, &w.rules),
            when: crate::alerts::maintenance::when(&w),
            id: w.id,
            name: w.name,
            active: w.active,
            created_by: w.created_by,
        })
        .collect();
    Ok(AlertsPageData {
        maintenance,
        notifications: if role >= Role::Operator {
            notification_log(pool, OffsetDateTime::now_utc(), 30).await?
        } else {
            vec![]
        },
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
        sqlx::query!("SELECT name, up FROM health_checks ORDER BY name")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| (r.name, r.up))
            .collect();
    let rules: i64 =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM alert_rules WHERE enabled"#)
            .fetch_one(pool)
            .await?;
    Ok(Wrong {
        pending: o
            .active
            .iter()
            .filter(|a| a.status == AlertStatus::Pending)
            .count(),
        firing: o
            .active
            .into_iter()
            .filter(|a| a.status == AlertStatus::Firing)
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
