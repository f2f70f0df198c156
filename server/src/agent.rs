//! `opsdeck agent`: collects this host's metrics and pushes them to an Opsdeck server, buffering
//! (bounded) while the server cannot be reached and re-sending without duplicates.

use crate::config::AgentArgs;
use crate::metrics::{collector::Collector, deliver, Delivery, Outbox};
use app::config::parse_interval;
use app::metrics::IngestBatch;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("--server: {0}")]
    Server(String),
    #[error("--token-file {path}: {reason}")]
    Token { path: String, reason: String },
    #[error("{0}")]
    Args(String),
}

pub fn read_token(path: &std::path::Path) -> Result<String, AgentError> {
    let err = |reason: String| AgentError::Token {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if !token.starts_with(app::auth::tokens::TOKEN_PREFIX) {
        return Err(err(
            "does not hold an Opsdeck token (odk_…) on its first line".into(),
        ));
    }
    Ok(token)
}

pub fn ingest_url(server: &str) -> Result<String, AgentError> {
    let s = server.trim().trim_end_matches('/');
    if !(s.starts_with("http://") || s.starts_with("https://")) || s.len() < 10 {
        return Err(AgentError::Server(format!(
            "`{server}` is not an http:// or https:// URL"
        )));
    }
    Ok(format!("{s}/api/v1/ingest/metrics"))
}

/// Maps the server's answer to what the outbox should do with the batch.
pub fn classify(status: u16, body: &str) -> Delivery {
    match status {
        200..=299 => Delivery::Done,
        400 | 413 | 422 => Delivery::Rejected(format!("HTTP {status}: {body}")),
        _ => Delivery::Retry(format!("HTTP {status}: {body}")),
    }
}

/// How often an agent asks the server which processes to watch.
const WATCH_REFRESH: Duration = Duration::from_secs(60);

/// The processes the server wants this host to watch.
async fn fetch_watches(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    host: &str,
) -> Result<Vec<crate::services::watch::WatchSpec>, String> {
    #[derive(serde::Deserialize)]
    struct W {
        name: String,
        pattern: String,
        port: Option<u16>,
    }
    let url = format!(
        "{}/api/v1/ingest/processes",
        server.trim().trim_end_matches('/')
    );
    let res = client
        .get(url)
        .query(&[("host", host)])
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("HTTP {}", res.status()));
    }
    let list: Vec<W> = res.json().await.map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .map(|w| (w.name, w.pattern, w.port))
        .collect())
}

pub async fn run(args: AgentArgs) -> Result<(), AgentError> {
    let interval = Duration::from_secs(
        parse_interval(&args.interval)
            .map_err(AgentError::Args)?
            .max(1),
    );
    let keep = Duration::from_secs(
        parse_interval(&args.buffer)
            .map_err(AgentError::Args)?
            .max(1),
    );
    let url = ingest_url(&args.server)?;
    let token = read_token(&args.token_file)?;
    let host = args
        .host
        .clone()
        .unwrap_or_else(crate::metrics::collector::local_host_name);
    app::metrics::validate_host(&host).map_err(AgentError::Args)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("opsdeck-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AgentError::Server(e.to_string()))?;
    tracing::info!(%host, %url, interval_secs = interval.as_secs(), "agent started");

    let mut collector = Collector::new().map_err(AgentError::Args)?;
    // Delivery runs apart from collection: a server that hangs never delays a sample.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let sender = client.clone();
    let (to, with) = (url.clone(), token.clone());
    tokio::spawn(deliver(
        rx,
        Outbox::new(interval, keep),
        interval,
        "metrics",
        move |batch| {
            let (client, url, token) = (sender.clone(), to.clone(), with.clone());
            async move {
                match client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&batch)
                    .send()
                    .await
                {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let body = res.text().await.unwrap_or_default();
                        classify(status, &body.chars().take(300).collect::<String>())
                    }
                    Err(e) => Delivery::Retry(e.to_string()),
                }
            }
        },
    ));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut last_watch_fetch: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = crate::shutdown_signal() => {
                tracing::info!("agent stopping");
                return Ok(());
            }
        }
        if last_watch_fetch.is_none_or(|t: std::time::Instant| t.elapsed() >= WATCH_REFRESH) {
            // Bounded, so a slow server cannot hold up the collection.
            let fetch = fetch_watches(&client, &args.server, &token, &host);
            match tokio::time::timeout(interval.min(Duration::from_secs(2)), fetch).await {
                Ok(Ok(w)) => {
                    collector.watches = w;
                    last_watch_fetch = Some(std::time::Instant::now());
                }
                // Keep watching what was known; ask again next time.
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot fetch the process watch list"),
                Err(_) => tracing::debug!("the process watch list did not come in time"),
            }
        }
        let samples = collector.collect(time::OffsetDateTime::now_utc());
        let _ = tx.send(IngestBatch {
            host: host.clone(),
            samples,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_answers_decide_what_happens_to_a_batch() {
        assert_eq!(classify(200, ""), Delivery::Done);
        assert!(matches!(classify(400, "bad"), Delivery::Rejected(_)));
        assert!(matches!(classify(413, ""), Delivery::Rejected(_)));
        assert!(
            matches!(classify(401, ""), Delivery::Retry(_)),
            "a token may be fixed: keep data"
        );
        assert!(matches!(classify(503, ""), Delivery::Retry(_)));
        assert!(matches!(classify(502, ""), Delivery::Retry(_)));
    }

    #[test]
    fn urls_and_token_files_are_checked() {
        assert_eq!(
            ingest_url("http://127.0.0.1:3000/").unwrap(),
            "http://127.0.0.1:3000/api/v1/ingest/metrics"
        );
        assert!(ingest_url("ftp://x").is_err());
        let dir = std::env::temp_dir().join(format!("opsdeck-agent-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "odk_abc\n").unwrap();
        assert_eq!(read_token(&f).unwrap(), "odk_abc");
        std::fs::write(&f, "hunter2\n").unwrap();
        let err = read_token(&f).unwrap_err().to_string();
        assert!(err.contains("odk_") && !err.contains("hunter2"), "{err}");
        assert!(read_token(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
