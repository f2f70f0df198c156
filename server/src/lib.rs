//! The `opsdeck` process: configuration, database pool and migrations, router assembly,
//! serving with graceful shutdown, and the CLI subcommands.

pub mod agent;
pub mod alerts;
pub mod api;
pub mod assets;
pub mod cli;
pub mod config;
pub mod jobs;
pub mod logs;
pub mod metrics;
pub mod middleware;
pub mod outbound;
pub mod services;
pub mod tasks;

use app::config::Config;
use app::state::AppState;
use app::{shell, App};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

pub const SESSION_COOKIE: &str = "opsdeck_session";

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Large allocations (argon2's 19 MiB per hash, big query results) are made with `mmap` and
/// given back to the system when freed, instead of staying in the allocator's arenas: without
/// this, a few dozen sign-ins grew the process by hundreds of MB for good. Fewer arenas keep
/// the idle process small as well.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called once, before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn,tower_http=warn"));
    // Colours only for a terminal: a log file or the journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

pub fn leptos_options(listen: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("opsdeck")
        .site_pkg_dir("pkg")
        .site_root("target/site")
        .site_addr(listen)
        .env(leptos::config::Env::PROD)
        .build()
}

/// The pool of this process: statements time out after `statement_timeout`.
pub async fn connect(config: &Config) -> Result<PgPool, sqlx::Error> {
    app::db::pool_options(config)
        .connect_with(app::db::connect_options(config)?)
        .await
}

pub fn session_store(pool: &PgPool) -> PostgresStore {
    PostgresStore::new(pool.clone())
        .with_schema_name("public")
        .and_then(|s| s.with_table_name("sessions"))
        .unwrap_or_else(|_| unreachable!("constant identifiers are valid"))
}

/// The whole application: JSON API, pages, server functions, assets and the layers around them.
pub fn build_router(state: AppState) -> Router {
    let config = state.config.clone();
    let (api, _) = api::router();

    let session_layer = SessionManagerLayer::new(session_store(&state.pool))
        .with_name(SESSION_COOKIE)
        .with_secure(config.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        // Idle expiry slides: `current_user` writes the session again at most once a minute.
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            config.session_idle_minutes,
        )));

    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    let app_fn = {
        let options = state.leptos_options.clone();
        move || shell(options.clone())
    };
    let render_not_found =
        leptos_axum::render_app_to_stream_with_context(context.clone(), app_fn.clone());

    let pages = Router::new()
        .leptos_routes_with_context(&state, routes, context, app_fn)
        .route("/pkg/{*file}", get(assets::serve))
        .route("/favicon.svg", get(assets::serve))
        .fallback(move |req: Request| {
            let render = render_not_found.clone();
            async move {
                if req.uri().path().starts_with("/api/") {
                    return api::not_found(req.uri().clone()).await.into_response();
                }
                let mut res = render(req).await;
                if res.status() == StatusCode::OK {
                    *res.status_mut() = StatusCode::NOT_FOUND;
                }
                res
            }
        });

    Router::new()
        .merge(api)
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::require_login_for_pages,
        ))
        .layer(session_layer)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::per_session_limit,
        ))
        .layer(axum::middleware::from_fn(middleware::csrf))
        .layer(DefaultBodyLimit::max(api::extract::JSON_BODY_LIMIT))
        // No request holds a worker forever: 503 after REQUEST_TIMEOUT. Long work (backups,
        // restores, imports) runs in jobs; a test restore asked for by a request finishes in its
        // own task even when the request is cut off.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(|_| -> Response {
            tracing::error!("a request handler panicked");
            app::error::AppError::Internal.into_response()
        }))
        // Pages and JSON go out compressed; embedded assets are already (they carry Content-Encoding).
        .layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::CompressionLevel::Fastest),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = build_router(state);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
