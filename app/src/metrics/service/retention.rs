//! Retention: raw partitions dropped whole, chunks and rollups deleted in bounded batches.

use super::*;

/// What one retention pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    pub dropped_partitions: Vec<String>,
    pub deleted_minute_rows: u64,
    /// Rows of the 5-minute tier, kept as long as the minute one.
    pub deleted_five_minute_rows: u64,
    pub deleted_hour_rows: u64,
    /// Compressed chunks (series-hours) past the raw retention.
    pub deleted_chunks: u64,
}

/// Drops raw partitions wholly past the raw retention, deletes expired rollup rows in bounded
/// batches, and makes sure today's and the next days' partitions exist.
pub async fn enforce_retention(
    state: &AppState,
    now: OffsetDateTime,
) -> AppResult<RetentionReport> {
    let pool = &state.pool;
    let retention = Retention::from(&*state.config);
    let today = now.to_offset(time::UtcOffset::UTC).date();
    let ahead: Vec<Date> = (0..3)
        .filter_map(|i| today.checked_add(time::Duration::days(i)))
        .collect();
    ensure_partitions(state, &ahead).await?;

    let mut report = RetentionReport::default();
    let raw_cutoff = now - time::Duration::seconds(retention.raw_secs);
    report.dropped_partitions = state
        .runtime
        .metric_partitions
        .drop_older_than(pool, raw_cutoff)
        .await?;
    loop {
        let n = sqlx::query(
            "DELETE FROM metric_chunks WHERE (series_id, hour) IN
               (SELECT series_id, hour FROM metric_chunks WHERE hour + interval '1 hour' <= $1 LIMIT 10000)",
        )
        .bind(raw_cutoff)
        .execute(pool)
        .await?
        .rows_affected();
        report.deleted_chunks += n;
        if n < 10_000 {
            break;
        }
    }
    for (table, keep, counter) in [
        (
            "metric_rollup_1m",
            retention.minute_secs,
            &mut report.deleted_minute_rows,
        ),
        (
            "metric_rollup_5m",
            retention.minute_secs,
            &mut report.deleted_five_minute_rows,
        ),
        (
            "metric_rollup_1h",
            retention.hour_secs,
            &mut report.deleted_hour_rows,
        ),
    ] {
        let cutoff = now - time::Duration::seconds(keep);
        loop {
            let n = sqlx::query(&format!(
                "DELETE FROM {table} WHERE (series_id, bucket) IN
                   (SELECT series_id, bucket FROM {table} WHERE bucket < $1 LIMIT 10000)"
            ))
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected();
            *counter += n;
            if n < 10_000 {
                break;
            }
        }
    }
    Ok(report)
}
