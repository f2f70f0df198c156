//! What one Opsdeck process keeps besides its configuration: caches that only save database
//! round trips (every process fills its own; a miss asks the database), the gates that bound
//! what requests may take at once, and the process's own request counters. Nothing here
//! depends on a product area: the areas keep their data in these containers.

pub mod answers;
pub mod telemetry;

use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::partitions::DailyPartitions;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use answers::Answers;
pub use telemetry::Telemetry;

/// A bounded place to run heavy work: `slots` run at once, up to `max_waiting` more wait for a
/// turn, and anything beyond is refused at once with a 503 (and `Retry-After`), so a burst of
/// requests cannot pile up work (or memory) without end.
pub struct Gate {
    slots: Arc<Semaphore>,
    /// Places taken: waiting for a turn or holding one.
    inside: Arc<AtomicUsize>,
    size: usize,
    max_waiting: usize,
}

/// Counts one place in a gate until dropped.
struct Inside(Arc<AtomicUsize>);

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A reserved place in a [`Gate`]; [`Place::enter`] waits for a turn.
pub struct Place {
    slots: Arc<Semaphore>,
    inside: Inside,
}

/// A turn in a [`Gate`]: the place is given back when this is dropped.
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    _inside: Inside,
}

impl Place {
    pub async fn enter(self) -> AppResult<Turn> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Unavailable("shutting down".into()))?;
        Ok(Turn {
            _permit: permit,
            _inside: self.inside,
        })
    }
}

impl Gate {
    pub fn new(slots: usize, max_waiting: usize) -> Self {
        let size = slots.max(1);
        Self {
            slots: Arc::new(Semaphore::new(size)),
            inside: Arc::default(),
            size,
            max_waiting,
        }
    }

    /// The 503 given when the queue is full.
    pub fn busy() -> AppError {
        AppError::Unavailable("Opsdeck is busy with other heavy reads; try again shortly".into())
    }

    /// A place (a turn now or in the queue), or None when every slot is taken and the queue is
    /// full.
    pub fn reserve(&self) -> Option<Place> {
        let before = self.inside.fetch_add(1, Ordering::SeqCst);
        let inside = Inside(self.inside.clone());
        if before >= self.size + self.max_waiting {
            return None; // (dropping `inside` gives the place back)
        }
        Some(Place {
            slots: self.slots.clone(),
            inside,
        })
    }

    /// A turn: at once when a slot is free, else after waiting in the queue; 503 when full.
    pub async fn enter(&self) -> AppResult<Turn> {
        self.reserve().ok_or_else(Self::busy)?.enter().await
    }

    /// Turns held now.
    pub fn running(&self) -> usize {
        self.size - self.slots.available_permits()
    }
}

/// Requests in flight per key (a session): one client cannot hold more than its share of the
/// process, whatever it sends.
#[derive(Default)]
pub struct InFlight(Arc<Mutex<HashMap<u64, usize>>>);

/// A request counted in [`InFlight`] until dropped.
pub struct InFlightGuard {
    map: Arc<Mutex<HashMap<u64, usize>>>,
    key: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

impl InFlight {
    /// Counts a request of `key`, or None when `limit` are in flight already.
    pub fn enter(&self, key: u64, limit: usize) -> Option<InFlightGuard> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key).or_default();
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(InFlightGuard {
            map: self.0.clone(),
            key,
        })
    }
}

/// Series ids by (host, metric, labels as JSON). Ids never change once given, so this is only a
/// shortcut.
pub type SeriesIds = Mutex<HashMap<(String, String, String), i32>>;

/// The process-wide state every request and task shares through `AppState`.
pub struct Runtime {
    pub series_ids: SeriesIds,
    pub metric_partitions: DailyPartitions,
    pub log_partitions: DailyPartitions,
    /// Shared answers of ranges ending now, and the gate of their background computations.
    pub answers: Answers,
    /// Scrapes converting and storing their samples at once (fetching is not limited).
    pub scrape_storing: Arc<Semaphore>,
    pub telemetry: Telemetry,
    /// Requests in flight per session.
    pub in_flight: InFlight,
    /// Cancelled when the process is asked to stop: loops stop at their next turn.
    pub stop: CancellationToken,
    /// Work started in the background (backups, restores, test restores, scrapes, checks):
    /// shutdown waits for it.
    pub work: TaskTracker,
}

/// Waits for the next tick of `ticker`, or returns false once `stop` is cancelled: the loops of
/// the background tasks turn on this, so a round under way always finishes.
pub async fn next_turn(ticker: &mut tokio::time::Interval, stop: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        _ = ticker.tick() => true,
    }
}

impl Runtime {
    pub fn new(config: &Config) -> Self {
        let analytics = config.analytics_concurrency.max(1) as usize;
        Self {
            series_ids: Mutex::default(),
            metric_partitions: DailyPartitions::new("metric_samples"),
            log_partitions: DailyPartitions::new("log_lines"),
            answers: Answers::new(Gate::new(analytics, analytics * 4)),
            scrape_storing: Arc::new(Semaphore::new(4)),
            telemetry: Telemetry::default(),
            in_flight: InFlight::default(),
            stop: CancellationToken::new(),
            work: TaskTracker::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_are_bounded_per_key() {
        let f = InFlight::default();
        let a: Vec<_> = (0..3).map(|_| f.enter(1, 3).unwrap()).collect();
        assert!(
            f.enter(1, 3).is_none(),
            "a fourth of the same key waits its turn"
        );
        let other = f.enter(2, 3).expect("another key is not held up");
        drop(a);
        assert!(f.enter(1, 3).is_some());
        drop(other);
        assert!(f.0.lock().unwrap().is_empty(), "nothing kept once done");
    }

    #[tokio::test]
    async fn a_gate_runs_its_slots_queues_a_few_and_refuses_the_rest() {
        let gate = Gate::new(2, 1);
        let a = gate.enter().await.unwrap();
        let b = gate.enter().await.unwrap();
        let queued = gate.reserve().expect("one may wait");
        assert!(gate.reserve().is_none(), "the queue is full");
        assert_eq!(gate.enter().await.err(), Some(Gate::busy()));
        drop(a);
        let c = queued.enter().await.unwrap();
        assert!(gate.reserve().is_some(), "the queue has room again");
        assert_eq!(gate.running(), 2);
        drop((b, c));
        assert_eq!(gate.running(), 0);
    }
}
