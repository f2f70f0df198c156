//! The database as the product sees it: the pool every write and light read uses, and
//! [`Reads`], where heavy reads (searches over long ranges, the analytics, series of many
//! points) take a connection. Heavy reads take at most `max_connections −
//! reserved_connections` connections at once, so a flood of them never takes the connections
//! that sign-in, ingest, alerts and jobs need; beyond a bounded queue they are refused with a
//! 503. Every statement has a timeout (`statement_timeout`), set when a connection opens.
//!
//! With `database_read_url`, heavy reads go to a PostgreSQL streaming replica while it keeps
//! up: [`Reads::check_replica`] (every few seconds in `serve`) measures how far its replay is
//! behind the primary; while it is down, is not a replica, lags more than `read_max_lag`, or has
//! not replayed the primary's last migration, heavy reads go to the primary. Writes, and reads
//! that must see them at once, always take the primary's pool.

use crate::config::Config;
use crate::error::AppResult;
pub use crate::health::ReplicaHealth;
use crate::runtime::{Gate, Turn};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// Which database this is: the one `opsdeck_identity` row, made by the migrations. A restore
/// in place refuses a database that carries it; `/metrics` shows it, so that a scrape can tell
/// an Opsdeck that stores into this same database.
pub async fn identity(pool: &PgPool) -> AppResult<sqlx::types::Uuid> {
    Ok(sqlx::query_scalar!("SELECT id FROM opsdeck_identity")
        .fetch_one(pool)
        .await?)
}

/// Where heavy reads take their connections.
#[derive(Clone)]
pub struct Reads {
    pool: PgPool,
    gate: Arc<Gate>,
    replica: Option<Arc<Replica>>,
}

/// A streaming replica and what the last look at it found.
pub struct Replica {
    pool: PgPool,
    max_lag: f64,
    health: Mutex<ReplicaHealth>,
    replica_reads: AtomicU64,
    primary_reads: AtomicU64,
}

impl Replica {
    fn usable(&self) -> bool {
        self.health
            .lock()
            .map(|h| h.status == "ok")
            .unwrap_or(false)
    }

    fn set(&self, status: &str, lag: Option<f64>, error: Option<String>) -> ReplicaHealth {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.status = status.to_string();
        h.lag_seconds = lag;
        h.error = error;
        self.snapshot(&h)
    }

    fn snapshot(&self, h: &ReplicaHealth) -> ReplicaHealth {
        ReplicaHealth {
            replica_reads: self.replica_reads.load(Ordering::Relaxed),
            primary_reads: self.primary_reads.load(Ordering::Relaxed),
            ..h.clone()
        }
    }
}

/// What one look at the replica found.
enum Look {
    /// Not in recovery: a primary given as the replica.
    NotReplica,
    /// Its replay has not reached the primary's last migration (that version).
    Unmigrated(i64),
    /// Seconds its replay is behind.
    Lag(f64),
}

/// What went wrong with the replica, without its address or credentials.
fn replica_error(e: &sqlx::Error) -> String {
    let text = match e {
        sqlx::Error::Io(io) => io.kind().to_string(),
        sqlx::Error::PoolTimedOut => "no connection within 2 s".to_string(),
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Tls(_) => "TLS failed".to_string(),
        other => other.to_string(),
    };
    crate::redact::text(&text)
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
            replica: None,
        }
    }

    /// For the configured pool: `max_connections − reserved_connections` slots, and the
    /// replica of `database_read_url` (connected when first used).
    pub fn for_config(pool: PgPool, config: &Config) -> Self {
        let slots = config
            .max_connections
            .saturating_sub(config.reserved_connections)
            .max(1);
        let mut reads = Self::new(pool, slots as usize);
        if let Some(url) = &config.database_read_url {
            match url.expose().parse::<PgConnectOptions>() {
                Ok(opts) => {
                    let opts = opts.options([(
                        "statement_timeout",
                        format!("{}s", config.statement_timeout.secs()),
                    )]);
                    let pool = PgPoolOptions::new()
                        .max_connections(slots)
                        .min_connections(0)
                        .acquire_timeout(Duration::from_secs(2))
                        .idle_timeout(Duration::from_secs(300))
                        .connect_lazy_with(opts);
                    reads.replica = Some(Arc::new(Replica {
                        pool,
                        max_lag: config.read_max_lag.duration().as_secs_f64(),
                        health: Mutex::new(ReplicaHealth {
                            status: "unknown".into(),
                            lag_seconds: None,
                            error: None,
                            replica_reads: 0,
                            primary_reads: 0,
                        }),
                        replica_reads: AtomicU64::new(0),
                        primary_reads: AtomicU64::new(0),
                    }));
                }
                Err(_) => tracing::warn!(
                    "database_read_url is not a PostgreSQL URL: heavy reads stay on the primary"
                ),
            }
        }
        reads
    }

    /// The replica as last seen (None without `database_read_url`).
    pub fn replica_health(&self) -> Option<ReplicaHealth> {
        let r = self.replica.as_ref()?;
        let h = r.health.lock().unwrap_or_else(|e| e.into_inner());
        Some(r.snapshot(&h))
    }

    /// Looks at the replica (None without one): reachable, in recovery, and how far its replay
    /// is behind `primary` (0 when it has replayed all the primary has written; else the age of
    /// the last transaction it replayed), and whether it has replayed the primary's last
    /// migration. Heavy reads go there only while this finds it `ok`.
    pub async fn check_replica(&self, primary: &PgPool) -> Option<ReplicaHealth> {
        let r = self.replica.as_ref()?;
        let look = async {
            let mut c = r.pool.acquire().await?;
            let (recovery, lsn, age, migrated): (bool, Option<String>, Option<f64>, Option<i64>) =
                sqlx::query_as(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
                        extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
                        (SELECT max(version) FROM _sqlx_migrations WHERE success)",
                )
                .fetch_one(&mut *c)
                .await?;
            if !recovery {
                return Ok(Look::NotReplica);
            }
            let (behind, primary_migrated): (Option<f64>, Option<i64>) = sqlx::query_as(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8,
                        (SELECT max(version) FROM _sqlx_migrations WHERE success)",
            )
            .bind(lsn)
            .fetch_one(primary)
            .await?;
            // A migration the replica has not replayed yet: a read of its new table or column
            // there would fail, however small the lag.
            if migrated < primary_migrated {
                return Ok(Look::Unmigrated(primary_migrated.unwrap_or_default()));
            }
            Ok::<_, sqlx::Error>(Look::Lag(match behind {
                Some(b) if b <= 0.0 => 0.0,
                _ => age.unwrap_or(f64::INFINITY).max(0.0),
            }))
        };
        Some(match tokio::time::timeout(Duration::from_secs(3), look).await {
            Ok(Ok(Look::Lag(lag))) if lag <= r.max_lag => r.set("ok", Some(lag), None),
            Ok(Ok(Look::Lag(lag))) => r.set(
                "lagging",
                lag.is_finite().then_some(lag),
                Some(format!(
                    "replay is behind by more than read_max_lag ({} s): heavy reads go to the primary",
                    r.max_lag
                )),
            ),
            Ok(Ok(Look::Unmigrated(version))) => r.set(
                "lagging",
                None,
                Some(format!(
                    "replay has not reached migration {version} yet: heavy reads go to the primary"
                )),
            ),
            Ok(Ok(Look::NotReplica)) => r.set(
                "down",
                None,
                Some("not a replica (pg_is_in_recovery() is false): heavy reads go to the primary".into()),
            ),
            Ok(Err(e)) => r.set("down", None, Some(replica_error(&e))),
            Err(_) => r.set("down", None, Some("no answer within 3 s".into())),
        })
    }

    /// The pool, for light reads (a few rows by key).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection for a heavy read: when a slot is free, after a wait in a bounded queue, or
    /// a 503 when the queue is full.
    pub async fn heavy(&self) -> AppResult<HeavyConn> {
        let turn = self.gate.enter().await?;
        if let Some(r) = &self.replica {
            if r.usable() {
                match r.pool.acquire().await {
                    Ok(conn) => {
                        r.replica_reads.fetch_add(1, Ordering::Relaxed);
                        return Ok(HeavyConn { conn, _turn: turn });
                    }
                    Err(e) => {
                        r.set("down", None, Some(replica_error(&e)));
                    }
                }
            }
            r.primary_reads.fetch_add(1, Ordering::Relaxed);
        }
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
