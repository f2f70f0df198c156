//! Load run (figures only, nothing asserted): a real `opsdeck serve` child process under
//! 200 requests/s of page views and API calls (open loop: a request every 5 ms whatever the
//! answers do), while 20 agents push metrics every 5 s and the server's tailer follows a file
//! appended at 5,000 lines/s. Prints the error rate, latency percentiles per kind, how far the
//! tailer got, and the server's RSS every 30 s (growth between minute 1 and the end).
//!
//! The page views and API calls come from two `oha` processes when `OPSDECK_OHA` names its
//! binary (bench/load.sh installs it), else from this process.
//!
//! Usage: DATABASE_URL=postgres://…/scratch OPSDECK_BIN=… [OPSDECK_OHA=…] opsdeck-load
//! [seconds] [requests/s] (see bench/load.sh; default 300 s at 200 requests/s)

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Page views as a team's browsers make them: dashboards most, log analytics now and then
/// (each Logs view computes the analytics of its range).
const PAGES: &[&str] = &[
    "/",
    "/hosts",
    "/hosts/load-agent-1",
    "/",
    "/alerts",
    "/services",
    "/hosts/load-agent-7",
    "/checks",
    "/",
    "/capacity",
    "/backups",
    "/hosts",
    "/logs?q=level%3Aerror",
    "/",
    "/alerts",
    "/hosts/load-agent-12",
    "/services",
    "/",
    "/hosts",
    "/checks",
];
/// API calls as scripts and dashboards make them.
const APIS: &[&str] = &[
    "/api/v1/hosts",
    "/api/v1/monitoring/metrics?host=load-agent-2",
    "/api/v1/metrics/series?host=load-agent-3&metric=cpu_usage_percent&from=now-1h",
    "/api/v1/alerts",
    "/api/v1/checks",
    "/api/v1/health?detailed=true",
    "/api/v1/logs/search?q=level%3Aerror&limit=50",
    "/api/v1/hosts",
    "/api/v1/monitoring/metrics?host=load-agent-5",
    "/api/v1/alerts",
    "/api/v1/processes",
    "/api/v1/forecasts?host=load-agent-4",
    "/api/v1/metrics/series?host=load-agent-8&metric=memory_used_percent&from=now-6h",
    "/api/v1/health",
    "/api/v1/logs/stats?from=now-1h",
    "/api/v1/checks",
    "/api/v1/hosts",
    "/api/v1/alerts/rules",
    "/api/v1/monitoring/metrics?host=load-agent-9",
    "/api/v1/health",
];

#[derive(Default)]
struct Tally {
    ms: Vec<f64>,
    errors: u64,
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Res<()> {
    let url =
        std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL to a scratch database")?;
    let bin = std::env::var("OPSDECK_BIN").map_err(|_| "set OPSDECK_BIN to the opsdeck binary")?;
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let rate: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
        .clamp(1, 10_000);
    let dir = std::env::temp_dir().join(format!("opsdeck-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let tailed = dir.join("app.log");
    std::fs::write(&tailed, "")?;
    std::fs::write(
        dir.join("opsdeck.toml"),
        format!(
            "[[log_sources]]\npath = \"{}\"\nformat = \"json\"\nservice = \"app\"\n",
            tailed.display()
        ),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let password = "load-admin-password-1";
    let mut child = std::process::Command::new(&bin)
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("OPSDECK_CONFIG", dir.join("opsdeck.toml"))
        .env("OPSDECK_LISTEN", format!("127.0.0.1:{port}"))
        .env("OPSDECK_DATA_DIR", dir.join("data"))
        .env("OPSDECK_ADMIN_PASSWORD", password)
        .env("OPSDECK_MAX_CONNECTIONS", "20")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .spawn()?;
    let pid = child.id();
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    for _ in 0..300 {
        if plain
            .get(format!("{base}/api/v1/health"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token_out = std::process::Command::new(&bin)
        .args(["token", "add", "load-agents", "--scope", "ingest"])
        .env("DATABASE_URL", &url)
        .output()?;
    let token = String::from_utf8(token_out.stdout)?
        .split_whitespace()
        .find(|w| w.len() > 20)
        .ok_or("no token printed")?
        .to_string();
    let login = plain
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await?
        .error_for_status()?;
    let cookie = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(server::SESSION_COOKIE))
        .and_then(|v| v.split(';').next())
        .ok_or("the login set no session cookie")?
        .to_string();

    let stop = Instant::now() + Duration::from_secs(secs);
    let ingest = Arc::new(Mutex::new(Tally::default()));

    // 20 agents, each every 5 s, 40 samples (10 series × their last 4 values).
    let mut agents = vec![];
    for a in 0..20 {
        let (plain, base, token, ingest) =
            (plain.clone(), base.clone(), token.clone(), ingest.clone());
        agents.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut n = 0u64;
            while Instant::now() < stop {
                tick.tick().await;
                n += 1;
                let now = time::OffsetDateTime::now_utc();
                let samples: Vec<_> = (0..40)
                    .map(|i| {
                        let ts = now - time::Duration::seconds((i / 10) as i64);
                        let metric = ["cpu_usage_percent", "memory_used_percent", "load_average_1m", "disk_used_percent"][i % 4];
                        json!({"metric": metric, "labels": if metric == "disk_used_percent" { json!({"mount": format!("/d{}", i % 10)}) } else { json!({}) },
                               "ts": ts.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                               "value": ((a * 7 + i as u64 + n) % 100) as f64})
                    })
                    .collect();
                let t = Instant::now();
                let r = plain
                    .post(format!("{base}/api/v1/ingest/metrics"))
                    .bearer_auth(&token)
                    .json(&json!({"host": format!("load-agent-{a}"), "samples": samples}))
                    .send()
                    .await;
                let ok = r.is_ok_and(|r| r.status().is_success());
                let mut g = ingest.lock().unwrap();
                g.ms.push(t.elapsed().as_secs_f64() * 1000.0);
                g.errors += u64::from(!ok);
            }
        }));
    }

    // The application log: 5,000 lines/s in 10 slices a second.
    let written = Arc::new(Mutex::new(0u64));
    let writer = {
        let (tailed, written) = (tailed.clone(), written.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().append(true).open(&tailed)?;
            let mut i = 0u64;
            let start = Instant::now();
            let mut slice = 0u64;
            while Instant::now() < stop {
                let mut buf = String::with_capacity(500 * 130);
                for _ in 0..500 {
                    let level = if i.is_multiple_of(50) {
                        "ERROR"
                    } else {
                        "INFO"
                    };
                    buf.push_str(&format!(
                        "{{\"level\":\"{level}\",\"message\":\"request {i} done\",\"context\":{{\"execution_time\":{:.3},\"url\":\"/api/v1/items/{}\"}}}}\n",
                        (i % 97) as f64 / 100.0,
                        i % 13
                    ));
                    i += 1;
                }
                f.write_all(buf.as_bytes())?;
                *written.lock().unwrap() = i;
                slice += 1;
                let due = Duration::from_millis(slice * 100);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        })
    };

    // RSS every 30 s.
    let rss = Arc::new(Mutex::new(vec![]));
    let sampler = {
        let rss = rss.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            while Instant::now() < stop {
                rss.lock()
                    .unwrap()
                    .push((t0.elapsed().as_secs(), rss_mib(pid)));
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            rss.lock()
                .unwrap()
                .push((t0.elapsed().as_secs(), rss_mib(pid)));
        })
    };

    // 200 requests/s, open loop: half pages, half API calls.
    let traffic = match std::env::var_os("OPSDECK_OHA") {
        Some(oha) => oha_traffic(&oha, &base, &cookie, secs, rate, &dir).await?,
        None => builtin_traffic(&base, &cookie, stop, rate).await?,
    };
    for a in agents {
        let _ = a.await;
    }
    let _ = sampler.await;
    let _ = writer.join();
    let lines_written = *written.lock().unwrap();
    let mut stored = 0i64;
    let pool = server::connect(&app::config::Config::with_database_url(url.clone())).await?;
    for _ in 0..60 {
        stored = sqlx::query_scalar("SELECT count(*) FROM log_lines WHERE service = 'app'")
            .fetch_one(&pool)
            .await?;
        if stored as u64 >= lines_written {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = child.kill();
    let _ = child.wait();

    let report = |name: &str, g: &mut Tally| {
        let n = g.ms.len();
        let e = g.errors;
        let (p50, p95, p99) = (
            pct(&mut g.ms, 0.5),
            pct(&mut g.ms, 0.95),
            pct(&mut g.ms, 0.99),
        );
        println!(
            "{name}: {n} requests, {e} errors ({:.3} %), p50 {p50:.0} ms, p95 {p95:.0} ms, p99 {p99:.0} ms",
            100.0 * e as f64 / n.max(1) as f64
        );
        (n, e)
    };
    println!(
        "load for {secs} s at {rate} requests/s against {base} (a separate `opsdeck serve` process); \
         page views and API calls by {}",
        traffic.client
    );
    let mut traffic = traffic;
    let (n1, e1) = report("page views", &mut traffic.pages);
    let (n2, e2) = report("API calls", &mut traffic.apis);
    let (n3, e3) = report(
        "agent ingests (20 agents every 5 s)",
        &mut ingest.lock().unwrap(),
    );
    println!(
        "all: {} requests, error rate {:.3} %",
        n1 + n2 + n3,
        100.0 * (e1 + e2 + e3) as f64 / (n1 + n2 + n3).max(1) as f64
    );
    println!("tailer: {lines_written} lines written at 5,000/s, {stored} stored");
    let mut by_path = traffic.by_path;
    let mut slowest: Vec<(&str, f64, f64)> = by_path
        .iter_mut()
        .map(|(p, v)| (p.as_str(), pct(v, 0.5), pct(v, 0.99)))
        .collect();
    slowest.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (p, p50, p99) in slowest.iter().take(8) {
        println!("  slowest: {p}: p50 {p50:.0} ms, p99 {p99:.0} ms");
    }
    for ((path, why), n) in traffic.failures.iter() {
        println!("  failed: {path}: {why} ×{n}");
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let mut shown = 0;
    for (i, line) in lines.iter().enumerate() {
        if (line.contains("ERROR") || line.contains("panicked at")) && shown < 6 {
            shown += 1;
            let upto = if line.contains("panicked at") {
                i + 2
            } else {
                i + 1
            };
            for l in &lines[i..upto.min(lines.len())] {
                println!("  server log: {}", l.chars().take(400).collect::<String>());
            }
        }
    }
    let rss = rss.lock().unwrap().clone();
    let line: Vec<String> = rss.iter().map(|(t, m)| format!("{t}s {m:.0}")).collect();
    println!("server RSS (MiB): {}", line.join(", "));
    let at = |s: u64| rss.iter().find(|(t, _)| *t >= s).map(|x| x.1);
    if let (Some(a), Some(b)) = (at(60), rss.last().map(|x| x.1)) {
        println!(
            "RSS growth from minute 1 to the end: {:+.1} %",
            100.0 * (b - a) / a
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// What the page views and API calls gave.
struct Traffic {
    client: &'static str,
    pages: Tally,
    apis: Tally,
    /// Latencies (ms) by path.
    by_path: std::collections::HashMap<String, Vec<f64>>,
    /// (path, why) → how many.
    failures: std::collections::BTreeMap<(String, String), u64>,
}

impl Traffic {
    fn new(client: &'static str) -> Self {
        Self {
            client,
            pages: Tally::default(),
            apis: Tally::default(),
            by_path: Default::default(),
            failures: Default::default(),
        }
    }

    fn tally(&mut self, path: &str) -> &mut Tally {
        if path.starts_with("/api/") {
            &mut self.apis
        } else {
            &mut self.pages
        }
    }

    /// `n` requests to `path` that failed, for `why`.
    fn failed(&mut self, path: &str, why: String, n: u64) {
        self.tally(path).errors += n;
        *self.failures.entry((path.to_string(), why)).or_insert(0) += n;
    }

    /// One answered request: its latency, and why it failed if it did.
    fn record(&mut self, path: &str, ms: f64, failure: Option<String>) {
        self.tally(path).ms.push(ms);
        self.by_path.entry(path.to_string()).or_default().push(ms);
        if let Some(why) = failure {
            self.failed(path, why, 1);
        }
    }
}

/// The page views and API calls from this process: a request every `1/rate` s whatever the
/// answers do, alternately a page and an API call.
async fn builtin_traffic(base: &str, cookie: &str, stop: Instant, rate: u64) -> Res<Traffic> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse()?);
    let session = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()?;
    // (path, ms, why it failed)
    type Seen = Vec<(&'static str, f64, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut k = 0usize;
    let mut inflight = tokio::task::JoinSet::new();
    while Instant::now() < stop {
        tick.tick().await;
        k += 1;
        let path = if k.is_multiple_of(2) {
            PAGES[(k / 2) % PAGES.len()]
        } else {
            APIS[(k / 2) % APIS.len()]
        };
        let (session, u, seen) = (session.clone(), format!("{base}{path}"), seen.clone());
        inflight.spawn(async move {
            let t = Instant::now();
            let why = match session.get(&u).send().await {
                Ok(r) if r.status().is_success() => {
                    r.bytes().await.err().map(|e| format!("body: {e}"))
                }
                Ok(r) => Some(format!("HTTP {}", r.status())),
                Err(e) if e.is_timeout() => Some("timed out after 30 s".into()),
                Err(e) => Some(format!("{e}")),
            };
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            seen.lock().unwrap().push((path, ms, why));
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    let mut t = Traffic::new("opsdeck-load itself");
    for (path, ms, why) in std::mem::take(&mut *seen.lock().unwrap()) {
        t.record(path, ms, why);
    }
    Ok(t)
}

/// The page views and API calls from two `oha` processes (rate/2 each, `-q` with latency
/// correction, so a slow answer does not hold back the next requests), each picking its URLs
/// at random from the same lists; every request is read back from oha's SQLite record.
async fn oha_traffic(
    oha: &std::ffi::OsStr,
    base: &str,
    cookie: &str,
    secs: u64,
    rate: u64,
    dir: &std::path::Path,
) -> Res<Traffic> {
    let mut runs = vec![];
    for (name, paths) in [("pages", PAGES), ("apis", APIS)] {
        let urls = dir.join(format!("{name}.txt"));
        let list: String = paths.iter().map(|p| format!("{base}{p}\n")).collect();
        std::fs::write(&urls, list)?;
        let db = dir.join(format!("{name}.sqlite"));
        let out = dir.join(format!("{name}.json"));
        let child = std::process::Command::new(oha)
            .arg("--urls-from-file")
            .arg(&urls)
            .args([
                "-z",
                &format!("{secs}s"),
                "-q",
                &format!("{}", (rate / 2).max(1)),
            ])
            .args([
                "--latency-correction",
                "--no-tui",
                "-w",
                "-c",
                "64",
                "-t",
                "30s",
            ])
            .args(["--output-format", "json", "-o"])
            .arg(&out)
            .arg("--db-url")
            .arg(&db)
            .args(["-H", &format!("Cookie: {cookie}")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start oha ({}): {e}", oha.to_string_lossy()))?;
        runs.push((name, child, db, out));
    }
    let mut t = Traffic::new("oha (two processes: pages, API calls)");
    for (name, mut child, db, out) in runs {
        let status = tokio::task::spawn_blocking(move || child.wait()).await??;
        if !status.success() {
            return Err(format!("oha ({name}) failed: {status}").into());
        }
        let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
        // Requests that got no answer at all (timeouts, refused connections): oha does not say
        // to which URL.
        let any = if name == "apis" { "/api/*" } else { "/*" };
        if let Some(errs) = summary["errorDistribution"].as_object() {
            for (why, n) in errs {
                t.failed(any, why.clone(), n.as_u64().unwrap_or(0));
            }
        }
        let csv = std::process::Command::new("sqlite3")
            .arg("-csv")
            .arg(&db)
            .arg("SELECT url, duration, status FROM oha")
            .output()
            .map_err(|e| format!("sqlite3 (to read oha's record): {e}"))?;
        if !csv.status.success() {
            return Err(format!("sqlite3: {}", String::from_utf8_lossy(&csv.stderr)).into());
        }
        for line in String::from_utf8(csv.stdout)?.lines() {
            // url,duration,status (a URL with a comma is quoted; ours have none)
            let mut f = line.rsplitn(3, ',');
            let (Some(status), Some(secs), Some(url)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let (Ok(status), Ok(secs)) = (status.parse::<u16>(), secs.parse::<f64>()) else {
                continue;
            };
            let path = url.trim_matches('"').trim_start_matches(base).to_string();
            let failure = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
            t.record(&path, secs * 1000.0, failure);
        }
    }
    Ok(t)
}
