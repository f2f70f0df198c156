//! Work that must run in one process at a time, whichever of several Opsdeck processes asks:
//! session-level advisory locks (released if the process dies), and scheduled jobs that run
//! once per period however many processes share the database (`job_runs`).

use crate::error::AppResult;
use crate::state::AppState;
use sqlx::{Connection, PgConnection};
use std::future::Future;
use std::time::Duration;

/// A session-level advisory lock on a connection of its own; dropping it closes the
/// connection, which releases the lock (also when the process dies).
pub struct HeldLock(PgConnection);

impl HeldLock {
    pub async fn try_take(state: &AppState, key: &str) -> AppResult<Option<HeldLock>> {
        let mut c = PgConnection::connect_with(&*state.pool.connect_options()).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(key)
            .fetch_one(&mut c)
            .await?;
        if got {
            Ok(Some(HeldLock(c)))
        } else {
            let _ = c.close().await;
            Ok(None)
        }
    }

    /// Whether the lock's connection still answers (it and the lock die with a server restart).
    pub async fn alive(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut self.0).await.is_ok()
    }

    pub async fn release(self) {
        let _ = self.0.close().await;
    }
}

/// What happened when a process asked to run a job.
#[derive(Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Ran,
    /// Another process holds the lock right now.
    Busy,
    /// It ran recently enough (by any process).
    NotDue,
}

/// A session-level advisory lock held on a pooled connection. Released by [`Self::release`];
/// if the work holding it is dropped midway (cancelled, shut down), the connection is closed
/// instead of going back to the pool, so the lock can never be left held by a pooled
/// connection.
struct PooledLock {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    key: String,
}

impl PooledLock {
    /// Takes `opsdeck.job.<name>`; with `wait`, tries again every half second until it is free.
    async fn take(pool: &sqlx::PgPool, name: &str, wait: bool) -> AppResult<Option<PooledLock>> {
        let mut conn = pool.acquire().await?;
        let key = format!("opsdeck.job.{name}");
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
                .bind(&key)
                .fetch_one(&mut *conn)
                .await?;
            if got {
                return Ok(Some(PooledLock {
                    conn: Some(conn),
                    key,
                }));
            }
            if !wait {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("the connection is only taken by release or drop"))
    }

    async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                .bind(&self.key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                drop(conn.detach());
            }
        }
    }
}

impl Drop for PooledLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closing the connection releases the lock.
            drop(conn.detach());
        }
    }
}

/// Runs `job` if no other process is running it and it has not started within `every`.
pub async fn run_once<F, Fut>(
    state: &AppState,
    name: &str,
    every: Duration,
    job: F,
) -> AppResult<JobOutcome>
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = AppResult<serde_json::Value>>,
{
    let Some(mut lock) = PooledLock::take(&state.pool, name, false).await? else {
        return Ok(JobOutcome::Busy);
    };
    let result = async {
        let due: bool = sqlx::query_scalar(
            "INSERT INTO job_runs (name, last_start) VALUES ($1, now())
             ON CONFLICT (name) DO UPDATE SET last_start = now()
               WHERE job_runs.last_start IS NULL OR job_runs.last_start <= now() - make_interval(secs => $2)
             RETURNING true",
        )
        .bind(name)
        .bind(every.as_secs_f64())
        .fetch_optional(lock.conn())
        .await?
        .unwrap_or(false);
        if !due {
            return Ok(JobOutcome::NotDue);
        }
        let outcome = job(state.clone()).await;
        let (error, detail) = match &outcome {
            Ok(d) => (None, d.clone()),
            Err(e) => (Some(e.to_string()), serde_json::json!({})),
        };
        sqlx::query("UPDATE job_runs SET last_finish = now(), last_error = $2, detail = $3 WHERE name = $1")
            .bind(name)
            .bind(&error)
            .bind(&detail)
            .execute(lock.conn())
            .await?;
        outcome.map(|_| JobOutcome::Ran)
    }
    .await;
    lock.release().await;
    result
}

/// Runs `job` now, whatever its schedule, under the lock of the scheduled job `name`: for work
/// that has just been made (an import, a backfill). With `wait`, waits for a run in progress to
/// end; without, returns None when one holds the lock (it, or the next round, will do the work).
pub async fn run_now_locked<T, Fut>(
    pool: &sqlx::PgPool,
    name: &str,
    wait: bool,
    job: Fut,
) -> AppResult<Option<T>>
where
    Fut: Future<Output = AppResult<T>>,
{
    let Some(lock) = PooledLock::take(pool, name, wait).await? else {
        return Ok(None);
    };
    let out = job.await;
    lock.release().await;
    out.map(Some)
}
