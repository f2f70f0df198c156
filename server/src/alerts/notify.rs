//! Sends queued notifications: webhooks (JSON POST, Slack- or Discord-compatible bodies) and
//! e-mail over SMTP. Each second a process claims what is due; a failure is retried with
//! backoff (5 s, 15 s, 45 s… at most 10 minutes apart, six attempts).

use app::alerts::rules::{email_text, webhook_body, Notice};
use app::alerts::service::{claim_notifications, record_delivery, Outgoing};
use app::state::AppState;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("opsdeck-alerts/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// The innermost cause of an error, which says what happened ("Connection refused").
fn cause(e: &dyn std::error::Error) -> String {
    let mut c = e;
    while let Some(inner) = c.source() {
        c = inner;
    }
    c.to_string()
}

pub async fn send_webhook(
    client: &reqwest::Client,
    url: &str,
    format: &str,
    n: &Notice,
) -> Result<(), String> {
    let res = client
        .post(url)
        .json(&webhook_body(format, n))
        .send()
        .await
        .map_err(|e| format!("POST failed: {}", cause(&e)))?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    let text: String = res
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(format!("the webhook answered HTTP {status}: {text}"))
}

/// The SMTP transport from `OPSDECK_SMTP_URL` (`smtp://`, `smtps://`, `smtp://…?tls=required`,
/// with credentials in the URL).
pub fn mailer(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|b| b.timeout(Some(Duration::from_secs(15))).build())
        .map_err(|e| format!("OPSDECK_SMTP_URL: {e}"))
}

pub async fn send_email(state: &AppState, to: &str, n: &Notice) -> Result<(), String> {
    let (Some(url), Some(from)) = (&state.config.smtp_url, &state.config.smtp_from) else {
        return Err("e-mail is not set up: set OPSDECK_SMTP_URL and OPSDECK_SMTP_FROM".into());
    };
    let (subject, body) = email_text(n);
    let mut msg = Message::builder()
        .from(
            from.parse()
                .map_err(|e| format!("OPSDECK_SMTP_FROM: {e}"))?,
        )
        .subject(subject);
    for a in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        msg = msg.to(a.parse().map_err(|e| format!("`{a}`: {e}"))?);
    }
    let msg = msg
        .body(body)
        .map_err(|e| format!("building the message: {e}"))?;
    mailer(url.expose())?
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP: {}", cause(&e)))
}

async fn deliver(state: &AppState, client: &reqwest::Client, o: &Outgoing) -> Result<(), String> {
    let mut n = o.body.0.clone();
    if let Some(base) = &state.config.public_url {
        n.url = Some(format!("{}/alerts", base.trim_end_matches('/')));
    }
    match o.kind.as_str() {
        "webhook" => send_webhook(client, &o.target, &o.format, &n).await,
        "email" => send_email(state, &o.target, &n).await,
        k => Err(format!("unknown channel kind `{k}`")),
    }
}

/// One round: claims the due notifications and sends them concurrently.
pub async fn round(
    state: &AppState,
    client: &reqwest::Client,
) -> Result<usize, app::error::AppError> {
    let due = claim_notifications(&state.pool).await?;
    let n = due.len();
    let mut set = tokio::task::JoinSet::new();
    for o in due {
        let (state, client) = (state.clone(), client.clone());
        set.spawn(async move {
            let r = deliver(&state, &client, &o).await;
            if let Err(e) = &r {
                // The error names the channel kind and the HTTP status, never the URL.
                tracing::warn!(notification = o.id, attempt = o.attempts, error = %e, "notification not delivered");
            }
            record_delivery(&state.pool, o.id, o.attempts, r).await
        });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "could not record a delivery");
        }
    }
    Ok(n)
}

pub async fn run(state: AppState) {
    let client = client();
    crate::jobs::every(Duration::from_secs(1), "sending notifications", || {
        round(&state, &client)
    })
    .await
}
