//! Fleet simulation (figures only, nothing asserted): N agents in one process, each posting its
//! 60 series every interval to `POST /api/v1/ingest/metrics`, as `opsdeck agent` does, their
//! start times spread over the interval, round robin over one or more `opsdeck serve` URLs.
//! Prints every minute and at the end: batches sent, accepted, failed, the ingest latency
//! (p50, p99, max) and how late a batch left against its schedule (a batch later than one
//! interval would have queued behind the previous one).
//!
//! Usage: opsdeck-fleet URL[,URL…] TOKEN [agents] [seconds] [interval_s]  (see bench/fleet.sh)

use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    failed: u64,
    /// Request latencies (ms) and lateness of the start (ms).
    latency: Vec<f64>,
    late: Vec<f64>,
    errors: Vec<String>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn line(label: &str, t: &mut Tally, secs: f64) -> String {
    let samples = t.accepted as f64 / secs;
    format!(
        "{label}: {} batches, {} samples accepted ({samples:.0}/s), {} failed; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; start late p99 {:.0} ms, max {:.0} ms",
        t.sent,
        t.accepted,
        t.failed,
        pct(&mut t.latency, 0.5),
        pct(&mut t.latency, 0.99),
        pct(&mut t.latency, 1.0),
        pct(&mut t.late, 0.99),
        pct(&mut t.late, 1.0),
    )
}

/// One agent's batch: the collector's kinds of series at their recorded precision.
fn batch(agent: usize, tick: u64) -> serde_json::Value {
    let ts = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let x = (agent as u64)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(tick * 40_503);
    let mut samples = Vec::with_capacity(60);
    for core in 0..9u64 {
        let v = ((x >> core) % 10_000) as f64 / 100.0;
        samples.push(json!({"metric": "cpu_core_usage_percent", "labels": {"core": core.to_string()}, "ts": ts, "value": v}));
    }
    for (i, m) in [
        "memory_used_bytes",
        "memory_total_bytes",
        "swap_used_bytes",
        "swap_total_bytes",
    ]
    .iter()
    .enumerate()
    {
        samples.push(
            json!({"metric": m, "ts": ts, "value": (((x >> i) % 4096) * 4096 + (1 << 33)) as f64}),
        );
    }
    for d in 0..3u64 {
        for m in ["disk_used_bytes", "disk_total_bytes", "disk_used_percent"] {
            samples.push(json!({"metric": m, "labels": {"mount": format!("/d{d}")}, "ts": ts, "value": ((x >> d) % 100) as f64}));
        }
        for m in ["disk_read_bytes_per_second", "disk_write_bytes_per_second"] {
            samples.push(json!({"metric": m, "labels": {"device": format!("sd{d}")}, "ts": ts, "value": ((x >> (d + 3)) % 100_000) as f64}));
        }
    }
    for n in 0..4u64 {
        for m in [
            "network_receive_bytes_per_second",
            "network_transmit_bytes_per_second",
        ] {
            samples.push(json!({"metric": m, "labels": {"interface": format!("eth{n}")}, "ts": ts, "value": ((x >> n) % 1_000_000) as f64}));
        }
    }
    let mut state = 0;
    while samples.len() < 58 {
        samples.push(json!({"metric": "tcp_connections", "labels": {"state": format!("s{state}")}, "ts": ts, "value": ((x >> state) % 50) as f64}));
        state += 1;
    }
    samples.push(json!({"metric": "host_processes", "ts": ts, "value": (100 + x % 50) as f64}));
    samples.push(json!({"metric": "host_uptime_seconds", "ts": ts, "value": (tick * 5) as f64}));
    json!({"host": format!("fleet-{agent:04}"), "samples": samples})
}

#[tokio::main]
async fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let urls: Vec<String> = args
        .next()
        .ok_or("usage: opsdeck-fleet URL[,URL…] TOKEN [agents] [seconds] [interval_s]")?
        .split(',')
        .map(|u| format!("{}/api/v1/ingest/metrics", u.trim_end_matches('/')))
        .collect();
    let token = args.next().ok_or("the ingest token is missing")?;
    let agents: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let secs: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(120);
    let interval = Duration::from_secs(args.next().map(|s| s.parse()).transpose()?.unwrap_or(5));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(agents)
        .timeout(Duration::from_secs(30))
        .build()?;
    let total = Arc::new(Mutex::new(Tally::default()));
    let minute = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..agents {
        let (client, token, total, minute) =
            (client.clone(), token.clone(), total.clone(), minute.clone());
        let url = urls[a % urls.len()].clone();
        let offset = interval.mul_f64(a as f64 / agents as f64);
        tasks.spawn(async move {
            let mut tick = 0u64;
            loop {
                let due = start + offset + interval * tick as u32;
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let late = due.elapsed().as_secs_f64() * 1000.0;
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&batch(a, tick))
                    .send()
                    .await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let outcome = match res {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        Ok(body["accepted"].as_u64().unwrap_or(0))
                    }
                    Ok(r) => Err(format!("HTTP {}", r.status())),
                    Err(e) => Err(e.to_string()),
                };
                for tally in [&total, &minute] {
                    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                    t.sent += 1;
                    t.latency.push(ms);
                    t.late.push(late);
                    match &outcome {
                        Ok(n) => t.accepted += n,
                        Err(e) => {
                            t.failed += 1;
                            if t.errors.len() < 5 {
                                t.errors.push(e.clone());
                            }
                        }
                    }
                }
                tick += 1;
            }
        });
    }
    let mut minutes = 0;
    let mut report = tokio::time::interval_at(
        (start + Duration::from_secs(60)).into(),
        Duration::from_secs(60),
    );
    loop {
        tokio::select! {
            _ = report.tick() => {
                minutes += 1;
                let mut m = std::mem::take(&mut *minute.lock().unwrap_or_else(|p| p.into_inner()));
                println!("{}", line(&format!("minute {minutes}"), &mut m, 60.0));
            }
            r = tasks.join_next() => if r.is_none() { break },
        }
    }
    let mut t = std::mem::take(&mut *total.lock().unwrap_or_else(|p| p.into_inner()));
    println!(
        "{}",
        line(
            &format!(
                "{agents} agents × 60 series every {} s for {secs} s against {} server(s)",
                interval.as_secs(),
                urls.len()
            ),
            &mut t,
            start.elapsed().as_secs_f64()
        )
    );
    for e in &t.errors {
        println!("  error: {e}");
    }
    Ok(())
}
