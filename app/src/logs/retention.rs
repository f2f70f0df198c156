//! Log retention: whole days dropped at the longest retention, the lines of services kept
//! shorter deleted row by row, with their roll-ups; ingest keys after a day.

use super::rollup;
use crate::error::AppResult;
use crate::state::AppState;
use time::{Duration, OffsetDateTime};

/// What log retention removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct LogRetentionReport {
    pub dropped_partitions: Vec<String>,
    /// Lines deleted row by row: services kept shorter than the longest retention.
    pub deleted_lines: u64,
}

/// Drops whole daily partitions older than the longest retention (the default or a service's
/// own), then deletes the lines of services kept shorter than that, service by service.
pub async fn enforce_retention(
    state: &AppState,
    days: i64,
    per_service: &[(String, i64)],
    now: OffsetDateTime,
) -> AppResult<LogRetentionReport> {
    let longest = per_service
        .iter()
        .map(|s| s.1)
        .chain([days])
        .max()
        .unwrap_or(days);
    let pool = &state.pool;
    let cutoff = now - Duration::days(longest);
    let mut report = LogRetentionReport {
        dropped_partitions: state
            .runtime
            .log_partitions
            .drop_older_than(pool, cutoff)
            .await?,
        ..Default::default()
    };
    sqlx::query("DELETE FROM log_ingest_keys WHERE created_at < $1")
        .bind(now - Duration::hours(24))
        .execute(pool)
        .await?;
    let day = cutoff.to_offset(time::UtcOffset::UTC).date();
    for table in ["log_rollups", "log_rollup_days", "log_rollup_pending"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE day < $1"))
            .bind(day)
            .execute(pool)
            .await?;
    }
    for (table, column) in [
        ("log_rollup_hours", "hour"),
        ("log_rollup_hours_done", "hour"),
        ("log_rollup_minutes", "minute"),
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} < $1"))
            .bind(rollup::day_start(day))
            .execute(pool)
            .await?;
    }
    // Services kept shorter than the longest: row by row, in one transaction with their
    // rollups (whole hours and days removed, the hour cut in two rolled up again, and with it
    // its day).
    let named: Vec<String> = per_service.iter().map(|s| s.0.clone()).collect();
    let mut shorter: Vec<(Option<&str>, i64)> = per_service
        .iter()
        .filter(|s| s.1 < longest)
        .map(|s| (Some(s.0.as_str()), s.1))
        .collect();
    if days < longest {
        shorter.push((None, days));
    }
    for (service, keep) in shorter {
        let cut = now - Duration::days(keep);
        let cut_hour = rollup::hour_of(cut);
        let cut_day = cut_hour.date();
        // `service` NULL: every service without a retention of its own.
        let scope = "CASE WHEN $1::text IS NULL THEN service <> ALL($2) ELSE service = $1 END";
        let mut tx = pool.begin().await?;
        report.deleted_lines +=
            sqlx::query(&format!("DELETE FROM log_lines WHERE {scope} AND ts < $3"))
                .bind(service)
                .bind(&named)
                .bind(cut)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query(&format!(
            "DELETE FROM log_rollups WHERE {scope} AND day < $3"
        ))
        .bind(service)
        .bind(&named)
        .bind(cut_day)
        .execute(&mut *tx)
        .await?;
        for (table, column) in [
            ("log_rollup_hours", "hour"),
            ("log_rollup_minutes", "minute"),
        ] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE {scope} AND {column} < $3"
            ))
            .bind(service)
            .bind(&named)
            .bind(cut_hour)
            .execute(&mut *tx)
            .await?;
        }
        // The hour cut in two is rolled up again; that merges its day anew too. Until then a
        // mark keeps readers on the lines for both.
        sqlx::query(&format!(
            "INSERT INTO log_rollup_pending (service, day, hour)
             SELECT service, $4, $3 FROM log_rollup_hours WHERE {scope} AND hour = $3
             UNION SELECT service, $4, $3 FROM log_rollups WHERE {scope} AND day = $4"
        ))
        .bind(service)
        .bind(&named)
        .bind(cut_hour)
        .bind(cut_day)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(report)
}
