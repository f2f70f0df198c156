//! Logs benchmarks, printed as figures (nothing is asserted): `opsdeck logs import` of JSON and
//! nginx files (lines/s), selective searches over the stored lines for 24 hours and 7 days (p95),
//! the analytics over about a million lines, and the tailer following a file appended at
//! 5,000 lines/s.
//!
//! Usage: DATABASE_URL=postgres://…/scratch OPSDECK_BIN=…/opsdeck opsdeck-logs-bench [lines]
//! (see bench/logs.sh; `lines` is the total stored, default 5,000,000)

use app::auth::{service::insert_user, Role};
use app::state::AppState;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEK: i64 = 7 * 86_400;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(i.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// JSON lines spread evenly over the last week; 1 in 1000 is a "Database connection" error.
fn write_json(path: &Path, n: u64, now: i64, seed: u64) -> Res<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for i in 0..n {
        let t = OffsetDateTime::from_unix_timestamp(now - WEEK + (i as i64 * WEEK) / n as i64)?;
        let k = i.wrapping_mul(2654435761).wrapping_add(seed) % 1000;
        let (level, msg) = match k {
            0 => (
                "ERROR",
                format!("Database connection lost after {} ms", k + i % 977),
            ),
            1..=20 => (
                "ERROR",
                format!("Model API error: upstream returned {}", 500 + i % 4),
            ),
            21..=80 => ("WARNING", "slow upstream response".to_string()),
            _ => ("INFO", "Request started".to_string()),
        };
        writeln!(
            f,
            r#"{{"timestamp":"{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z","level":"{level}","message":"{msg}","logger":"api","context":{{"execution_time":{:.3},"url":"/api/v1/r{}","method":"{}","status":{}}}}}"#,
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond(),
            (i % 7919) as f64 / 1000.0,
            i % 40,
            if i % 3 == 0 { "POST" } else { "GET" },
            if k < 21 { 502 } else { 200 }
        )?;
    }
    f.flush()?;
    Ok(())
}

fn write_nginx(path: &Path, n: u64, now: i64) -> Res<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for i in 0..n {
        let t = OffsetDateTime::from_unix_timestamp(now - WEEK + (i as i64 * WEEK) / n as i64)?;
        let status = [200, 200, 200, 201, 304, 404, 500][(i % 7) as usize];
        let (method, p) = if i % 5 == 0 {
            ("POST", "/api/v1/chat")
        } else {
            ("GET", "/static/app.js")
        };
        writeln!(
            f,
            r#"10.{}.{}.{} - - [{:02}/{}/{}:{:02}:{:02}:{:02} +0000] "{method} {p}?id={i} HTTP/1.1" {status} {} "-" "Mozilla/5.0 (bench {})" {:.3}"#,
            i % 3,
            i % 7,
            i % 251,
            t.day(),
            MONTHS[u8::from(t.month()) as usize - 1],
            t.year(),
            t.hour(),
            t.minute(),
            t.second(),
            i % 50_000,
            i % 13,
            (i % 6007) as f64 / 1000.0
        )?;
    }
    f.flush()?;
    Ok(())
}

/// Runs `opsdeck logs import`; returns its wall time, the rate it printed (the import alone)
/// and the time its closing roll-up of the finished hours took.
fn import(bin: &str, url: &str, file: &Path, format: &str, service: &str) -> Res<(f64, f64, f64)> {
    let t = Instant::now();
    let out = std::process::Command::new(bin)
        .args(["logs", "import"])
        .arg(file)
        .args(["--format", format, "--service", service])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        return Err(format!("import failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let wall = t.elapsed().as_secs_f64();
    let number_before = |text: &str, unit: &str| -> f64 {
        text.split(unit)
            .next()
            .and_then(|s| s.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rate = number_before(&stdout, " lines/s");
    let rollup = stderr
        .lines()
        .find(|l| l.starts_with("analytics rolled up"))
        .and_then(|l| l.rsplit(" in ").next())
        .map(|l| number_before(l, " s"))
        .unwrap_or(0.0);
    Ok((wall, rate, rollup))
}

/// `runs` timed requests of `url(i)` after one untimed (run 0); a URL that changes with `i`
/// keeps answers shared between requests out of the figure.
async fn timed(
    session: &reqwest::Client,
    url: impl Fn(usize) -> String,
    runs: usize,
) -> Res<Vec<f64>> {
    let mut ms = vec![];
    for i in 0..=runs {
        let t = Instant::now();
        session
            .get(url(i))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        if i > 0 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

/// Unix seconds `days` days ago, a minute later for each run: a range of its own every time
/// (the server shares an answer between requests for the same range).
fn days_ago(days: i64, run: usize) -> i64 {
    OffsetDateTime::now_utc().unix_timestamp() - days * 86_400 + 60 * run as i64
}

fn report(name: &str, ms: &[f64]) {
    println!(
        "{name}: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms ({} runs)",
        percentile(ms, 0.5),
        percentile(ms, 0.95),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len()
    );
}

#[tokio::main]
async fn main() -> Res<()> {
    let total: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5_000_000);
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL to an empty scratch database")?;
    let bin = std::env::var("OPSDECK_BIN").map_err(|_| "set OPSDECK_BIN to the opsdeck binary")?;
    let dir = std::env::temp_dir().join(format!("opsdeck-logs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let now = OffsetDateTime::now_utc().unix_timestamp() - 60;

    // ---- import ----
    let per_format = (total / 5).clamp(1, 1_000_000);
    let (json_file, nginx_file, bulk_file) = (
        dir.join("app.log"),
        dir.join("access.log"),
        dir.join("bulk.log"),
    );
    write_json(&json_file, per_format, now, 1)?;
    write_nginx(&nginx_file, per_format, now)?;
    for (label, file, format, service, lines) in [
        ("JSON", &json_file, "json", "api", per_format),
        ("nginx", &nginx_file, "nginx", "nginx", per_format),
    ] {
        let (wall, rate, rollup) = import(&bin, &url, file, format, service)?;
        let raw = std::fs::metadata(file)?.len() as f64 / lines.max(1) as f64;
        println!(
            "import {label}: {lines} lines at {rate:.0} lines/s; then its roll-up {rollup:.1} s ({wall:.1} s in all); the file: {raw:.0} bytes/line"
        );
    }
    let rest = total.saturating_sub(2 * per_format);
    if rest > 0 {
        write_json(&bulk_file, rest, now, 7)?;
        let (wall, rate, rollup) = import(&bin, &url, &bulk_file, "json", "worker")?;
        println!(
            "import JSON (bulk): {rest} lines at {rate:.0} lines/s; then its roll-up {rollup:.1} s ({wall:.1} s in all)"
        );
        std::fs::remove_file(&bulk_file)?;
    }

    let mut cfg = app::config::Config::with_database_url(url.clone());
    cfg.collect_interval = app::config::Interval(0);
    cfg.log_source_dirs = vec![dir.clone()];
    let pool = server::connect(&cfg).await?;
    sqlx::query("ANALYZE log_lines").execute(&pool).await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM log_lines")
        .fetch_one(&pool)
        .await?;
    let size: i64 = sqlx::query_scalar(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'log_lines'::regclass",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "stored: {stored} lines, {:.0} MiB with indexes ({:.0} bytes/line, against the files' bytes/line above)",
        size as f64 / 1048576.0,
        size as f64 / stored.max(1) as f64
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(server::leptos_options(addr), pool.clone(), cfg);
    tokio::spawn(server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let base = format!("http://{addr}");
    insert_user(&pool, "bench", Role::Admin, "bench-password-123")
        .await
        .ok();
    let session = reqwest::Client::builder().cookie_store(true).build()?;
    session
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "bench", "password": "bench-password-123"}))
        .send()
        .await?
        .error_for_status()?;

    // ---- selective searches ----
    for (label, q) in [
        ("a rare phrase", "%22Database%20connection%22"),
        (
            "level:error status:>=500",
            "level%3Aerror%20status%3A%3E%3D500",
        ),
        ("a word, one service", "upstream%20service%3Aworker"),
    ] {
        for (range, from) in [("24 h", "now-24h"), ("7 d", "now-7d")] {
            let u = format!("{base}/api/v1/logs/search?q={q}&from={from}&limit=100");
            let ms = timed(&session, |_| u.clone(), 20).await?;
            report(&format!("search {label}, {range} over {stored} lines"), &ms);
        }
    }

    // ---- analytics over about a million lines ----
    // Without rollups (as the lines written by HTTP ingest in the minute before the server's
    // next round): every figure comes from the lines.
    sqlx::query("TRUNCATE log_rollups, log_rollup_days, log_rollup_hours, log_rollup_hours_done, log_rollup_pending")
        .execute(&pool)
        .await?;
    let ms = timed(
        &session,
        |i| {
            format!(
                "{base}/api/v1/logs/stats?service=nginx&from={}",
                days_ago(8, i)
            )
        },
        5,
    )
    .await?;
    report(
        "stats, service nginx, 7 days, with nothing rolled up (all from the lines)",
        &ms,
    );
    // `opsdeck logs import` rolls up the finished hours when it is done (and the server does
    // within a minute of a write); here at once, timed.
    let t = Instant::now();
    let rolled = app::logs::rollup_jobs::roll_up(&state, OffsetDateTime::now_utc()).await?;
    println!(
        "roll-up of the finished hours and days: {} service-hours ({} lines), {} service-days in {:.1} s",
        rolled.hours,
        rolled.lines,
        rolled.days,
        t.elapsed().as_secs_f64()
    );
    // Ranges relative to now: whole days from the day rollups, the part days at the edges from
    // the hour rollups, the current hour and the minutes at the edges from the lines.
    for (service, days, label) in [
        ("nginx", 8, "7 days"),
        ("api", 8, "7 days"),
        ("", 8, "7 days"),
        ("nginx", 1, "the last 24 h"),
        ("", 1, "the last 24 h"),
    ] {
        let in_range: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM log_lines WHERE ($1 = '' OR service = $1) AND ts >= now() - make_interval(days => $2)",
        )
        .bind(service)
        .bind(days as i32)
        .fetch_one(&pool)
        .await?;
        let ms = timed(
            &session,
            |i| {
                format!(
                    "{base}/api/v1/logs/stats?service={service}&from={}",
                    days_ago(days, i)
                )
            },
            7,
        )
        .await?;
        let who = if service.is_empty() {
            "all services"
        } else {
            service
        };
        report(
            &format!("stats, {who}, {label} to now ({in_range} lines)"),
            &ms,
        );
    }

    // ---- the tailer at 5,000 lines/s ----
    let tailed = dir.join("tailed.log");
    std::fs::write(&tailed, "")?;
    let source = app::specs::NewLogSource {
        path: tailed.to_string_lossy().into_owned(),
        format: "json".into(),
        service: "tailed".into(),
    };
    app::logs::sources::add_checked(&state, &source).await?;
    let tailer = tokio::spawn(server::logs::tail::run(state.clone()));
    let seconds = 20u64;
    let rate = 5_000u64;
    let writer = {
        let tailed = tailed.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().append(true).open(&tailed)?;
            let start = Instant::now();
            for s in 0..seconds {
                let mut buf = String::with_capacity(rate as usize * 120);
                for i in 0..rate {
                    buf.push_str(&format!("{{\"level\":\"info\",\"message\":\"tailed line {}\",\"context\":{{\"execution_time\":0.01}}}}\n", s * rate + i));
                }
                // Written in 10 slices a second, as an application would.
                for chunk in buf.as_bytes().chunks(buf.len() / 10 + 1) {
                    f.write_all(chunk)?;
                    std::thread::sleep(Duration::from_millis(90));
                }
                let due = Duration::from_secs(s + 1);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        })
    };
    let t0 = Instant::now();
    let mut max_lag: i64 = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let written = ((t0.elapsed().as_secs_f64().min(seconds as f64)) * rate as f64) as i64;
        let got: i64 =
            sqlx::query_scalar("SELECT count(*) FROM log_lines WHERE service = 'tailed'")
                .fetch_one(&pool)
                .await?;
        if t0.elapsed().as_secs() < seconds {
            max_lag = max_lag.max(written - got);
        }
        if got >= (seconds * rate) as i64 || t0.elapsed().as_secs() > seconds + 60 {
            println!(
                "tailer: {} lines appended at {rate}/s for {seconds} s; all stored {:.1} s after the last write; largest backlog while writing {max_lag} lines",
                got,
                t0.elapsed().as_secs_f64() - seconds as f64
            );
            break;
        }
    }
    writer.join().map_err(|_| "writer panicked")??;
    tailer.abort();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
