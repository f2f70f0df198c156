//! Capacity forecasts API.

use super::extract::ApiQuery;
use super::ErrorBody;
use app::auth::service::RequestCtx;
use app::auth::Role;
use app::error::AppError;
use app::forecast::ForecastRow;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// Only this host's resources.
    pub host: Option<String>,
}

/// Every host resource's forecast (CPU, memory, each disk, established connections), soonest
/// 80 % crossing first. Times are RFC 3339, null when not expected within a year or without
/// enough data (24 hours), with a `reason`.
#[utoipa::path(get, path = "/api/v1/forecasts", tag = "capacity", params(ForecastQuery), responses(
    (status = 200, description = "Forecasts", body = Vec<ForecastRow>),
    (status = 400, description = "Bad host name", body = ErrorBody),
))]
pub async fn list(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<ForecastQuery>,
) -> Result<Json<Vec<ForecastRow>>, AppError> {
    ctx.require(Role::Viewer).await?;
    if let Some(h) = &q.host {
        app::metrics::validate_host(h).map_err(AppError::BadRequest)?;
    }
    Ok(Json(
        app::forecast::service::forecasts(
            &ctx.state.pool,
            q.host.as_deref(),
            time::OffsetDateTime::now_utc(),
        )
        .await?,
    ))
}
