//! Sends queued notifications: webhooks (JSON POST, Slack- or Discord-compatible bodies) and
//! e-mail over SMTP. Each second a process claims what is due; a failure is retried with
//! backoff (5 s, 15 s, 45 s… at most 10 minutes apart, six attempts).

use crate::outbound::{self, cause};
use app::alerts::group::Message as Alerts;
use app::alerts::rules::{email_text, webhook_body};
use app::alerts::service::{
    claim_notifications, flush_outbox, record_delivery, silent_after, Outgoing,
};
use app::config::Config;
use app::state::AppState;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// The client webhooks are sent with: `outbound_deny` applied, no redirects followed.
pub fn client(config: &Config) -> reqwest::Client {
    outbound::client(config, "alerts", 0)
}

pub async fn send_webhook(
    client: &reqwest::Client,
    config: &Config,
    url: &str,
    format: &str,
    n: &Alerts,
) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    outbound::check_url(&parsed, &config.outbound_deny)?;
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        client.post(parsed).json(&webhook_body(format, n)).send(),
    )
    .await
    .map_err(|_| "no answer within 10 s".to_string())?
    .map_err(|e| format!("POST failed: {}", cause(&e)))?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    // (What the webhook answered is not kept: only its status.)
    Err(format!("the webhook answered HTTP {status}"))
}

/// The SMTP transport from `OPSDECK_SMTP_URL` (`smtp://`, `smtps://`, `smtp://…?tls=required`,
/// with credentials in the URL).
pub fn mailer(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|b| b.timeout(Some(Duration::from_secs(15))).build())
        .map_err(|e| format!("OPSDECK_SMTP_URL: {e}"))
}

pub async fn send_email(state: &AppState, to: &str, n: &Alerts) -> Result<(), String> {
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
        n.lead.url = Some(format!("{}/alerts", base.trim_end_matches('/')));
    }
    match o.kind.as_str() {
        "webhook" => send_webhook(client, &state.config, &o.target, &o.format, &n).await,
        "email" => send_email(state, &o.target, &n).await,
        k => Err(format!("unknown channel kind `{k}`")),
    }
}

/// One round: turns each channel's due notices into one message, then claims the due messages
/// and sends them concurrently.
pub async fn round(
    state: &AppState,
    client: &reqwest::Client,
) -> Result<usize, app::error::AppError> {
    flush_outbox(
        &state.pool,
        time::OffsetDateTime::now_utc(),
        silent_after(&state.config),
    )
    .await?;
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
    let client = client(&state.config);
    crate::jobs::every(
        &state,
        Duration::from_secs(1),
        "sending notifications",
        || round(&state, &client),
    )
    .await
}
