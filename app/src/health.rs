//! Opsdeck's own health: is the database reachable, how fast, which schema, how long up.
//! Served by `GET /api/v1/health` and shown on the Overview.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DatabaseHealth {
    /// `ok` or `down`.
    pub status: String,
    pub latency_ms: Option<f64>,
    pub schema_version: Option<i64>,
    /// Why the database is considered down (never a connection string).
    pub error: Option<String>,
}

/// The replica as the detailed health shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplicaHealth {
    /// `ok` (heavy reads go there), `lagging` (more than `read_max_lag` behind), `down`, or
    /// `unknown` before the first look.
    pub status: String,
    /// How far its replay is behind the primary, in seconds.
    pub lag_seconds: Option<f64>,
    /// Why it is not used (never a connection string).
    pub error: Option<String>,
    /// Heavy reads it answered, and heavy reads the primary answered meanwhile.
    pub replica_reads: u64,
    pub primary_reads: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HealthComponents {
    pub database: DatabaseHealth,
    /// The read replica (`database_read_url`), when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HealthReport {
    /// `ok`, or `degraded` when a component is down.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<HealthComponents>,
}

impl HealthReport {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

#[cfg(feature = "ssr")]
pub mod service {
    use super::*;
    use crate::state::AppState;
    use std::time::{Duration, Instant};

    /// Checks the database with a short timeout so a hung server cannot hang the health check.
    pub async fn check(state: &AppState, detailed: bool) -> HealthReport {
        let started = Instant::now();
        let probe = async {
            let mut conn = state.pool.acquire().await?;
            let v: Option<i64> =
                sqlx::query_scalar!("SELECT max(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut *conn)
                    .await?;
            Ok::<_, sqlx::Error>(v)
        };
        let database = match tokio::time::timeout(Duration::from_secs(3), probe).await {
            Ok(Ok(v)) => DatabaseHealth {
                status: "ok".into(),
                latency_ms: Some(
                    (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
                ),
                schema_version: v,
                error: None,
            },
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health check: database unreachable");
                DatabaseHealth {
                    status: "down".into(),
                    latency_ms: None,
                    schema_version: None,
                    error: Some(describe(&e)),
                }
            }
            Err(_) => DatabaseHealth {
                status: "down".into(),
                latency_ms: None,
                schema_version: None,
                error: Some("no answer within 3 s".into()),
            },
        };
        let status = if database.status == "ok" {
            "ok"
        } else {
            "degraded"
        }
        .to_string();
        if !detailed {
            return HealthReport {
                status,
                version: None,
                uptime_seconds: None,
                components: None,
            };
        }
        HealthReport {
            status,
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            uptime_seconds: Some(state.started_at.elapsed().as_secs()),
            components: Some(HealthComponents {
                database,
                replica: state.reads.replica_health(),
            }),
        }
    }

    /// A short reason that names the kind of failure but no host, path or credential.
    fn describe(e: &sqlx::Error) -> String {
        match e {
            sqlx::Error::PoolTimedOut => "no connection available (pool timed out)".into(),
            sqlx::Error::Io(_) => "connection refused or lost".into(),
            sqlx::Error::Database(db) => {
                format!("database error {}", db.code().unwrap_or_default())
            }
            sqlx::Error::PoolClosed => "pool closed (shutting down)".into(),
            _ => "query failed".into(),
        }
    }
}

#[server(prefix = "/sfn", endpoint = "health")]
pub async fn system_health() -> Result<HealthReport, AppError> {
    use crate::auth::{service::RequestCtx, Role};
    use crate::error::with_status;
    let ctx = with_status(RequestCtx::from_leptos().await)?;
    // Health is also shown when the session store is down, so only a definite "no" stops it.
    match ctx.require(Role::Viewer).await {
        Ok(_) | Err(AppError::Unavailable(_)) => Ok(service::check(&ctx.state, true).await),
        Err(e) => with_status(Err(e)),
    }
}
