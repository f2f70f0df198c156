//! The notification queue: claimed with SKIP LOCKED, so each notification is sent once however
//! many processes run, and retried with backoff.

use super::*;

/// A notification claimed for sending.
#[derive(Debug, sqlx::FromRow)]
pub struct Outgoing {
    pub id: i64,
    pub attempts: i32,
    pub kind: String,
    pub target: String,
    pub format: String,
    pub body: sqlx::types::Json<Notice>,
}

/// Claims up to 50 due notifications. A claim holds each for a minute: if this process dies
/// while sending, another one retries it then.
pub async fn claim_notifications(pool: &PgPool) -> AppResult<Vec<Outgoing>> {
    Ok(sqlx::query_as(
        "UPDATE alert_notifications n SET attempts = n.attempts + 1, next_attempt_at = now() + interval '1 minute'
         FROM alert_channels c
         WHERE c.id = n.channel_id AND n.id IN (
            SELECT id FROM alert_notifications WHERE status = 'queued' AND next_attempt_at <= now()
            ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED)
         RETURNING n.id, n.attempts, c.kind, c.target, c.format, n.body",
    )
    .fetch_all(pool)
    .await?)
}

/// Records a delivery attempt: sent, retried later with backoff, or given up.
pub async fn record_delivery(
    pool: &PgPool,
    id: i64,
    attempts: i32,
    result: Result<(), String>,
) -> AppResult<()> {
    match result {
        Ok(()) => {
            sqlx::query!("UPDATE alert_notifications SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = $1", id)
            .execute(pool)
            .await?;
        }
        Err(e) => {
            let give_up = attempts >= rules::MAX_ATTEMPTS;
            sqlx::query!(
                "UPDATE alert_notifications SET last_error = $2,
                    status = CASE WHEN $3 THEN 'failed' ELSE 'queued' END,
                    next_attempt_at = now() + make_interval(secs => $4)
                 WHERE id = $1",
                id,
                e.chars().take(500).collect::<String>(),
                give_up,
                rules::backoff(attempts).as_seconds_f64()
            )
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}
