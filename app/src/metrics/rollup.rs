//! Rollup arithmetic, free of I/O: raw samples → 1-minute → 5-minute → 1-hour buckets, and the
//! newest value per series. A bucket keeps sum and count (so averages merge exactly), min, max
//! and the last value with its time; merging two buckets gives the bucket of the union.

use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One series' aggregate over one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub series_id: i32,
    pub start: OffsetDateTime,
    pub sum: f64,
    pub count: i32,
    pub min: f64,
    pub max: f64,
    pub last_ts: OffsetDateTime,
    pub last_value: f64,
}

impl Bucket {
    fn merge(&mut self, other: &Bucket) {
        self.sum += other.sum;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        // Same rule as the SQL merge: the newer (or equally new) last value wins.
        if other.last_ts >= self.last_ts {
            self.last_ts = other.last_ts;
            self.last_value = other.last_value;
        }
    }
}

/// The start of the `secs`-long bucket holding `ts`, aligned on the Unix epoch (UTC), as
/// PostgreSQL's `date_trunc('minute' | 'hour', ts, 'UTC')` does.
pub fn bucket_start(ts: OffsetDateTime, secs: i64) -> OffsetDateTime {
    let t = ts.unix_timestamp();
    let start = t - t.rem_euclid(secs);
    OffsetDateTime::from_unix_timestamp(start).unwrap_or(ts)
}

/// Raw samples `(series, time, value)` into buckets of `secs` seconds, sorted by series and
/// bucket start (the order rollup upserts take their row locks in, so batches never deadlock).
pub fn rollup(samples: &[(i32, OffsetDateTime, f64)], secs: i64) -> Vec<Bucket> {
    let mut out: BTreeMap<(i32, OffsetDateTime), Bucket> = BTreeMap::new();
    for &(series_id, ts, value) in samples {
        let start = bucket_start(ts, secs);
        let one = Bucket {
            series_id,
            start,
            sum: value,
            count: 1,
            min: value,
            max: value,
            last_ts: ts,
            last_value: value,
        };
        out.entry((series_id, start))
            .and_modify(|b| b.merge(&one))
            .or_insert(one);
    }
    out.into_values().collect()
}

/// Finer buckets into coarser ones of `secs` seconds (1 minute → 1 hour), sorted likewise.
pub fn coarsen(buckets: &[Bucket], secs: i64) -> Vec<Bucket> {
    let mut out: BTreeMap<(i32, OffsetDateTime), Bucket> = BTreeMap::new();
    for b in buckets {
        let start = bucket_start(b.start, secs);
        out.entry((b.series_id, start))
            .and_modify(|c| c.merge(b))
            .or_insert_with(|| Bucket { start, ..b.clone() });
    }
    out.into_values().collect()
}

/// The newest `(time, value)` of each series in these buckets, sorted by series.
pub fn latest(buckets: &[Bucket]) -> Vec<(i32, OffsetDateTime, f64)> {
    let mut out: BTreeMap<i32, (OffsetDateTime, f64)> = BTreeMap::new();
    for b in buckets {
        let e = out.entry(b.series_id).or_insert((b.last_ts, b.last_value));
        if b.last_ts > e.0 {
            *e = (b.last_ts, b.last_value);
        }
    }
    out.into_iter().map(|(id, (ts, v))| (id, ts, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bucket_starts_match_date_trunc() {
        let cases = [
            (
                datetime!(2026-11-24 10:15:42.9 UTC),
                60,
                datetime!(2026-11-24 10:15:00 UTC),
            ),
            (
                datetime!(2026-11-24 10:15:00 UTC),
                60,
                datetime!(2026-11-24 10:15:00 UTC),
            ),
            (
                datetime!(2026-11-24 10:59:59 UTC),
                3600,
                datetime!(2026-11-24 10:00:00 UTC),
            ),
            (
                datetime!(2026-11-24 12:30:00 +02:00),
                3600,
                datetime!(2026-11-24 10:00:00 UTC),
            ),
            (
                datetime!(1969-12-31 23:59:30 UTC),
                60,
                datetime!(1969-12-31 23:59:00 UTC),
            ),
        ];
        for (ts, secs, want) in cases {
            assert_eq!(bucket_start(ts, secs), want, "{ts} / {secs}");
        }
    }

    #[test]
    fn rollups_keep_sum_count_min_max_and_last() {
        let t = datetime!(2026-11-24 10:00:00 UTC);
        let s = |id, secs: i64, v| (id, t + time::Duration::seconds(secs), v);
        // Out of order, two series, three minutes, two hours.
        let raw = [
            s(1, 65, 4.0),
            s(1, 5, 10.0),
            s(2, 5, 7.0),
            s(1, 0, 2.0),
            s(1, 55, 1.0),
            s(1, 3605, 3.0),
        ];
        let m = rollup(&raw, 60);
        let got: Vec<_> = m
            .iter()
            .map(|b| {
                let off = (b.start - t).whole_seconds();
                let last = (b.last_ts - t).whole_seconds();
                (
                    b.series_id,
                    off,
                    b.sum,
                    b.count,
                    b.min,
                    b.max,
                    last,
                    b.last_value,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, 13.0, 3, 1.0, 10.0, 55, 1.0),
                (1, 60, 4.0, 1, 4.0, 4.0, 65, 4.0),
                (1, 3600, 3.0, 1, 3.0, 3.0, 3605, 3.0),
                (2, 0, 7.0, 1, 7.0, 7.0, 5, 7.0),
            ]
        );
        let h = coarsen(&m, 3600);
        let got: Vec<_> = h
            .iter()
            .map(|b| {
                let off = (b.start - t).whole_seconds();
                (b.series_id, off, b.sum, b.count, b.min, b.max, b.last_value)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, 17.0, 4, 1.0, 10.0, 4.0),
                (1, 3600, 3.0, 1, 3.0, 3.0, 3.0),
                (2, 0, 7.0, 1, 7.0, 7.0, 7.0),
            ]
        );
        // Coarsening minutes gives what rolling the raw samples up by the hour gives.
        assert_eq!(h, rollup(&raw, 3600));
        assert_eq!(
            latest(&m),
            vec![
                (1, t + time::Duration::seconds(3605), 3.0),
                (2, t + time::Duration::seconds(5), 7.0)
            ]
        );
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(rollup(&[], 60).is_empty());
        assert!(coarsen(&[], 3600).is_empty());
        assert!(latest(&[]).is_empty());
    }
}
