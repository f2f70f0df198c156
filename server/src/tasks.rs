//! Every background task of `opsdeck serve`, started in one place and stopped together. Each is
//! named in the logs; one that panics is logged and started again. On shutdown (SIGTERM or
//! SIGINT) each loop stops at its next turn, so a round under way (a roll-up transaction, an
//! evaluation, a scrape) finishes; work started in the background (a backup, a restore, a test
//! restore) gets a grace period to finish and is then stopped and marked as stopped, never left
//! half-done.

use app::state::AppState;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::task::{Id, JoinSet};

type Task = fn(AppState) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// The tasks, by the name the logs give them.
const TASKS: &[(&str, Task)] = &[
    ("collector", |s| {
        Box::pin(crate::metrics::run_local_collector(s))
    }),
    ("tailer", |s| Box::pin(crate::logs::tail::run(s))),
    ("scheduler", |s| Box::pin(crate::jobs::run_scheduler(s))),
    ("live roll-up", |s| {
        Box::pin(crate::jobs::run_live_rollups(s))
    }),
    ("scraper", |s| Box::pin(crate::services::scraper::run(s))),
    ("alert evaluator", |s| {
        Box::pin(crate::alerts::run_evaluator(s))
    }),
    ("notifier", |s| Box::pin(crate::alerts::notify::run(s))),
    ("health checks", |s| Box::pin(crate::alerts::checks::run(s))),
    ("replica watch", |s| Box::pin(watch_replica(s))),
];

/// With `database_read_url`: looks at the replica every few seconds (a quarter of
/// `read_max_lag`, 1 to 5 s), so heavy reads leave it soon after it falls behind or goes down,
/// and come back once it has caught up.
async fn watch_replica(state: AppState) {
    if state.reads.replica_health().is_none() {
        return;
    }
    let every = (state.config.read_max_lag.duration() / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(5));
    crate::jobs::every(&state, every, "watching the replica", || async {
        let before = state.reads.replica_health().map(|h| h.status);
        if let Some(h) = state.reads.check_replica(&state.pool).await {
            if before.as_deref() != Some(h.status.as_str()) {
                // The error never holds the replica's address or credentials.
                tracing::info!(status = %h.status, lag_seconds = ?h.lag_seconds, error = ?h.error, "read replica");
            }
        }
        Ok::<_, app::error::AppError>(())
    })
    .await
}

pub struct Tasks {
    state: AppState,
    set: JoinSet<()>,
    names: HashMap<Id, (&'static str, Task)>,
}

impl Tasks {
    /// Starts every task.
    pub fn start(state: &AppState) -> Self {
        let mut t = Tasks {
            state: state.clone(),
            set: JoinSet::new(),
            names: HashMap::new(),
        };
        for (name, task) in TASKS {
            t.spawn(name, *task);
        }
        t
    }

    fn spawn(&mut self, name: &'static str, task: Task) {
        let fut = task(self.state.clone());
        let handle = self.set.spawn(async move {
            tracing::info!(task = name, "task started");
            fut.await;
            tracing::info!(task = name, "task stopped");
        });
        self.names.insert(handle.id(), (name, task));
    }

    /// Runs until the process is asked to stop, starting again any task that panicked.
    pub async fn supervise(&mut self) {
        let stop = self.state.runtime.stop.clone();
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = self.set.join_next_with_id() => next,
            };
            match next {
                None => return,
                Some(Ok((id, ()))) => {
                    self.names.remove(&id);
                }
                Some(Err(e)) => {
                    if let Some((name, task)) = self.names.remove(&e.id()) {
                        if e.is_panic() {
                            tracing::error!(task = name, "task panicked; starting it again");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            self.spawn(name, task);
                        }
                    }
                }
            }
        }
    }

    /// Asks every task and every piece of background work to stop and waits for them, at most
    /// `grace`; what is still running then is named in the log and aborted.
    pub async fn stop(mut self, grace: Duration) {
        let runtime = self.state.runtime.clone();
        runtime.stop.cancel();
        runtime.work.close();
        let waited = tokio::time::timeout(grace, async {
            while let Some(r) = self.set.join_next_with_id().await {
                if let Ok((id, ())) = r {
                    self.names.remove(&id);
                }
            }
            runtime.work.wait().await;
        })
        .await;
        if waited.is_err() {
            let left: Vec<&str> = self.names.values().map(|(n, _)| *n).collect();
            tracing::warn!(
                tasks = ?left,
                background_work = runtime.work.len(),
                "still running after the grace period; stopping them"
            );
            self.set.abort_all();
        }
    }
}
