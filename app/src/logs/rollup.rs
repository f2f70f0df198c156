//! Log analytics as mergeable partial results. A `Partial` sums up the lines of one stretch of
//! time: one service and UTC hour (`log_rollup_hours`), the merge of a day's hours
//! (`log_rollups`), or a stretch read from the raw lines. Any set of partials merges into the
//! figures of their union, so a week's analytics read seven stored days, the hours at the edges
//! and at most the current hour and the minutes at the edges from the lines. Pure: no I/O here.

use super::{
    AgentCount, ClassCount, HourCount, IpCount, LogStats, MessageCount, PathCount, ResponseTime,
    SlowRequest, SuspiciousIp,
};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::{Date, Duration, OffsetDateTime, Time};

/// Distinct keys (paths, IPs, agents, error messages) a partial keeps per kind, the most
/// frequent first. Top lists are exact while an hour has fewer distinct values than this.
pub const KEYS_KEPT: i64 = 10_000;
/// Distinct keys a minute's partial keeps per kind (`log_rollup_minutes`): a range reads whole
/// minutes only at its edges, a small share of what its top lists count.
pub const MINUTE_KEYS_KEPT: usize = 100;
/// The slowest requests a partial keeps, whatever the threshold asked later.
pub const SLOWEST_KEPT: usize = 50;
/// Response-time histogram buckets grow by this factor: a percentile read from them is within
/// half a bucket (0.5 %) of the exact one.
pub const BUCKET_GROWTH: f64 = 1.01;
/// The bucket of durations ≤ 0.
pub const ZERO_BUCKET: i32 = -1_000_000;
/// The histogram bucket as SQL, the same function as `bucket_of` (durations in seconds,
/// buckets counted from one microsecond).
pub const BUCKET_SQL: &str =
    "CASE WHEN duration > 0 THEN floor(ln(duration * 1e6) / ln(1.01))::int ELSE -1000000 END";

/// The histogram bucket of a duration in seconds.
pub fn bucket_of(seconds: f64) -> i32 {
    if seconds > 0.0 {
        ((seconds * 1e6).ln() / BUCKET_GROWTH.ln()).floor() as i32
    } else {
        ZERO_BUCKET
    }
}

/// The value a bucket stands for: its geometric middle.
pub fn bucket_value(bucket: i32) -> f64 {
    if bucket == ZERO_BUCKET {
        0.0
    } else {
        BUCKET_GROWTH.powf(f64::from(bucket) + 0.5) / 1e6
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HourAgg {
    pub total: i64,
    pub errors: i64,
    pub requests: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    pub count: i64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Of `count`, the requests slower than `SLOW_SECONDS`.
    #[serde(default)]
    pub slow: i64,
}

/// The runbook's slow request: longer than this many seconds. Partials count them exactly.
pub const SLOW_SECONDS: f64 = 5.0;

impl Durations {
    pub fn merge(&mut self, o: &Durations) {
        self.count += o.count;
        self.sum += o.sum;
        self.slow += o.slow;
        self.min = opt(self.min, o.min, f64::min);
        self.max = opt(self.max, o.max, f64::max);
    }
}

fn opt(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

/// The analytics of a stretch of lines, before ranking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Unix time of the hour → counts.
    pub hours: BTreeMap<i64, HourAgg>,
    /// Status class (2 for 2xx) → requests.
    pub classes: BTreeMap<i32, i64>,
    pub durations: Durations,
    /// Histogram bucket → durations in it.
    pub histogram: BTreeMap<i32, i64>,
    pub paths: HashMap<String, i64>,
    /// IP → (requests, POSTs to /api/).
    pub ips: HashMap<String, (i64, i64)>,
    pub agents: HashMap<String, i64>,
    /// Normalised error message → count.
    pub errors: HashMap<String, i64>,
    /// The slowest requests, slowest first, at most `SLOWEST_KEPT`.
    pub slowest: Vec<SlowRequest>,
}

fn add<K: std::hash::Hash + Eq + Clone>(into: &mut HashMap<K, i64>, from: &HashMap<K, i64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn slower(a: &SlowRequest, b: &SlowRequest) -> std::cmp::Ordering {
    b.duration.total_cmp(&a.duration).then(b.ts.cmp(&a.ts))
}

impl Partial {
    pub fn merge(&mut self, o: &Partial) {
        for (h, a) in &o.hours {
            let e = self.hours.entry(*h).or_default();
            e.total += a.total;
            e.errors += a.errors;
            e.requests += a.requests;
        }
        for (c, n) in &o.classes {
            *self.classes.entry(*c).or_default() += n;
        }
        self.durations.merge(&o.durations);
        for (b, n) in &o.histogram {
            *self.histogram.entry(*b).or_default() += n;
        }
        add(&mut self.paths, &o.paths);
        add(&mut self.agents, &o.agents);
        add(&mut self.errors, &o.errors);
        for (ip, (n, posts)) in &o.ips {
            let e = self.ips.entry(ip.clone()).or_default();
            e.0 += n;
            e.1 += posts;
        }
        self.slowest.extend(o.slowest.iter().cloned());
        self.slowest.sort_by(slower);
        self.slowest.truncate(SLOWEST_KEPT);
    }

    /// Keeps the `keep` most frequent keys of each list (ties by key), as a stored partial does.
    pub fn trim(&mut self, keep: usize) {
        fn top<V: Copy>(map: &mut HashMap<String, V>, keep: usize, count: fn(&V) -> i64) {
            if map.len() <= keep {
                return;
            }
            let mut v: Vec<(String, V)> = map.drain().collect();
            v.sort_by(|a, b| count(&b.1).cmp(&count(&a.1)).then_with(|| a.0.cmp(&b.0)));
            v.truncate(keep);
            map.extend(v);
        }
        top(&mut self.paths, keep, |n| *n);
        top(&mut self.agents, keep, |n| *n);
        top(&mut self.errors, keep, |n| *n);
        top(&mut self.ips, keep, |n| n.0);
    }

    pub fn lines(&self) -> i64 {
        self.hours.values().map(|h| h.total).sum()
    }

    /// Requests slower than `seconds`: exact for `SLOW_SECONDS`; for another threshold, those
    /// in the histogram's buckets wholly above it (so at most one 1 % bucket short).
    pub fn slower_than(&self, seconds: f64) -> i64 {
        if seconds == SLOW_SECONDS {
            return self.durations.slow;
        }
        let b = bucket_of(seconds);
        self.histogram
            .range(b.saturating_add(1)..)
            .map(|(_, n)| n)
            .sum()
    }

    /// The `q` quantile (0–1) from the histogram, as percentile_cont would give it to within a
    /// bucket's width; None without durations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n: i64 = self.histogram.values().sum();
        if n == 0 {
            return None;
        }
        // percentile_cont's position: between ranks floor and ceil of q·(n−1), 0-based.
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).round() as i64;
        let mut seen = 0;
        for (b, c) in &self.histogram {
            seen += c;
            if seen > rank {
                let v = bucket_value(*b);
                // Never outside what was seen.
                return Some(match (self.durations.min, self.durations.max) {
                    (Some(lo), Some(hi)) => v.clamp(lo, hi),
                    _ => v,
                });
            }
        }
        self.durations.max
    }
}

/// What the caller asked for beyond the range: list lengths and thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub top: usize,
    pub slow_seconds: f64,
    pub suspicious_posts: i64,
}

/// Highest count first, then the key in byte order.
fn ranked(map: &HashMap<String, i64>, top: usize) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = map.iter().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(top);
    v
}

/// The figures of a merged partial. `exact` are percentile_cont's p50/p95/p99 and the count of
/// requests slower than the ranking's threshold, when the caller read them from the lines
/// themselves; otherwise they come from the partial.
pub fn finish(
    p: &Partial,
    r: &Ranking,
    exact: Option<([f64; 3], i64)>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    service: Option<String>,
) -> LogStats {
    let total: i64 = p.lines();
    let errors: i64 = p.hours.values().map(|h| h.errors).sum();
    let requests: i64 = p.hours.values().map(|h| h.requests).sum();
    let hour = |h: &i64| OffsetDateTime::from_unix_timestamp(*h).unwrap_or(from);
    let per_hour = |f: fn(&HourAgg) -> i64| {
        p.hours
            .iter()
            .filter(|(_, a)| f(a) > 0)
            .map(|(h, a)| HourCount {
                hour: Timestamp(hour(h)),
                count: f(a),
            })
            .collect::<Vec<_>>()
    };
    let d = &p.durations;
    let pct = |i: usize, q: f64| match exact {
        Some((e, _)) => Some(e[i]),
        None => p.quantile(q),
    };
    let slow_count = match exact {
        Some((_, n)) => n,
        None => p.slower_than(r.slow_seconds),
    };
    let response_time = if d.count > 0 {
        ResponseTime {
            count: d.count,
            avg: Some(d.sum / d.count as f64),
            min: d.min,
            max: d.max,
            p50: pct(0, 0.5),
            p95: pct(1, 0.95),
            p99: pct(2, 0.99),
        }
    } else {
        ResponseTime::default()
    };
    let mut suspicious: Vec<SuspiciousIp> = p
        .ips
        .iter()
        .filter(|(_, (_, posts))| *posts > r.suspicious_posts)
        .map(|(ip, (_, posts))| SuspiciousIp {
            ip: ip.clone(),
            posts: *posts,
        })
        .collect();
    suspicious.sort_by(|a, b| b.posts.cmp(&a.posts).then_with(|| a.ip.cmp(&b.ip)));
    suspicious.truncate(100);
    let ip_counts: HashMap<String, i64> = p.ips.iter().map(|(k, (n, _))| (k.clone(), *n)).collect();
    LogStats {
        from: Timestamp(from),
        to: Timestamp(to),
        service,
        total,
        errors,
        error_rate: if total > 0 {
            errors as f64 / total as f64
        } else {
            0.0
        },
        requests,
        top_errors: ranked(&p.errors, r.top)
            .into_iter()
            .map(|(message, count)| MessageCount { message, count })
            .collect(),
        errors_per_hour: per_hour(|a| a.errors),
        requests_per_hour: per_hour(|a| a.requests),
        response_time,
        slow_threshold_seconds: r.slow_seconds,
        slow_count,
        slow_requests: p
            .slowest
            .iter()
            .filter(|s| s.duration > r.slow_seconds)
            .cloned()
            .collect(),
        status_classes: p
            .classes
            .iter()
            .map(|(c, n)| ClassCount {
                class: format!("{c}xx"),
                count: *n,
            })
            .collect(),
        top_paths: ranked(&p.paths, r.top)
            .into_iter()
            .map(|(path, count)| PathCount { path, count })
            .collect(),
        top_ips: ranked(&ip_counts, r.top)
            .into_iter()
            .map(|(ip, count)| IpCount { ip, count })
            .collect(),
        suspicious_post_threshold: r.suspicious_posts,
        suspicious_ips: suspicious,
        top_user_agents: ranked(&p.agents, r.top)
            .into_iter()
            .map(|(user_agent, count)| AgentCount { user_agent, count })
            .collect(),
    }
}

/// How long after an hour's end its lines are taken as complete: a write that started before
/// the hour's last `SETTLE` marks the hour for rolling up again (`needs_mark`), and no hour is
/// rolled up before `SETTLE` after its end (`rollable`), so no transaction in between is missed.
pub const SETTLE: Duration = Duration::minutes(5);

/// The unit finished lines are rolled up in; whole UTC days are merged from their hours.
pub const HOUR: Duration = Duration::HOUR;

pub fn day_start(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_utc()
}

fn day_end(day: Date) -> OffsetDateTime {
    day_start(day) + Duration::DAY
}

/// The start of the UTC hour holding `t`.
pub fn hour_of(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_time(Time::from_hms(t.hour(), 0, 0).unwrap_or(Time::MIDNIGHT))
}

/// The current hour is rolled up as it goes, up to `LIVE_LAG` before now, every few seconds
/// (`log_rollup_live`): a range then reads at most the last `LIVE_LAG` and a round's worth of
/// lines from the lines themselves, however busy the hour.
pub const LIVE_LAG: Duration = Duration::seconds(20);

/// A line older than this when written may fall into the current hour's live rollup: it marks
/// its hour. Half of `LIVE_LAG`, so that only a write that stays uncommitted for longer than
/// that could slip past a round unseen.
pub const LIVE_MARK: Duration = Duration::seconds(10);

/// Whether a line at `ts` written at `now` must mark its hour for rolling up (again): the hour
/// has ended or ends within `SETTLE`, or the line is old enough to fall into the live rollup.
pub fn needs_mark(ts: OffsetDateTime, now: OffsetDateTime) -> bool {
    hour_of(ts) + HOUR <= now + SETTLE || ts < now - LIVE_MARK
}

/// Whether the stretch [start, start + len) is over long enough to be rolled up.
pub fn rollable(start: OffsetDateTime, len: Duration, now: OffsetDateTime) -> bool {
    start + len + SETTLE <= now
}

/// The UTC days wholly inside [from, to).
pub fn whole_days(from: OffsetDateTime, to: OffsetDateTime) -> Vec<Date> {
    let from = from.to_offset(time::UtcOffset::UTC);
    let mut day = from.date();
    if day_start(day) < from {
        day = day.next_day().unwrap_or(day);
    }
    let mut out = vec![];
    while day_end(day) <= to && out.len() < 100_000 {
        out.push(day);
        let Some(next) = day.next_day() else { break };
        day = next;
    }
    out
}

/// The starts of the UTC hours wholly inside [from, to).
pub fn whole_hours(from: OffsetDateTime, to: OffsetDateTime) -> Vec<OffsetDateTime> {
    whole_units(from, to, hour_of(from), HOUR)
}

/// The whole minutes in [from, to).
pub fn whole_minutes(from: OffsetDateTime, to: OffsetDateTime) -> Vec<OffsetDateTime> {
    whole_units(from, to, minute_of(from), Duration::MINUTE)
}

/// The hours [from, to) touches, whole or in part.
pub fn hours_touched(from: OffsetDateTime, to: OffsetDateTime) -> Vec<OffsetDateTime> {
    let first = hour_of(from);
    whole_units(
        first,
        to.max(first) + HOUR - Duration::nanoseconds(1),
        first,
        HOUR,
    )
}

/// The units of length `unit` from `start` (the unit holding `from`) wholly in [from, to).
fn whole_units(
    from: OffsetDateTime,
    to: OffsetDateTime,
    mut start: OffsetDateTime,
    unit: Duration,
) -> Vec<OffsetDateTime> {
    if start < from {
        start += unit;
    }
    let mut out = vec![];
    while start + unit <= to && out.len() < 1_000_000 {
        out.push(start);
        start += unit;
    }
    out
}

/// The start of the UTC minute holding `t`.
pub fn minute_of(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_time(Time::from_hms(t.hour(), t.minute(), 0).unwrap_or(Time::MIDNIGHT))
}

/// [from, to) without the `stored` stretches (sorted, not overlapping; those not wholly inside
/// the range are ignored): what is left to read from the lines themselves.
pub fn raw_stretches(
    from: OffsetDateTime,
    to: OffsetDateTime,
    stored: &BTreeSet<(OffsetDateTime, OffsetDateTime)>,
) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut out = vec![];
    let mut start = from;
    for &(a, b) in stored {
        if a < from || b > to || a < start {
            continue;
        }
        if start < a {
            out.push((start, a));
        }
        start = b;
    }
    if start < to {
        out.push((start, to));
    }
    out
}

/// The stretch a stored day covers.
pub fn day_span(day: Date) -> (OffsetDateTime, OffsetDateTime) {
    (day_start(day), day_end(day))
}

/// The stretch a stored hour covers.
pub fn hour_span(hour: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    (hour, hour + HOUR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn minutes_and_touched_hours() {
        let t = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        // (from, to, whole minutes (first, last, count), hours touched)
        let table = [
            (
                "2026-11-20T08:15:30Z",
                "2026-11-20T08:18:00Z",
                Some(("08:16", "08:17", 2)),
                &["08"][..],
            ),
            (
                "2026-11-20T08:15:00Z",
                "2026-11-20T08:16:00Z",
                Some(("08:15", "08:15", 1)),
                &["08"],
            ),
            (
                "2026-11-20T08:15:01Z",
                "2026-11-20T08:15:59Z",
                None,
                &["08"],
            ),
            (
                "2026-11-20T08:59:59.5Z",
                "2026-11-20T10:00:00Z",
                Some(("09:00", "09:59", 60)),
                &["08", "09"],
            ),
            (
                "2026-11-20T08:00:00Z",
                "2026-11-20T10:00:00.001Z",
                Some(("08:00", "09:59", 120)),
                &["08", "09", "10"],
            ),
            (
                "2026-11-20T23:59:30Z",
                "2026-11-21T00:01:00Z",
                Some(("00:00", "00:00", 1)),
                &["23", "00"],
            ),
        ];
        for (from, to, minutes, hours) in table {
            let (from, to) = (t(from), t(to));
            let hm = |m: &OffsetDateTime| format!("{:02}:{:02}", m.hour(), m.minute());
            let got = whole_minutes(from, to);
            assert!(got
                .iter()
                .all(|m| *m >= from && *m + Duration::MINUTE <= to && m.second() == 0));
            match minutes {
                None => assert!(got.is_empty(), "{from}: {got:?}"),
                Some((first, last, n)) => {
                    assert_eq!(got.len(), n, "{from}");
                    assert_eq!((hm(&got[0]), hm(&got[n - 1])), (first.into(), last.into()));
                }
            }
            let touched: Vec<String> = hours_touched(from, to)
                .iter()
                .map(|h| format!("{:02}", h.hour()))
                .collect();
            assert_eq!(touched, hours, "{from} – {to}");
        }
        assert_eq!(
            minute_of(datetime!(2026-11-20 08:15:59.999 UTC)),
            datetime!(2026-11-20 08:15 UTC)
        );
    }

    #[test]
    fn hours_settle_before_they_are_rolled_up() {
        let hour = datetime!(2026-11-24 10:00 UTC);
        for (now, mark, roll) in [
            (datetime!(2026-11-24 10:30 UTC), false, false),
            (datetime!(2026-11-24 10:54:59 UTC), false, false),
            (datetime!(2026-11-24 10:55 UTC), true, false),
            (datetime!(2026-11-24 11:04:59 UTC), true, false),
            (datetime!(2026-11-24 11:05 UTC), true, true),
            (datetime!(2026-12-25 00:00 UTC), true, true),
            (datetime!(2026-11-20 00:00 UTC), false, false),
        ] {
            // A line of the hour's last second, written then or later.
            let ts = now.min(hour + HOUR - Duration::seconds(1));
            assert_eq!(
                (needs_mark(ts, now), rollable(hour, HOUR, now)),
                (mark, roll),
                "{now}"
            );
        }
        let day = day_start(date!(2026 - 11 - 24));
        assert!(!rollable(
            day,
            Duration::DAY,
            datetime!(2026-11-25 00:04 UTC)
        ));
        assert!(rollable(
            day,
            Duration::DAY,
            datetime!(2026-11-25 00:05 UTC)
        ));
        for (t, h) in [
            (
                datetime!(2026-11-24 10:59:59.9 UTC),
                datetime!(2026-11-24 10:00 UTC),
            ),
            (
                datetime!(2026-11-24 10:00 UTC),
                datetime!(2026-11-24 10:00 UTC),
            ),
            (
                datetime!(2026-11-24 12:30 +02:00),
                datetime!(2026-11-24 10:00 UTC),
            ),
        ] {
            assert_eq!(hour_of(t), h, "{t}");
        }
    }

    #[test]
    fn ranges_split_into_stored_days_hours_and_raw_stretches() {
        let (a, b, c) = (
            date!(2026 - 11 - 20),
            date!(2026 - 11 - 21),
            date!(2026 - 11 - 22),
        );
        let from = datetime!(2026-11-19 13:30 UTC);
        let to = datetime!(2026-11-23 08:00 UTC);
        assert_eq!(whole_days(from, to), [a, b, c]);
        assert_eq!(
            whole_days(
                datetime!(2026-11-20 00:00 UTC),
                datetime!(2026-11-21 00:00 UTC)
            ),
            [a]
        );
        assert!(whole_days(
            datetime!(2026-11-20 00:00 UTC),
            datetime!(2026-11-20 23:59 UTC)
        )
        .is_empty());
        assert!(whole_days(to, from).is_empty());
        assert_eq!(
            whole_hours(
                datetime!(2026-11-20 08:15 UTC),
                datetime!(2026-11-20 11:00 UTC)
            ),
            [
                datetime!(2026-11-20 09:00 UTC),
                datetime!(2026-11-20 10:00 UTC)
            ]
        );
        assert!(whole_hours(
            datetime!(2026-11-20 08:15 UTC),
            datetime!(2026-11-20 09:14 UTC)
        )
        .is_empty());
        assert_eq!(whole_hours(from, to).len(), 24 * 3 + 10 + 8);
        let set = |d: &[Date], h: &[OffsetDateTime]| {
            d.iter()
                .map(|d| day_span(*d))
                .chain(h.iter().map(|h| hour_span(*h)))
                .collect::<BTreeSet<_>>()
        };
        let h20 = datetime!(2026-11-19 20:00 UTC);
        for (stored, raw) in [
            (set(&[], &[]), vec![(from, to)]),
            (
                set(&[a, b, c], &[]),
                vec![
                    (from, datetime!(2026-11-20 00:00 UTC)),
                    (datetime!(2026-11-23 00:00 UTC), to),
                ],
            ),
            (
                set(&[a, c], &[]),
                vec![
                    (from, datetime!(2026-11-20 00:00 UTC)),
                    (
                        datetime!(2026-11-21 00:00 UTC),
                        datetime!(2026-11-22 00:00 UTC),
                    ),
                    (datetime!(2026-11-23 00:00 UTC), to),
                ],
            ),
            // Days and hours together: the edges shrink to the part hours.
            (
                set(&[a, b, c], &[h20, datetime!(2026-11-23 07:00 UTC)]),
                vec![
                    (from, h20),
                    (
                        datetime!(2026-11-19 21:00 UTC),
                        datetime!(2026-11-20 00:00 UTC),
                    ),
                    (
                        datetime!(2026-11-23 00:00 UTC),
                        datetime!(2026-11-23 07:00 UTC),
                    ),
                ],
            ),
            // Stretches not wholly inside the range are never used.
            (
                set(
                    &[date!(2026 - 11 - 19), date!(2026 - 11 - 23)],
                    &[datetime!(2026-11-19 13:00 UTC)],
                ),
                vec![(from, to)],
            ),
        ] {
            assert_eq!(raw_stretches(from, to, &stored), raw, "{stored:?}");
        }
        let exact = raw_stretches(
            datetime!(2026-11-20 00:00 UTC),
            datetime!(2026-11-21 00:00 UTC),
            &set(&[a], &[]),
        );
        assert!(exact.is_empty());
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn slow(unix: i64, duration: f64) -> SlowRequest {
        SlowRequest {
            ts: Timestamp(at(unix)),
            duration,
            url: Some(format!("/r{unix}")),
            service: "api".into(),
        }
    }

    /// (ts, is error, status, duration, path, ip)
    type Line<'a> = (i64, bool, Option<i16>, Option<f64>, &'a str, &'a str);

    /// A partial built line by line, the way the SQL builds it from rows.
    fn of_lines(lines: &[Line]) -> Partial {
        let mut p = Partial::default();
        for &(ts, error, status, duration, path, ip) in lines {
            let h = p.hours.entry(ts - ts.rem_euclid(3600)).or_default();
            h.total += 1;
            h.errors += i64::from(error);
            h.requests += i64::from(status.is_some());
            if let Some(s) = status {
                *p.classes.entry(i32::from(s) / 100).or_default() += 1;
                *p.paths.entry(path.into()).or_default() += 1;
                let e = p.ips.entry(ip.into()).or_default();
                e.0 += 1;
                e.1 += i64::from(path.starts_with("/api/"));
            }
            if let Some(d) = duration {
                p.durations.merge(&Durations {
                    count: 1,
                    sum: d,
                    min: Some(d),
                    max: Some(d),
                    slow: i64::from(d > SLOW_SECONDS),
                });
                *p.histogram.entry(bucket_of(d)).or_default() += 1;
                p.slowest.push(slow(ts, d));
            }
            if error {
                *p.errors.entry("boom <n>".into()).or_default() += 1;
            }
        }
        p.slowest.sort_by(slower);
        p.slowest.truncate(SLOWEST_KEPT);
        p
    }

    #[test]
    fn buckets_are_within_half_a_percent() {
        for (seconds, bucket_is_zero) in [
            (0.0, true),
            (-1.0, true),
            (1e-6, false),
            (0.0042, false),
            (1.0, false),
            (6.2, false),
            (86_400.0, false),
        ] {
            let b = bucket_of(seconds);
            assert_eq!(b == ZERO_BUCKET, bucket_is_zero, "{seconds}");
            if !bucket_is_zero {
                let v = bucket_value(b);
                assert!(
                    (v - seconds).abs() / seconds <= 0.0051,
                    "{seconds} → bucket {b} → {v}"
                );
            }
        }
    }

    #[test]
    fn merging_parts_equals_summing_the_whole() {
        let lines: Vec<Line> = (0..500)
            .map(|i: i64| {
                (
                    i * 97,
                    i % 7 == 0,
                    (i % 3 != 0).then_some([200, 404, 502][(i % 5 % 3) as usize]),
                    (i % 4 != 0).then_some(i as f64 / 50.0),
                    if i % 2 == 0 { "/api/chat" } else { "/static" },
                    ["10.0.0.1", "10.0.0.2", "10.0.0.3"][(i % 3) as usize],
                )
            })
            .collect();
        let whole = of_lines(&lines);
        for cuts in [vec![250], vec![1, 2, 3], vec![100, 200, 300, 499], vec![]] {
            let mut merged = Partial::default();
            let mut start = 0;
            for end in cuts.iter().copied().chain([lines.len()]) {
                merged.merge(&of_lines(&lines[start..end]));
                start = end;
            }
            // Floating sums may differ in the last bits with the order of addition.
            assert!((merged.durations.sum - whole.durations.sum).abs() < 1e-9);
            merged.durations.sum = whole.durations.sum;
            assert_eq!(merged, whole, "cut at {cuts:?}");
        }
    }

    #[test]
    fn trimming_keeps_the_most_frequent_keys() {
        let lines: Vec<Line> = [("/a", 5), ("/b", 3), ("/c", 3), ("/d", 1)]
            .iter()
            .enumerate()
            .flat_map(|(i, &(path, n))| {
                let ip = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"][i];
                (0..n).map(move |_| (0, false, Some(200), None, path, ip))
            })
            .collect();
        let mut p = of_lines(&lines);
        let before = p.clone();
        p.trim(10);
        assert_eq!(p, before, "nothing to cut");
        p.trim(2);
        let mut paths: Vec<_> = p.paths.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        paths.sort();
        // "/b" and "/c" tie at 3: the smaller key stays.
        assert_eq!(paths, [("/a", 5), ("/b", 3)]);
        let mut ips: Vec<_> = p.ips.keys().map(String::as_str).collect();
        ips.sort();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
        // Counts that are not keyed stay whole.
        assert_eq!((p.lines(), p.classes.clone()), (12, before.classes));
    }

    #[test]
    fn quantiles_from_the_histogram_follow_the_exact_ones() {
        // 1..=1000 ms: percentile_cont gives 0.5005, 0.95005, 0.99001 s.
        let lines: Vec<_> = (1..=1000)
            .map(|i: i64| (i, false, Some(200), Some(i as f64 / 1000.0), "/", "ip"))
            .collect();
        let p = of_lines(&lines);
        for (q, exact) in [(0.5, 0.5005), (0.95, 0.95005), (0.99, 0.99001), (1.0, 1.0)] {
            let got = p.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact < 0.01,
                "q {q}: {got} vs {exact}"
            );
        }
        assert_eq!(Partial::default().quantile(0.5), None);
    }

    #[test]
    fn finishing_ranks_and_filters() {
        let mut p = of_lines(&[
            (0, true, Some(502), Some(7.0), "/api/chat", "10.0.0.9"),
            (10, false, Some(200), Some(0.2), "/api/chat", "10.0.0.9"),
            (20, false, Some(200), Some(5.5), "/b", "10.0.0.1"),
            (3700, true, None, None, "", ""),
            (3800, false, Some(200), Some(0.1), "/a", "10.0.0.1"),
        ]);
        p.errors.insert("other <n>".into(), 3);
        let r = Ranking {
            top: 2,
            slow_seconds: 5.0,
            suspicious_posts: 1,
        };
        let s = finish(&p, &r, None, at(0), at(7200), Some("api".into()));
        assert_eq!((s.total, s.errors, s.requests), (5, 2, 4));
        assert!((s.error_rate - 0.4).abs() < 1e-12);
        assert_eq!(
            s.errors_per_hour,
            vec![
                HourCount {
                    hour: Timestamp(at(0)),
                    count: 1
                },
                HourCount {
                    hour: Timestamp(at(3600)),
                    count: 1
                }
            ]
        );
        assert_eq!(
            s.requests_per_hour
                .iter()
                .map(|h| h.count)
                .collect::<Vec<_>>(),
            [3, 1]
        );
        // Ties by key: "/a" before "/b"; only two kept.
        let paths: Vec<_> = s
            .top_paths
            .iter()
            .map(|p| (p.path.as_str(), p.count))
            .collect();
        assert_eq!(paths, [("/api/chat", 2), ("/a", 1)]);
        let ips: Vec<_> = s.top_ips.iter().map(|p| (p.ip.as_str(), p.count)).collect();
        assert_eq!(ips, [("10.0.0.1", 2), ("10.0.0.9", 2)]);
        assert_eq!(
            s.suspicious_ips,
            vec![SuspiciousIp {
                ip: "10.0.0.9".into(),
                posts: 2
            }]
        );
        let slow: Vec<_> = s.slow_requests.iter().map(|r| r.duration).collect();
        assert_eq!(slow, [7.0, 5.5]);
        let classes: Vec<_> = s
            .status_classes
            .iter()
            .map(|c| (c.class.as_str(), c.count))
            .collect();
        assert_eq!(classes, [("2xx", 3), ("5xx", 1)]);
        assert_eq!(s.top_errors[0].message, "other <n>");
        assert_eq!(s.top_errors[0].count, 3);
        assert_eq!(s.top_errors[1].message, "boom <n>");
        let rt = &s.response_time;
        assert_eq!((rt.count, rt.min, rt.max), (4, Some(0.1), Some(7.0)));
        assert!((rt.avg.unwrap() - 12.8 / 4.0).abs() < 1e-12);
        assert_eq!(s.slow_count, 2, "7.0 and 5.5 s, however long the list");
        let exact = finish(&p, &r, Some(([1.0, 2.0, 3.0], 9)), at(0), at(1), None);
        assert_eq!(exact.response_time.p95, Some(2.0));
        assert_eq!(exact.slow_count, 9);
        // Another threshold: from the histogram.
        let r1 = Ranking {
            slow_seconds: 0.15,
            ..r.clone()
        };
        assert_eq!(finish(&p, &r1, None, at(0), at(1), None).slow_count, 3);
        let empty = finish(&Partial::default(), &r, None, at(0), at(1), None);
        assert_eq!((empty.total, empty.error_rate), (0, 0.0));
        assert_eq!(empty.response_time, ResponseTime::default());
    }
}
