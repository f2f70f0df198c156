//! Answers to reads of ranges ending now ("the last 24 hours"), shared between the requests
//! that ask for them: a dashboard asks many times a second, and the lines of a busy service cost
//! tens to hundreds of milliseconds to read.
//!
//! - [`Answers::shared_for_a_second`]: the requests of one second share one computation.
//! - [`Answers::fresh_or_recent`]: stale-while-revalidate for whole answers (the Logs page's
//!   analytics, facets and timeline): a request gets the answer of the current second if there
//!   is one, else one at most [`RECENT_SECONDS`] old while a single background task computes the
//!   current one, so no request waits for the computation except when nothing recent exists.
//!   Background computations take a place at the [`Gate`]: at most so many run at once, a few
//!   more wait, and beyond that a request is answered 503 rather than piling work on the
//!   database.
//!
//! Both key their answers by the writes this process committed ([`Answers::committed`]): what
//! this process just stored is never hidden by an older answer. Lines stored by other processes
//! (and by the tailer, whose lines are of now anyway) show within a second or two.

use super::Gate;
use crate::error::{AppError, AppResult};
use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, OnceCell};

/// How old (in seconds) an answer [`Answers::fresh_or_recent`] may give while it computes a
/// newer one.
pub const RECENT_SECONDS: i64 = 2;

/// A computation under way for longer than this (in seconds) is taken as lost, and another one
/// started.
const STUCK_SECONDS: i64 = 120;

type Answer = Arc<dyn Any + Send + Sync>;
type Cell = Arc<OnceCell<Answer>>;
type Outcome = Option<AppResult<Answer>>;

/// What [`Answers::fresh_or_recent`] keeps per key: the newest answer and the computation under
/// way.
struct Slot {
    key: String,
    /// When a request last asked: keys nobody asked for in a minute are forgotten.
    asked: Instant,
    ready: Option<(i64, Answer)>,
    running: Option<(i64, watch::Receiver<Outcome>)>,
}

pub struct Answers {
    committed: AtomicU64,
    shared: Mutex<Vec<(String, Instant, Cell)>>,
    slots: Arc<Mutex<Vec<Slot>>>,
    gate: Arc<Gate>,
}

fn downcast<T: Clone + 'static>(a: &Answer) -> AppResult<T> {
    a.downcast_ref::<T>().cloned().ok_or(AppError::Internal)
}

impl Answers {
    /// Background computations go through `gate`.
    pub fn new(gate: Gate) -> Self {
        Self {
            committed: AtomicU64::new(0),
            shared: Mutex::default(),
            slots: Arc::default(),
            gate: Arc::new(gate),
        }
    }

    /// To be called after a transaction that stored log lines commits.
    pub fn committed(&self) {
        self.committed.fetch_add(1, Ordering::SeqCst);
    }

    fn full_key<T>(&self, key: &str) -> String {
        format!(
            "{key}/{}/{}",
            std::any::type_name::<T>(),
            self.committed.load(Ordering::SeqCst)
        )
    }

    /// The answer to `key`, computed once by whichever request of the last second asked first
    /// and shared with the others that ask meanwhile.
    pub async fn shared_for_a_second<T, F>(&self, key: &str, compute: F) -> AppResult<T>
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = AppResult<T>>,
    {
        let key = self.full_key::<T>(key);
        let cell = {
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.retain(|(_, at, _)| at.elapsed() < Duration::from_secs(1));
            match shared.iter().find(|(k, _, _)| *k == key) {
                Some((_, _, c)) => c.clone(),
                None => {
                    let c = Cell::default();
                    shared.push((key, Instant::now(), c.clone()));
                    c
                }
            }
        };
        let answer = cell
            .get_or_try_init(|| async { Ok::<_, AppError>(Arc::new(compute.await?) as Answer) })
            .await?;
        downcast(answer)
    }

    /// The answer to `key` for the range ending at `second` (a Unix time): the one computed for
    /// that second if there is one, else one computed for a second at most [`RECENT_SECONDS`]
    /// earlier, while `compute` runs in a background task (one per key at a time) for the next
    /// request. Only when nothing that recent exists does the request wait: for the computation
    /// under way, else for `compute`. `key` names the question without its time (the range's
    /// length stands for it). When the gate's queue is full and nothing recent exists, 503.
    pub async fn fresh_or_recent<T, F>(&self, key: &str, second: i64, compute: F) -> AppResult<T>
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = AppResult<T>> + Send + 'static,
    {
        let key = self.full_key::<T>(key);
        let (recent, wait) = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            // Forget keys nobody asked for lately (other ranges, or older write counts).
            slots.retain(|s| s.asked.elapsed() < Duration::from_secs(60));
            let i = match slots.iter().position(|s| s.key == key) {
                Some(i) => i,
                None => {
                    slots.push(Slot {
                        key: key.clone(),
                        asked: Instant::now(),
                        ready: None,
                        running: None,
                    });
                    slots.len() - 1
                }
            };
            let slot = &mut slots[i];
            slot.asked = Instant::now();
            let recent = slot
                .ready
                .as_ref()
                .filter(|(t, _)| *t >= second - RECENT_SECONDS)
                .map(|(t, a)| (*t, a.clone()));
            if let Some((t, a)) = &recent {
                if *t >= second {
                    return downcast(a);
                }
            }
            // One computation per key at a time: one under way is the one to wait for or to let
            // finish, however long it takes (starting more would only pile up work on a
            // database that is slow already), unless it looks stuck.
            let running = slot
                .running
                .as_ref()
                .filter(|(t, _)| *t >= second - STUCK_SECONDS)
                .map(|(_, rx)| rx.clone());
            let wait = match running {
                Some(rx) => Some(rx),
                None => match self.gate.reserve() {
                    // Too much under way already: an older answer if there is one, else 503.
                    None => None,
                    Some(place) => {
                        let (tx, rx) = watch::channel(None);
                        slot.running = Some((second, rx.clone()));
                        let (key, slots) = (key.clone(), self.slots.clone());
                        tokio::spawn(async move {
                            let outcome = match place.enter().await {
                                Ok(_permit) => compute.await.map(|v| Arc::new(v) as Answer),
                                Err(e) => Err(e),
                            };
                            {
                                let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
                                if let Some(slot) = slots.iter_mut().find(|s| s.key == key) {
                                    if let Ok(a) = &outcome {
                                        if slot.ready.as_ref().is_none_or(|(t, _)| *t < second) {
                                            slot.ready = Some((second, a.clone()));
                                        }
                                    }
                                    if slot.running.as_ref().is_some_and(|(t, _)| *t == second) {
                                        slot.running = None;
                                    }
                                }
                            }
                            let _ = tx.send(Some(outcome));
                        });
                        Some(rx)
                    }
                },
            };
            (recent, wait)
        };
        if let Some((_, a)) = recent {
            return downcast(&a);
        }
        let Some(mut wait) = wait else {
            return Err(Gate::busy());
        };
        let outcome = wait
            .wait_for(Option::is_some)
            .await
            .map_err(|_| AppError::Internal)?
            .clone();
        match outcome {
            Some(Ok(a)) => downcast(&a),
            Some(Err(e)) => Err(e),
            None => Err(AppError::Internal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A computation that counts its runs and answers with the run number after `ms`.
    fn counted(
        runs: &Arc<AtomicUsize>,
        ms: u64,
    ) -> impl Future<Output = AppResult<usize>> + Send + 'static {
        let runs = runs.clone();
        async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(n)
        }
    }

    fn answers() -> Answers {
        Answers::new(Gate::new(4, 8))
    }

    #[tokio::test]
    async fn recent_answers_are_given_while_a_newer_one_is_computed_and_writes_count_at_once() {
        let a = answers();
        let runs = Arc::new(AtomicUsize::new(0));
        let get = |second: i64, ms: u64| a.fresh_or_recent("q", second, counted(&runs, ms));
        // Nothing yet: the request waits for the first computation.
        assert_eq!(get(100, 10).await.unwrap(), 1);
        // The same second: the same answer, nothing computed.
        assert_eq!(get(100, 10).await.unwrap(), 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // The next second: the recent answer at once, one background computation...
        assert_eq!(get(101, 200).await.unwrap(), 1);
        assert_eq!(get(101, 200).await.unwrap(), 1, "one computation under way");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // ...whose answer the next request gets.
        assert_eq!(get(101, 10).await.unwrap(), 2);
        // A computation slower than the answers may be old: later requests wait for it rather
        // than start more.
        let (x, y) = tokio::join!(get(102, 300), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            get(102 + RECENT_SECONDS + 1, 10).await
        });
        assert_eq!((x.unwrap(), y.unwrap()), (2, 3));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        // Too old to give, nothing under way: the request waits for a new one.
        assert_eq!(get(103 + RECENT_SECONDS, 10).await.unwrap(), 4);

        // A write of this process is never hidden by an answer from before it, even within the
        // same second.
        a.committed();
        assert_eq!(get(103 + RECENT_SECONDS, 10).await.unwrap(), 5);

        // Requests of one second share one computation.
        let shared = Arc::new(AtomicUsize::new(0));
        let (x, y, z) = tokio::join!(
            a.shared_for_a_second("k", counted(&shared, 50)),
            a.shared_for_a_second("k", counted(&shared, 50)),
            a.shared_for_a_second("k", counted(&shared, 50)),
        );
        assert_eq!((x.unwrap(), y.unwrap(), z.unwrap()), (1, 1, 1));
        assert_eq!(shared.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_computation_is_reported_and_not_kept() {
        let a = answers();
        let fail = || async { Err::<usize, _>(AppError::Unavailable("database down".into())) };
        let e = a.fresh_or_recent("q", 300, fail()).await.unwrap_err();
        assert_eq!(e, AppError::Unavailable("database down".into()));
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            a.fresh_or_recent("q", 300, counted(&runs, 1))
                .await
                .unwrap(),
            1
        );
    }

    /// Many distinct questions at once: at most the gate's places compute, a few wait, and the
    /// rest are refused at once with a 503 rather than queued without end.
    #[tokio::test]
    async fn distinct_questions_beyond_the_gate_are_refused_not_piled_up() {
        let a = Arc::new(Answers::new(Gate::new(2, 3)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (a, running, most) = (a.clone(), running.clone(), most.clone());
            tasks.spawn(async move {
                a.fresh_or_recent(&format!("q{i}"), 500, async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(i)
                })
                .await
            });
        }
        let (mut ok, mut busy) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(_) => ok += 1,
                Err(AppError::Unavailable(_)) => busy += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(ok, 5, "two computing and three waiting");
        assert_eq!(busy, 15);
        assert!(most.load(Ordering::SeqCst) <= 2);
    }
}
