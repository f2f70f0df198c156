//! The JSON API under `/api/v1`, with its OpenAPI document generated from the handlers.

#[macro_use]
mod shapes;

pub mod alerts;
pub mod auth;
pub mod backups;
pub mod extract;
pub mod forecasts;
pub mod health;
pub mod incidents;
pub mod logs;
pub mod maintenance;
pub mod metrics;
pub mod services;
pub mod status;
pub mod tokens;

use app::error::AppError;
use app::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every error response: `{"error": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Opsdeck API", description = "JSON API of Opsdeck. Sign in with POST /api/v1/auth/login; the session cookie authenticates later calls."),
    modifiers(&SessionCookie),
    security(("session" = []))
)]
struct ApiDoc;

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "ingest_token",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .build(),
            ),
        );
    }
}

/// The API routes and the OpenAPI document describing them.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    // Agents send large batches: the ingest route has its own body limit.
    let ingest = OpenApiRouter::new()
        .routes(routes!(metrics::ingest))
        .routes(routes!(logs::ingest))
        .layer(axum::extract::DefaultBodyLimit::max(
            metrics::INGEST_BODY_LIMIT,
        ));
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ingest)
        .routes(routes!(metrics::hosts))
        .routes(routes!(metrics::latest))
        .routes(routes!(metrics::series))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(health::health))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::list_users, auth::create_user))
        .routes(routes!(auth::update_user))
        .routes(routes!(auth::audit))
        .routes(routes!(logs::search))
        .routes(routes!(logs::stats))
        .routes(routes!(logs::list_sources, logs::add_source))
        .routes(routes!(logs::delete_source, logs::patch_source))
        .routes(routes!(backups::list_targets, backups::create_target))
        .routes(routes!(backups::patch_target))
        .routes(routes!(backups::run))
        .routes(routes!(backups::list))
        .routes(routes!(backups::get_run))
        .routes(routes!(backups::verify))
        .routes(routes!(backups::restore))
        .routes(routes!(backups::get_restore))
        .routes(routes!(backups::list_restores))
        .routes(routes!(backups::download))
        .routes(routes!(backups::health))
        .routes(routes!(backups::maintenance))
        .routes(routes!(services::list_processes, services::add_process))
        .routes(routes!(services::delete_process, services::patch_process))
        .routes(routes!(services::list_targets, services::add_target))
        .routes(routes!(services::delete_target, services::patch_target))
        .routes(routes!(services::agent_watches))
        .routes(routes!(forecasts::list))
        .routes(routes!(alerts::list_channels, alerts::add_channel))
        .routes(routes!(alerts::delete_channel, alerts::patch_channel))
        .routes(routes!(alerts::test_channel))
        .routes(routes!(alerts::list_notifications))
        .routes(routes!(alerts::list_rules, alerts::add_rule))
        .routes(routes!(alerts::delete_rule, alerts::patch_rule))
        .routes(routes!(alerts::overview))
        .routes(routes!(alerts::ack))
        .routes(routes!(alerts::add_silence))
        .routes(routes!(alerts::end_silence))
        .routes(routes!(alerts::list_checks, alerts::add_check))
        .routes(routes!(alerts::delete_check, alerts::patch_check))
        .routes(routes!(maintenance::list, maintenance::open))
        .routes(routes!(maintenance::end))
        .routes(routes!(incidents::list))
        .routes(routes!(incidents::get))
        .routes(routes!(incidents::note))
        .routes(routes!(incidents::ack))
        .routes(routes!(incidents::assign))
        .routes(routes!(incidents::close))
        .routes(routes!(incidents::postmortem))
        .routes(routes!(incidents::annotate, incidents::annotations))
        .routes(routes!(incidents::publish))
        .routes(routes!(status::status_json))
        .split_for_parts();
    let mut doc = doc;
    complete_responses(&mut doc);
    let doc_json = std::sync::Arc::new(doc.clone());
    let router = router.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc_json.clone();
            async move { Json((*doc).clone()) }
        }),
    );
    let router = router.route("/metrics", get(metrics::prometheus));
    let router = router.route("/status", get(status::status_html));
    (router, doc)
}

/// Operations anyone may call without a session.
const PUBLIC_OPERATIONS: &[&str] = &[
    "/api/v1/health",
    "/api/v1/auth/login",
    "/api/v1/auth/logout",
    "/api/v1/status",
];

/// What is sent to create a thing, flattened into what is listed of it: `RuleSpec` into
/// `RuleInfo`, `NewCheck` into `CheckInfo`.
const FLATTENED: [&str; 2] = ["RuleSpec", "NewCheck"];

/// Documents, on every operation, the error answers any of them can give besides its own:
/// a malformed path, query or body (400), no session (401), a role or CSRF refusal (403), an
/// unknown id (404), a body too large or with a wrong field (413, 422)
/// and the database being unreachable (503). Public operations are marked as needing no session,
/// and the schemas in [`FLATTENED`] allow the extra fields that a listing adds to them (a rule or
/// check sent with an unknown field is still refused with a 422 naming it).
fn complete_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, SecurityRequirement};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC_OPERATIONS.contains(&path.as_str());
        let has_path_params = path.contains('{');
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let token = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = op.request_body.is_some();
            let mut add = |code: &str, description: &str| {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| error(description).into());
            };
            add(
                "400",
                "Malformed path, query string or body; the message names the problem",
            );
            if !public {
                add("401", "Not signed in (or no valid token)");
                add("403", "Not allowed for this role, or a cross-site request");
            }
            if has_path_params {
                add("404", "No such item");
            }
            if has_body {
                add("413", "Body too large");
                add("422", "A field is missing or wrong; the message names it");
            }
            add("503", "The database is unavailable: retry later");
            if public {
                op.security = Some(vec![SecurityRequirement::default()]);
            } else if !token {
                op.security = None; // the document-wide session requirement
            }
        }
    }
    if let Some(components) = doc.components.as_mut() {
        for flattened in FLATTENED {
            if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(spec))) =
                components.schemas.get_mut(flattened)
            {
                spec.additional_properties = None;
            }
        }
    }
}

/// Unknown paths under `/api` answer JSON, not the HTML 404 page.
pub async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(format!("no API endpoint at {}", uri.path()))
}
