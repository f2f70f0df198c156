//! Faults, done for real to real processes: PostgreSQL stopped and started under a serving,
//! collecting, tailing `opsdeck serve` with an agent sending to it; `opsdeck serve` killed with
//! SIGKILL while an agent and the tailer deliver to it. Afterwards nothing is lost and nothing
//! is stored twice.

mod common;
use common::Call;

use common::procs::{self, PrivatePg};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Appends numbered JSON lines to a file every 10 ms until stopped; counts what it wrote.
struct LogWriter {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogWriter {
    fn start(path: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (s, w, path) = (stop.clone(), written.clone(), path.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let ts = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                writeln!(f, r#"{{"ts":"{ts}","level":"info","msg":"line {n}"}}"#).unwrap();
                w.store(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self {
            stop,
            written,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.written.load(Ordering::Relaxed)
    }
}

async fn add_source(c: &reqwest::Client, base: &str, path: &Path, service: &str) {
    let res = c
        .post(format!("{base}/api/v1/logs/sources"))
        .json(&json!({"path": path, "format": "json", "service": service}))
        .call()
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
}

/// (lines stored, distinct messages) of a service.
async fn stored_lines(pool: &PgPool, service: &str) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT message) FROM log_lines WHERE service = $1")
        .bind(service)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until `want` lines of `service` are stored (or a minute passes) and returns what is.
async fn wait_for_lines(pool: &PgPool, service: &str, want: i64) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = stored_lines(pool, service).await;
        if got.0 >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sample times of a host's `cpu_usage_percent`, oldest first.
async fn cpu_times(pool: &PgPool, host: &str) -> Vec<time::OffsetDateTime> {
    sqlx::query_scalar(
        "SELECT s.ts FROM metric_samples s JOIN metric_series m ON m.id = s.series_id
         WHERE m.host = $1 AND m.metric = 'cpu_usage_percent' ORDER BY s.ts",
    )
    .bind(host)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The longest gap between two samples, in seconds, between `from` and the last sample.
fn longest_gap(times: &[time::OffsetDateTime], from: time::OffsetDateTime) -> f64 {
    times
        .windows(2)
        .filter(|w| w[0] >= from)
        .map(|w| (w[1] - w[0]).as_seconds_f64())
        .fold(0.0, f64::max)
}

/// Waits until a host has a sample after `after` (the agent's buffer is drained up to then).
async fn wait_for_sample_after(pool: &PgPool, host: &str, after: time::OffsetDateTime) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if cpu_times(pool, host)
            .await
            .last()
            .is_some_and(|t| *t > after)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no sample of {host} after {after}");
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("opsdeck-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stops_and_starts_under_load_and_nothing_is_lost() {
    let pg = PrivatePg::start_new();
    pg.create_database("opsdeck").await;
    let url = pg.url("opsdeck");
    let dir = temp_dir("pg-restart");
    let port = procs::free_port();
    let serve = procs::serve(&url, "pg-server", &dir.join("data"), port, &[]).await;
    let (admin, token) = procs::admin_and_token(&serve.base).await;
    let log = dir.join("app.log");
    let mut writer = LogWriter::start(&log);
    add_source(&admin, &serve.base, &log, "faulty").await;
    let _agent = procs::agent(&serve.base, &token, "pg-agent", "1s", &dir);
    let pool = PgPool::connect(&url).await.unwrap();
    let before_outage = wait_for_lines(&pool, "faulty", 100).await;
    assert!(before_outage.0 >= 100, "the tailer stores lines");
    wait_for_sample_after(&pool, "pg-agent", time::OffsetDateTime::now_utc()).await;
    pool.close().await;

    let outage_start = time::OffsetDateTime::now_utc();
    pg.stop();
    // Health says degraded, pages show a banner (not an error page), ingest answers 503.
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let res = c.get(format!("{}/api/v1/health", serve.base)).call().await;
        if res.status() == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "degraded");
    for page in ["/", "/logs", "/hosts", "/backups"] {
        let res = admin.get(format!("{}{page}", serve.base)).call().await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{page}");
        assert!(res.headers().contains_key("retry-after"), "{page}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains("cannot reach its database") && body.contains("role=\"alert\""),
            "{page}: {body}"
        );
    }
    let res = c
        .post(format!("{}/api/v1/ingest/metrics", serve.base))
        .bearer_auth(&token)
        .json(&json!({"host": "x", "samples": []}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let res = c
        .post(format!(
            "{}/api/v1/ingest/logs?service=faulty-http",
            serve.base
        ))
        .bearer_auth(&token)
        .body("{\"msg\":\"x\"}\n")
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Down for a while, with lines still being written and the agent still collecting.
    tokio::time::sleep(Duration::from_secs(8)).await;
    pg.start();
    let outage_end = time::OffsetDateTime::now_utc();

    // Everything resumes by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c
        .get(format!("{}/api/v1/health", serve.base))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "health did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = admin.get(format!("{}/", serve.base)).call().await;
    assert_eq!(res.status(), StatusCode::OK, "the session survived");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written = writer.stop() as i64;
    let pool = PgPool::connect(&url).await.unwrap();
    let (lines, distinct) = wait_for_lines(&pool, "faulty", written).await;
    assert_eq!(lines, written, "every line written is stored");
    assert_eq!(distinct, lines, "no line is stored twice");
    // The agent's and the server's own samples cover the outage: buffered, then delivered.
    for host in ["pg-agent", "pg-server"] {
        wait_for_sample_after(&pool, host, outage_end + time::Duration::seconds(2)).await;
        let times = cpu_times(&pool, host).await;
        let gap = longest_gap(&times, outage_start - time::Duration::seconds(5));
        assert!(
            gap < 3.5,
            "{host}: a {gap:.1} s gap in samples taken every second across the outage"
        );
    }
    pool.close().await;
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn serve_killed_while_agents_and_the_tailer_deliver_loses_and_doubles_nothing(pool: PgPool) {
    let url = procs::db_url(&pool).await;
    let dir = temp_dir("kill9-serve");
    let port = procs::free_port();
    let mut serve = procs::serve(&url, "k-server", &dir.join("data"), port, &[]).await;
    let (admin, token) = procs::admin_and_token(&serve.base).await;
    let log = dir.join("app.log");
    let mut writer = LogWriter::start(&log);
    add_source(&admin, &serve.base, &log, "killed").await;
    let _agent = procs::agent(&serve.base, &token, "k-agent", "1s", &dir);
    assert!(wait_for_lines(&pool, "killed", 100).await.0 >= 100);
    wait_for_sample_after(&pool, "k-agent", time::OffsetDateTime::now_utc()).await;

    // SIGKILL mid-stream: the tailer's batch in flight is either committed with its offset or
    // not at all; the agent finds nobody listening and buffers.
    let cut = time::OffsetDateTime::now_utc();
    serve.proc.kill9();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let serve = procs::serve(&url, "k-server", &dir.join("data"), port, &[]).await;
    let back = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written = writer.stop() as i64;
    let (lines, distinct) = wait_for_lines(&pool, "killed", written).await;
    assert_eq!(lines, written, "every line written is stored");
    assert_eq!(distinct, lines, "no line is stored twice");
    wait_for_sample_after(&pool, "k-agent", back + time::Duration::seconds(2)).await;
    let times = cpu_times(&pool, "k-agent").await;
    let gap = longest_gap(&times, cut - time::Duration::seconds(5));
    assert!(
        gap < 3.5,
        "k-agent: a {gap:.1} s gap in samples taken every second while the server was away"
    );
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

fn import(url: &str, file: &Path, service: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_opsdeck"));
    cmd.args(["logs", "import", "--format", "json", "--service", service])
        .arg(file)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn");
    cmd
}

fn write_lines(path: &Path, from: u64, to: u64) {
    let mut f = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    );
    for n in from..=to {
        writeln!(
            f,
            r#"{{"ts":"2026-11-20T10:{:02}:{:02}Z","level":"info","msg":"import line {n}"}}"#,
            (n / 60) % 60,
            n % 60
        )
        .unwrap();
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_import_killed_midway_resumes_without_doubling_a_line(pool: PgPool) {
    let url = procs::db_url(&pool).await;
    let dir = temp_dir("kill9-import");
    let file = dir.join("big.log");
    let total = 300_000u64;
    write_lines(&file, 1, total);

    let mut child = import(&url, &file, "imported")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (n, _) = stored_lines(&pool, "imported").await;
        if n > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the import stored nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL, mid-way
    child.wait().unwrap();
    let (partial, distinct) = stored_lines(&pool, "imported").await;
    assert!(partial < total as i64, "killed before the end ({partial})");
    assert_eq!(partial, distinct);
    let done: i64 = sqlx::query_scalar("SELECT lines_done FROM log_imports")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        done, partial,
        "the recorded progress is exactly what is stored"
    );

    // Run again: it goes on after the stored lines.
    let out = import(&url, &file, "imported").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("import that stopped"), "{stderr}");
    let (n, distinct) = stored_lines(&pool, "imported").await;
    assert_eq!(n, total as i64, "every line once");
    assert_eq!(distinct, n);

    // Again, with lines appended since: only those are added.
    write_lines(&file, total + 1, total + 1_000);
    let out = import(&url, &file, "imported").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("300000 skipped"), "{stdout}");
    let (n, distinct) = stored_lines(&pool, "imported").await;
    assert_eq!((n, distinct), (total as i64 + 1_000, total as i64 + 1_000));
    let _ = std::fs::remove_dir_all(&dir);
}
