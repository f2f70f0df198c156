//! Throttling of password attempts (sign-in, restore confirmation). Each attempt is counted
//! before its password is judged, in one statement that locks the counters' rows, so attempts
//! made in parallel, by one process or several, cannot all be judged before the lock engages:
//! of 40 at once for one name, exactly `limit` are judged and the rest refused.

use crate::error::{AppError, AppResult};
use sqlx::PgPool;
use time::OffsetDateTime;

/// A counter to take an attempt from: its key and how many attempts it allows per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: String,
    pub limit: i32,
}

/// The window attempts count in and how long a lock lasts, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub window_secs: i64,
    pub lockout_secs: i64,
}

/// What taking an attempt gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Judge the password; report the outcome with [`succeeded`] (a failure stays counted).
    Go,
    /// Refused without judging. `engaged` is true for the attempt that engaged the lock (the
    /// one to audit); the others while it lasts are refused quietly.
    Locked {
        retry_after_secs: u64,
        engaged: bool,
    },
}

impl Verdict {
    pub fn into_result(self) -> AppResult<()> {
        match self {
            Verdict::Go => Ok(()),
            Verdict::Locked {
                retry_after_secs, ..
            } => Err(AppError::TooManyRequests { retry_after_secs }),
        }
    }
}

/// The keys of a sign-in: its user name (at most 64 characters of it) and, when known, the
/// client's address.
pub fn keys(
    prefix: &str,
    username: &str,
    ip: Option<&str>,
    per_user: i32,
    per_ip: i32,
) -> Vec<Counter> {
    let mut keys = vec![Counter {
        key: format!(
            "{prefix}user:{}",
            username.chars().take(64).collect::<String>()
        ),
        limit: per_user,
    }];
    if let Some(ip) = ip {
        keys.push(Counter {
            key: format!("{prefix}ip:{ip}"),
            limit: per_ip,
        });
    }
    keys
}

/// Which counters an attempt is over, from each counter's count after this attempt and its
/// lock: (locked until, engaged by this attempt). Pure; `take` feeds it the database's rows.
pub fn judge(
    rows: &[(String, i32, Option<OffsetDateTime>)],
    counters: &[Counter],
    now: OffsetDateTime,
) -> Vec<(String, bool)> {
    let mut over = vec![];
    for (key, attempts, locked_until) in rows {
        let Some(c) = counters.iter().find(|c| &c.key == key) else {
            continue;
        };
        let locked = locked_until.is_some_and(|t| t > now);
        if locked || *attempts > c.limit {
            // The attempt just past the limit is the one that engages the lock.
            over.push((key.clone(), !locked && *attempts == c.limit + 1));
        }
    }
    over
}

/// Counts an attempt against every counter at once and says whether it may be judged.
pub async fn take(pool: &PgPool, counters: &[Counter], t: Timing) -> AppResult<Verdict> {
    let keys: Vec<&str> = counters.iter().map(|c| c.key.as_str()).collect();
    // A window that has passed, or a lock that has ended, starts the count again.
    let rows: Vec<(String, i32, Option<OffsetDateTime>)> = sqlx::query!(
        "INSERT INTO login_throttle AS t (key, failures, window_start, locked_until)
         SELECT k, 1, now(), NULL FROM unnest($1::text[]) AS k ORDER BY k
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN t.locked_until <= now()
                             OR (t.locked_until IS NULL AND t.window_start < now() - make_interval(secs => $2))
                           THEN 1 ELSE t.failures + 1 END,
           window_start = CASE WHEN t.locked_until <= now()
                             OR (t.locked_until IS NULL AND t.window_start < now() - make_interval(secs => $2))
                           THEN now() ELSE t.window_start END,
           locked_until = CASE WHEN t.locked_until <= now() THEN NULL ELSE t.locked_until END
         RETURNING key, failures, locked_until",
        &keys as _,
        t.window_secs as f64
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.key, r.failures, r.locked_until))
    .collect();
    let now = OffsetDateTime::now_utc();
    let over = judge(&rows, counters, now);
    if over.is_empty() {
        return Ok(Verdict::Go);
    }
    let over_keys: Vec<&str> = over.iter().map(|(k, _)| k.as_str()).collect();
    let wait: Option<f64> = sqlx::query_scalar!("WITH l AS (
            UPDATE login_throttle SET locked_until = coalesce(locked_until, now() + make_interval(secs => $2))
            WHERE key = ANY($1) RETURNING locked_until)
         SELECT EXTRACT(EPOCH FROM max(locked_until) - now())::float8 FROM l", &over_keys as _, t.lockout_secs as f64)
    .fetch_one(pool)
    .await?;
    let wait = wait.unwrap_or(t.lockout_secs as f64);
    Ok(Verdict::Locked {
        retry_after_secs: wait.ceil().max(1.0) as u64,
        engaged: over.iter().any(|(_, engaged)| *engaged),
    })
}

/// A judged attempt succeeded: the first counter (the user name's) starts again, and the
/// attempt no longer counts against the others (the address's).
pub async fn succeeded(pool: &PgPool, counters: &[Counter]) -> AppResult<()> {
    let Some((first, rest)) = counters.split_first() else {
        return Ok(());
    };
    let rest: Vec<&str> = rest.iter().map(|c| c.key.as_str()).collect();
    sqlx::query!(
        "WITH d AS (DELETE FROM login_throttle WHERE key = $1)
         UPDATE login_throttle SET failures = greatest(failures - 1, 0) WHERE key = ANY($2)",
        &first.key,
        &rest as _
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes counters whose window and lock are over (a job, hourly).
pub async fn purge(pool: &PgPool, t: Timing) -> AppResult<u64> {
    Ok(sqlx::query!(
        "DELETE FROM login_throttle
         WHERE coalesce(locked_until, '-infinity') < now()
           AND window_start < now() - make_interval(secs => $1)",
        t.window_secs as f64
    )
    .execute(pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn keys_cover_name_and_address() {
        let k = keys("", "bob", Some("10.0.0.1"), 5, 20);
        assert_eq!(
            k.iter()
                .map(|c| (c.key.as_str(), c.limit))
                .collect::<Vec<_>>(),
            [("user:bob", 5), ("ip:10.0.0.1", 20)]
        );
        assert_eq!(
            keys("restore:", "bob", None, 3, 9)[0].key,
            "restore:user:bob"
        );
        assert_eq!(keys("", &"x".repeat(100), None, 5, 20)[0].key.len(), 5 + 64);
    }

    #[test]
    fn attempts_past_the_limit_are_over_and_the_first_engages() {
        let now = datetime!(2026-11-30 12:00 UTC);
        let c = keys("", "bob", Some("ip"), 5, 20);
        let row = |k: &str, n: i32, lock: Option<OffsetDateTime>| (k.to_string(), n, lock);
        let cases = [
            (
                vec![row("user:bob", 5, None), row("ip:ip", 5, None)],
                vec![],
            ),
            (
                vec![row("user:bob", 6, None), row("ip:ip", 6, None)],
                vec![("user:bob".to_string(), true)],
            ),
            (
                vec![row("user:bob", 7, None), row("ip:ip", 7, None)],
                vec![("user:bob".to_string(), false)],
            ),
            (
                vec![
                    row("user:bob", 2, Some(now + time::Duration::minutes(1))),
                    row("ip:ip", 21, None),
                ],
                vec![("user:bob".to_string(), false), ("ip:ip".to_string(), true)],
            ),
            // A lock that has ended is no lock.
            (
                vec![row("user:bob", 1, Some(now - time::Duration::minutes(1)))],
                vec![],
            ),
        ];
        for (rows, want) in cases {
            assert_eq!(judge(&rows, &c, now), want, "{rows:?}");
        }
    }
}
