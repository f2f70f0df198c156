//! Maintenance windows API: list, open (operators, or a script's `ingest` token for one host),
//! end.

use super::extract::{ApiJson, ApiPath};
use super::metrics::session_or_token;
use super::services::Created;
use super::ErrorBody;
use app::alerts::maintenance::{MaintenanceWindow, NewWindow};
use app::alerts::service;
use app::auth::service::RequestCtx;
use app::auth::Role;
use app::error::AppError;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use time::OffsetDateTime;

/// Windows not over: one-off ones until they end, and every recurring one, with `active`.
#[utoipa::path(get, path = "/api/v1/maintenance", tag = "alerts", responses(
    (status = 200, description = "Windows", body = Vec<MaintenanceWindow>),
))]
pub async fn list(ctx: RequestCtx) -> Result<Json<Vec<MaintenanceWindow>>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(
        service::list_windows(&ctx.state.pool, OffsetDateTime::now_utc()).await?,
    ))
}

/// Open a window: `{"name","host"?,"checks"?,"rules"?,"start","end"}` or
/// `{"name",…,"schedule","duration_minutes","timezone"?}`. What it covers is evaluated and shown
/// but notifies no one, and a check's results in it do not count against its uptime. A token
/// of scope `ingest` (a deploy or backup script) may open a window over one named host.
#[utoipa::path(post, path = "/api/v1/maintenance", tag = "alerts", request_body = NewWindow,
    security(("session" = []), ("ingest_token" = [])),
    responses(
        (status = 201, description = "Opened", body = Created),
        (status = 401, description = "Neither a session nor a valid token", body = ErrorBody),
        (status = 403, description = "A viewer, or a token asking for more than one host", body = ErrorBody),
        (status = 422, description = "A bad field, named", body = ErrorBody),
    ))]
pub async fn open(
    ctx: RequestCtx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewWindow>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let (by, token) = session_or_token(&ctx, &headers, Role::Operator).await?;
    if token {
        let one_host = body
            .host
            .as_deref()
            .is_some_and(|h| !h.is_empty() && !h.contains('*'));
        if !one_host || !body.checks.is_empty() {
            return Err(AppError::forbidden(
                "a token may open a window over one named host only (no pattern, no checks)",
            ));
        }
    }
    let id = service::add_window_by(&ctx.state.pool, &body, &ctx.actor_named(&by)).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// End a window: one in force ends now (it stays listed in the audit log); one not begun, or
/// a recurring one, is deleted. A token may end only the windows it opened.
#[utoipa::path(delete, path = "/api/v1/maintenance/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Window id")),
    security(("session" = []), ("ingest_token" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Neither a session nor a valid token", body = ErrorBody),
        (status = 403, description = "A viewer", body = ErrorBody),
        (status = 404, description = "No such window (or not this token's)", body = ErrorBody),
    ))]
pub async fn end(
    ctx: RequestCtx,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    let (by, token) = session_or_token(&ctx, &headers, Role::Operator).await?;
    let only_by = token.then_some(by.as_str());
    service::end_window_by(&ctx.state.pool, id, only_by, &ctx.actor_named(&by)).await?;
    Ok(StatusCode::NO_CONTENT)
}
