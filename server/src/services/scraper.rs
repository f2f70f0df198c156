//! Scrapes the Prometheus endpoints in `scrape_targets`. Every second each process claims the
//! targets that are due (one UPDATE, so one process per scrape however many run) and scrapes
//! them concurrently, each under its own timeout: a slow or broken target never holds up others.

use app::error::AppError;
use app::metrics::{IngestBatch, Labels, Sample};
use app::services::expfmt;
use app::services::scrape::{convert, leave_out_copies, Converted, Counters, STORE_INFO};
use app::services::service::{claim_due, record_scrape, Claimed, ScrapeResult, Scraped};
use app::state::AppState;
use app::timestamp::Timestamp;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The client scrapes run with: `outbound_deny` applied, at most 3 redirects, each checked.
pub fn client(config: &app::config::Config) -> reqwest::Client {
    crate::outbound::client(config, "scraper", 3)
}

/// Reads a body up to `expfmt::MAX_BODY`.
async fn body(mut res: reqwest::Response) -> Result<String, String> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
    {
        if buf.len() + chunk.len() > expfmt::MAX_BODY {
            return Err(format!(
                "the body is larger than {} MiB",
                expfmt::MAX_BODY >> 20
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| "the body is not UTF-8 text".to_string())
}

/// One target's answer, converted.
struct Fetched {
    converted: Converted,
    /// Series left out as copies of this database's own (`leave_out_copies`).
    skipped: usize,
    /// The turn to store, held until the samples are stored.
    storing: tokio::sync::OwnedSemaphorePermit,
    /// Seconds the fetch took.
    seconds: f64,
}

/// Fetches and converts one target; Err says what went wrong in words.
async fn fetch(
    state: &AppState,
    client: &reqwest::Client,
    target: &Claimed,
    at: OffsetDateTime,
    prev: Option<&Counters>,
) -> Result<Fetched, String> {
    let timeout = Duration::from_secs(target.timeout_seconds.max(1) as u64);
    let (name, url, token) = (&target.name, &target.url, target.bearer_token.as_deref());
    let max_series = target.max_series.max(1) as usize;
    let started = Instant::now();
    let work = async {
        let url = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        crate::outbound::check_url(&url, &state.config.outbound_deny)?;
        let mut req = client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req
            .header(
                reqwest::header::ACCEPT,
                "text/plain;version=0.0.4;q=1,*/*;q=0.1",
            )
            .send()
            .await
            .map_err(|e| {
                // The innermost cause says what happened ("Connection refused").
                let what = if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                format!("{what}: {}", crate::outbound::cause(&e))
            })?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        body(res).await
    };
    let text = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("timed out after {} s", timeout.as_secs()))??;
    let fetched_in = started.elapsed().as_secs_f64();
    // From here on memory grows with the series: a few scrapes at a time.
    // Scrapes convert and store their samples a few at a time: fetching is not limited (a slow
    // target only waits on its socket); the memory-hungry part is.
    let permit = state
        .runtime
        .scrape_storing
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| e.to_string())?;
    let families = expfmt::parse(&text)?;
    drop(text);
    // Only an Opsdeck says which database it stores into: this one is asked only then.
    let (families, skipped) = if families.iter().any(|f| f.name == STORE_INFO) {
        let own = app::db::identity(&state.pool)
            .await
            .map_err(|e| format!("cannot read this database's identity: {e}"))?;
        leave_out_copies(families, &own.to_string())
    } else {
        (families, 0)
    };
    Ok(Fetched {
        converted: convert(&families, name, at, prev, max_series),
        skipped,
        storing: permit,
        seconds: fetched_in,
    })
}

/// Scrapes one claimed target, stores its samples and records the outcome.
pub async fn scrape_one(
    state: &AppState,
    client: &reqwest::Client,
    target: Claimed,
) -> Result<(), AppError> {
    // Microseconds, as PostgreSQL keeps them, so rates match the stored times exactly.
    let now = OffsetDateTime::now_utc();
    let at = now
        .replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    let t0 = Instant::now();
    let fetched = fetch(
        state,
        client,
        &target,
        at,
        target.counters.as_ref().map(|c| &c.0),
    )
    .await;
    // The scrape's duration is the fetch: waiting for a turn to store is not the target's.
    let duration = match &fetched {
        Ok(f) => f.seconds,
        Err(_) => t0.elapsed().as_secs_f64(),
    };
    let Claimed { id, name, host, .. } = target;
    let meta = |metric: &str, value: f64| Sample {
        metric: metric.into(),
        labels: Labels::from([("target".to_string(), name.clone())]),
        ts: Timestamp(at),
        value,
    };
    // Held until the samples are stored (a few scrapes store at a time).
    let (fetched, _storing) = match fetched {
        Ok(f) => (Ok((f.converted, f.skipped)), Some(f.storing)),
        Err(e) => (Err(e), None),
    };
    let mut outcome = match fetched {
        Ok((c, skipped)) => {
            let mut samples = c.samples;
            let n = samples.len();
            samples.push(meta("scrape_up", 1.0));
            samples.push(meta("scrape_duration_seconds", duration));
            samples.push(meta("scrape_samples", n as f64));
            samples.push(meta("scrape_series_dropped", c.dropped as f64));
            if let Some(rps) = app::services::scrape::request_rate(&samples) {
                samples.push(meta("scrape_requests_per_second", rps));
            }
            let scraped = Scraped {
                samples: n,
                dropped: c.dropped,
                skipped,
                counters: c.counters,
            };
            Ok((samples, scraped))
        }
        Err(e) => Err(e),
    };
    let stored = match &mut outcome {
        Ok((samples, _)) => std::mem::take(samples),
        Err(_) => vec![
            meta("scrape_up", 0.0),
            meta("scrape_duration_seconds", duration),
        ],
    };
    let mut stored = stored;
    while !stored.is_empty() {
        let rest = stored.split_off(stored.len().min(app::metrics::MAX_SAMPLES_PER_BATCH));
        let batch = IngestBatch {
            host: host.clone(),
            samples: std::mem::replace(&mut stored, rest),
        };
        if let Err(e) =
            app::metrics::service::ingest(state, &batch, app::metrics::service::Origin::Scrape)
                .await
        {
            if outcome.is_ok() {
                outcome = Err(format!("cannot store the samples: {e}"));
            }
            break;
        }
    }
    let result = ScrapeResult {
        at,
        duration_ms: duration * 1000.0,
        outcome: outcome.map(|(_, scraped)| scraped),
    };
    if let Err(e) = &result.outcome {
        tracing::debug!(target = %name, error = %e, "scrape failed");
    }
    record_scrape(&state.pool, id, &result).await
}

/// Claims the due targets and scrapes them all; returns how many were scraped.
pub async fn round(state: &AppState, client: &reqwest::Client) -> Result<usize, AppError> {
    let due = claim_due(&state.pool).await?;
    let n = due.len();
    let mut tasks = tokio::task::JoinSet::new();
    for t in due {
        let (state, client) = (state.clone(), client.clone());
        tasks.spawn(async move {
            let name = t.name.clone();
            if let Err(e) = scrape_one(&state, &client, t).await {
                tracing::warn!(target = %name, error = %e, "cannot record a scrape");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(n)
}

/// The scraper loop of `opsdeck serve`: a round every second, each spawned on its own, so a
/// slow target (at most its timeout, never longer than its interval) delays nobody else.
pub async fn run(state: AppState) {
    let client = client(&state.config);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    while app::runtime::next_turn(&mut ticker, &state.runtime.stop).await {
        let (s, client, failing) = (state.clone(), client.clone(), failing.clone());
        state.runtime.work.spawn(async move {
            let state = s;
            match round(&state, &client).await {
                Ok(_) => failing.store(false, std::sync::atomic::Ordering::Relaxed),
                Err(e) => {
                    if !failing.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(error = %e, "cannot claim scrape targets; retrying");
                    }
                }
            }
        });
    }
}
