//! `GET /api/v1/health`: open to load balancers and uptime checkers; no secrets, no paths.

use super::extract::ApiQuery;
use app::health::{service, HealthReport};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// Add components (database reachability and latency, schema version), uptime and version.
    pub detailed: Option<bool>,
}

/// Opsdeck's health; 503 with `"status":"degraded"` when the database is unreachable.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "health",
    params(HealthQuery),
    responses(
        (status = 200, description = "Healthy", body = HealthReport),
        (status = 400, description = "Bad query string"),
        (status = 503, description = "Degraded: the database is unreachable", body = HealthReport),
    )
)]
pub async fn health(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> (StatusCode, Json<HealthReport>) {
    let report = service::check(&state, q.detailed.unwrap_or(false)).await;
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
