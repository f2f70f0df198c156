//! Maintenance windows in the database: added, listed, ended, and the ones in force for an
//! evaluation round.

use super::*;
use crate::alerts::maintenance::{self, MaintenanceWindow, NewWindow};
use crate::timestamp::Timestamp;
use time::OffsetDateTime;

/// Every window not over (one-off ones that have not ended, and every recurring one), with
/// whether it is in force at `now`; soonest first.
pub async fn list_windows(pool: &PgPool, now: OffsetDateTime) -> AppResult<Vec<MaintenanceWindow>> {
    windows_ending_after(pool, now, now).await
}

/// Every recurring window and the one-off ones ending after `after`, with whether each is in
/// force at `now`; soonest first.
pub async fn windows_ending_after(
    pool: &PgPool,
    after: OffsetDateTime,
    now: OffsetDateTime,
) -> AppResult<Vec<MaintenanceWindow>> {
    let rows = sqlx::query!(
        r#"SELECT id, name, host, checks, rules, starts_at AS "starts_at: Timestamp", ends_at AS "ends_at: Timestamp",
                  schedule, duration_minutes, timezone, created_by
           FROM maintenance_windows WHERE schedule IS NOT NULL OR ends_at > $1
           ORDER BY starts_at NULLS LAST, id LIMIT 500"#,
        after
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut w = MaintenanceWindow {
                id: r.id,
                name: r.name,
                host: r.host,
                checks: r.checks,
                rules: r.rules,
                start: r.starts_at,
                end: r.ends_at,
                schedule: r.schedule,
                duration_minutes: r.duration_minutes.map(i64::from),
                timezone: r.timezone,
                created_by: r.created_by,
                active: false,
            };
            w.active = maintenance::active_at(&w, now);
            w
        })
        .collect())
}

/// The windows in force at `now`.
pub async fn active_windows(
    pool: &PgPool,
    now: OffsetDateTime,
) -> AppResult<Vec<MaintenanceWindow>> {
    Ok(list_windows(pool, now)
        .await?
        .into_iter()
        .filter(|w| w.active)
        .collect())
}

/// The window that covers an alert, if any (its name).
pub fn window_of<'a>(
    windows: &'a [MaintenanceWindow],
    rule: &str,
    kind: &str,
    instance: &str,
    host: Option<&str>,
) -> Option<&'a MaintenanceWindow> {
    let check = (kind == "health").then_some(instance);
    windows
        .iter()
        .find(|w| maintenance::covers(w, rule, host, check))
}

/// Adds a window; `by` is a user or `token <name>`; audited.
pub async fn add_window_by(pool: &PgPool, w: &NewWindow, actor: &Actor<'_>) -> AppResult<i64> {
    maintenance::check(w, OffsetDateTime::now_utc()).map_err(AppError::bad_request)?;
    let id = sqlx::query_scalar!(
        "INSERT INTO maintenance_windows (name, host, checks, rules, starts_at, ends_at, schedule, duration_minutes, timezone, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        w.name.trim(),
        w.host.as_deref().map(str::trim),
        &w.checks,
        &w.rules,
        w.start.map(|t| *t),
        w.end.map(|t| *t),
        w.schedule.as_deref().map(str::trim),
        w.duration_minutes.map(|d| d as i32),
        w.timezone.as_deref().map(str::trim),
        actor.name
    )
    .fetch_one(pool)
    .await?;
    audit(
        pool,
        Some(actor.name),
        "maintenance.add",
        Some(&w.name),
        true,
        actor.ip,
        serde_json::json!({ "id": id, "host": w.host, "checks": w.checks, "rules": w.rules }),
    )
    .await?;
    Ok(id)
}

/// Ends a window: a one-off one that has begun ends now (it stays in the record), one not
/// begun and a recurring one are deleted. `only_by`: only a window opened by this caller (a
/// script's token ends only its own windows).
pub async fn end_window_by(
    pool: &PgPool,
    id: i64,
    only_by: Option<&str>,
    actor: &Actor<'_>,
) -> AppResult<()> {
    let name: Option<String> = sqlx::query_scalar!(
        "WITH w AS (SELECT id, name, starts_at FROM maintenance_windows
                    WHERE id = $1 AND ($2::text IS NULL OR created_by = $2)
                      AND (schedule IS NOT NULL OR ends_at > now())),
              ended AS (UPDATE maintenance_windows m SET ends_at = now() FROM w
                        WHERE m.id = w.id AND w.starts_at <= now() AND m.ends_at > now() RETURNING m.id),
              gone AS (DELETE FROM maintenance_windows m USING w
                       WHERE m.id = w.id AND (w.starts_at IS NULL OR w.starts_at > now()) RETURNING m.id)
         SELECT name FROM w",
        id,
        only_by
    )
    .fetch_optional(pool)
    .await?;
    let Some(name) = name else {
        return Err(AppError::not_found(format!("no maintenance window {id}")));
    };
    audit(
        pool,
        Some(actor.name),
        "maintenance.end",
        Some(&name),
        true,
        actor.ip,
        serde_json::json!({ "id": id }),
    )
    .await
}

/// "Mute" on a firing alert: a one-off window over that rule on that host (or that check) for
/// `minutes` from now (operators).
pub async fn mute_alert(
    ctx: &RequestCtx,
    rule_id: i64,
    instance: &str,
    minutes: i64,
) -> AppResult<i64> {
    let user = ctx.require(Role::Operator).await?;
    if !(1..=31 * 24 * 60).contains(&minutes) {
        return Err(AppError::bad_request("minutes: 1 to 44640"));
    }
    let row = sqlx::query!(
        "SELECT s.host, r.name, r.kind FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
         WHERE s.rule_id = $1 AND s.instance = $2",
        rule_id,
        instance
    )
    .fetch_optional(&ctx.state.pool)
    .await?
    .ok_or_else(|| {
        AppError::not_found(format!(
            "no pending or firing alert `{}` for rule {rule_id}",
            crate::redact::clip(instance, 100)
        ))
    })?;
    let now = OffsetDateTime::now_utc();
    let health = row.kind == "health";
    let w = NewWindow {
        name: format!("mute {} for {minutes} min", row.name),
        host: if health { None } else { row.host.clone() },
        checks: if health {
            vec![instance.to_string()]
        } else {
            vec![]
        },
        rules: if health {
            vec![]
        } else {
            vec![row.name.clone()]
        },
        start: Some(Timestamp(now)),
        end: Some(Timestamp(now + time::Duration::minutes(minutes))),
        schedule: None,
        duration_minutes: None,
        timezone: None,
    };
    add_window_by(&ctx.state.pool, &w, &ctx.actor(&user)).await
}
