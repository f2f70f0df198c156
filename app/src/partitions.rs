//! Tables range-partitioned by day (`metric_samples`, `log_lines`): partitions are created ahead
//! of the rows that need them, once per process and day, and retention drops whole days.

use crate::error::AppResult;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Mutex;
use time::{Date, OffsetDateTime};

/// The database a pool connects to.
fn db(pool: &PgPool) -> String {
    pool.connect_options()
        .get_database()
        .unwrap_or_default()
        .to_string()
}

pub struct DailyPartitions {
    table: &'static str,
    /// (database, day) pairs this process knows a partition exists for: keyed by database too,
    /// as one process may serve several (the tests do).
    known: Mutex<HashSet<(String, Date)>>,
}

impl DailyPartitions {
    pub fn new(table: &'static str) -> Self {
        Self {
            table,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// `<table>_20261125`.
    pub fn name(&self, day: Date) -> String {
        format!(
            "{}_{:04}{:02}{:02}",
            self.table,
            day.year(),
            u8::from(day.month()),
            day.day()
        )
    }

    /// The day of a partition's name, or None for any other name.
    pub fn day_of(&self, name: &str) -> Option<Date> {
        let digits = name.strip_prefix(self.table)?.strip_prefix('_')?;
        if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let y: i32 = digits[..4].parse().ok()?;
        let m: u8 = digits[4..6].parse().ok()?;
        let d: u8 = digits[6..].parse().ok()?;
        Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<(String, Date)>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the partitions for these days that this process has not seen yet.
    pub async fn ensure(&self, pool: &PgPool, days: &[Date]) -> AppResult<()> {
        let todo: Vec<Date> = {
            let known = self.known();
            days.iter()
                .copied()
                .filter(|d| !known.contains(&(db(pool), *d)))
                .collect()
        };
        if todo.is_empty() {
            return Ok(());
        }
        let mut tx = pool.begin().await?;
        // Two processes creating the same partition would collide: one at a time.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsdeck.partitions.' || $1))")
            .bind(self.table)
            .execute(&mut *tx)
            .await?;
        for day in &todo {
            let next = day.next_day().unwrap_or(*day);
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
                self.name(*day),
                self.table
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let name = db(pool);
        self.known()
            .extend(todo.into_iter().map(|d| (name.clone(), d)));
        Ok(())
    }

    /// The partitions that exist, with their days, oldest first.
    pub async fn existing(&self, pool: &PgPool) -> AppResult<Vec<(String, Date)>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::regclass ORDER BY 1",
        )
        .bind(self.table)
        .fetch_all(pool)
        .await?;
        Ok(names
            .into_iter()
            .filter_map(|n| self.day_of(&n).map(|d| (n, d)))
            .collect())
    }

    /// Drops the partitions wholly before `cutoff` (a day goes once all of it is older).
    pub async fn drop_older_than(
        &self,
        pool: &PgPool,
        cutoff: OffsetDateTime,
    ) -> AppResult<Vec<String>> {
        let cutoff_day = cutoff.to_offset(time::UtcOffset::UTC).date();
        let mut dropped = vec![];
        for (name, day) in self.existing(pool).await? {
            if day < cutoff_day {
                sqlx::query(&format!("DROP TABLE IF EXISTS {name}"))
                    .execute(pool)
                    .await?;
                self.known().remove(&(db(pool), day));
                dropped.push(name);
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn names_round_trip() {
        let p = DailyPartitions::new("metric_samples");
        assert_eq!(p.name(date!(2026 - 11 - 05)), "metric_samples_20261105");
        assert_eq!(
            p.day_of("metric_samples_20261105"),
            Some(date!(2026 - 11 - 05))
        );
        for bad in [
            "metric_samples_2026110",
            "metric_samples_20261340",
            "other_20261105",
            "metric_samples_2026110x",
            "metric_samples20261105",
            "log_lines_20261105",
        ] {
            assert_eq!(p.day_of(bad), None, "{bad}");
        }
    }
}
