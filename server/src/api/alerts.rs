//! Alerts API: notification channels (admins), rules (operators and admins change them),
//! current states and history, silences, acknowledgements, and HTTP health checks.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::services::Created;
use super::ErrorBody;
use app::alerts::{
    service, AlertsOverview, ChannelInfo, CheckInfo, NewChannel, NewCheck, RuleInfo, RuleSpec,
};
use app::auth::service::RequestCtx;
use app::auth::Role;
use app::error::AppError;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Notification channels; a webhook's URL is shown redacted (scheme and host).
#[utoipa::path(get, path = "/api/v1/alerts/channels", tag = "alerts", responses(
    (status = 200, description = "Channels", body = Vec<ChannelInfo>),
    (status = 401, description = "Not signed in", body = ErrorBody),
    (status = 403, description = "Not an admin", body = ErrorBody),
))]
pub async fn list_channels(ctx: RequestCtx) -> Result<Json<Vec<ChannelInfo>>, AppError> {
    ctx.require(Role::Admin).await?;
    Ok(Json(service::list_channels(&ctx.state.pool).await?))
}

/// Add a channel, or replace the one with the same name: `{"name","kind":"webhook","url"}`
/// (optional `"format":"slack"|"discord"`) or `{"name","kind":"email","to"}`.
#[utoipa::path(post, path = "/api/v1/alerts/channels", tag = "alerts", request_body = NewChannel, responses(
    (status = 201, description = "Saved", body = Created),
    (status = 401, description = "Not signed in", body = ErrorBody),
    (status = 403, description = "Not an admin", body = ErrorBody),
    (status = 422, description = "Bad name, kind, URL or address", body = ErrorBody),
))]
pub async fn add_channel(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<NewChannel>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let id = service::upsert_channel(&ctx, &body).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Delete a channel (rules that name it stop notifying it).
#[utoipa::path(delete, path = "/api/v1/alerts/channels/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Channel id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
))]
pub async fn delete_channel(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    service::delete_channel(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queue a test notification to a channel; its delivery shows in the channel's `last_status`.
#[utoipa::path(post, path = "/api/v1/alerts/channels/{id}/test", tag = "alerts",
    params(("id" = i64, Path, description = "Channel id")),
    responses(
        (status = 202, description = "Queued", body = Created),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
))]
pub async fn test_channel(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let id = service::test_channel(&ctx, id).await?;
    Ok((StatusCode::ACCEPTED, Json(Created { id })))
}

/// Every rule with its firing and pending counts.
#[utoipa::path(get, path = "/api/v1/alerts/rules", tag = "alerts", responses(
    (status = 200, description = "Rules", body = Vec<RuleInfo>),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
pub async fn list_rules(ctx: RequestCtx) -> Result<Json<Vec<RuleInfo>>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(service::list_rules(&ctx.state.pool).await?))
}

/// Add a rule, or replace the one with the same name (its state starts over). Kinds: `metric`
/// (`metric`, `host`, `op`, `threshold`, `clear_threshold`), `health` (`check`), `log`
/// (`condition`: `error_rate`, `avg_response_time` or `query_count` with `query`;
/// `threshold`, `service`, `window_seconds`), `forecast` (`days`, `metric`, `host`), `backup`
/// (`hours`, `target`, `verified`). All take `for_seconds`, `repeat_seconds`, `notify`,
/// `severity`, `enabled`.
#[utoipa::path(post, path = "/api/v1/alerts/rules", tag = "alerts", request_body = RuleSpec, responses(
    (status = 201, description = "Saved", body = Created),
    (status = 401, description = "Not signed in", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 422, description = "A field is missing or wrong; the message names it", body = ErrorBody),
))]
pub async fn add_rule(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<RuleSpec>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let id = service::upsert_rule(&ctx, &body).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Delete a rule (its history stays).
#[utoipa::path(delete, path = "/api/v1/alerts/rules/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
))]
pub async fn delete_rule(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    service::rule_action(&ctx, id, "delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// How many history entries (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// What is pending or firing now (firing first), the history of firings and resolutions
/// (newest first) and the active silences.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertsQuery), responses(
    (status = 200, description = "States and history", body = AlertsOverview),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
pub async fn overview(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> Result<Json<AlertsOverview>, AppError> {
    ctx.require(Role::Viewer).await?;
    let limit = q.limit.unwrap_or(100).clamp(0, 1000);
    Ok(Json(service::overview(&ctx.state.pool, limit).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub rule_id: i64,
    pub instance: String,
}

/// Acknowledge a firing alert: no more reminders until it resolves.
#[utoipa::path(post, path = "/api/v1/alerts/ack", tag = "alerts", request_body = Ack, responses(
    (status = 204, description = "Acknowledged"),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "Not pending or firing", body = ErrorBody),
))]
pub async fn ack(ctx: RequestCtx, ApiJson(body): ApiJson<Ack>) -> Result<StatusCode, AppError> {
    service::instance_action(&ctx, body.rule_id, &body.instance, "ack").await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// The rule silenced (all rules when absent).
    #[serde(default)]
    pub rule_id: Option<i64>,
    /// A host pattern (`web-*`; any host when absent).
    #[serde(default)]
    pub host: Option<String>,
    /// How long, in seconds.
    pub seconds: i64,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Silence notifications (states and history go on) until an end time.
#[utoipa::path(post, path = "/api/v1/alerts/silences", tag = "alerts", request_body = NewSilence, responses(
    (status = 201, description = "Silenced", body = Created),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 422, description = "Bad length or comment, or no such rule", body = ErrorBody),
))]
pub async fn add_silence(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<NewSilence>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let id = service::add_silence(
        &ctx,
        body.rule_id,
        body.host.as_deref().filter(|h| !h.is_empty()),
        time::Duration::seconds(body.seconds),
        body.comment.as_deref().unwrap_or_default(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// End a silence now.
#[utoipa::path(delete, path = "/api/v1/alerts/silences/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Silence id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No active silence with that id", body = ErrorBody),
))]
pub async fn end_silence(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    service::end_silence(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Health checks: state (up, down, unknown), latency, uptime over 24 h, 7 and 30 days.
#[utoipa::path(get, path = "/api/v1/checks", tag = "alerts", responses(
    (status = 200, description = "Checks", body = Vec<CheckInfo>),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
pub async fn list_checks(ctx: RequestCtx) -> Result<Json<Vec<CheckInfo>>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(service::list_checks(&ctx.state.pool).await?))
}

/// Add a check, or replace the one with the same name:
/// `{"name","url","interval_seconds","timeout_seconds","expected_status"}` (optional
/// `expected_body`: text the body must contain).
#[utoipa::path(post, path = "/api/v1/checks", tag = "alerts", request_body = NewCheck, responses(
    (status = 201, description = "Saved", body = Created),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 422, description = "Bad name, URL, interval, timeout or status", body = ErrorBody),
))]
pub async fn add_check(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<NewCheck>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let id = service::upsert_check(&ctx, &body).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Delete a check and its results.
#[utoipa::path(delete, path = "/api/v1/checks/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Check id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such check", body = ErrorBody),
))]
pub async fn delete_check(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    service::delete_check(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
