//! The state every handler, server function and background task shares: the database, the
//! configuration and the process's runtime (caches, gates, counters). It depends on nothing
//! above it: no product area.

use crate::config::Config;
use crate::db::Reads;
use crate::runtime::Runtime;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    /// The primary: every write, and the reads that must see them at once.
    pub pool: PgPool,
    /// Where heavy reads go (bounded, so they never take the connections the rest needs).
    pub reads: Reads,
    pub config: Arc<Config>,
    pub started_at: Instant,
    pub runtime: Arc<Runtime>,
}

impl AppState {
    pub fn new(leptos_options: LeptosOptions, pool: PgPool, config: Config) -> Self {
        let reads = Reads::for_config(pool.clone(), &config);
        Self {
            leptos_options,
            runtime: Arc::new(Runtime::new(&config)),
            pool,
            reads,
            config: Arc::new(config),
            started_at: Instant::now(),
        }
    }
}
