//! Alerts API: notification channels (admins), rules (operators and admins change them),
//! current states and history, silences, acknowledgements, and HTTP health checks.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::services::Created;
use super::ErrorBody;
use app::alerts::{
    service, AlertsOverview, ChannelInfo, CheckInfo, NewChannel, NewCheck, NotificationLine,
    RuleInfo, RuleSpec,
};
use app::auth::service::RequestCtx;
use app::auth::Role;
use app::error::AppError;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

api_list!(
    /// Notification channels; a webhook's URL is shown redacted (scheme and host).
    list_channels: "/api/v1/alerts/channels", "alerts", Admin, Vec<ChannelInfo>,
    |ctx| service::list_channels(&ctx.state.pool).await?
);

api_create!(
    /// Add a channel, or replace the one with the same name: `{"name","kind":"webhook","url"}`
    /// (optional `"format":"slack"|"discord"`) or `{"name","kind":"email","to"}`; grouping:
    /// `group_wait_seconds` (30), `group_interval_seconds` (300), `max_per_hour` (20).
    add_channel: "/api/v1/alerts/channels", "alerts", NewChannel -> Created,
    [(status = 422, description = "Bad name, kind, URL or address", body = ErrorBody)],
    |ctx, new| Created { id: service::upsert_channel(&ctx, &new).await? }
);

api_delete!(
    /// Delete a channel (rules that name it stop notifying it).
    delete_channel: "/api/v1/alerts/channels/{id}", "alerts", "id": i64, "Channel id", "Deleted",
    |ctx, id| service::delete_channel(&ctx, id).await?
);

api_patch!(
    /// Change a channel: any field of its declaration, or `{"paused": true}` to send it nothing
    /// for now. Rules that name it follow a rename.
    patch_channel: "/api/v1/alerts/channels/{id}", "alerts", "id": i64, "Channel id",
    |ctx, id, change| service::patch_channel(&ctx, id, change).await?
);

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

api_list!(
    /// The last 100 notices through the channels' outboxes, newest first: `waiting` (and what
    /// for: the group wait, the group interval, the hourly cap), `sent` in which message,
    /// `suppressed` (its host is silent or its own alert fires) or `dropped` (channel paused).
    list_notifications: "/api/v1/alerts/notifications", "alerts", Operator, Vec<NotificationLine>,
    |ctx| service::notification_log(&ctx.state.pool, time::OffsetDateTime::now_utc(), 100).await?
);

api_list!(
    /// Every rule with its firing and pending counts.
    list_rules: "/api/v1/alerts/rules", "alerts", Viewer, Vec<RuleInfo>,
    |ctx| service::list_rules(&ctx.state.pool).await?
);

api_create!(
    /// Add a rule, or replace the one with the same name (its state starts over). Kinds: `metric`
    /// (`metric`, `host`, `op`, `threshold`, `clear_threshold`), `health` (`check`), `log`
    /// (`condition`: `error_rate`, `avg_response_time` or `query_count` with `query`;
    /// `threshold`, `service`, `window_seconds`), `forecast` (`days`, `metric`, `host`), `backup`
    /// (`hours`, `target`, `verified`), `log_anomaly` (`service`, `condition`: `error_count` or
    /// `error_rate`, `factor`, `min_errors`, `window_seconds`), `host` (`host`, `threshold`:
    /// seconds without a sample, 3 intervals when absent). All take `for_seconds`, `repeat_seconds`, `notify`,
    /// `severity`, `enabled`.
    add_rule: "/api/v1/alerts/rules", "alerts", RuleSpec -> Created, [],
    |ctx, new| Created { id: service::upsert_rule(&ctx, &new).await? }
);

api_delete!(
    /// Delete a rule (its history stays).
    delete_rule: "/api/v1/alerts/rules/{id}", "alerts", "id": i64, "Rule id", "Deleted",
    |ctx, id| service::rule_action(&ctx, id, "delete").await?
);

api_patch!(
    /// Change a rule: any field of its declaration, or `{"paused": true}` (the same as
    /// `"enabled": false`). Its states start over.
    patch_rule: "/api/v1/alerts/rules/{id}", "alerts", "id": i64, "Rule id",
    |ctx, id, change| service::patch_rule(&ctx, id, change).await?
);

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

api_delete!(
    /// End a silence now.
    end_silence: "/api/v1/alerts/silences/{id}", "alerts", "id": i64, "Silence id", "Ended",
    |ctx, id| service::end_silence(&ctx, id).await?
);

api_list!(
    /// Health checks: state (up, down, unknown), latency, uptime over 24 h, 7 and 30 days.
    list_checks: "/api/v1/checks", "alerts", Viewer, Vec<CheckInfo>,
    |ctx| service::list_checks(&ctx.state.pool).await?
);

api_create!(
    /// Add a check, or replace the one with the same name:
    /// `{"name","url","interval_seconds","timeout_seconds","expected_status"}` (optional
    /// `expected_body`: text the body must contain).
    add_check: "/api/v1/checks", "alerts", NewCheck -> Created,
    [(status = 422, description = "Bad name, URL, interval, timeout or status", body = ErrorBody)],
    |ctx, new| Created { id: service::upsert_check(&ctx, &new).await? }
);

api_delete!(
    /// Delete a check and its results.
    delete_check: "/api/v1/checks/{id}", "alerts", "id": i64, "Check id", "Deleted",
    |ctx, id| service::delete_check(&ctx, id).await?
);

api_patch!(
    /// Change a check: any field of its declaration, or `{"paused": true}` (not run, and not
    /// judged by health rules, until resumed).
    patch_check: "/api/v1/checks/{id}", "alerts", "id": i64, "Check id",
    |ctx, id, change| service::patch_check(&ctx, id, change).await?
);
