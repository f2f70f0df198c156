//! Alerts in the database: rules, channels, silences and checks; one evaluation round over
//! every rule (batched: one query per kind of data, one write per table); the notification
//! queue; health-check results.

// Row tuples mirror their SELECT lists, next to them, which reads better than a named alias each.
#![allow(clippy::type_complexity)]

use super::machine::{self, classify, Event, Phase, Reading, State, Timing};
use super::rules::{self, Kind, LogCondition, Notice, Rule, RuleSpec};
use super::{
    ActiveAlert, AlertEvent, AlertsOverview, AlertsPageData, ChannelInfo, CheckInfo, NewChannel,
    NewCheck, RuleInfo, SilenceInfo, Wrong,
};
use crate::auth::service::audit;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::metrics::Chart;
use crate::state::AppState;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use time::{Duration, OffsetDateTime};

/// A firing alert whose data stopped this long ago resolves.
pub const STALE_AFTER: Duration = Duration::minutes(10);
/// Forecast rules are evaluated at most this often (a forecast moves slowly, and costs).
pub const FORECAST_EVERY: Duration = Duration::minutes(10);
/// Metric values older than this are no data.
pub const METRIC_FRESH: Duration = Duration::minutes(5);

fn unprocessable(e: String) -> AppError {
    AppError::Unprocessable(e)
}

/// Records in the audit log what `actor` did (successfully) to `target`.
async fn done(
    pool: &PgPool,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> AppResult<()> {
    audit(pool, Some(actor), action, Some(target), true, None, detail).await
}

/// Deletes the row `id` of `table` (which has a `name`), audited as `action`; 404 names `what`.
async fn delete_named(
    pool: &PgPool,
    table: &str,
    id: i64,
    what: &str,
    action: &str,
    actor: &str,
) -> AppResult<()> {
    let name: Option<String> =
        sqlx::query_scalar(&format!("DELETE FROM {table} WHERE id = $1 RETURNING name"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let name = name.ok_or_else(|| AppError::not_found(format!("no {what} {id}")))?;
    done(pool, actor, action, &name, serde_json::json!({})).await
}

// ---------------------------------------------------------------- seeding

/// On a new installation: the runbook's rules and a health check of Opsdeck's own `/health`.
/// Runs once per database (a marker row in `job_runs`), so deleting a default keeps it deleted.
pub async fn seed(pool: &PgPool, own_health_url: &str) -> AppResult<bool> {
    let mut tx = pool.begin().await?;
    let first: Option<bool> = sqlx::query_scalar(
        "INSERT INTO job_runs (name, last_start) VALUES ('alerts_seeded', now())
         ON CONFLICT (name) DO NOTHING RETURNING true",
    )
    .fetch_optional(&mut *tx)
    .await?;
    if first.is_none() {
        return Ok(false);
    }
    for spec in rules::defaults() {
        let kind = spec.kind.clone();
        sqlx::query(
            "INSERT INTO alert_rules (name, kind, spec, builtin) VALUES ($1, $2, $3, true)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&spec.name)
        .bind(kind)
        .bind(sqlx::types::Json(&spec))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO health_checks (name, url, interval_seconds, timeout_seconds, expected_body, builtin)
         VALUES ('opsdeck', $1, 30, 5, '\"status\":\"ok\"', true) ON CONFLICT (name) DO NOTHING",
    )
    .bind(own_health_url)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

// ---------------------------------------------------------------- rules

pub fn describe(spec: &RuleSpec) -> String {
    let mut s = match spec.kind.as_str() {
        "metric" => format!(
            "{} {} {}{} on {}",
            spec.metric.as_deref().unwrap_or("?"),
            spec.op.as_deref().unwrap_or(">"),
            fmt_num(spec.threshold.unwrap_or(0.0)),
            spec.clear_threshold
                .map(|c| format!(" (clears at {})", fmt_num(c)))
                .unwrap_or_default(),
            spec.host.as_deref().unwrap_or("*")
        ),
        "health" => format!("check {} down", spec.check.as_deref().unwrap_or("*")),
        "log" => {
            let what = match spec.condition.as_deref() {
                Some("error_rate") => {
                    format!("error rate > {} %", fmt_num(spec.threshold.unwrap_or(0.0)))
                }
                Some("avg_response_time") => format!(
                    "average response time > {} s",
                    fmt_num(spec.threshold.unwrap_or(0.0))
                ),
                _ => format!(
                    "`{}` matches {} {}",
                    spec.query.as_deref().unwrap_or(""),
                    spec.op.as_deref().unwrap_or(">"),
                    fmt_num(spec.threshold.unwrap_or(0.0))
                ),
            };
            format!(
                "{what} over {} in {}",
                rules::human_secs(spec.window_seconds.unwrap_or(300)),
                spec.service.as_deref().unwrap_or("every service")
            )
        }
        "forecast" => format!(
            "{} expected at 80 % within {} days on {}",
            spec.metric.as_deref().unwrap_or("any resource"),
            fmt_num(spec.days.or(spec.threshold).unwrap_or(0.0)),
            spec.host.as_deref().unwrap_or("*")
        ),
        "backup" => format!(
            "no {}backup of {} for {} h",
            if spec.verified == Some(true) {
                "test-restored "
            } else {
                "successful "
            },
            spec.target.as_deref().unwrap_or("any target"),
            fmt_num(spec.hours.or(spec.threshold).unwrap_or(0.0))
        ),
        k => k.to_string(),
    };
    if spec.for_seconds > 0 {
        s.push_str(&format!(" for {}", rules::human_secs(spec.for_seconds)));
    }
    s
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Adds a rule, or replaces the one with the same name.
pub async fn upsert_rule(pool: &PgPool, spec: &RuleSpec, actor: &str) -> AppResult<i64> {
    rules::validate(spec).map_err(unprocessable)?;
    let known: Vec<String> = sqlx::query_scalar("SELECT name FROM alert_channels")
        .fetch_all(pool)
        .await?;
    if let Some(c) = spec.notify.iter().find(|c| !known.contains(c)) {
        return Err(AppError::unprocessable(format!(
            "notify: no channel named `{c}` (add it first under Channels)"
        )));
    }
    if spec.kind == "health" {
        let c = spec.check.as_deref().unwrap_or("*");
        if c != "*" {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM health_checks WHERE name = $1)")
                    .bind(c)
                    .fetch_one(pool)
                    .await?;
            if !exists {
                return Err(AppError::unprocessable(format!(
                    "check: no health check named `{c}`"
                )));
            }
        }
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO alert_rules (name, kind, spec, enabled) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, spec = excluded.spec,
             enabled = excluded.enabled, updated_at = now()
         RETURNING id",
    )
    .bind(spec.name.trim())
    .bind(&spec.kind)
    .bind(sqlx::types::Json(spec))
    .bind(spec.enabled)
    .fetch_one(pool)
    .await?;
    // A changed rule starts over: its old states no longer mean anything.
    sqlx::query("DELETE FROM alert_states WHERE rule_id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    done(
        pool,
        actor,
        "alert_rule.save",
        &spec.name,
        serde_json::json!({"kind": spec.kind}),
    )
    .await?;
    Ok(id)
}

pub async fn list_rules(pool: &PgPool) -> AppResult<Vec<RuleInfo>> {
    let rows: Vec<(i64, sqlx::types::Json<RuleSpec>, bool, bool, i64, i64)> = sqlx::query_as(
        "SELECT r.id, r.spec, r.enabled, r.builtin,
                count(*) FILTER (WHERE s.phase = 'firing'), count(*) FILTER (WHERE s.phase = 'pending')
         FROM alert_rules r LEFT JOIN alert_states s ON s.rule_id = r.id
         GROUP BY r.id ORDER BY r.builtin DESC, r.name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, spec, enabled, builtin, firing, pending)| {
            let mut spec = spec.0;
            spec.enabled = enabled;
            RuleInfo {
                id,
                describe: describe(&spec),
                spec,
                builtin,
                firing,
                pending,
            }
        })
        .collect())
}

/// `enable`, `disable` or `delete` a rule.
pub async fn rule_action(pool: &PgPool, id: i64, action: &str, actor: &str) -> AppResult<()> {
    let q = match action {
        "enable" => "UPDATE alert_rules SET enabled = true, updated_at = now() WHERE id = $1 RETURNING name",
        "disable" => "UPDATE alert_rules SET enabled = false, updated_at = now() WHERE id = $1 RETURNING name",
        "delete" => "DELETE FROM alert_rules WHERE id = $1 RETURNING name",
        a => {
            return Err(AppError::bad_request(format!(
                "action `{a}`: enable, disable or delete"
            )))
        }
    };
    let name: Option<String> = sqlx::query_scalar(q).bind(id).fetch_optional(pool).await?;
    let name = name.ok_or_else(|| AppError::not_found(format!("no alert rule {id}")))?;
    if action == "disable" {
        sqlx::query("DELETE FROM alert_states WHERE rule_id = $1")
            .bind(id)
            .execute(pool)
            .await?;
    }
    done(
        pool,
        actor,
        &format!("alert_rule.{action}"),
        &name,
        serde_json::json!({}),
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- channels

pub async fn upsert_channel(pool: &PgPool, c: &NewChannel, actor: &str) -> AppResult<i64> {
    let format = rules::validate_channel(c).map_err(unprocessable)?;
    let target = c.url.clone().or_else(|| c.to.clone()).unwrap_or_default();
    let id = sqlx::query_scalar(
        "INSERT INTO alert_channels (name, kind, target, format) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, target = excluded.target, format = excluded.format
         RETURNING id",
    )
    .bind(c.name.trim())
    .bind(&c.kind)
    .bind(target.trim())
    .bind(format)
    .fetch_one(pool)
    .await?;
    // The URL may hold a token: the audit log names the channel only.
    done(
        pool,
        actor,
        "alert_channel.save",
        &c.name,
        serde_json::json!({"kind": c.kind}),
    )
    .await?;
    Ok(id)
}

pub async fn list_channels(pool: &PgPool) -> AppResult<Vec<ChannelInfo>> {
    let rows: Vec<(
        i64,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    )> = sqlx::query_as(
        "SELECT c.id, c.name, c.kind, c.target, c.format, n.status, n.last_error
             FROM alert_channels c
             LEFT JOIN LATERAL (SELECT status, last_error FROM alert_notifications
                                WHERE channel_id = c.id ORDER BY id DESC LIMIT 1) n ON true
             ORDER BY c.name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, kind, target, format, last_status, last_error)| ChannelInfo {
                id,
                url: (kind == "webhook").then(|| crate::redact::webhook(&target)),
                to: (kind == "email").then(|| target.clone()),
                name,
                kind,
                format,
                last_status,
                last_error: last_error.map(|e| crate::redact::text(&e)),
            },
        )
        .collect())
}

pub async fn delete_channel(pool: &PgPool, id: i64, actor: &str) -> AppResult<()> {
    delete_named(
        pool,
        "alert_channels",
        id,
        "channel",
        "alert_channel.delete",
        actor,
    )
    .await
}

/// Queues a test notification to a channel; returns the notification's id.
pub async fn test_channel(pool: &PgPool, id: i64, actor: &str) -> AppResult<i64> {
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM alert_channels WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let name = name.ok_or_else(|| AppError::not_found(format!("no channel {id}")))?;
    let notice = Notice {
        rule: "Test notification".into(),
        status: "test".into(),
        host: None,
        value: None,
        at: OffsetDateTime::now_utc(),
        severity: "warning".into(),
        kind: "test".into(),
        instance: name.clone(),
        summary: format!("{actor} sent a test from Opsdeck to the channel `{name}`."),
        reminder: false,
        url: None,
    };
    let nid = sqlx::query_scalar(
        "INSERT INTO alert_notifications (channel_id, body) VALUES ($1, $2) RETURNING id",
    )
    .bind(id)
    .bind(sqlx::types::Json(&notice))
    .fetch_one(pool)
    .await?;
    Ok(nid)
}

// ---------------------------------------------------------------- silences and acks

/// `ack` a firing instance, or `silence` its rule on its host for an hour.
pub async fn instance_action(
    pool: &PgPool,
    rule_id: i64,
    instance: &str,
    action: &str,
    actor: &str,
) -> AppResult<()> {
    let row: Option<(Option<String>, String)> = sqlx::query_as(
        "SELECT s.host, r.name FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
         WHERE s.rule_id = $1 AND s.instance = $2",
    )
    .bind(rule_id)
    .bind(instance)
    .fetch_optional(pool)
    .await?;
    let (host, rule) = row.ok_or_else(|| {
        AppError::not_found(format!(
            "no pending or firing alert `{instance}` for rule {rule_id}"
        ))
    })?;
    match action {
        "ack" => {
            sqlx::query(
                "UPDATE alert_states SET acked_by = $3, acked_at = now() WHERE rule_id = $1 AND instance = $2",
            )
            .bind(rule_id)
            .bind(instance)
            .bind(actor)
            .execute(pool)
            .await?;
        }
        "silence" => {
            add_silence(
                pool,
                Some(rule_id),
                host.as_deref(),
                Duration::hours(1),
                "",
                actor,
            )
            .await?;
        }
        a => {
            return Err(AppError::bad_request(format!(
                "action `{a}`: ack or silence"
            )))
        }
    }
    done(
        pool,
        actor,
        &format!("alert.{action}"),
        &format!("{rule} / {instance}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(())
}

pub async fn add_silence(
    pool: &PgPool,
    rule_id: Option<i64>,
    host: Option<&str>,
    length: Duration,
    comment: &str,
    actor: &str,
) -> AppResult<i64> {
    if length <= Duration::ZERO || length > Duration::days(90) {
        return Err(AppError::unprocessable(
            "a silence lasts between a minute and 90 days",
        ));
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO alert_silences (rule_id, host, ends_at, comment, created_by)
         VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5) RETURNING id",
    )
    .bind(rule_id)
    .bind(host)
    .bind(length.as_seconds_f64())
    .bind(comment)
    .bind(actor)
    .fetch_one(pool)
    .await?)
}

pub async fn end_silence(pool: &PgPool, id: i64, actor: &str) -> AppResult<()> {
    let n =
        sqlx::query("UPDATE alert_silences SET ends_at = now() WHERE id = $1 AND ends_at > now()")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(AppError::not_found(format!("no active silence {id}")));
    }
    done(
        pool,
        actor,
        "alert_silence.end",
        &id.to_string(),
        serde_json::json!({}),
    )
    .await?;
    Ok(())
}

struct Silence {
    rule_id: Option<i64>,
    host: Option<String>,
}

impl Silence {
    fn covers(&self, rule_id: i64, host: Option<&str>) -> bool {
        self.rule_id.is_none_or(|r| r == rule_id)
            && match (&self.host, host) {
                (None, _) => true,
                (Some(p), Some(h)) => rules::glob(p, h),
                (Some(p), None) => p == "*",
            }
    }
}

async fn active_silences(pool: &PgPool) -> AppResult<Vec<Silence>> {
    let rows: Vec<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT rule_id, host FROM alert_silences WHERE ends_at > now()")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(rule_id, host)| Silence { rule_id, host })
        .collect())
}

// ---------------------------------------------------------------- the overview

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
                    since,
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
            at,
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
            ends_at,
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
        last_evaluated,
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

// ---------------------------------------------------------------- evaluation

/// What one rule instance read this round.
struct Observation {
    rule: usize,
    instance: String,
    host: Option<String>,
    value: Option<f64>,
    reading: Reading,
    summary: String,
}

/// What a round did.
#[derive(Debug, Default, serde::Serialize)]
pub struct EvalReport {
    pub rules: usize,
    pub instances: usize,
    pub firing: usize,
    pub pending: usize,
    pub events: usize,
    pub notifications: usize,
    /// Rules that could not be evaluated, with the reason.
    pub errors: Vec<String>,
}

struct Loaded {
    id: i64,
    name: String,
    spec: RuleSpec,
    rule: Rule,
    skip: bool,
}

fn threshold_summary(what: &str, value: f64, r: &Rule, unit: &str) -> String {
    format!(
        "{what} is {}{unit} ({} {}{unit})",
        fmt_value(value),
        r.op.as_str(),
        fmt_num(r.threshold)
    )
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn instance_name(host: &str, metric: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        format!("{host} {metric}")
    } else {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{host} {metric}{{{}}}", l.join(","))
    }
}

/// One round: reads what every enabled rule looks at, steps each instance's state machine,
/// writes the states, records firings and resolutions, and queues their notifications.
pub async fn evaluate(pool: &PgPool, now: OffsetDateTime) -> AppResult<EvalReport> {
    let mut report = EvalReport::default();
    let raw: Vec<(
        i64,
        String,
        sqlx::types::Json<RuleSpec>,
        Option<OffsetDateTime>,
    )> = sqlx::query_as(
        "SELECT id, name, spec, last_evaluated_at FROM alert_rules WHERE enabled ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let mut loaded = vec![];
    for (id, name, spec, last) in raw {
        match rules::validate(&spec.0) {
            Ok(rule) => loaded.push(Loaded {
                skip: rule.kind == Kind::Forecast && last.is_some_and(|l| now - l < FORECAST_EVERY),
                id,
                name,
                spec: spec.0,
                rule,
            }),
            Err(e) => report.errors.push(format!("{name}: {e}")),
        }
    }
    report.rules = loaded.len();
    let mut obs: Vec<Observation> = vec![];
    metric_observations(pool, &loaded, now, &mut obs).await?;
    health_observations(pool, &loaded, &mut obs).await?;
    if let Err(e) = log_observations(pool, &loaded, now, &mut obs).await {
        report.errors.push(format!("log rules: {e}"));
    }
    if let Err(e) = forecast_observations(pool, &loaded, now, &mut obs).await {
        report.errors.push(format!("forecast rules: {e}"));
    }
    backup_observations(pool, &loaded, now, &mut obs).await?;

    // The states of these rules; instances without an observation read as no data.
    let ids: Vec<i64> = loaded.iter().map(|l| l.id).collect();
    let index: HashMap<i64, usize> = loaded.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    let rows: Vec<(i64, String, Option<String>, String, OffsetDateTime, Option<OffsetDateTime>, OffsetDateTime, bool, Option<f64>, String)> =
        sqlx::query_as(
            "SELECT rule_id, instance, host, phase, since, notified_at, seen_at, acked_at IS NOT NULL, value, summary
             FROM alert_states WHERE rule_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    let mut states: HashMap<(usize, String), (State, Option<String>, Option<f64>, String)> =
        HashMap::with_capacity(rows.len());
    for (rule_id, instance, host, phase, since, notified_at, seen_at, acked, value, summary) in rows
    {
        if let Some(&i) = index.get(&rule_id) {
            states.insert(
                (i, instance),
                (
                    State {
                        phase: Phase::parse(&phase),
                        since,
                        notified_at,
                        acked,
                        seen_at,
                    },
                    host,
                    value,
                    summary,
                ),
            );
        }
    }
    let seen: HashSet<(usize, String)> = obs.iter().map(|o| (o.rule, o.instance.clone())).collect();
    for ((i, instance), (_, host, value, summary)) in &states {
        if !seen.contains(&(*i, instance.clone())) && !loaded[*i].skip {
            obs.push(Observation {
                rule: *i,
                instance: instance.clone(),
                host: host.clone(),
                value: *value,
                reading: Reading::NoData,
                summary: summary.clone(),
            });
        }
    }
    report.instances = obs.len();

    let silences = active_silences(pool).await?;
    // Columns of the writes.
    let mut keep = StateRows::default();
    let mut gone: (Vec<i64>, Vec<String>) = (vec![], vec![]);
    let mut events = EventRows::default();
    let mut reminders: Vec<(usize, Notice)> = vec![];
    for o in obs {
        let l = &loaded[o.rule];
        let key = (o.rule, o.instance.clone());
        let had_row = states.contains_key(&key);
        let prev = states
            .remove(&key)
            .map(|s| s.0)
            .unwrap_or_else(|| State::new(now));
        let timing = Timing {
            for_duration: l.rule.for_duration,
            repeat: l.rule.repeat,
            stale_after: STALE_AFTER,
        };
        let (next, event) = machine::step(&prev, o.reading, &timing, now);
        match next.phase {
            Phase::Ok => {
                if had_row {
                    gone.0.push(l.id);
                    gone.1.push(o.instance.clone());
                }
            }
            phase => {
                if phase == Phase::Firing {
                    report.firing += 1;
                } else {
                    report.pending += 1;
                }
                keep.push(l.id, &o, &next, now);
            }
        }
        let Some(event) = event else { continue };
        let silenced = silences.iter().any(|s| s.covers(l.id, o.host.as_deref()));
        let status = match event {
            Event::Firing | Event::Reminder => "firing",
            Event::Resolved | Event::ResolvedNoData => "resolved",
            Event::Pending => continue,
        };
        let summary = if event == Event::ResolvedNoData {
            format!(
                "no data for {} min: {}",
                STALE_AFTER.whole_minutes(),
                o.summary
            )
        } else {
            o.summary.clone()
        };
        let notice = Notice {
            rule: l.name.clone(),
            status: status.into(),
            host: o.host.clone(),
            value: o.value,
            at: now,
            severity: l.spec.severity.clone().unwrap_or_else(|| "warning".into()),
            kind: l.spec.kind.clone(),
            instance: o.instance.clone(),
            summary,
            reminder: event == Event::Reminder,
            url: None,
        };
        if event == Event::Reminder {
            if !silenced {
                reminders.push((o.rule, notice));
            }
        } else {
            events.push(o.rule, l.id, &notice, silenced);
        }
    }

    let mut tx = pool.begin().await?;
    if !keep.rule.is_empty() {
        sqlx::query(
            "INSERT INTO alert_states (rule_id, instance, host, phase, since, notified_at, seen_at, value, summary, evaluated_at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::float8[], $9::text[], $10::timestamptz[])
             ON CONFLICT (rule_id, instance) DO UPDATE SET host = excluded.host, phase = excluded.phase,
                since = excluded.since, notified_at = excluded.notified_at, seen_at = excluded.seen_at,
                value = excluded.value, summary = excluded.summary, evaluated_at = excluded.evaluated_at,
                acked_by = CASE WHEN alert_states.since = excluded.since THEN alert_states.acked_by END,
                acked_at = CASE WHEN alert_states.since = excluded.since THEN alert_states.acked_at END",
        )
        .bind(&keep.rule)
        .bind(&keep.instance)
        .bind(&keep.host)
        .bind(&keep.phase)
        .bind(&keep.since)
        .bind(&keep.notified_at)
        .bind(&keep.seen_at)
        .bind(&keep.value)
        .bind(&keep.summary)
        .bind(&keep.evaluated_at)
        .execute(&mut *tx)
        .await?;
    }
    if !gone.0.is_empty() {
        sqlx::query(
            "DELETE FROM alert_states s USING UNNEST($1::bigint[], $2::text[]) AS g(rule_id, instance)
             WHERE s.rule_id = g.rule_id AND s.instance = g.instance",
        )
        .bind(&gone.0)
        .bind(&gone.1)
        .execute(&mut *tx)
        .await?;
    }
    let forecast_ids: Vec<i64> = loaded
        .iter()
        .filter(|l| l.rule.kind == Kind::Forecast && !l.skip)
        .map(|l| l.id)
        .collect();
    if !forecast_ids.is_empty() {
        sqlx::query("UPDATE alert_rules SET last_evaluated_at = $2 WHERE id = ANY($1)")
            .bind(&forecast_ids)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    report.events = events.rule.len();
    let mut queued = NotificationRows::default();
    if !events.rule.is_empty() {
        let ids: Vec<(i64, bool)> = sqlx::query_as(
            "INSERT INTO alert_events (rule_id, rule_name, instance, host, status, value, summary, silenced, at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[], $8::bool[], $9::timestamptz[])
             RETURNING id, silenced",
        )
        .bind(&events.rule)
        .bind(&events.name)
        .bind(&events.instance)
        .bind(&events.host)
        .bind(&events.status)
        .bind(&events.value)
        .bind(&events.summary)
        .bind(&events.silenced)
        .bind(&events.at)
        .fetch_all(&mut *tx)
        .await?;
        // RETURNING keeps the order of the rows inserted from UNNEST.
        for (((event_id, silenced), notice), i) in
            ids.iter().zip(&events.notices).zip(&events.loaded)
        {
            if !silenced {
                queued.push(&loaded[*i].spec.notify, Some(*event_id), notice);
            }
        }
    }
    for (i, notice) in &reminders {
        queued.push(&loaded[*i].spec.notify, None, notice);
    }
    report.notifications = queued.insert(&mut tx).await?;
    tx.commit().await?;
    Ok(report)
}

#[derive(Default)]
struct StateRows {
    rule: Vec<i64>,
    instance: Vec<String>,
    host: Vec<Option<String>>,
    phase: Vec<&'static str>,
    since: Vec<OffsetDateTime>,
    notified_at: Vec<Option<OffsetDateTime>>,
    seen_at: Vec<OffsetDateTime>,
    value: Vec<Option<f64>>,
    summary: Vec<String>,
    evaluated_at: Vec<OffsetDateTime>,
}

impl StateRows {
    fn push(&mut self, rule: i64, o: &Observation, s: &State, now: OffsetDateTime) {
        self.rule.push(rule);
        self.instance.push(o.instance.clone());
        self.host.push(o.host.clone());
        self.phase.push(s.phase.as_str());
        self.since.push(s.since);
        self.notified_at.push(s.notified_at);
        self.seen_at.push(s.seen_at);
        self.value.push(o.value);
        self.summary.push(o.summary.clone());
        self.evaluated_at.push(now);
    }
}

#[derive(Default)]
struct EventRows {
    rule: Vec<i64>,
    name: Vec<String>,
    instance: Vec<String>,
    host: Vec<Option<String>>,
    status: Vec<String>,
    value: Vec<Option<f64>>,
    summary: Vec<String>,
    silenced: Vec<bool>,
    at: Vec<OffsetDateTime>,
    notices: Vec<Notice>,
    /// The rule's index in the round's rules.
    loaded: Vec<usize>,
}

impl EventRows {
    fn push(&mut self, loaded: usize, rule: i64, n: &Notice, silenced: bool) {
        self.loaded.push(loaded);
        self.rule.push(rule);
        self.name.push(n.rule.clone());
        self.instance.push(n.instance.clone());
        self.host.push(n.host.clone());
        self.status.push(n.status.clone());
        self.value.push(n.value);
        self.summary.push(n.summary.clone());
        self.silenced.push(silenced);
        self.at.push(n.at);
        self.notices.push(n.clone());
    }
}

#[derive(Default)]
struct NotificationRows {
    channel: Vec<String>,
    event: Vec<Option<i64>>,
    body: Vec<serde_json::Value>,
}

impl NotificationRows {
    fn push(&mut self, channels: &[String], event: Option<i64>, n: &Notice) {
        for c in channels {
            self.channel.push(c.clone());
            self.event.push(event);
            self.body.push(serde_json::to_value(n).unwrap_or_default());
        }
    }

    async fn insert(&self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> AppResult<usize> {
        if self.channel.is_empty() {
            return Ok(0);
        }
        // A channel deleted since the rule was saved is skipped (the join drops it).
        Ok(sqlx::query(
            "INSERT INTO alert_notifications (channel_id, event_id, body)
             SELECT c.id, u.event_id, u.body FROM UNNEST($1::text[], $2::bigint[], $3::jsonb[]) AS u(channel, event_id, body)
             JOIN alert_channels c ON c.name = u.channel",
        )
        .bind(&self.channel)
        .bind(&self.event)
        .bind(&self.body)
        .execute(&mut **tx)
        .await?
        .rows_affected() as usize)
    }
}

async fn metric_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    let mut selectors = vec![];
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind == Kind::Metric {
            if let Some(sel) = l
                .spec
                .metric
                .as_deref()
                .and_then(|m| crate::metrics::parse_selector(m).ok())
            {
                selectors.push((i, sel));
            }
        }
    }
    if selectors.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = selectors.iter().map(|s| s.1.metric.clone()).collect();
    names.sort();
    names.dedup();
    let rows: Vec<(
        String,
        String,
        sqlx::types::Json<BTreeMap<String, String>>,
        f64,
    )> = sqlx::query_as(
        "SELECT s.host, s.metric, s.labels, l.value FROM metric_series s
             JOIN metric_latest l ON l.series_id = s.id
             WHERE s.metric = ANY($1) AND l.ts > $2",
    )
    .bind(&names)
    .bind(now - METRIC_FRESH)
    .fetch_all(pool)
    .await?;
    let mut by_metric: HashMap<
        &str,
        Vec<&(
            String,
            String,
            sqlx::types::Json<BTreeMap<String, String>>,
            f64,
        )>,
    > = HashMap::new();
    for r in &rows {
        by_metric.entry(r.1.as_str()).or_default().push(r);
    }
    for (i, sel) in selectors {
        let l = &loaded[i];
        for (host, metric, labels, value) in
            by_metric.get(sel.metric.as_str()).into_iter().flatten()
        {
            if !rules::glob(&l.rule.host, host)
                || !sel.labels.iter().all(|(k, v)| labels.0.get(k) == Some(v))
            {
                continue;
            }
            obs.push(Observation {
                rule: i,
                instance: instance_name(host, metric, &labels.0),
                host: Some(host.clone()),
                value: Some(*value),
                reading: classify(Some(*value), l.rule.op, l.rule.threshold, l.rule.clear),
                summary: threshold_summary(
                    &instance_name(host, metric, &labels.0),
                    *value,
                    &l.rule,
                    "",
                ),
            });
        }
    }
    Ok(())
}

async fn health_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    if !loaded.iter().any(|l| l.rule.kind == Kind::Health) {
        return Ok(());
    }
    let checks: Vec<(String, String, Option<bool>, Option<String>, Option<f64>)> =
        sqlx::query_as("SELECT name, url, up, last_error, last_latency_ms FROM health_checks")
            .fetch_all(pool)
            .await?;
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind != Kind::Health {
            continue;
        }
        let want = l.spec.check.as_deref().unwrap_or("*");
        for (name, url, up, error, latency) in &checks {
            if !rules::glob(want, name) {
                continue;
            }
            let value = up.map(|u| if u { 0.0 } else { 1.0 });
            // Summaries go to webhooks and mail: the URL as it may be shown.
            let url = crate::redact::url(url);
            let error = error.as_deref().map(crate::redact::text);
            let summary = match up {
                Some(false) => format!("{name} ({url}) is down: {}", error.unwrap_or_default()),
                Some(true) => format!("{name} ({url}) is up ({:.0} ms)", latency.unwrap_or(0.0)),
                None => format!("{name} ({url}) not checked yet"),
            };
            obs.push(Observation {
                rule: i,
                instance: name.clone(),
                host: None,
                value,
                reading: classify(value, l.rule.op, l.rule.threshold, None),
                summary,
            });
        }
    }
    Ok(())
}

async fn log_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    // One scan per (service, window) for the rates; one count per query rule.
    let mut windows: HashMap<(Option<String>, i64), (i64, i64, Option<f64>)> = HashMap::new();
    for l in loaded {
        if l.rule.kind == Kind::Log && l.rule.log != Some(LogCondition::QueryCount) {
            windows.insert(
                (l.spec.service.clone(), l.rule.window.whole_seconds()),
                (0, 0, None),
            );
        }
    }
    for ((service, window), out) in windows.iter_mut() {
        let (total, errors, avg): (i64, i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE level >= 4), avg(duration) FROM log_lines
             WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR service = $3)",
        )
        .bind(now - Duration::seconds(*window))
        .bind(now)
        .bind(service.as_deref())
        .fetch_one(pool)
        .await?;
        *out = (total, errors, avg);
    }
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind != Kind::Log {
            continue;
        }
        let window = l.rule.window.whole_seconds();
        let scope = l
            .spec
            .service
            .clone()
            .unwrap_or_else(|| "every service".into());
        let (value, what, unit) = match l.rule.log {
            Some(LogCondition::QueryCount) => {
                let q = l.spec.query.as_deref().unwrap_or("");
                let n = crate::logs::search::count_matching(
                    pool,
                    q,
                    l.spec.service.as_deref(),
                    now - Duration::seconds(window),
                    now,
                )
                .await?;
                (
                    Some(n as f64),
                    format!("lines matching `{q}` in {scope}"),
                    "",
                )
            }
            Some(LogCondition::ErrorRate) => {
                let (total, errors, _) = windows[&(l.spec.service.clone(), window)];
                (
                    (total > 0).then(|| 100.0 * errors as f64 / total as f64),
                    format!("error rate of {scope}"),
                    " %",
                )
            }
            _ => {
                let (_, _, avg) = windows[&(l.spec.service.clone(), window)];
                (avg, format!("average response time of {scope}"), " s")
            }
        };
        obs.push(Observation {
            rule: i,
            instance: scope.clone(),
            host: None,
            value,
            reading: classify(value, l.rule.op, l.rule.threshold, l.rule.clear),
            summary: value
                .map(|v| {
                    format!(
                        "{} over the last {}",
                        threshold_summary(&what, v, &l.rule, unit),
                        rules::human_secs(window)
                    )
                })
                .unwrap_or_else(|| format!("no lines in {scope} in the window")),
        });
    }
    Ok(())
}

async fn forecast_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    let due: Vec<usize> = loaded
        .iter()
        .enumerate()
        .filter(|(_, l)| l.rule.kind == Kind::Forecast && !l.skip)
        .map(|(i, _)| i)
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let rows = crate::forecast::service::forecasts(pool, None, now).await?;
    for i in due {
        let l = &loaded[i];
        let sel = l
            .spec
            .metric
            .as_deref()
            .and_then(|m| crate::metrics::parse_selector(m).ok());
        for f in &rows {
            if !rules::glob(&l.rule.host, &f.host) {
                continue;
            }
            if let Some(sel) = &sel {
                if sel.metric != f.metric
                    || !sel.labels.iter().all(|(k, v)| f.labels.get(k) == Some(v))
                {
                    continue;
                }
            }
            let name = instance_name(&f.host, &f.metric, &f.labels);
            // Days until 80 %: 0 when already there, far away when not crossing within a
            // year; no data without a model.
            let value = if f.model.is_none() {
                None
            } else if f.current.is_some_and(|c| c >= 80.0) {
                Some(0.0)
            } else {
                Some(
                    f.eta_80
                        .map(|t| ((t - now).as_seconds_f64() / 86_400.0).max(0.0))
                        .unwrap_or(1e9),
                )
            };
            let summary = match (value, f.eta_80) {
                (Some(d), Some(_)) if d < 1e9 => {
                    format!("{name} expected to reach 80 % in {d:.1} days")
                }
                (Some(0.0), None) => format!("{name} is at or above 80 %"),
                _ => format!("{name} not expected to reach 80 % within a year"),
            };
            obs.push(Observation {
                rule: i,
                instance: name,
                host: Some(f.host.clone()),
                value,
                reading: classify(value, l.rule.op, l.rule.threshold, None),
                summary,
            });
        }
    }
    Ok(())
}

async fn backup_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    if !loaded.iter().any(|l| l.rule.kind == Kind::Backup) {
        return Ok(());
    }
    let targets: Vec<(String, OffsetDateTime, Option<OffsetDateTime>, Option<OffsetDateTime>)> =
        sqlx::query_as(
            "SELECT t.name, t.created_at,
                    (SELECT max(finished_at) FROM backup_runs r WHERE r.target_id = t.id AND r.status = 'succeeded'),
                    (SELECT max(finished_at) FROM backup_runs r WHERE r.target_id = t.id AND r.status = 'succeeded' AND r.test_restore_ok)
             FROM backup_targets t ORDER BY t.name",
        )
        .fetch_all(pool)
        .await?;
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind != Kind::Backup {
            continue;
        }
        let verified = l.spec.verified == Some(true);
        for (name, created, ok, tested) in &targets {
            if l.spec.target.as_deref().is_some_and(|t| t != name) {
                continue;
            }
            let last = if verified { *tested } else { *ok };
            // Never backed up: counted from when the target was added.
            let hours = (now - last.unwrap_or(*created)).as_seconds_f64() / 3600.0;
            let what = if verified {
                "test-restored backup"
            } else {
                "successful backup"
            };
            let summary = match last {
                Some(_) => format!(
                    "last {what} of {name} {hours:.1} h ago (> {} h)",
                    fmt_num(l.rule.threshold)
                ),
                None => format!("no {what} of {name} yet ({hours:.1} h since it was added)"),
            };
            obs.push(Observation {
                rule: i,
                instance: name.clone(),
                host: None,
                value: Some(hours),
                reading: classify(Some(hours), l.rule.op, l.rule.threshold, None),
                summary,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- notification queue

/// A notification claimed for sending.
#[derive(Debug, sqlx::FromRow)]
pub struct Outgoing {
    pub id: i64,
    pub attempts: i32,
    pub kind: String,
    pub target: String,
    pub format: String,
    pub body: sqlx::types::Json<Notice>,
}

/// Claims up to 50 due notifications. A claim holds each for a minute: if this process dies
/// while sending, another one retries it then.
pub async fn claim_notifications(pool: &PgPool) -> AppResult<Vec<Outgoing>> {
    Ok(sqlx::query_as(
        "UPDATE alert_notifications n SET attempts = n.attempts + 1, next_attempt_at = now() + interval '1 minute'
         FROM alert_channels c
         WHERE c.id = n.channel_id AND n.id IN (
            SELECT id FROM alert_notifications WHERE status = 'queued' AND next_attempt_at <= now()
            ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED)
         RETURNING n.id, n.attempts, c.kind, c.target, c.format, n.body",
    )
    .fetch_all(pool)
    .await?)
}

/// Records a delivery attempt: sent, retried later with backoff, or given up.
pub async fn record_delivery(
    pool: &PgPool,
    id: i64,
    attempts: i32,
    result: Result<(), String>,
) -> AppResult<()> {
    match result {
        Ok(()) => {
            sqlx::query(
                "UPDATE alert_notifications SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(pool)
            .await?;
        }
        Err(e) => {
            let give_up = attempts >= rules::MAX_ATTEMPTS;
            sqlx::query(
                "UPDATE alert_notifications SET last_error = $2,
                    status = CASE WHEN $3 THEN 'failed' ELSE 'queued' END,
                    next_attempt_at = now() + make_interval(secs => $4)
                 WHERE id = $1",
            )
            .bind(id)
            .bind(e.chars().take(500).collect::<String>())
            .bind(give_up)
            .bind(rules::backoff(attempts).as_seconds_f64())
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- health checks

pub async fn upsert_check(pool: &PgPool, c: &NewCheck, actor: &str) -> AppResult<i64> {
    rules::validate_check(c).map_err(unprocessable)?;
    let id = sqlx::query_scalar(
        "INSERT INTO health_checks (name, url, interval_seconds, timeout_seconds, expected_status, expected_body)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO UPDATE SET url = excluded.url, interval_seconds = excluded.interval_seconds,
            timeout_seconds = excluded.timeout_seconds, expected_status = excluded.expected_status,
            expected_body = excluded.expected_body, next_check_at = now()
         RETURNING id",
    )
    .bind(c.name.trim())
    .bind(c.url.trim())
    .bind(c.interval_seconds)
    .bind(c.timeout_seconds)
    .bind(c.expected_status)
    .bind(&c.expected_body)
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

pub async fn delete_check(pool: &PgPool, id: i64, actor: &str) -> AppResult<()> {
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

#[derive(sqlx::FromRow)]
struct CheckRow {
    id: i64,
    name: String,
    url: String,
    interval_seconds: i32,
    timeout_seconds: i32,
    expected_status: Option<i32>,
    expected_body: Option<String>,
    up: Option<bool>,
    state_since: Option<OffsetDateTime>,
    last_latency_ms: Option<f64>,
    last_error: Option<String>,
    last_checked_at: Option<OffsetDateTime>,
    builtin: bool,
    up_1d: i64,
    n_1d: i64,
    up_7d: i64,
    n_7d: i64,
    up_30d: i64,
    n_30d: i64,
}

pub async fn list_checks(pool: &PgPool) -> AppResult<Vec<CheckInfo>> {
    let rows: Vec<CheckRow> = sqlx::query_as(
        "SELECT c.id, c.name, c.url, c.interval_seconds, c.timeout_seconds, c.expected_status, c.expected_body,
                c.up, c.state_since, c.last_latency_ms, c.last_error, c.last_checked_at, c.builtin,
                count(*) FILTER (WHERE r.up AND r.at > now() - interval '1 day') AS up_1d,
                count(r.at) FILTER (WHERE r.at > now() - interval '1 day') AS n_1d,
                count(*) FILTER (WHERE r.up AND r.at > now() - interval '7 days') AS up_7d,
                count(r.at) FILTER (WHERE r.at > now() - interval '7 days') AS n_7d,
                count(*) FILTER (WHERE r.up) AS up_30d,
                count(r.at) AS n_30d
         FROM health_checks c LEFT JOIN health_results r ON r.check_id = c.id AND r.at > now() - interval '30 days'
         GROUP BY c.id ORDER BY c.builtin DESC, c.name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CheckInfo {
            id: r.id,
            name: r.name,
            url: crate::redact::url(&r.url),
            interval_seconds: r.interval_seconds,
            timeout_seconds: r.timeout_seconds,
            expected_status: r.expected_status,
            expected_body: r.expected_body,
            state: match r.up {
                Some(true) => "up",
                Some(false) => "down",
                None => "unknown",
            }
            .into(),
            since: r.state_since,
            latency_ms: r.last_latency_ms,
            last_error: r.last_error.map(|e| crate::redact::text(&e)),
            last_checked: r.last_checked_at,
            builtin: r.builtin,
            uptime_24h: rules::uptime(r.up_1d, r.n_1d),
            uptime_7d: rules::uptime(r.up_7d, r.n_7d),
            uptime_30d: rules::uptime(r.up_30d, r.n_30d),
        })
        .collect())
}

/// Every check with a latency chart of its last 24 hours (down checks drawn at zero height
/// would lie: they are gaps).
pub async fn checks_with_charts(pool: &PgPool) -> AppResult<Vec<(CheckInfo, Option<Chart>)>> {
    let checks = list_checks(pool).await?;
    let now = OffsetDateTime::now_utc();
    let from = now - Duration::days(1);
    let points: Vec<(i64, OffsetDateTime, Option<f64>)> = sqlx::query_as(
        "SELECT check_id, at, CASE WHEN up THEN latency_ms END FROM health_results
         WHERE at > $1 ORDER BY check_id, at",
    )
    .bind(from)
    .fetch_all(pool)
    .await?;
    let mut by_check: HashMap<i64, Vec<crate::metrics::SeriesPoint>> = HashMap::new();
    for (id, at, ms) in points {
        if let Some(ms) = ms {
            by_check
                .entry(id)
                .or_default()
                .push(crate::metrics::SeriesPoint {
                    ts: at,
                    avg: ms,
                    min: ms,
                    max: ms,
                });
        }
    }
    Ok(checks
        .into_iter()
        .map(|c| {
            let chart = by_check.remove(&c.id).filter(|p| p.len() >= 2).map(|p| {
                crate::metrics::charts::render(
                    &format!("check-{}", c.id),
                    &format!("{}: latency in ms, last 24 h", c.name),
                    crate::metrics::Unit::Plain,
                    from.unix_timestamp(),
                    now.unix_timestamp(),
                    i64::from(c.interval_seconds.max(1)),
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
         WHERE id IN (SELECT id FROM health_checks WHERE next_check_at <= now()
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
    sqlx::query(
        "INSERT INTO health_results (check_id, at, up, latency_ms, status, error) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(at)
    .bind(up)
    .bind(latency_ms)
    .bind(status.map(i32::from))
    .bind(&error)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE health_checks SET state_since = CASE WHEN up IS DISTINCT FROM $2 THEN $3 ELSE state_since END,
            up = $2, last_checked_at = $3, last_latency_ms = $4, last_error = $5
         WHERE id = $1",
    )
    .bind(id)
    .bind(up)
    .bind(at)
    .bind(latency_ms)
    .bind(&error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Results older than 30 days go (the uptime looks back that far).
pub async fn expire_results(pool: &PgPool, now: OffsetDateTime) -> AppResult<u64> {
    let n = sqlx::query("DELETE FROM health_results WHERE at < $1")
        .bind(now - Duration::days(31))
        .execute(pool)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM alert_notifications WHERE created_at < $1 AND status <> 'queued'")
        .bind(now - Duration::days(31))
        .execute(pool)
        .await?;
    Ok(n)
}
