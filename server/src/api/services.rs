//! Services API: watched processes and Prometheus scrape targets (operators and admins change
//! them; everyone signed in reads them), and the watch list agents fetch with their token.

use super::extract::ApiQuery;
use super::metrics::bearer;
use super::ErrorBody;
use app::auth::tokens;
use app::error::AppError;
use app::services::{service, NewProcess, NewTarget, ProcessInfo, TargetInfo};
use app::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

api_list!(
    /// Watched processes with their state (up/down, since when, CPU, RSS, port, restarts).
    list_processes: "/api/v1/processes", "services", Viewer, Vec<ProcessInfo>,
    |ctx| service::list_processes(&ctx.state.pool, time::OffsetDateTime::now_utc()).await?
);

api_create!(
    /// Watch a process: by its name or a part of its command line, optionally with a port that
    /// should be listening; `host` defaults to the server's own.
    add_process: "/api/v1/processes", "services", NewProcess -> Created,
    [(status = 409, description = "That host already watches a process of that name", body = ErrorBody)],
    |ctx, new| Created { id: service::add_process(&ctx, &new).await? }
);

api_delete!(
    /// Stop watching a process (its stored samples stay).
    delete_process: "/api/v1/processes/{id}", "services", "id": i64, "Watched process id",
    "No longer watched", |ctx, id| service::delete_process(&ctx, id).await?
);

api_patch!(
    /// Change a watched process: any field of its declaration, or `{"paused": true}` (no longer
    /// sampled, its samples kept).
    patch_process: "/api/v1/processes/{id}", "services", "id": i64, "Watched process id",
    |ctx, id, change| app::services::edit::patch_process(&ctx, id, change).await?
);

api_list!(
    /// Scrape targets with the state of their last scrape (up/down, last success, duration, error).
    list_targets: "/api/v1/scrape-targets", "services", Viewer, Vec<TargetInfo>,
    |ctx| service::list_targets(&ctx.state.pool).await?
);

api_create!(
    /// Scrape a Prometheus text endpoint every `interval_seconds` (default 15, timeout default 10).
    add_target: "/api/v1/scrape-targets", "services", NewTarget -> Created,
    [(status = 409, description = "A target of that name exists", body = ErrorBody)],
    |ctx, new| Created { id: service::add_target(&ctx, &new).await? }
);

api_delete!(
    /// Stop scraping a target (its stored samples stay).
    delete_target: "/api/v1/scrape-targets/{id}", "services", "id": i64, "Scrape target id",
    "Removed", |ctx, id| service::delete_target(&ctx, id).await?
);

api_patch!(
    /// Change a scrape target: any field of its declaration, or `{"paused": true}` (not
    /// scraped until resumed). Its bearer token stays unless a new one (or `null`) is given.
    patch_target: "/api/v1/scrape-targets/{id}", "services", "id": i64, "Scrape target id",
    |ctx, id, change| app::services::edit::patch_target(&ctx, id, change).await?
);

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
