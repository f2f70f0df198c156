//! The state every handler and server function shares: pool, Leptos options, configuration.

use crate::config::Config;
use crate::metrics::service::SeriesCache;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub started_at: Instant,
    pub series_cache: Arc<SeriesCache>,
}

impl AppState {
    pub fn new(leptos_options: LeptosOptions, pool: PgPool, config: Config) -> Self {
        Self {
            leptos_options,
            pool,
            config: Arc::new(config),
            started_at: Instant::now(),
            series_cache: Arc::new(SeriesCache::default()),
        }
    }
}
