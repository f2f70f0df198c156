//! A parsed exposition turned into Opsdeck samples. Gauges are kept as they are; counters become
//! per-second rates (`<name>:rate`) against the previous scrape; histograms become
//! `<name>:p50`, `:p95`, `:p99` (from the buckets' growth since the previous scrape) and
//! `<name>:avg`; summaries keep their quantiles. Every sample gets the `target` label. Pure.

use super::expfmt::{Family, Kind, PromSample};
use crate::metrics::{validate_sample, Labels, Sample};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::OffsetDateTime;

/// The cumulative values of a scrape, kept for the next one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Unix time of the scrape, in seconds.
    pub at: f64,
    pub values: HashMap<String, f64>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Converted {
    pub samples: Vec<Sample>,
    pub counters: Counters,
    /// Series refused: beyond the target's limit, or names and labels Opsdeck cannot store.
    pub dropped: usize,
}

fn key(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut k = name.to_string();
    for (l, v) in labels {
        k.push('\u{1}');
        k.push_str(l);
        k.push('=');
        k.push_str(v);
    }
    k
}

/// `histogram_quantile` over cumulative buckets (upper bound, count), sorted by bound, the
/// last one +Inf: linear inside the bucket that holds the rank, as Prometheus does.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for (i, &(bound, count)) in buckets.iter().enumerate() {
        if count >= rank {
            if bound.is_infinite() {
                // Above the highest finite bound: that bound is all we know.
                return Some(if i > 0 { buckets[i - 1].0 } else { 0.0 });
            }
            let lower = if i == 0 && bound > 0.0 { 0.0 } else { prev.0 };
            if count == prev.1 {
                return Some(bound);
            }
            return Some(lower + (bound - lower) * (rank - prev.1) / (count - prev.1));
        }
        prev = (bound, count);
    }
    None
}

/// Collects the output, keeping at most `max_series` distinct series.
struct Out<'a> {
    target: &'a str,
    ts: OffsetDateTime,
    max_series: usize,
    seen: BTreeSet<String>,
    samples: Vec<Sample>,
    dropped: usize,
}

impl Out<'_> {
    fn push(&mut self, metric: String, labels: &BTreeMap<String, String>, value: f64) {
        if !value.is_finite() {
            return;
        }
        let mut l: Labels = labels.clone();
        if let Some(theirs) = l.remove("target") {
            l.insert("exported_target".into(), theirs);
        }
        l.insert("target".into(), self.target.to_string());
        let s = Sample {
            metric,
            labels: l,
            ts: Timestamp(self.ts),
            value,
        };
        let k = key(&s.metric, &s.labels);
        // A series given twice keeps its first value (Prometheus refuses such a scrape).
        if self.seen.contains(&k)
            || self.seen.len() >= self.max_series
            || validate_sample(&s).is_err()
        {
            self.dropped += 1;
            return;
        }
        self.seen.insert(k);
        self.samples.push(s);
    }
}

/// Converts one scrape taken at `ts`, against the previous one's counters.
pub fn convert(
    families: &[Family],
    target: &str,
    ts: OffsetDateTime,
    prev: Option<&Counters>,
    max_series: usize,
) -> Converted {
    let now = ts.unix_timestamp_nanos() as f64 / 1e9;
    let dt = prev.map(|p| now - p.at).filter(|d| *d > 0.0);
    let mut counters = Counters {
        at: now,
        values: HashMap::new(),
    };
    let mut out = Out {
        target,
        ts,
        max_series,
        seen: BTreeSet::new(),
        samples: vec![],
        dropped: 0,
    };
    // The growth of a cumulative value since the previous scrape (a reset counts from zero).
    let growth = |counters: &mut Counters, s: &PromSample| -> Option<f64> {
        let k = key(&s.name, &s.labels);
        counters.values.insert(k.clone(), s.value);
        let before = prev?.values.get(&k)?;
        Some(if s.value >= *before {
            s.value - before
        } else {
            s.value
        })
    };
    for f in families {
        match f.kind {
            Kind::Gauge | Kind::Untyped => {
                for s in &f.samples {
                    out.push(s.name.clone(), &s.labels, s.value);
                }
            }
            Kind::Counter => {
                for s in &f.samples {
                    if let (Some(g), Some(dt)) = (growth(&mut counters, s), dt) {
                        out.push(format!("{}:rate", s.name), &s.labels, g / dt);
                    }
                }
            }
            Kind::Summary => {
                for s in &f.samples {
                    if s.labels.contains_key("quantile") {
                        out.push(s.name.clone(), &s.labels, s.value);
                    } else if let (Some(g), Some(dt)) = (growth(&mut counters, s), dt) {
                        out.push(format!("{}:rate", s.name), &s.labels, g / dt);
                    }
                }
            }
            Kind::Histogram => {
                // Per label set (without `le`): buckets now and their growth, sum and count.
                #[derive(Default)]
                struct H {
                    now: Vec<(f64, f64)>,
                    grown: Vec<(f64, f64)>,
                    complete: bool,
                    sum: Option<f64>,
                    count: Option<f64>,
                    sum_now: f64,
                    count_now: f64,
                }
                let mut groups: BTreeMap<BTreeMap<String, String>, H> = BTreeMap::new();
                for s in &f.samples {
                    let mut labels = s.labels.clone();
                    let le = labels.remove("le");
                    let g = growth(&mut counters, s);
                    let h = groups.entry(labels).or_insert_with(|| H {
                        complete: true,
                        ..H::default()
                    });
                    if s.name.ends_with("_bucket") {
                        let Some(bound) = le.as_deref().and_then(|b| match b {
                            "+Inf" | "Inf" => Some(f64::INFINITY),
                            b => b.parse::<f64>().ok(),
                        }) else {
                            continue;
                        };
                        h.now.push((bound, s.value));
                        match g {
                            Some(g) => h.grown.push((bound, g)),
                            None => h.complete = false,
                        }
                    } else if s.name.ends_with("_sum") {
                        h.sum = g;
                        h.sum_now = s.value;
                    } else if s.name.ends_with("_count") {
                        h.count = g;
                        h.count_now = s.value;
                        if let Some(dt) = dt.filter(|_| g.is_some()) {
                            out.push(format!("{}:rate", s.name), &s.labels, g.unwrap_or(0.0) / dt);
                        }
                    }
                }
                for (labels, mut h) in groups {
                    let by_bound = |a: &(f64, f64), b: &(f64, f64)| a.0.total_cmp(&b.0);
                    h.now.sort_by(by_bound);
                    h.grown.sort_by(by_bound);
                    // Since the previous scrape when it is known, else since the start.
                    let buckets = if h.complete && dt.is_some() {
                        &h.grown
                    } else {
                        &h.now
                    };
                    for (q, suffix) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
                        if let Some(v) = bucket_quantile(q, buckets) {
                            out.push(format!("{}:{suffix}", f.name), &labels, v);
                        }
                    }
                    let (sum, count) = match (h.sum, h.count) {
                        (Some(s), Some(c)) if dt.is_some() => (s, c),
                        _ => (h.sum_now, h.count_now),
                    };
                    if count > 0.0 {
                        out.push(format!("{}:avg", f.name), &labels, sum / count);
                    }
                }
            }
        }
    }
    Converted {
        samples: out.samples,
        counters,
        dropped: out.dropped,
    }
}

/// The family by which Opsdeck's `/metrics` names the database it stores into (its
/// `opsdeck_identity`), as `opsdeck_store_info{store="…"} 1`.
pub const STORE_INFO: &str = "opsdeck_store_info";

/// A scrape of an Opsdeck that stores into this same database (`own` is its identity): its own
/// `/metrics` or a sibling serve's. Such an endpoint re-exports the latest value of every series
/// stored here, so storing it would copy each one under the target's labels. Of such a scrape
/// only that process's own metrics ([`FAMILIES`](crate::runtime::telemetry::FAMILIES)) are
/// kept; returns what is kept and how many series were left out. Any other scrape, another
/// Opsdeck's on another database among them, is kept whole.
#[cfg(feature = "ssr")]
pub fn leave_out_copies(families: Vec<Family>, own: &str) -> (Vec<Family>, usize) {
    let same_store = families.iter().any(|f| {
        f.name == STORE_INFO
            && f.samples
                .iter()
                .any(|s| s.labels.get("store").map(String::as_str) == Some(own))
    });
    if !same_store {
        return (families, 0);
    }
    let (kept, copies): (Vec<Family>, Vec<Family>) = families
        .into_iter()
        .partition(|f| crate::runtime::telemetry::FAMILIES.contains(&f.name.as_str()));
    let skipped = copies
        .iter()
        .filter(|f| f.name != STORE_INFO)
        .map(|f| f.samples.len())
        .sum();
    (kept, skipped)
}

/// The target's request rate, for its sparkline: the sum of its `…requests_total` counter
/// rates, or else of its request-duration histograms' `_count` rates (never both, which would
/// count each request twice). None when it exposes neither.
pub fn request_rate(samples: &[Sample]) -> Option<f64> {
    let sum = |pred: &dyn Fn(&str) -> bool| {
        let v: Vec<f64> = samples
            .iter()
            .filter(|s| pred(&s.metric))
            .map(|s| s.value)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    };
    sum(&|m| m.ends_with("requests_total:rate"))
        .or_else(|| sum(&|m| m.contains("request") && m.ends_with("_count:rate")))
}

#[cfg(test)]
mod tests {
    use super::super::expfmt::parse;
    use super::*;
    use time::macros::datetime;

    fn find<'a>(c: &'a Converted, metric: &str, label: Option<(&str, &str)>) -> Option<&'a Sample> {
        c.samples.iter().find(|s| {
            s.metric == metric
                && label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
        })
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn copies_of_this_databases_series_are_left_out() {
        const OWN: &str = "0b7c";
        let own_metrics = "# TYPE opsdeck_http_requests_total counter\n\
opsdeck_http_requests_total{method=\"GET\",route=\"/\",status=\"200\"} 3\n\
# TYPE opsdeck_http_request_duration_seconds histogram\n\
opsdeck_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n\
opsdeck_http_request_duration_seconds_sum 0.2\n\
opsdeck_http_request_duration_seconds_count 3\n";
        let stored = "# TYPE cpu_usage_percent gauge\n\
cpu_usage_percent{host=\"web-1\"} 12\ncpu_usage_percent{host=\"web-2\"} 40\n\
# TYPE process_up gauge\nprocess_up{host=\"web-1\",process=\"api\"} 1\n";
        let info = |store: &str| {
            format!("# TYPE opsdeck_store_info gauge\nopsdeck_store_info{{store=\"{store}\"}} 1\n")
        };
        let names = |fs: &[Family]| fs.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        let all = [
            "cpu_usage_percent",
            "process_up",
            "opsdeck_http_requests_total",
            "opsdeck_http_request_duration_seconds",
        ];
        // (what is scraped, what is kept, series left out)
        let cases: Vec<(String, Vec<&str>, usize)> = vec![
            // This database's Opsdeck: only its process's own metrics.
            (
                format!("{stored}{own_metrics}{}", info(OWN)),
                vec![
                    "opsdeck_http_requests_total",
                    "opsdeck_http_request_duration_seconds",
                ],
                3,
            ),
            // Another Opsdeck, on another database: all of it (its store line too).
            (
                format!("{stored}{own_metrics}{}", info("9f21")),
                [&all[..], &["opsdeck_store_info"]].concat(),
                0,
            ),
            // No store line (any exporter): all of it.
            (format!("{stored}{own_metrics}"), all.to_vec(), 0),
            // The store line alone: nothing to store, nothing copied.
            (info(OWN), vec![], 0),
        ];
        for (body, kept, skipped) in cases {
            let (out, n) = leave_out_copies(parse(&body).unwrap(), OWN);
            assert_eq!(names(&out), kept, "{body}");
            assert_eq!(n, skipped, "{body}");
        }
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let b = [
            (0.1, 10.0),
            (0.5, 60.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        for (q, expected) in [
            (0.05, Some(0.05)),
            (0.5, Some(0.42)),
            (0.95, Some(0.9375)),
            (1.0, Some(1.0)),
        ] {
            let got = bucket_quantile(q, &b);
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "q {q}: {g} vs {e}"),
                _ => assert_eq!(got, expected),
            }
        }
        // Everything above the last finite bound.
        assert_eq!(
            bucket_quantile(0.99, &[(1.0, 0.0), (f64::INFINITY, 5.0)]),
            Some(1.0)
        );
        assert_eq!(
            bucket_quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(bucket_quantile(0.5, &[]), None);
    }

    const FIRST: &str = "# TYPE req_total counter\n\
req_total{path=\"/a\"} 100\n\
req_total{path=\"/b\",target=\"theirs\"} 7\n\
# TYPE temp gauge\n\
temp{room=\"a \\\"quoted\\\" one\"} 21.5\n\
temp{room=\"nan\"} NaN\n\
# TYPE lat histogram\n\
lat_bucket{le=\"0.1\"} 10\n\
lat_bucket{le=\"1\"} 20\n\
lat_bucket{le=\"+Inf\"} 20\n\
lat_sum 4\n\
lat_count 20\n";

    const SECOND: &str = "# TYPE req_total counter\n\
req_total{path=\"/a\"} 130\n\
req_total{path=\"/b\",target=\"theirs\"} 2\n\
# TYPE temp gauge\n\
temp{room=\"a \\\"quoted\\\" one\"} 22\n\
# TYPE lat histogram\n\
lat_bucket{le=\"0.1\"} 10\n\
lat_bucket{le=\"1\"} 30\n\
lat_bucket{le=\"+Inf\"} 30\n\
lat_sum 9\n\
lat_count 30\n";

    #[test]
    fn counters_become_rates_and_histograms_quantiles() {
        let t1 = datetime!(2026-11-26 10:00:00 UTC);
        let first = convert(&parse(FIRST).unwrap(), "app", t1, None, 100);
        // No rate without a previous scrape; gauges, and quantiles since the start.
        assert!(find(&first, "req_total:rate", None).is_none());
        let temp = find(&first, "temp", None).unwrap();
        assert_eq!(temp.value, 21.5);
        assert_eq!(temp.labels["room"], "a \"quoted\" one");
        assert_eq!(temp.labels["target"], "app");
        assert!(
            find(&first, "temp", Some(("room", "nan"))).is_none(),
            "NaN is not stored"
        );
        let p50 = find(&first, "lat:p50", None).unwrap().value;
        assert!((p50 - 0.1).abs() < 1e-9, "{p50}");
        assert_eq!(find(&first, "lat:avg", None).unwrap().value, 0.2);

        let t2 = t1 + time::Duration::seconds(15);
        let second = convert(
            &parse(SECOND).unwrap(),
            "app",
            t2,
            Some(&first.counters),
            100,
        );
        assert_eq!(
            find(&second, "req_total:rate", Some(("path", "/a")))
                .unwrap()
                .value,
            2.0
        );
        // A counter that went down was reset: it counts from zero.
        let reset = find(&second, "req_total:rate", Some(("path", "/b"))).unwrap();
        assert!((reset.value - 2.0 / 15.0).abs() < 1e-12);
        assert_eq!(reset.labels["exported_target"], "theirs");
        assert_eq!(reset.labels["target"], "app");
        // The 10 new observations all fell in (0.1, 1]: p50 is inside that bucket.
        let p50 = find(&second, "lat:p50", None).unwrap().value;
        assert!((p50 - 0.55).abs() < 1e-9, "{p50}");
        assert_eq!(find(&second, "lat:avg", None).unwrap().value, 0.5);
        assert!((find(&second, "lat_count:rate", None).unwrap().value - 10.0 / 15.0).abs() < 1e-12);
        assert_eq!(second.dropped, 0);
    }

    #[test]
    fn request_rates_count_each_request_once() {
        let s = |metric: &str, value: f64| Sample {
            metric: metric.into(),
            labels: Labels::new(),
            ts: Timestamp(datetime!(2026-11-26 0:00 UTC)),
            value,
        };
        for (samples, expected) in [
            (
                vec![
                    s("http_requests_total:rate", 2.0),
                    s("grpc_requests_total:rate", 1.0),
                    s("http_request_duration_seconds_count:rate", 3.0),
                ],
                Some(3.0),
            ),
            (
                vec![
                    s("http_request_duration_seconds_count:rate", 3.0),
                    s("temp", 9.0),
                ],
                Some(3.0),
            ),
            (vec![s("errors_total:rate", 1.0)], None),
        ] {
            assert_eq!(request_rate(&samples), expected);
        }
    }

    #[test]
    fn series_beyond_the_limit_or_unstorable_are_dropped_and_counted() {
        let text: String = (0..10).map(|i| format!("g{{i=\"{i}\"}} {i}\n")).collect();
        let c = convert(
            &parse(&text).unwrap(),
            "t",
            datetime!(2026-11-26 0:00 UTC),
            None,
            4,
        );
        assert_eq!((c.samples.len(), c.dropped), (4, 6));
        let long = format!("g{{v=\"{}\"}} 1\n", "x".repeat(300));
        let c = convert(
            &parse(&long).unwrap(),
            "t",
            datetime!(2026-11-26 0:00 UTC),
            None,
            4,
        );
        assert_eq!((c.samples.len(), c.dropped), (0, 1));
    }
}
