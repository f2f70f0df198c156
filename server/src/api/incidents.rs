//! Incidents API: list, detail with timeline and context, notes, acknowledge, assign, close,
//! the post-mortem in Markdown; and annotations (deploys and other changes).

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::metrics::session_or_token;
use super::services::Created;
use super::ErrorBody;
use app::auth::service::RequestCtx;
use app::auth::Role;
use app::error::AppError;
use app::incidents::service::{self, NewAnnotation};
use app::incidents::{Annotation, Incident, IncidentDetail};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` or `closed` (the last 90 days); both when absent.
    pub status: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListQuery), responses(
    (status = 200, description = "Incidents", body = Vec<Incident>),
    (status = 400, description = "Bad status or limit", body = ErrorBody),
))]
pub async fn list(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Incident>>, AppError> {
    ctx.require(Role::Viewer).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::bad_request("limit: 1 to 1000"));
    }
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    Ok(Json(service::list(&ctx.state.pool, status, limit).await?))
}

/// One incident with its timeline (`events`, oldest first), notes and `context`: the logs of
/// its window against a day and a week before, new errors, slowest requests.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = IncidentDetail),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub async fn get(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<IncidentDetail>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(
        service::detail(&ctx.state, id, OffsetDateTime::now_utc()).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub text: String,
}

/// Add a note to an incident (open or closed).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")), request_body = NewNote,
    responses(
        (status = 201, description = "Noted"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 422, description = "Empty or too long", body = ErrorBody),
    ))]
pub async fn note(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewNote>,
) -> Result<StatusCode, AppError> {
    service::act(&ctx, id, "note", &body.text).await?;
    Ok(StatusCode::CREATED)
}

/// Acknowledge an incident: someone is on it.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/ack", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 204, description = "Acknowledged"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Already acknowledged", body = ErrorBody),
    ))]
pub async fn ack(ctx: RequestCtx, ApiPath(id): ApiPath<i64>) -> Result<StatusCode, AppError> {
    service::act(&ctx, id, "ack", "").await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// A user name; null or empty: nobody.
    pub user: Option<String>,
}

/// Assign an incident to a user (or to nobody).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/assign", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")), request_body = Assign,
    responses(
        (status = 204, description = "Assigned"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 422, description = "No such user", body = ErrorBody),
    ))]
pub async fn assign(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Assign>,
) -> Result<StatusCode, AppError> {
    service::act(&ctx, id, "assign", body.user.as_deref().unwrap_or("")).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    /// What happened and what was done.
    pub summary: String,
}

/// Close an incident with a summary.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/close", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")), request_body = Close,
    responses(
        (status = 204, description = "Closed"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Already closed", body = ErrorBody),
        (status = 422, description = "Empty or too long summary", body = ErrorBody),
    ))]
pub async fn close(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Close>,
) -> Result<StatusCode, AppError> {
    service::act(&ctx, id, "close", &body.summary).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// The title the public status page shows while the incident is open (no host names or
    /// URLs); null or empty: not shown there.
    pub title: Option<String>,
}

/// Show an incident on the public status page under a public title, or take it off.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/public", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")), request_body = Publish,
    responses(
        (status = 204, description = "Saved"),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub async fn publish(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Publish>,
) -> Result<StatusCode, AppError> {
    service::act(&ctx, id, "publish", body.title.as_deref().unwrap_or("")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The post-mortem: timeline, context figures and notes, in Markdown (times in UTC).
#[utoipa::path(get, path = "/api/v1/incidents/{id}/postmortem.md", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Markdown", content_type = "text/markdown", body = String),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub async fn postmortem(ctx: RequestCtx, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    ctx.require(Role::Viewer).await?;
    let md = service::postmortem(&ctx.state, id).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"incident-{id}.md\""),
            ),
        ],
        md,
    )
        .into_response())
}

/// Mark a moment on the charts (a deploy, a change): with a session (operators) or a token of
/// scope `ingest` (deploy scripts). `ts` defaults to now; no `host`: every host's charts.
#[utoipa::path(post, path = "/api/v1/annotations", tag = "incidents", request_body = NewAnnotation,
    security(("session" = []), ("ingest_token" = [])),
    responses(
        (status = 201, description = "Marked", body = Created),
        (status = 401, description = "Neither a session nor a valid token", body = ErrorBody),
        (status = 403, description = "A viewer's session", body = ErrorBody),
        (status = 422, description = "Bad text, tags, host or time", body = ErrorBody),
    ))]
pub async fn annotate(
    ctx: RequestCtx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewAnnotation>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let (by, _) = session_or_token(&ctx, &headers, Role::Operator).await?;
    let id = service::add_annotation(&ctx.state.pool, &body, &by).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnnotationQuery {
    /// RFC 3339, Unix seconds or `now-6h` (default: 7 days ago).
    pub from: Option<String>,
    /// Default: now.
    pub to: Option<String>,
    /// Only this host's (and every host's) annotations.
    pub host: Option<String>,
}

/// Annotations in a range, oldest first (at most 1,000).
#[utoipa::path(get, path = "/api/v1/annotations", tag = "incidents", params(AnnotationQuery), responses(
    (status = 200, description = "Annotations", body = Vec<Annotation>),
    (status = 400, description = "Bad time", body = ErrorBody),
))]
pub async fn annotations(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<AnnotationQuery>,
) -> Result<Json<Vec<Annotation>>, AppError> {
    ctx.require(Role::Viewer).await?;
    let now = OffsetDateTime::now_utc();
    let time =
        |s: Option<&str>, name: &str, default: OffsetDateTime| match s.filter(|s| !s.is_empty()) {
            Some(s) => app::metrics::parse_time_param(s, now)
                .map_err(|e| AppError::bad_request(format!("{name}: {e}"))),
            None => Ok(default),
        };
    let from = time(q.from.as_deref(), "from", now - time::Duration::days(7))?;
    let to = time(q.to.as_deref(), "to", now)?;
    let host = q.host.as_deref().filter(|h| !h.is_empty());
    Ok(Json(
        service::annotations(&ctx.state.pool, from, to, host).await?,
    ))
}
