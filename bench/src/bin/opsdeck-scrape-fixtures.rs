//! Exporters for the scrape benchmark (bench/services.sh): N HTTP endpoints on 127.0.0.1, each
//! exposing about SERIES series in the Prometheus text format (gauges, counters that grow on
//! every scrape, histograms). Prints the ports on one line, then serves until killed. Runs as
//! its own process so that its CPU is not counted as Opsdeck's.
//!
//! Usage: opsdeck-scrape-fixtures [N=50] [SERIES=2000]

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn body(series: usize, n: u64) -> String {
    let mut out = String::with_capacity(series * 64);
    // A fifth histograms (10 lines each: 8 buckets, sum, count), the rest half gauges, half counters.
    let hist = series / 5 / 10;
    let rest = series - hist * 10;
    let _ = writeln!(out, "# TYPE bench_gauge gauge");
    for i in 0..rest / 2 {
        let _ = writeln!(
            out,
            "bench_gauge{{shard=\"{i}\",kind=\"g\"}} {}",
            (i as u64 * 7 + n) % 1000
        );
    }
    let _ = writeln!(out, "# TYPE bench_requests_total counter");
    for i in 0..rest - rest / 2 {
        let _ = writeln!(
            out,
            "bench_requests_total{{path=\"/api/r{i}\"}} {}",
            n * (i as u64 % 13 + 1)
        );
    }
    let _ = writeln!(out, "# TYPE bench_latency_seconds histogram");
    for h in 0..hist {
        let mut cum = 0;
        for (b, le) in ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"]
            .iter()
            .enumerate()
        {
            cum += n * (b as u64 + 1);
            let _ = writeln!(
                out,
                "bench_latency_seconds_bucket{{handler=\"h{h}\",le=\"{le}\"}} {cum}"
            );
        }
        let _ = writeln!(
            out,
            "bench_latency_seconds_sum{{handler=\"h{h}\"}} {}",
            n as f64 * 3.5
        );
        let _ = writeln!(out, "bench_latency_seconds_count{{handler=\"h{h}\"}} {cum}");
    }
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);
    let series: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let mut ports = vec![];
    for _ in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        ports.push(listener.local_addr()?.port().to_string());
        let scrapes = Arc::new(AtomicU64::new(1));
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let k = scrapes.fetch_add(1, Ordering::Relaxed);
                async move { body(series, k) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    println!("{}", ports.join(" "));
    std::future::pending::<()>().await;
    Ok(())
}
