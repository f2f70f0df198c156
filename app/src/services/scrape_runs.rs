//! Scrapes as the database keeps them: claiming the targets due now (one process per scrape,
//! whatever the number of processes) and recording what each scrape found.

use super::scrape::Counters;
use crate::error::AppResult;
use sqlx::PgPool;
use time::OffsetDateTime;

/// A target claimed for scraping.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub host: String,
    pub timeout_seconds: i32,
    pub max_series: i32,
    pub bearer_token: Option<String>,
    pub counters: Option<sqlx::types::Json<Counters>>,
}

/// Claims the targets due now: each is scraped by the one process whose UPDATE took it.
pub async fn claim_due(pool: &PgPool) -> AppResult<Vec<Claimed>> {
    Ok(sqlx::query_as(
        "UPDATE scrape_targets SET next_scrape_at = now() + make_interval(secs => interval_seconds)
         WHERE id IN (SELECT id FROM scrape_targets WHERE next_scrape_at <= now() AND NOT paused
                      ORDER BY next_scrape_at LIMIT 200 FOR UPDATE SKIP LOCKED)
         RETURNING id, name, url, host, timeout_seconds, max_series, bearer_token, counters",
    )
    .fetch_all(pool)
    .await?)
}

/// What a scrape that answered gave.
pub struct Scraped {
    /// Samples stored (the scrape's own `scrape_*` ones not counted).
    pub samples: usize,
    /// Series over the target's limit, or not storable.
    pub dropped: usize,
    /// Series left out as copies of this database's own (an Opsdeck on this database scraped).
    pub skipped: usize,
    pub counters: Counters,
}

/// What one scrape found.
pub struct ScrapeResult {
    pub at: OffsetDateTime,
    pub duration_ms: f64,
    pub outcome: Result<Scraped, String>,
}

/// Records a scrape's outcome; the state's `since` moves only when up/down changes.
pub async fn record_scrape(pool: &PgPool, id: i64, r: &ScrapeResult) -> AppResult<()> {
    let (up, error, samples, dropped, skipped, counters) = match &r.outcome {
        Ok(s) => (
            true,
            None,
            Some(s.samples as i32),
            s.dropped as i32,
            s.skipped as i32,
            Some(sqlx::types::Json(&s.counters)),
        ),
        Err(e) => (
            false,
            Some(e.chars().take(500).collect::<String>()),
            None,
            0,
            0,
            None,
        ),
    };
    sqlx::query!("UPDATE scrape_targets SET
            state_since = CASE WHEN up IS DISTINCT FROM $2 THEN $3 ELSE state_since END,
            up = $2, last_scrape_at = $3,
            last_success_at = CASE WHEN $2 THEN $3 ELSE last_success_at END,
            last_error = $4, last_duration_ms = $5,
            last_samples = coalesce($6, last_samples), last_dropped = CASE WHEN $2 THEN $7 ELSE last_dropped END,
            last_skipped = CASE WHEN $2 THEN $9 ELSE last_skipped END,
            counters = CASE WHEN $2 THEN $8 ELSE counters END
         WHERE id = $1", id, up, r.at, error, r.duration_ms, samples, dropped, counters as _, skipped)
    .execute(pool)
    .await?;
    Ok(())
}
