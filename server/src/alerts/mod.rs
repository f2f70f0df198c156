//! Alerts on the server: the evaluation loop (one process per round, every
//! `OPSDECK_ALERT_INTERVAL`, under the `alerts` job's lock), the notification sender and the
//! health-check runner (both claim their work with SKIP LOCKED, so any number of processes
//! share it and each notification and check runs once).

pub mod checks;
pub mod notify;

use app::state::AppState;
use std::time::Duration;

/// Evaluates every rule each `alert_interval`, in whichever process gets the lock.
pub async fn run_evaluator(state: AppState) {
    let every = state
        .config
        .alert_interval
        .duration()
        .max(Duration::from_secs(1));
    // A little less than the interval, so that two processes' ticks never both skip.
    let due = every.mul_f64(0.8);
    crate::jobs::every(&state, every, "alert evaluation", || {
        app::locks::run_once(&state, "alerts", due, |s| async move {
            let report = app::alerts::service::evaluate_with(
                &s.pool,
                time::OffsetDateTime::now_utc(),
                &app::alerts::service::EvalSettings::of(&s.config),
            )
            .await?;
            if !report.errors.is_empty() {
                tracing::warn!(errors = ?report.errors, "some alert rules could not be evaluated");
            }
            Ok(serde_json::to_value(&report).unwrap_or_default())
        })
    })
    .await
}
