//! `PATCH` on watched processes and scrape targets: the change is laid over the stored
//! declaration (`crate::patch`), validated like a new one and saved under the item's id.
//! `paused` stops watching (agents and the collector drop the watch) or scraping, keeping the
//! declaration and its samples. A target's bearer token is kept unless the change gives one
//! (`null` removes it); it is never shown.

use super::service::conflict_as;
use super::{process::validate_watch, validate_target, NewProcess, NewTarget};
use crate::auth::service::RequestCtx;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::patch::{self, Change};

/// Changes a watched process (operators), audited with the fields changed.
pub async fn patch_process(ctx: &RequestCtx, id: i64, change: Change) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    let pool = &ctx.state.pool;
    let row = sqlx::query!(
        "SELECT host, name, pattern, port FROM watched_processes WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("no watched process {id}")))?;
    let current = NewProcess {
        name: row.name,
        pattern: row.pattern,
        port: row.port.map(i64::from),
        host: Some(row.host),
    };
    let p = patch::apply(&current, change).map_err(AppError::unprocessable)?;
    let new = &p.spec;
    validate_watch(&new.name, &new.pattern, new.port).map_err(AppError::unprocessable)?;
    let host = new
        .host
        .clone()
        .unwrap_or_else(|| ctx.state.config.host_name.clone());
    crate::metrics::validate_host(&host).map_err(AppError::unprocessable)?;
    sqlx::query!(
        "UPDATE watched_processes SET host = $2, name = $3, pattern = $4, port = $5,
             paused = coalesce($6, paused)
         WHERE id = $1",
        id,
        host,
        new.name,
        new.pattern,
        new.port.map(|p| p as i32),
        p.paused
    )
    .execute(pool)
    .await
    .map_err(|e| {
        conflict_as(e, || {
            format!("host {host} already watches a process named `{}`", new.name)
        })
    })?;
    let detail = serde_json::json!({"fields": p.fields});
    ctx.audit(&user, "services.process.update", &new.name, true, detail)
        .await
}

/// Changes a scrape target (operators), audited with the fields changed (never the token).
pub async fn patch_target(ctx: &RequestCtx, id: i64, change: Change) -> AppResult<()> {
    let user = ctx.require(Role::Operator).await?;
    let pool = &ctx.state.pool;
    let row = sqlx::query!(
        "SELECT name, url, host, interval_seconds, timeout_seconds, max_series, bearer_token
         FROM scrape_targets WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("no scrape target {id}")))?;
    let current = NewTarget {
        name: row.name,
        url: row.url,
        interval_seconds: row.interval_seconds.into(),
        timeout_seconds: row.timeout_seconds.into(),
        host: Some(row.host),
        max_series: Some(row.max_series.into()),
        bearer_token: row.bearer_token,
    };
    let p = patch::apply(&current, change).map_err(AppError::unprocessable)?;
    let new = &p.spec;
    validate_target(new).map_err(AppError::unprocessable)?;
    let host = new
        .host
        .clone()
        .unwrap_or_else(|| ctx.state.config.host_name.clone());
    sqlx::query!(
        "UPDATE scrape_targets SET name = $2, url = $3, host = $4, interval_seconds = $5,
             timeout_seconds = $6, max_series = coalesce($7, 10000), bearer_token = $8,
             paused = coalesce($9, paused), next_scrape_at = now()
         WHERE id = $1",
        id,
        new.name,
        new.url,
        host,
        new.interval_seconds as i32,
        new.timeout_seconds as i32,
        new.max_series.map(|m| m as i32),
        new.bearer_token,
        p.paused
    )
    .execute(pool)
    .await
    .map_err(|e| conflict_as(e, || format!("a scrape target named `{}` exists", new.name)))?;
    let detail = serde_json::json!({"fields": p.fields});
    ctx.audit(&user, "services.target.update", &new.name, true, detail)
        .await
}
