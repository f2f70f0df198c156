//! `PATCH` on checks, channels and rules: the change is laid over the stored declaration
//! (`crate::patch`), validated like a new one, then saved under the item's id, renamed if the
//! change renames it. `paused` pauses a check (not run, not judged by health rules) or a channel
//! (sent nothing); on a rule it is the opposite of `enabled`.

use super::*;
use crate::auth::CurrentUser;
use crate::patch::{self, Change, Patched};

/// Lays `change` over `current`; a refusal names the field.
fn patched<T: serde::Serialize + serde::de::DeserializeOwned>(
    current: &T,
    change: Change,
) -> AppResult<Patched<T>> {
    patch::apply(current, change).map_err(AppError::unprocessable)
}

/// Gives row `id` of `table` its new name first, so that the upsert by name that follows
/// updates this row (409 when another item has the name).
async fn rename(pool: &PgPool, table: &str, id: i64, name: &str) -> AppResult<()> {
    sqlx::query(&format!(
        "UPDATE {table} SET name = $2 WHERE id = $1 AND name <> $2"
    ))
    .bind(id)
    .bind(name.trim())
    .execute(pool)
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => AppError::conflict(format!("the name `{}` is taken", name.trim())),
        e => e,
    })?;
    Ok(())
}

/// Pauses or resumes row `id` of `table` when the change says so, audited as
/// `{what}.pause` or `{what}.resume` (the save itself is audited by the upsert).
async fn set_paused(
    ctx: &RequestCtx,
    user: &CurrentUser,
    (table, what): (&str, &str),
    id: i64,
    p: &Patched<impl Named>,
) -> AppResult<()> {
    if let Some(paused) = p.paused {
        crate::db::set_paused(&ctx.state.pool, table, id, paused).await?;
        let action = format!("{what}.{}", if paused { "pause" } else { "resume" });
        ctx.audit(user, &action, p.spec.name(), true, serde_json::json!({}))
            .await?;
    }
    Ok(())
}

/// The change only pauses or resumes (the declaration is left as it is, and not saved again).
fn only_pause<T>(p: &Patched<T>) -> bool {
    p.paused.is_some() && p.fields.iter().all(|f| f == "paused")
}

/// What the audit line names.
trait Named {
    fn name(&self) -> &str;
}

impl Named for NewCheck {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for NewChannel {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Changes a check (operators).
pub async fn patch_check(ctx: &RequestCtx, id: i64, change: Change) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    let pool = &ctx.state.pool;
    let current = sqlx::query_as!(
        NewCheck,
        "SELECT name, url, interval_seconds, timeout_seconds, expected_status, expected_body, host,
                public, public_name
         FROM health_checks WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("no health check {id}")))?;
    let p = patched(&current, change)?;
    rules::validate_check(&p.spec).map_err(unprocessable)?;
    if !only_pause(&p) {
        rename(pool, "health_checks", id, &p.spec.name).await?;
        upsert_check_by(pool, &p.spec, &ctx.actor(&user)).await?;
    }
    set_paused(ctx, &user, ("health_checks", "health_check"), id, &p).await
}

/// Changes a channel (admins). Its address is kept unless the change gives a new one.
pub async fn patch_channel(ctx: &RequestCtx, id: i64, change: Change) -> AppResult<()> {
    let user = ctx.require(Role::Admin).await?;
    let pool = &ctx.state.pool;
    let row = sqlx::query!(
        "SELECT name, kind, target, format, is_default, group_wait_seconds, group_interval_seconds, max_per_hour
         FROM alert_channels WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("no channel {id}")))?;
    let webhook = row.kind == "webhook";
    let current = NewChannel {
        name: row.name,
        kind: row.kind,
        url: webhook.then(|| row.target.clone()),
        to: (!webhook).then_some(row.target),
        format: webhook.then_some(row.format),
        is_default: row.is_default,
        group_wait_seconds: Some(row.group_wait_seconds),
        group_interval_seconds: Some(row.group_interval_seconds),
        max_per_hour: Some(row.max_per_hour),
    };
    let p = patched(&current, change)?;
    rules::validate_channel(&p.spec).map_err(unprocessable)?;
    let old_name = current.name.clone();
    if !only_pause(&p) {
        rename(pool, "alert_channels", id, &p.spec.name).await?;
        upsert_channel_by(pool, &p.spec, &ctx.actor(&user)).await?;
    }
    set_paused(ctx, &user, ("alert_channels", "alert_channel"), id, &p).await?;
    if old_name != p.spec.name.trim() {
        // Rules name their channels: they follow the rename.
        sqlx::query!(
            "UPDATE alert_rules SET spec = jsonb_set(spec, '{notify}',
                 (SELECT coalesce(jsonb_agg(CASE WHEN n = $1 THEN to_jsonb($2::text) ELSE to_jsonb(n) END), '[]'::jsonb)
                  FROM jsonb_array_elements_text(spec->'notify') AS n))
             WHERE spec->'notify' ? $1",
            old_name,
            p.spec.name.trim()
        )
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Changes a rule (operators); `paused` turns it off or on. Its states start over when its
/// condition changes, as when it is saved again (`rules::keeps_states`).
pub async fn patch_rule(ctx: &RequestCtx, id: i64, change: Change) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    let pool = &ctx.state.pool;
    let row = sqlx::query!(
        r#"SELECT spec AS "spec: sqlx::types::Json<RuleSpec>", enabled FROM alert_rules WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("no rule {id}")))?;
    let mut current = row.spec.0;
    current.enabled = row.enabled;
    let mut p = patched(&current, change)?;
    if only_pause(&p) {
        // Turned off or on, as the page's buttons do (turning off ends its pending and firing
        // states), without saving the declaration again.
        let action = if p.paused == Some(true) {
            "disable"
        } else {
            "enable"
        };
        return rule_action_by(pool, id, action, &ctx.actor(&user)).await;
    }
    if let Some(paused) = p.paused {
        p.spec.enabled = !paused;
    }
    rules::validate(&p.spec).map_err(unprocessable)?;
    rename(pool, "alert_rules", id, &p.spec.name).await?;
    upsert_rule_by(pool, &p.spec, &ctx.actor(&user)).await?;
    Ok(())
}
