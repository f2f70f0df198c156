//! Scheduled jobs shared by every Opsdeck process on one database: each run takes a PostgreSQL
//! advisory lock and checks `job_runs` (`app::locks::run_once`), so a job runs once per period
//! however many processes are up. The loops here stop at their next turn once the process is
//! asked to stop; a job under way always finishes.

use app::error::AppResult;
use app::locks::run_once;
use app::runtime::next_turn;
use app::state::AppState;
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;

/// How often the self-check compares recent log roll-ups with their lines, and how far back.
const ROLLUP_CHECK_EVERY: Duration = Duration::from_secs(15 * 60);
const ROLLUP_CHECK_BACK: time::Duration = time::Duration::hours(3);

/// Runs `round` every `period` until the process stops. A failure is logged once when it
/// starts (the database being away fails every round until it is back), not every round.
pub async fn every<F, Fut, T>(state: &AppState, period: Duration, what: &str, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    while next_turn(&mut ticker, &state.runtime.stop).await {
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

/// A job of the scheduler: its name (the lock's and `job_runs`'), how often it runs and what.
type Job = (
    &'static str,
    Duration,
    fn(AppState) -> futures_box::Boxed<serde_json::Value>,
);

/// Boxed job futures, so the scheduler's list can hold different jobs.
mod futures_box {
    use app::error::AppResult;
    use std::future::Future;
    use std::pin::Pin;

    pub type Boxed<T> = Pin<Box<dyn Future<Output = AppResult<T>> + Send>>;

    pub fn boxed<T>(f: impl Future<Output = AppResult<T>> + Send + 'static) -> Boxed<T> {
        Box::pin(f)
    }
}
use futures_box::boxed;

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// The jobs the scheduler offers a turn every minute.
const JOBS: &[Job] = &[
    ("metrics_retention", Duration::from_secs(3600), |s| {
        boxed(async move {
            let report =
                app::metrics::service::enforce_retention(&s, OffsetDateTime::now_utc()).await?;
            if !report.dropped_partitions.is_empty()
                || report.deleted_minute_rows > 0
                || report.deleted_five_minute_rows > 0
                || report.deleted_hour_rows > 0
                || report.deleted_chunks > 0
            {
                tracing::info!(?report, "metrics retention");
            }
            Ok(json(&report))
        })
    }),
    ("metrics_compaction", Duration::from_secs(300), |s| {
        boxed(async move {
            let report = app::metrics::service::compact(&s.pool, OffsetDateTime::now_utc()).await?;
            if report.chunks > 0 {
                tracing::info!(?report, "metrics compaction");
            }
            Ok(json(&report))
        })
    }),
    ("log_retention", Duration::from_secs(3600), |s| {
        boxed(async move {
            let per_service: Vec<(String, i64)> = s
                .config
                .log_retention_services
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            let report = app::logs::retention::enforce_retention(
                &s,
                s.config.log_retention_days,
                &per_service,
                OffsetDateTime::now_utc(),
            )
            .await?;
            Ok(json(&report))
        })
    }),
    ("alert_history_expiry", Duration::from_secs(3600), |s| {
        boxed(async move {
            let n =
                app::alerts::service::expire_results(&s.pool, OffsetDateTime::now_utc()).await?;
            Ok(serde_json::json!({ "health_results_deleted": n }))
        })
    }),
    ("auth_retention", Duration::from_secs(3600), |s| {
        boxed(async move {
            let (audit, throttles) = app::auth::service::purge_old(&s.pool, &s.config).await?;
            let sessions: u64 = sqlx::query!("DELETE FROM sessions WHERE expiry_date < now()")
                .execute(&s.pool)
                .await?
                .rows_affected();
            Ok(serde_json::json!({
                "audit_deleted": audit,
                "login_counters_deleted": throttles,
                "sessions_deleted": sessions,
            }))
        })
    }),
    ("log_rollups", Duration::from_secs(50), |s| {
        boxed(async move {
            let report = app::logs::rollup_jobs::roll_up(&s, OffsetDateTime::now_utc()).await?;
            Ok(json(&report))
        })
    }),
    ("log_rollup_check", ROLLUP_CHECK_EVERY, |s| {
        boxed(async move {
            let now = OffsetDateTime::now_utc();
            let report =
                app::logs::rollup_jobs::self_check(&s, now - ROLLUP_CHECK_BACK, now).await?;
            Ok(json(&report))
        })
    }),
];

/// The scheduler of `opsdeck serve`: every minute, offers each job a turn, and runs the backup
/// jobs.
pub async fn run_scheduler(state: AppState) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while next_turn(&mut ticker, &state.runtime.stop).await {
        for (name, period, job) in JOBS {
            if let Err(e) = run_once(&state, name, *period, *job).await {
                tracing::warn!(job = name, error = %e, "job failed; will retry");
            }
        }
        backup_jobs(&state).await;
    }
}

/// Every 5 s, in one process at a time: the current hour's live log rollup.
pub async fn run_live_rollups(state: AppState) {
    every(
        &state,
        Duration::from_secs(5),
        "the live log rollup",
        || {
            run_once(
                &state,
                "log_live_rollup",
                Duration::from_secs(4),
                |s| async move {
                    let report =
                        app::logs::rollup_jobs::roll_up_live(&s, OffsetDateTime::now_utc()).await?;
                    Ok(json(&report))
                },
            )
        },
    )
    .await
}

/// Backups: fail runs whose process died, start the due runs, test-restore on schedule, expire.
pub async fn backup_jobs(state: &AppState) {
    use app::backups::service as backups;
    if let Err(e) = backups::fail_stale(state).await {
        tracing::warn!(error = %e, "could not check for stopped backups");
    }
    if let Err(e) = backups::start_due_runs(state, OffsetDateTime::now_utc()).await {
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
