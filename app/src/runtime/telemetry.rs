//! Opsdeck's own request counters and latency histograms, exposed on `/metrics`. These are
//! per process by nature: Prometheus scrapes each process and sums. Every label is bounded: the
//! route is the matched pattern (or one of three catch-alls), the method one of the standard
//! ones or `other`, whatever a client sends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, String, u16), u64>,
    latency: BTreeMap<(&'static str, String), Histogram>,
}

/// The metric families [`Telemetry::render`] writes: this process's own, the part of a
/// `/metrics` scrape that is not a copy of stored series.
pub const FAMILIES: [&str; 3] = [
    "opsdeck_http_requests_total",
    "opsdeck_http_request_duration_seconds",
    "opsdeck_log_rollup_repairs_total",
];

/// The request counters of this process, and the counters of its repairs.
#[derive(Default)]
pub struct Telemetry {
    inner: Mutex<Inner>,
    /// Rolled-up log hours the self-check found differing from their lines and rebuilt.
    pub rollup_repairs: AtomicU64,
}

pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The method as a label: one of the standard methods, or `other`.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

impl Telemetry {
    /// Counts one answered request; `route` must already be a pattern (few values).
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *t.requests
            .entry((method, route.to_string(), status))
            .or_default() += 1;
        let h = t.latency.entry((method, route.to_string())).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn repaired(&self, n: u64) {
        self.rollup_repairs.fetch_add(n, Ordering::Relaxed);
    }

    /// Appends the request metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(
            "# HELP opsdeck_http_requests_total HTTP requests served by this Opsdeck process.\n",
        );
        out.push_str("# TYPE opsdeck_http_requests_total counter\n");
        for ((method, route, status), n) in &t.requests {
            let _ = writeln!(
                out,
                "opsdeck_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape_label(method),
                escape_label(route)
            );
        }
        out.push_str(
            "# HELP opsdeck_http_request_duration_seconds Time to answer HTTP requests.\n",
        );
        out.push_str("# TYPE opsdeck_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &t.latency {
            let labels = format!(
                "method=\"{}\",route=\"{}\"",
                escape_label(method),
                escape_label(route)
            );
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "opsdeck_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "opsdeck_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "opsdeck_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "opsdeck_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str("# HELP opsdeck_log_rollup_repairs_total Rolled-up log hours found to differ from their lines and rebuilt by this process.\n");
        out.push_str("# TYPE opsdeck_log_rollup_repairs_total counter\n");
        let _ = writeln!(
            out,
            "opsdeck_log_rollup_repairs_total {}",
            self.rollup_repairs.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_lists_every_family_rendered() {
        let t = Telemetry::default();
        t.record("GET", "/x", 200, 0.1);
        let mut out = String::new();
        t.render(&mut out);
        let rendered: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert_eq!(rendered, FAMILIES);
    }

    #[test]
    fn histograms_are_cumulative() {
        let t = Telemetry::default();
        t.record("GET", "/test/histogram", 200, 0.003);
        t.record("GET", "/test/histogram", 200, 0.2);
        t.record("GET", "/test/histogram", 500, 20.0);
        let mut out = String::new();
        t.render(&mut out);
        let line = |needle: &str| {
            out.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle}\n{out}"))
                .to_string()
        };
        assert!(line("opsdeck_http_request_duration_seconds_bucket{method=\"GET\",route=\"/test/histogram\",le=\"0.005\"}").ends_with(" 1"));
        assert!(line("opsdeck_http_request_duration_seconds_bucket{method=\"GET\",route=\"/test/histogram\",le=\"0.25\"}").ends_with(" 2"));
        assert!(line("opsdeck_http_request_duration_seconds_bucket{method=\"GET\",route=\"/test/histogram\",le=\"+Inf\"}").ends_with(" 3"));
        assert!(line(
            "opsdeck_http_requests_total{method=\"GET\",route=\"/test/histogram\",status=\"500\"}"
        )
        .ends_with(" 1"));
    }

    #[test]
    fn methods_are_a_bounded_label() {
        let t = Telemetry::default();
        for m in ["GET", "FOO", "BAR1", "get", "X".repeat(1000).as_str()] {
            t.record(m, "/r", 200, 0.01);
        }
        let mut out = String::new();
        t.render(&mut out);
        let series: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("opsdeck_http_requests_total{"))
            .collect();
        assert_eq!(
            series,
            [
                "opsdeck_http_requests_total{method=\"GET\",route=\"/r\",status=\"200\"} 1",
                "opsdeck_http_requests_total{method=\"other\",route=\"/r\",status=\"200\"} 4",
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
