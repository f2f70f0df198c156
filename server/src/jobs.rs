//! Scheduled jobs shared by every Opsdeck process on one database: each run takes a PostgreSQL
//! advisory lock and checks `job_runs`, so a job runs once per period however many processes
//! are up.

use app::error::AppResult;
use app::state::AppState;
use std::future::Future;
use std::time::Duration;

/// What happened when a process asked to run a job.
#[derive(Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Ran,
    /// Another process holds the lock right now.
    Busy,
    /// It ran recently enough (by any process).
    NotDue,
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
    // A session-level lock on a dedicated connection: released if this process dies.
    let mut conn = state.pool.acquire().await?;
    let key = format!("opsdeck.job.{name}");
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(&key)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(JobOutcome::Busy);
    }
    let result = async {
        let due: bool = sqlx::query_scalar(
            "INSERT INTO job_runs (name, last_start) VALUES ($1, now())
             ON CONFLICT (name) DO UPDATE SET last_start = now()
               WHERE job_runs.last_start IS NULL OR job_runs.last_start <= now() - make_interval(secs => $2)
             RETURNING true",
        )
        .bind(name)
        .bind(every.as_secs_f64())
        .fetch_optional(&mut *conn)
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
            .execute(&mut *conn)
            .await?;
        outcome.map(|_| JobOutcome::Ran)
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await;
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
    let mut conn = pool.acquire().await?;
    let key = format!("opsdeck.job.{name}");
    let locked: bool = if wait {
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&key)
            .execute(&mut *conn)
            .await?;
        true
    } else {
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(&key)
            .fetch_one(&mut *conn)
            .await?
    };
    if !locked {
        return Ok(None);
    }
    let out = job.await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await;
    out.map(Some)
}

/// The background loop of `opsdeck serve`: every minute, offer each job a chance to run.
pub async fn run_scheduler(state: AppState) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let retention = run_once(
            &state,
            "metrics_retention",
            Duration::from_secs(3600),
            |s| async move {
                let report = app::metrics::service::enforce_retention(
                    &s.pool,
                    &s.series_cache,
                    s.config.retention,
                    time::OffsetDateTime::now_utc(),
                )
                .await?;
                if !report.dropped_partitions.is_empty()
                    || report.deleted_minute_rows > 0
                    || report.deleted_hour_rows > 0
                {
                    tracing::info!(?report, "metrics retention");
                }
                Ok(serde_json::to_value(&report).unwrap_or_default())
            },
        )
        .await;
        if let Err(e) = retention {
            tracing::warn!(error = %e, "metrics retention job failed; will retry");
        }
        backup_jobs(&state).await;
        let logs = run_once(
            &state,
            "log_retention",
            Duration::from_secs(3600),
            |s| async move {
                let report = app::logs::service::enforce_retention(
                    &s.pool,
                    s.config.log_retention_days,
                    &s.config.log_retention_services,
                    time::OffsetDateTime::now_utc(),
                )
                .await?;
                Ok(serde_json::to_value(&report).unwrap_or_default())
            },
        )
        .await;
        if let Err(e) = logs {
            tracing::warn!(error = %e, "log retention failed; will retry");
        }
        let expiry = run_once(
            &state,
            "alert_history_expiry",
            Duration::from_secs(3600),
            |s| async move {
                let n =
                    app::alerts::service::expire_results(&s.pool, time::OffsetDateTime::now_utc())
                        .await?;
                Ok(serde_json::json!({ "health_results_deleted": n }))
            },
        )
        .await;
        if let Err(e) = expiry {
            tracing::warn!(error = %e, "health-check results expiry failed; will retry");
        }
        let rollups = run_once(
            &state,
            "log_rollups",
            Duration::from_secs(50),
            |s| async move {
                let report =
                    app::logs::service::roll_up(&s.pool, time::OffsetDateTime::now_utc()).await?;
                Ok(serde_json::to_value(&report).unwrap_or_default())
            },
        )
        .await;
        if let Err(e) = rollups {
            tracing::warn!(error = %e, "log rollups failed; will retry");
        }
    }
}

/// Runs `round` every `period`, forever. A failure is logged once when it starts (the database
/// being away fails every round until it is back), not every round.
pub async fn every<F, Fut, T>(period: Duration, what: &str, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        match round().await {
            Ok(_) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "{what} failed; retrying");
                }
                failing = true;
            }
        }
    }
}

/// Every 5 s, in one process at a time: the current hour's live log rollup.
pub async fn run_live_rollups(state: AppState) {
    every(Duration::from_secs(5), "the live log rollup", || {
        run_once(
            &state,
            "log_live_rollup",
            Duration::from_secs(4),
            |s| async move {
                let report =
                    app::logs::service::roll_up_live(&s.pool, time::OffsetDateTime::now_utc())
                        .await?;
                Ok(serde_json::to_value(&report).unwrap_or_default())
            },
        )
    })
    .await
}

/// Backups: fail runs whose process died, start the due runs, test-restore on schedule, expire.
pub async fn backup_jobs(state: &AppState) {
    use app::backups::service as backups;
    if let Err(e) = backups::fail_stale(state).await {
        tracing::warn!(error = %e, "could not check for stopped backups");
    }
    if let Err(e) = backups::start_due_runs(state, time::OffsetDateTime::now_utc()).await {
        tracing::warn!(error = %e, "could not start scheduled backups");
    }
    let tests = run_once(
        state,
        "backup_test_restores",
        Duration::from_secs(600),
        |s| async move {
            let mut done = vec![];
            for id in backups::due_test_restores(&s.pool).await? {
                let o = backups::verify(&s, id, true).await?;
                if !o.ok {
                    tracing::warn!(backup = id, detail = %o.detail, "scheduled test restore failed");
                }
                done.push(serde_json::json!({"backup": id, "ok": o.ok}));
            }
            Ok(serde_json::json!({ "test_restores": done }))
        },
    )
    .await;
    if let Err(e) = tests {
        tracing::warn!(error = %e, "scheduled test restores failed; will retry");
    }
    let retention = run_once(
        state,
        "backup_retention",
        Duration::from_secs(3600),
        |s| async move {
            let n = backups::apply_all_retention(&s).await?;
            Ok(serde_json::json!({ "expired": n }))
        },
    )
    .await;
    if let Err(e) = retention {
        tracing::warn!(error = %e, "backup retention failed; will retry");
    }
}
