//! The notification queue. What rules announce waits in each channel's outbox; a flush turns a
//! channel's due notices into one message (`group`); messages are claimed with SKIP LOCKED, so
//! each is sent once however many processes run, and retried with backoff.

use super::*;
use crate::alerts::group::{self, Message, Policy, Waiting};
use crate::alerts::NotificationLine;
use crate::timestamp::Timestamp;

/// A notification claimed for sending.
#[derive(Debug, sqlx::FromRow)]
pub struct Outgoing {
    pub id: i64,
    pub attempts: i32,
    pub kind: String,
    pub target: String,
    pub format: String,
    pub body: sqlx::types::Json<Message>,
}

/// The hosts whose other alerts are suppressed, with why: silent (nothing for `silent_after`,
/// within the last week), or their own `host` alert fires.
pub async fn down_hosts(
    pool: &PgPool,
    now: OffsetDateTime,
    silent_after: Duration,
) -> AppResult<BTreeMap<String, String>> {
    let mut down = BTreeMap::new();
    let silent = sqlx::query!(
        "SELECT name, last_seen FROM hosts WHERE last_seen < $1 AND last_seen > $2",
        now - silent_after,
        now - Duration::days(7)
    )
    .fetch_all(pool)
    .await?;
    for h in silent {
        let age = (now - h.last_seen).whole_seconds().max(0) as u64;
        down.insert(
            h.name,
            format!("silent for {}", crate::components::fmt_duration(age)),
        );
    }
    let firing = sqlx::query!(
        r#"SELECT DISTINCT s.host AS "host!", r.name FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
           WHERE r.kind = 'host' AND s.phase = 'firing' AND s.host IS NOT NULL"#
    )
    .fetch_all(pool)
    .await?;
    for f in firing {
        down.entry(f.host)
            .or_insert_with(|| format!("its alert `{}` fires", f.name));
    }
    Ok(down)
}

/// A channel's grouping settings and what it sent lately.
struct Flow {
    policy: Policy,
    oldest: OffsetDateTime,
    last: Option<OffsetDateTime>,
    recent: i64,
}

async fn flow(
    conn: &mut sqlx::PgConnection,
    channel: i64,
    now: OffsetDateTime,
) -> AppResult<Option<Flow>> {
    let r = sqlx::query!(
        r#"SELECT c.group_wait_seconds, c.group_interval_seconds, c.max_per_hour,
                  (SELECT min(created_at) FROM alert_outbox o WHERE o.channel_id = c.id AND o.outcome = 'waiting') AS oldest,
                  (SELECT max(created_at) FROM alert_notifications n WHERE n.channel_id = c.id AND n.alerts > 0) AS last,
                  (SELECT count(*) FROM alert_notifications n
                    WHERE n.channel_id = c.id AND n.alerts > 0 AND n.created_at > $2) AS "recent!"
           FROM alert_channels c WHERE c.id = $1"#,
        channel,
        now - Duration::hours(1)
    )
    .fetch_optional(conn)
    .await?;
    Ok(r.and_then(|r| {
        Some(Flow {
            policy: Policy {
                group_wait: Duration::seconds(r.group_wait_seconds.into()),
                group_interval: Duration::seconds(r.group_interval_seconds.into()),
                max_per_hour: r.max_per_hour.into(),
            },
            oldest: r.oldest?,
            last: r.last,
            recent: r.recent,
        })
    }))
}

/// At most this many notices go into one message (the rest into the next).
const MESSAGE_MAX_ALERTS: i64 = 200;

/// Turns each channel's due notices into one message (alerts of down hosts listed under their
/// host); returns the messages queued. A channel is flushed by one process at a time (its row
/// is locked), and whether it is due is decided under that lock.
pub async fn flush_outbox(
    pool: &PgPool,
    now: OffsetDateTime,
    silent_after: Duration,
) -> AppResult<usize> {
    let channels: Vec<i64> = sqlx::query_scalar!(
        r#"SELECT DISTINCT channel_id AS "id!" FROM alert_outbox WHERE outcome = 'waiting'"#
    )
    .fetch_all(pool)
    .await?;
    if channels.is_empty() {
        return Ok(0);
    }
    let down = down_hosts(pool, now, silent_after).await?;
    let mut queued = 0;
    for channel in channels {
        let mut tx = pool.begin().await?;
        let paused: Option<bool> = sqlx::query_scalar!(
            "SELECT paused FROM alert_channels WHERE id = $1 FOR UPDATE SKIP LOCKED",
            channel
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(paused) = paused else { continue };
        let Some(f) = flow(&mut tx, channel, now).await? else {
            continue;
        };
        let (at, digest) = group::due(&f.policy, f.oldest, f.last, f.recent);
        if at > now && !paused {
            continue;
        }
        let rows = sqlx::query!(
            r#"SELECT id, notice AS "notice: sqlx::types::Json<Notice>" FROM alert_outbox
               WHERE channel_id = $1 AND outcome = 'waiting' ORDER BY id LIMIT $2"#,
            channel,
            MESSAGE_MAX_ALERTS
        )
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        if paused {
            mark(&mut tx, &ids, "dropped", "the channel is paused", None, now).await?;
            tx.commit().await?;
            continue;
        }
        let plan = group::plan(
            rows.into_iter()
                .map(|r| Waiting {
                    id: r.id,
                    notice: r.notice.0,
                })
                .collect(),
            &down,
            digest,
        );
        let message = match &plan.message {
            Some(m) => Some(
                sqlx::query_scalar!(
                    "INSERT INTO alert_notifications (channel_id, body, alerts, digest) VALUES ($1, $2, $3, $4) RETURNING id",
                    channel,
                    sqlx::types::Json(m) as _,
                    m.listed().len() as i32,
                    m.digest
                )
                .fetch_one(&mut *tx)
                .await?,
            ),
            None => None,
        };
        queued += usize::from(message.is_some());
        mark(&mut tx, &plan.sent, "sent", "", message, now).await?;
        let (held, why): (Vec<i64>, Vec<String>) = plan.suppressed.into_iter().unzip();
        sqlx::query!(
            "UPDATE alert_outbox o SET outcome = 'suppressed', reason = u.reason, notification_id = $3, flushed_at = $4
             FROM UNNEST($1::bigint[], $2::text[]) AS u(id, reason) WHERE o.id = u.id",
            &held,
            &why,
            message,
            now
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(queued)
}

async fn mark(
    tx: &mut sqlx::PgConnection,
    ids: &[i64],
    outcome: &str,
    reason: &str,
    message: Option<i64>,
    now: OffsetDateTime,
) -> AppResult<()> {
    sqlx::query!(
        "UPDATE alert_outbox SET outcome = $2, reason = NULLIF($3, ''), notification_id = $4, flushed_at = $5
         WHERE id = ANY($1)",
        ids,
        outcome,
        reason,
        message,
        now
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// The last notices through the outbox, newest first: where each went (waiting and why, in
/// which message, suppressed and why).
pub async fn notification_log(
    pool: &PgPool,
    now: OffsetDateTime,
    limit: i64,
) -> AppResult<Vec<NotificationLine>> {
    let rows = sqlx::query!(
        r#"SELECT o.id, o.channel_id, c.name AS channel, o.notice AS "notice: sqlx::types::Json<Notice>",
                  o.created_at, o.outcome, o.reason, o.notification_id,
                  n.status AS "message_status?", n.alerts AS "message_alerts?", n.digest AS "digest?"
           FROM alert_outbox o JOIN alert_channels c ON c.id = o.channel_id
           LEFT JOIN alert_notifications n ON n.id = o.notification_id
           ORDER BY o.id DESC LIMIT $1"#,
        limit.clamp(1, 500)
    )
    .fetch_all(pool)
    .await?;
    let mut flows: HashMap<i64, Option<Flow>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let why = match r.outcome.as_str() {
            "waiting" => {
                if let std::collections::hash_map::Entry::Vacant(e) = flows.entry(r.channel_id) {
                    e.insert(flow(&mut *pool.acquire().await?, r.channel_id, now).await?);
                }
                match &flows[&r.channel_id] {
                    Some(f) => group::waiting_reason(
                        &f.policy,
                        group::due(&f.policy, f.oldest, f.last, f.recent),
                        f.oldest,
                    ),
                    None => String::new(),
                }
            }
            "sent" => match r.message_alerts {
                Some(n) if n > 1 => format!(
                    "in one message with {} other alert{}{}",
                    n - 1,
                    if n == 2 { "" } else { "s" },
                    if r.digest == Some(true) {
                        " (hourly digest)"
                    } else {
                        ""
                    }
                ),
                _ => "on its own".into(),
            },
            _ => r.reason.clone().unwrap_or_default(),
        };
        let n = r.notice.0;
        out.push(NotificationLine {
            at: Timestamp(r.created_at),
            channel: r.channel,
            rule: n.rule,
            instance: n.instance,
            status: n.status,
            outcome: r.outcome,
            why,
            message: r.notification_id,
            delivery: r.message_status,
        });
    }
    Ok(out)
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
