//! Host metrics in the server process: the collector, the buffer that survives database
//! outages, and the task that records the server's own host.

pub mod collector;
pub mod procfs;

use app::error::AppError;
use app::metrics::{service, IngestBatch, Sample};
use app::state::AppState;
use std::collections::VecDeque;
use std::time::Duration;

/// Batches waiting to be stored, oldest first, bounded: when full, the oldest batch goes.
#[derive(Debug)]
pub struct Outbox {
    batches: VecDeque<IngestBatch>,
    max_batches: usize,
    pub dropped_batches: u64,
}

impl Outbox {
    /// Room for `keep` worth of batches taken every `interval`.
    pub fn new(interval: Duration, keep: Duration) -> Self {
        let max_batches = (keep.as_secs_f64() / interval.as_secs_f64().max(0.001))
            .ceil()
            .max(1.0) as usize;
        Self {
            batches: VecDeque::new(),
            max_batches,
            dropped_batches: 0,
        }
    }

    pub fn push(&mut self, batch: IngestBatch) {
        if batch.samples.is_empty() {
            return;
        }
        while self.batches.len() >= self.max_batches {
            self.batches.pop_front();
            self.dropped_batches += 1;
        }
        self.batches.push_back(batch);
    }

    pub fn front(&self) -> Option<&IngestBatch> {
        self.batches.front()
    }

    pub fn pop(&mut self) -> Option<IngestBatch> {
        self.batches.pop_front()
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn samples(&self) -> usize {
        self.batches.iter().map(|b| b.samples.len()).sum()
    }
}

/// What to do with a batch after a delivery attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Stored (or already stored): remove it.
    Done,
    /// Refused for good (invalid): remove it and say so.
    Rejected(String),
    /// Try again later (database or network down): keep it and stop for now.
    Retry(String),
}

/// Sends buffered batches oldest first until one must wait.
pub async fn drain<F, Fut>(outbox: &mut Outbox, mut send: F) -> Result<usize, String>
where
    F: FnMut(IngestBatch) -> Fut,
    Fut: std::future::Future<Output = Delivery>,
{
    let mut sent = 0;
    while let Some(batch) = outbox.front().cloned() {
        match send(batch).await {
            Delivery::Done => {
                outbox.pop();
                sent += 1;
            }
            Delivery::Rejected(why) => {
                tracing::warn!(reason = %why, "metrics batch rejected; dropped");
                outbox.pop();
            }
            Delivery::Retry(why) => return Err(why),
        }
    }
    Ok(sent)
}

/// Delivers the batches that arrive on `rx`, oldest first, keeping them in `outbox` while
/// `send` says to retry and trying again every `retry`. Runs apart from the collection, so a
/// delivery that hangs (a server or database that does not answer) never delays a sample:
/// what is collected meanwhile waits in the channel. Returns when `rx` closes.
pub async fn deliver<F, Fut>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<IngestBatch>,
    mut outbox: Outbox,
    retry: Duration,
    what: &'static str,
    mut send: F,
) where
    F: FnMut(IngestBatch) -> Fut,
    Fut: std::future::Future<Output = Delivery>,
{
    let mut failing = false;
    let mut dropped_before = 0;
    loop {
        while let Ok(b) = rx.try_recv() {
            outbox.push(b);
        }
        if outbox.is_empty() {
            match rx.recv().await {
                Some(b) => outbox.push(b),
                None => return,
            }
            continue;
        }
        match drain(&mut outbox, &mut send).await {
            Ok(n) => {
                if failing {
                    tracing::info!(sent = n, what, "delivering again; buffer drained");
                    failing = false;
                }
            }
            Err(why) => {
                if !failing {
                    tracing::warn!(reason = %why, buffered = outbox.len(), what, "cannot deliver; buffering");
                    failing = true;
                }
                if outbox.dropped_batches > dropped_before {
                    tracing::warn!(
                        dropped = outbox.dropped_batches - dropped_before,
                        what,
                        "buffer full; oldest batches dropped"
                    );
                    dropped_before = outbox.dropped_batches;
                }
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// Records the server's own host every `collect_interval_secs`, storing directly.
pub async fn run_local_collector(state: AppState) {
    let secs = state.config.collect_interval.secs();
    if secs == 0 {
        return;
    }
    let interval = Duration::from_secs(secs).max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    let host = state.config.host_name.clone();
    let mut collector = match collector::Collector::new() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "cannot collect this host's metrics");
            return;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let outbox = Outbox::new(interval, Duration::from_secs(3600));
    let store = state.clone();
    tokio::spawn(deliver(
        rx,
        outbox,
        interval,
        "local metrics",
        move |batch| {
            let state = store.clone();
            async move {
                match service::ingest(&state, &batch, service::Origin::Local).await {
                    Ok(_) => Delivery::Done,
                    Err(AppError::BadRequest(e)) => Delivery::Rejected(e),
                    Err(e) => Delivery::Retry(e.to_string()),
                }
            }
        },
    ));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    while app::runtime::next_turn(&mut ticker, &state.runtime.stop).await {
        let Some(mut c) = collector.take() else {
            return;
        };
        // The watch list is read each time, so changes in the UI apply at the next collection;
        // while the database is away (or slow) the last list stays.
        if let Ok(Ok(w)) = tokio::time::timeout(
            Duration::from_millis(500),
            app::services::service::watches_for(&state.pool, &host),
        )
        .await
        {
            c.watches = w;
        }
        let ts = time::OffsetDateTime::now_utc();
        let (c, samples): (collector::Collector, Vec<Sample>) =
            match tokio::task::spawn_blocking(move || {
                let s = c.collect(ts);
                (c, s)
            })
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "collector task failed; local metrics stop");
                    return;
                }
            };
        collector = Some(c);
        if tx
            .send(IngestBatch {
                host: host.clone(),
                samples,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> IngestBatch {
        IngestBatch {
            host: "h".into(),
            samples: (0..n)
                .map(|i| Sample {
                    metric: "m".into(),
                    labels: Default::default(),
                    ts: app::timestamp::Timestamp(time::OffsetDateTime::UNIX_EPOCH),
                    value: i as f64,
                })
                .collect(),
        }
    }

    #[test]
    fn the_outbox_is_bounded_and_drops_the_oldest() {
        let mut o = Outbox::new(Duration::from_secs(5), Duration::from_secs(20));
        for i in 1..=6 {
            o.push(batch(i));
        }
        assert_eq!(o.len(), 4);
        assert_eq!(o.dropped_batches, 2);
        assert_eq!(o.front().unwrap().samples.len(), 3, "oldest two dropped");
        o.push(batch(0));
        assert_eq!(o.len(), 4, "empty batches are not kept");
    }

    #[tokio::test]
    async fn drain_stops_at_the_first_retry_and_keeps_order() {
        let mut o = Outbox::new(Duration::from_secs(1), Duration::from_secs(10));
        for i in 1..=4 {
            o.push(batch(i));
        }
        let mut seen = vec![];
        let r = drain(&mut o, |b| {
            let n = b.samples.len();
            seen.push(n);
            async move {
                match n {
                    2 => Delivery::Rejected("bad".into()),
                    3 => Delivery::Retry("down".into()),
                    _ => Delivery::Done,
                }
            }
        })
        .await;
        assert_eq!(r, Err("down".into()));
        assert_eq!(seen, vec![1, 2, 3]);
        assert_eq!(o.len(), 2, "batch 3 and 4 wait");
        assert_eq!(drain(&mut o, |_| async { Delivery::Done }).await, Ok(2));
        assert!(o.is_empty());
    }

    /// A 30-minute outage of an agent sending every 5 s: 360 batches wait, none is dropped
    /// (the default buffer is an hour), and once the server answers they all arrive, in order,
    /// each once.
    #[tokio::test]
    async fn an_outage_fills_the_buffer_and_delivery_drains_it_in_order() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let outbox = Outbox::new(Duration::from_secs(5), Duration::from_secs(3600));
        let delivered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (d, u) = (delivered.clone(), up.clone());
        let task = tokio::spawn(deliver(
            rx,
            outbox,
            Duration::from_millis(5),
            "test",
            move |b| {
                let (d, u) = (d.clone(), u.clone());
                async move {
                    if !u.load(std::sync::atomic::Ordering::SeqCst) {
                        return Delivery::Retry("connection refused".into());
                    }
                    d.lock().unwrap().push(b.samples.len());
                    Delivery::Done
                }
            },
        ));
        for i in 1..=360 {
            tx.send(batch(i)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            delivered.lock().unwrap().is_empty(),
            "nothing gets through while down"
        );
        up.store(true, std::sync::atomic::Ordering::SeqCst);
        tx.send(batch(361)).unwrap();
        drop(tx);
        task.await.unwrap();
        assert_eq!(*delivered.lock().unwrap(), (1..=361).collect::<Vec<_>>());
    }
}
