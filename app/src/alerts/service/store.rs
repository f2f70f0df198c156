//! The alert configuration as stored: the runbook's rules seeded on a new installation, rules,
//! channels, silences and acknowledgements, each change audited.

use super::*;
use crate::timestamp::Timestamp;

/// On a new installation: the runbook's rules and a health check of Opsdeck's own `/health`.
/// Runs once per database (a marker row in `job_runs`), so deleting a default keeps it deleted.
pub async fn seed(pool: &PgPool, own_health_url: &str) -> AppResult<bool> {
    let mut tx = pool.begin().await?;
    let first: Option<bool> = sqlx::query_scalar!(r#"INSERT INTO job_runs (name, last_start, last_finish) VALUES ('alerts_seeded', now(), now())
         ON CONFLICT (name) DO NOTHING RETURNING true AS "inserted!""#)
    .fetch_optional(&mut *tx)
    .await?;
    if first.is_none() {
        return Ok(false);
    }
    for spec in rules::defaults() {
        let kind = spec.kind.clone();
        sqlx::query!(
            "INSERT INTO alert_rules (name, kind, spec, builtin) VALUES ($1, $2, $3, true)
             ON CONFLICT (name) DO NOTHING",
            &spec.name,
            kind,
            sqlx::types::Json(&spec) as _
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!("INSERT INTO health_checks (name, url, interval_seconds, timeout_seconds, expected_body, builtin)
         VALUES ('opsdeck', $1, 30, 5, '\"status\":\"ok\"', true) ON CONFLICT (name) DO NOTHING", own_health_url)
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
        "log_anomaly" => format!(
            "{} of {} at {}× the same hour of the 7 days before (at least {} errors) over {}",
            if spec.condition.as_deref() == Some("error_rate") {
                "error rate"
            } else {
                "errors"
            },
            spec.service.as_deref().unwrap_or("each service"),
            fmt_num(spec.factor.unwrap_or(3.0)),
            spec.min_errors.unwrap_or(10),
            rules::human_secs(spec.window_seconds.unwrap_or(300))
        ),
        "host" => format!(
            "{} sends nothing for {}",
            spec.host.as_deref().unwrap_or("*"),
            match spec.threshold {
                Some(t) if t > 0.0 => rules::human_secs(t as i64),
                _ => "3 collection intervals".into(),
            }
        ),
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

pub(super) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Adds a rule, or replaces the one with the same name.
pub async fn upsert_rule_by(pool: &PgPool, spec: &RuleSpec, actor: &Actor<'_>) -> AppResult<i64> {
    rules::validate(spec).map_err(unprocessable)?;
    let known: Vec<String> = sqlx::query_scalar!("SELECT name FROM alert_channels")
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
            let exists: bool = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM health_checks WHERE name = $1) AS "exists!""#,
                c
            )
            .fetch_one(pool)
            .await?;
            if !exists {
                return Err(AppError::unprocessable(format!(
                    "check: no health check named `{c}`"
                )));
            }
        }
    }
    let before = sqlx::query!(
        r#"SELECT spec AS "spec: sqlx::types::Json<RuleSpec>", enabled FROM alert_rules WHERE name = $1"#,
        spec.name.trim()
    )
    .fetch_optional(pool)
    .await?
    .map(|r| RuleSpec {
        enabled: r.enabled,
        ..r.spec.0
    });
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO alert_rules (name, kind, spec, enabled) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, spec = excluded.spec,
             enabled = excluded.enabled, updated_at = now()
         RETURNING id",
        spec.name.trim(),
        &spec.kind,
        sqlx::types::Json(spec) as _,
        spec.enabled
    )
    .fetch_one(pool)
    .await?;
    // A changed condition starts the rule over: its old states no longer mean anything. A
    // rule saved with new channels, severity or reminders keeps them (a firing alert stays
    // firing, and is not announced again).
    if !before.is_some_and(|b| rules::keeps_states(&b, spec)) {
        sqlx::query!("DELETE FROM alert_states WHERE rule_id = $1", id)
            .execute(pool)
            .await?;
    }
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
    let rows = sqlx::query!(
        r#"SELECT r.id, r.spec AS "spec: sqlx::types::Json<RuleSpec>", r.enabled, r.builtin,
                  count(*) FILTER (WHERE s.phase = 'firing') AS "firing!",
                  count(*) FILTER (WHERE s.phase = 'pending') AS "pending!"
           FROM alert_rules r LEFT JOIN alert_states s ON s.rule_id = r.id
           GROUP BY r.id ORDER BY r.builtin DESC, r.name"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut spec = r.spec.0;
            spec.enabled = r.enabled;
            RuleInfo {
                id: r.id,
                describe: describe(&spec),
                spec,
                builtin: r.builtin,
                firing: r.firing,
                pending: r.pending,
            }
        })
        .collect())
}

/// `enable`, `disable` or `delete` a rule.
pub async fn rule_action_by(
    pool: &PgPool,
    id: i64,
    action: &str,
    actor: &Actor<'_>,
) -> AppResult<()> {
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
        sqlx::query!("DELETE FROM alert_states WHERE rule_id = $1", id)
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

pub async fn upsert_channel_by(pool: &PgPool, c: &NewChannel, actor: &Actor<'_>) -> AppResult<i64> {
    let format = rules::validate_channel(c).map_err(unprocessable)?;
    let target = c.url.clone().or_else(|| c.to.clone()).unwrap_or_default();
    let (wait, interval, max) = c.grouping();
    let id = sqlx::query_scalar!("INSERT INTO alert_channels (name, kind, target, format, is_default, group_wait_seconds, group_interval_seconds, max_per_hour)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, target = excluded.target, format = excluded.format,
             is_default = excluded.is_default, group_wait_seconds = excluded.group_wait_seconds,
             group_interval_seconds = excluded.group_interval_seconds, max_per_hour = excluded.max_per_hour
         RETURNING id", c.name.trim(), &c.kind, target.trim(), format, c.is_default, wait, interval, max)
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
    let rows = sqlx::query!(
        r#"SELECT c.id, c.name, c.kind, c.target, c.format, c.paused, c.is_default, n.status AS "last_status?",
                  c.group_wait_seconds, c.group_interval_seconds, c.max_per_hour,
                  n.last_error AS "last_error?"
           FROM alert_channels c
           LEFT JOIN LATERAL (SELECT status, last_error FROM alert_notifications
                              WHERE channel_id = c.id ORDER BY id DESC LIMIT 1) n ON true
           ORDER BY c.name"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ChannelInfo {
            id: r.id,
            url: (r.kind == "webhook").then(|| crate::redact::webhook(&r.target)),
            to: (r.kind == "email").then(|| r.target.clone()),
            name: r.name,
            paused: r.paused,
            kind: r.kind,
            format: r.format,
            is_default: r.is_default,
            last_status: r.last_status,
            last_error: r.last_error.map(|e| crate::redact::text(&e)),
            group_wait_seconds: r.group_wait_seconds,
            group_interval_seconds: r.group_interval_seconds,
            max_per_hour: r.max_per_hour,
        })
        .collect())
}

pub async fn delete_channel_by(pool: &PgPool, id: i64, actor: &Actor<'_>) -> AppResult<()> {
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
pub async fn test_channel_by(pool: &PgPool, id: i64, actor: &Actor<'_>) -> AppResult<i64> {
    let name: Option<String> =
        sqlx::query_scalar!("SELECT name FROM alert_channels WHERE id = $1", id)
            .fetch_optional(pool)
            .await?;
    let name = name.ok_or_else(|| AppError::not_found(format!("no channel {id}")))?;
    let notice = Notice {
        rule: "Test notification".into(),
        status: AlertStatus::Test,
        host: None,
        value: None,
        at: Timestamp(OffsetDateTime::now_utc()),
        severity: Severity::Warning,
        kind: "test".into(),
        instance: name.clone(),
        summary: format!(
            "{} sent a test from Opsdeck to the channel `{name}`.",
            actor.name
        ),
        reminder: false,
        url: None,
    };
    // A test is sent at once, and does not count as a message (alerts = 0).
    let nid = sqlx::query_scalar!(
        "INSERT INTO alert_notifications (channel_id, body, alerts) VALUES ($1, $2, 0) RETURNING id",
        id,
        sqlx::types::Json(&crate::alerts::group::Message::single(notice)) as _
    )
    .fetch_one(pool)
    .await?;
    done(
        pool,
        actor,
        "alert_channel.test",
        &name,
        serde_json::json!({}),
    )
    .await?;
    Ok(nid)
}

// ---------------------------------------------------------------- silences and acks

/// `ack` a firing instance, or `silence` its rule on its host for an hour.
pub async fn instance_action_by(
    pool: &PgPool,
    rule_id: i64,
    instance: &str,
    action: &str,
    actor: &Actor<'_>,
) -> AppResult<()> {
    let row = sqlx::query!(
        "SELECT s.host, r.name FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
         WHERE s.rule_id = $1 AND s.instance = $2",
        rule_id,
        instance
    )
    .fetch_optional(pool)
    .await?
    .map(|r| (r.host, r.name));
    let (host, rule) = row.ok_or_else(|| {
        AppError::not_found(format!(
            "no pending or firing alert `{instance}` for rule {rule_id}"
        ))
    })?;
    match action {
        "ack" => {
            sqlx::query!("UPDATE alert_states SET acked_by = $3, acked_at = now() WHERE rule_id = $1 AND instance = $2", rule_id, instance, actor.name)
            .execute(pool)
            .await?;
        }
        "silence" => {
            add_silence_by(
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

pub async fn add_silence_by(
    pool: &PgPool,
    rule_id: Option<i64>,
    host: Option<&str>,
    length: Duration,
    comment: &str,
    actor: &Actor<'_>,
) -> AppResult<i64> {
    if length < Duration::minutes(1) || length > Duration::days(90) {
        return Err(AppError::unprocessable(
            "seconds: a silence lasts between 60 seconds and 90 days (7776000)",
        ));
    }
    if comment.chars().count() > 500 {
        return Err(AppError::unprocessable("comment: at most 500 characters"));
    }
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO alert_silences (rule_id, host, ends_at, comment, created_by)
         VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5) RETURNING id",
        rule_id,
        host,
        length.as_seconds_f64(),
        comment,
        actor.name
    )
    .fetch_one(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            AppError::unprocessable(format!("rule_id: no rule {}", rule_id.unwrap_or_default()))
        }
        _ => e.into(),
    })?;
    done(
        pool,
        actor,
        "alert_silence.add",
        &id.to_string(),
        serde_json::json!({"rule_id": rule_id, "host": host, "seconds": length.whole_seconds(), "comment": comment}),
    )
    .await?;
    Ok(id)
}

pub async fn end_silence_by(pool: &PgPool, id: i64, actor: &Actor<'_>) -> AppResult<()> {
    let n = sqlx::query!(
        "UPDATE alert_silences SET ends_at = now() WHERE id = $1 AND ends_at > now()",
        id
    )
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

pub(super) struct Silence {
    rule_id: Option<i64>,
    host: Option<String>,
}

impl Silence {
    pub(super) fn covers(&self, rule_id: i64, host: Option<&str>) -> bool {
        self.rule_id.is_none_or(|r| r == rule_id)
            && match (&self.host, host) {
                (None, _) => true,
                (Some(p), Some(h)) => rules::glob(p, h),
                (Some(p), None) => p == "*",
            }
    }
}

pub(super) async fn active_silences(pool: &PgPool) -> AppResult<Vec<Silence>> {
    Ok(sqlx::query_as!(
        Silence,
        "SELECT rule_id, host FROM alert_silences WHERE ends_at > now()"
    )
    .fetch_all(pool)
    .await?)
}

// ---------------------------------------------------------------- the actions, as users take them

/// Adds or replaces a rule (operators).
pub async fn upsert_rule(ctx: &RequestCtx, spec: &RuleSpec) -> AppResult<i64> {
    let user = ctx.require(Role::Operator).await?;
    upsert_rule_by(&ctx.state.pool, spec, &ctx.actor(&user)).await
}

/// `enable`, `disable` or `delete` a rule (operators).
pub async fn rule_action(ctx: &RequestCtx, id: i64, action: &str) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    rule_action_by(&ctx.state.pool, id, action, &ctx.actor(&user)).await
}

/// Adds or replaces a channel (admins: a channel's address is a secret).
pub async fn upsert_channel(ctx: &RequestCtx, c: &NewChannel) -> AppResult<i64> {
    let user = ctx.require(Role::Admin).await?;
    upsert_channel_by(&ctx.state.pool, c, &ctx.actor(&user)).await
}

pub async fn delete_channel(ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let user = ctx.require(Role::Admin).await?;
    delete_channel_by(&ctx.state.pool, id, &ctx.actor(&user)).await
}

pub async fn test_channel(ctx: &RequestCtx, id: i64) -> AppResult<i64> {
    let user = ctx.require(Role::Admin).await?;
    test_channel_by(&ctx.state.pool, id, &ctx.actor(&user)).await
}

/// `ack` or `silence` a firing instance (operators).
pub async fn instance_action(
    ctx: &RequestCtx,
    rule_id: i64,
    instance: &str,
    action: &str,
) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    instance_action_by(
        &ctx.state.pool,
        rule_id,
        instance,
        action,
        &ctx.actor(&user),
    )
    .await
}

pub async fn add_silence(
    ctx: &RequestCtx,
    rule_id: Option<i64>,
    host: Option<&str>,
    length: Duration,
    comment: &str,
) -> AppResult<i64> {
    let user = ctx.require(Role::Operator).await?;
    add_silence_by(
        &ctx.state.pool,
        rule_id,
        host,
        length,
        comment,
        &ctx.actor(&user),
    )
    .await
}

pub async fn end_silence(ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    end_silence_by(&ctx.state.pool, id, &ctx.actor(&user)).await
}
