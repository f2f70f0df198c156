//! The database as the product sees it: the pool every write and light read uses, and
//! [`Reads`], where heavy reads (searches over long ranges, the analytics, series of many
//! points) take a connection. Heavy reads take at most `max_connections −
//! reserved_connections` connections at once, so a flood of them never takes the connections
//! that sign-in, ingest, alerts and jobs need; beyond a bounded queue they are refused with a
//! 503. Every statement has a timeout (`statement_timeout`), set when a connection opens.

use crate::config::Config;
use crate::error::AppResult;
use crate::runtime::{Gate, Turn};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};
use std::sync::Arc;
use std::time::Duration;

/// How the pool's connections are opened: the configured URL with the statement timeout.
pub fn connect_options(config: &Config) -> Result<PgConnectOptions, sqlx::Error> {
    let opts: PgConnectOptions = config.database_url.expose().parse()?;
    Ok(opts.options([(
        "statement_timeout",
        format!("{}s", config.statement_timeout.secs()),
    )]))
}

/// The pool of one process (connections opened lazily, closed when idle).
pub fn pool_options(config: &Config) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
}

/// Where heavy reads take their connections.
#[derive(Clone)]
pub struct Reads {
    pool: PgPool,
    gate: Arc<Gate>,
}

/// A connection for a heavy read, with its turn at the gate.
pub struct HeavyConn {
    conn: PoolConnection<Postgres>,
    _turn: Turn,
}

impl std::ops::Deref for HeavyConn {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for HeavyConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Reads {
    /// Heavy reads on `pool`, at most `slots` at once, `slots × 16` more waiting.
    pub fn new(pool: PgPool, slots: usize) -> Self {
        Self {
            pool,
            gate: Arc::new(Gate::new(slots, slots * 16)),
        }
    }

    /// For the configured pool: `max_connections − reserved_connections` slots.
    pub fn for_config(pool: PgPool, config: &Config) -> Self {
        let slots = config
            .max_connections
            .saturating_sub(config.reserved_connections)
            .max(1);
        Self::new(pool, slots as usize)
    }

    /// The pool, for light reads (a few rows by key).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection for a heavy read: when a slot is free, after a wait in a bounded queue, or
    /// a 503 when the queue is full.
    pub async fn heavy(&self) -> AppResult<HeavyConn> {
        let turn = self.gate.enter().await?;
        let conn = self.pool.acquire().await?;
        Ok(HeavyConn { conn, _turn: turn })
    }
}

/// Where a read takes its connection: the pool as it is (jobs, alerts: work that must not
/// stop), or [`Reads`] (requests, bounded).
pub trait Conns: Sync {
    type Conn: std::ops::DerefMut<Target = PgConnection> + Send;

    fn conn(&self) -> impl std::future::Future<Output = AppResult<Self::Conn>> + Send;
}

impl Conns for PgPool {
    type Conn = PoolConnection<Postgres>;

    async fn conn(&self) -> AppResult<Self::Conn> {
        Ok(self.acquire().await?)
    }
}

impl Conns for Reads {
    type Conn = HeavyConn;

    async fn conn(&self) -> AppResult<Self::Conn> {
        self.heavy().await
    }
}

/// Pauses (`true`) or resumes row `id` of `table`, one of the tables with a `paused` column
/// (checks, channels, watched processes, scrape targets, log sources, backup targets).
pub async fn set_paused(pool: &PgPool, table: &str, id: i64, paused: bool) -> AppResult<()> {
    sqlx::query(&format!("UPDATE {table} SET paused = $2 WHERE id = $1"))
        .bind(id)
        .bind(paused)
        .execute(pool)
        .await?;
    Ok(())
}
