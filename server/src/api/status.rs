//! The public status page, when `status_page` is on: `GET /status` (HTML) and
//! `GET /api/v1/status` (JSON), no sign-in. It shows only the checks marked public, under their
//! public names, and incidents given a public title. Anyone may ask, so the requests of one
//! second share one answer: a flood costs one computation a second per process.

use super::ErrorBody;
use app::alerts::status::{self, StatusPage};
use app::error::AppError;
use app::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

async fn page(state: &AppState) -> Result<StatusPage, AppError> {
    if !state.config.status_page {
        return Err(AppError::not_found(
            "the status page is off (status_page = true, or OPSDECK_STATUS_PAGE=true, turns it on)",
        ));
    }
    state
        .runtime
        .answers
        .shared_for_a_second(
            "status_page",
            app::alerts::service::status_page(
                &state.pool,
                &state.config.status_page_title,
                time::OffsetDateTime::now_utc(),
            ),
        )
        .await
}

/// The public status: the checks marked public with their state and 90 daily uptime cells
/// (UTC days, maintenance excluded), and open incidents with their public title. 404 while the
/// status page is off.
#[utoipa::path(get, path = "/api/v1/status", tag = "status", responses(
    (status = 200, description = "The status", body = StatusPage),
    (status = 404, description = "The status page is off", body = ErrorBody),
))]
pub async fn status_json(State(state): State<AppState>) -> Result<Json<StatusPage>, AppError> {
    Ok(Json(page(&state).await?))
}

/// `/status`: the same as a page, with no script.
pub async fn status_html(State(state): State<AppState>) -> Response {
    match page(&state).await {
        Ok(p) => (
            [(header::CACHE_CONTROL, "public, max-age=10")],
            Html(status::html(&p)),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
