//! Runs the HTTP health checks: each second a process claims the due checks (one UPDATE, so
//! each check runs once however many processes there are) and runs them concurrently, each
//! under its own timeout.

use crate::outbound;
use app::alerts::rules::judge_response;
use app::alerts::service::{claim_checks, record_check, DueCheck};
use app::config::Config;
use app::state::AppState;
use std::time::{Duration, Instant};

/// How much of a body is read to look for the expected text.
const BODY_LIMIT: usize = 64 * 1024;

/// The client checks run with: `outbound_deny` applied, at most 5 redirects, each checked.
pub fn client(config: &Config) -> reqwest::Client {
    outbound::client(config, "healthcheck", 5)
}

/// Runs one check: Ok when up; the status seen (if any) and the latency either way.
pub async fn probe(
    client: &reqwest::Client,
    config: &Config,
    c: &DueCheck,
) -> (Option<u16>, f64, Result<(), String>) {
    let started = Instant::now();
    let timeout = Duration::from_secs(c.timeout_seconds.max(1) as u64);
    let work = async {
        let url = reqwest::Url::parse(&c.url).map_err(|e| (None, format!("not a URL: {e}")))?;
        outbound::check_url(&url, &config.outbound_deny).map_err(|e| (None, e))?;
        let mut res = client
            .get(url)
            .send()
            .await
            .map_err(|e| (None, outbound::cause(&e)))?;
        let status = res.status().as_u16();
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match res.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err((Some(status), format!("reading the body: {e}"))),
            }
        }
        let text = String::from_utf8_lossy(&body);
        judge_response(status, &text, c.expected_status, c.expected_body.as_deref())
            .map(|_| status)
            .map_err(|e| (Some(status), e))
    };
    let r = tokio::time::timeout(timeout, work).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match r {
        Err(_) => (
            None,
            ms,
            Err(format!("no answer within {} s", timeout.as_secs())),
        ),
        Ok(Ok(status)) => (Some(status), ms, Ok(())),
        Ok(Err((status, e))) => (status, ms, Err(e)),
    }
}

pub async fn round(
    state: &AppState,
    client: &reqwest::Client,
) -> Result<usize, app::error::AppError> {
    let due = claim_checks(&state.pool).await?;
    let n = due.len();
    for c in due {
        let (s, client) = (state.clone(), client.clone());
        state.runtime.work.spawn(async move {
            let state = s;
            let at = time::OffsetDateTime::now_utc();
            let (status, ms, result) = probe(&client, &state.config, &c).await;
            if let Err(e) = record_check(&state.pool, c.id, at, ms, status, result).await {
                tracing::warn!(check = %c.name, error = %e, "could not record a health check");
            }
        });
    }
    Ok(n)
}

pub async fn run(state: AppState) {
    let client = client(&state.config);
    crate::jobs::every(
        &state,
        Duration::from_secs(1),
        "running health checks",
        || round(&state, &client),
    )
    .await
}
