//! Opsdeck's own request counters and latency histograms, exposed on `/metrics`. These are
//! per process by nature: Prometheus scrapes each process and sums.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

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
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
}

static TELEMETRY: LazyLock<Mutex<Inner>> = LazyLock::new(Default::default);

/// The route as a pattern (`/api/v1/users/{username}`), so labels stay few.
fn route_of(req: &Request) -> String {
    if let Some(p) = req.extensions().get::<MatchedPath>() {
        return p.as_str().to_string();
    }
    let path = req.uri().path();
    if path.starts_with("/pkg/") {
        "/pkg/*".into()
    } else if path.starts_with("/api/") {
        "/api/unmatched".into()
    } else {
        "/unmatched".into()
    }
}

pub fn record(method: &str, route: &str, status: u16, seconds: f64) {
    let mut t = TELEMETRY.lock().unwrap_or_else(|p| p.into_inner());
    *t.requests
        .entry((method.to_string(), route.to_string(), status))
        .or_default() += 1;
    let h = t
        .latency
        .entry((method.to_string(), route.to_string()))
        .or_default();
    for (i, b) in BUCKETS.iter().enumerate() {
        if seconds <= *b {
            h.counts[i] += 1;
        }
    }
    h.sum += seconds;
    h.count += 1;
}

pub async fn track(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let route = route_of(&req);
    let started = Instant::now();
    let res = next.run(req).await;
    record(
        &method,
        &route,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the request metrics in the Prometheus text format.
pub fn render(out: &mut String) {
    use std::fmt::Write;
    let t = TELEMETRY.lock().unwrap_or_else(|p| p.into_inner());
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
    out.push_str("# HELP opsdeck_http_request_duration_seconds Time to answer HTTP requests.\n");
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        record("GET", "/test/histogram", 200, 0.003);
        record("GET", "/test/histogram", 200, 0.2);
        record("GET", "/test/histogram", 500, 20.0);
        let mut out = String::new();
        render(&mut out);
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
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
