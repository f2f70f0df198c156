//! Services API: watched processes and Prometheus scrape targets (operators and admins change
//! them; everyone signed in reads them), and the watch list agents fetch with their token.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::metrics::bearer;
use super::ErrorBody;
use app::auth::service::RequestCtx;
use app::auth::{tokens, Role};
use app::error::AppError;
use app::services::{service, NewProcess, NewTarget, ProcessInfo, TargetInfo};
use app::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

/// Watched processes with their state (up/down, since when, CPU, RSS, port, restarts).
#[utoipa::path(get, path = "/api/v1/processes", tag = "services", responses(
    (status = 200, description = "Watched processes", body = Vec<ProcessInfo>),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
pub async fn list_processes(ctx: RequestCtx) -> Result<Json<Vec<ProcessInfo>>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(
        service::list_processes(&ctx.state.pool, time::OffsetDateTime::now_utc()).await?,
    ))
}

/// Watch a process: by its name or a part of its command line, optionally with a port that
/// should be listening; `host` defaults to the server's own.
#[utoipa::path(post, path = "/api/v1/processes", tag = "services", request_body = NewProcess, responses(
    (status = 201, description = "Watched", body = Created),
    (status = 401, description = "Not signed in", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 409, description = "That host already watches a process of that name", body = ErrorBody),
    (status = 422, description = "Bad name, pattern, port or host", body = ErrorBody),
))]
pub async fn add_process(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<NewProcess>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let id = service::add_process(&ctx, &body).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Stop watching a process (its stored samples stay).
#[utoipa::path(delete, path = "/api/v1/processes/{id}", tag = "services",
    params(("id" = i64, Path, description = "Watched process id")),
    responses(
        (status = 204, description = "No longer watched"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such process", body = ErrorBody),
    ))]
pub async fn delete_process(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    service::delete_process(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Scrape targets with the state of their last scrape (up/down, last success, duration, error).
#[utoipa::path(get, path = "/api/v1/scrape-targets", tag = "services", responses(
    (status = 200, description = "Scrape targets", body = Vec<TargetInfo>),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
pub async fn list_targets(ctx: RequestCtx) -> Result<Json<Vec<TargetInfo>>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(service::list_targets(&ctx.state.pool).await?))
}

/// Scrape a Prometheus text endpoint every `interval_seconds` (default 15, timeout default 10).
#[utoipa::path(post, path = "/api/v1/scrape-targets", tag = "services", request_body = NewTarget, responses(
    (status = 201, description = "Added", body = Created),
    (status = 401, description = "Not signed in", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 409, description = "A target of that name exists", body = ErrorBody),
    (status = 422, description = "Bad name, URL, interval, timeout or limit", body = ErrorBody),
))]
pub async fn add_target(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<NewTarget>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let id = service::add_target(&ctx, &body).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Stop scraping a target (its stored samples stay).
#[utoipa::path(delete, path = "/api/v1/scrape-targets/{id}", tag = "services",
    params(("id" = i64, Path, description = "Scrape target id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
    ))]
pub async fn delete_target(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    service::delete_target(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WatchQuery {
    /// The agent's host name.
    pub host: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Watch {
    pub name: String,
    pub pattern: String,
    pub port: Option<u16>,
}

/// The processes an agent watches on its host (with an ingest token).
#[utoipa::path(get, path = "/api/v1/ingest/processes", tag = "services", params(WatchQuery),
    security(("ingest_token" = [])),
    responses(
        (status = 200, description = "The host's watches", body = Vec<Watch>),
        (status = 400, description = "Bad host name", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
    ))]
pub async fn agent_watches(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<ApiQuery<WatchQuery>, AppError>,
) -> Result<Json<Vec<Watch>>, AppError> {
    tokens::verify(&state.pool, bearer(&headers), "ingest").await?;
    let ApiQuery(q) = q?;
    app::metrics::validate_host(&q.host).map_err(AppError::BadRequest)?;
    Ok(Json(
        service::watches_for(&state.pool, &q.host)
            .await?
            .into_iter()
            .map(|(name, pattern, port)| Watch {
                name,
                pattern,
                port,
            })
            .collect(),
    ))
}
