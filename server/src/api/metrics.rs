//! Metrics over HTTP: agents push batches, scripts read hosts, latest values and series, and
//! Prometheus scrapes `/metrics`.

use super::extract::{ApiJson, ApiQuery};
use super::ErrorBody;
use app::auth::service::RequestCtx;
use app::auth::{tokens, Role};
use app::error::AppError;
use app::metrics::{
    parse_selector, parse_time_param, service, HostInfo, IngestBatch, IngestOutcome, LatestValue,
    SeriesResponse,
};
use app::runtime::telemetry::escape_label;
use app::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::fmt::Write;
use utoipa::IntoParams;

/// Largest ingest body: 50,000 samples of about 100 bytes, with room.
pub const INGEST_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Who calls an endpoint open to scripts as well as users: a token of scope `ingest` when the
/// request carries one (`token <name>`, `true`), else a signed-in user with at least `role`.
pub(crate) async fn session_or_token(
    ctx: &RequestCtx,
    headers: &HeaderMap,
    role: Role,
) -> Result<(String, bool), AppError> {
    match bearer(headers) {
        Some(_) => {
            let name = tokens::verify(&ctx.state.pool, bearer(headers), "ingest").await?;
            Ok((format!("token {name}"), true))
        }
        None => Ok((ctx.require(role).await?.username, false)),
    }
}

/// Store a batch of samples from an agent (bearer token of scope `ingest`). All or nothing;
/// re-sent samples are counted as duplicates and never stored twice.
#[utoipa::path(
    post,
    path = "/api/v1/ingest/metrics",
    tag = "metrics",
    request_body = IngestBatch,
    security(("ingest_token" = [])),
    responses(
        (status = 200, description = "Stored", body = IngestOutcome),
        (status = 400, description = "Malformed or out-of-range input; nothing stored", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
    )
)]
pub async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    batch: Result<ApiJson<IngestBatch>, AppError>,
) -> Result<Json<IngestOutcome>, AppError> {
    // The token first: a caller without one learns nothing about what its body should be.
    tokens::verify(&state.pool, bearer(&headers), "ingest").await?;
    let ApiJson(batch) = batch?;
    let outcome = service::ingest(&state, &batch, service::Origin::Agent).await?;
    Ok(Json(outcome))
}

/// Hosts that have reported, with first and last time seen.
#[utoipa::path(
    get,
    path = "/api/v1/hosts",
    tag = "metrics",
    responses(
        (status = 200, description = "Hosts", body = Vec<HostInfo>),
    )
)]
pub async fn hosts(ctx: RequestCtx) -> Result<Json<Vec<HostInfo>>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(service::hosts(&ctx.state.pool).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LatestQuery {
    /// Only this host.
    pub host: Option<String>,
}

/// The latest value of every metric of every host.
#[utoipa::path(
    get,
    path = "/api/v1/monitoring/metrics",
    tag = "metrics",
    params(LatestQuery),
    responses(
        (status = 200, description = "Latest values", body = Vec<LatestValue>),
    )
)]
pub async fn latest(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<LatestQuery>,
) -> Result<Json<Vec<LatestValue>>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(
        service::latest(&ctx.state.pool, q.host.as_deref()).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// A host; omitted: every host (a fleet overview, at most 1,000,000 points in all).
    pub host: Option<String>,
    /// A metric name, optionally with labels: `disk_used_percent{mount="/"}`.
    pub metric: String,
    /// RFC 3339, Unix seconds, `now` or `now-6h` (default `now-1h`).
    pub from: Option<String>,
    /// Same forms (default `now`).
    pub to: Option<String>,
    /// Most points per series (default 1000, at most 11000).
    pub points: Option<i64>,
}

/// A time series with avg, min and max per point, from the coarsest tier that gives enough points.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/series",
    tag = "metrics",
    params(SeriesQuery),
    responses(
        (status = 200, description = "One entry per matching series", body = SeriesResponse),
        (status = 400, description = "Bad selector, time or points", body = ErrorBody),
    )
)]
pub async fn series(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Json<SeriesResponse>, AppError> {
    ctx.require(Role::Viewer).await?;
    let now = time::OffsetDateTime::now_utc();
    let selector =
        parse_selector(&q.metric).map_err(|e| AppError::bad_request(format!("metric: {e}")))?;
    let from = parse_time_param(q.from.as_deref().unwrap_or("now-1h"), now)
        .map_err(|e| AppError::bad_request(format!("from: {e}")))?;
    let to = parse_time_param(q.to.as_deref().unwrap_or("now"), now)
        .map_err(|e| AppError::bad_request(format!("to: {e}")))?;
    let points = q.points.unwrap_or(service::DEFAULT_POINTS);
    Ok(Json(
        service::series_of(
            &ctx.state.reads,
            q.host.as_deref(),
            &selector,
            from,
            to,
            points,
            app::metrics::Retention::from(&*ctx.state.config),
        )
        .await?,
    ))
}

/// Prometheus text exposition: the latest host values (labelled by host) and this process's
/// request metrics. Needs a `metrics` token unless `/metrics` is configured public.
pub async fn prometheus(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !state.config.metrics_public {
        tokens::verify(&state.pool, bearer(&headers), "metrics").await?;
    }
    let mut values = service::latest(&state.pool, None).await?;
    values.sort_by(|a, b| (&a.metric, &a.host, &a.labels).cmp(&(&b.metric, &b.host, &b.labels)));
    let mut out = String::with_capacity(64 * values.len() + 4096);
    let mut current = "";
    for v in &values {
        if v.metric != current {
            let _ = writeln!(
                out,
                "# HELP {} Latest value reported by each host.",
                v.metric
            );
            let _ = writeln!(out, "# TYPE {} gauge", v.metric);
            current = &v.metric;
        }
        let mut labels = format!("host=\"{}\"", escape_label(&v.host));
        for (k, val) in &v.labels {
            if k != "host" {
                let _ = write!(labels, ",{k}=\"{}\"", escape_label(val));
            }
        }
        let _ = writeln!(
            out,
            "{}{{{labels}}} {} {}",
            v.metric,
            v.value,
            v.ts.unix_timestamp() * 1000 + i64::from(v.ts.millisecond())
        );
    }
    // Which database these series are stored in: a scrape of this endpoint by an Opsdeck on the
    // same database keeps only the process's own metrics below, not copies of the series above.
    let store = app::db::identity(&state.pool).await?;
    let _ = writeln!(
        out,
        "# HELP {info} The database this Opsdeck stores its series in.\n# TYPE {info} gauge\n{info}{{store=\"{store}\"}} 1",
        info = app::services::scrape::STORE_INFO
    );
    state.runtime.telemetry.render(&mut out);
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
