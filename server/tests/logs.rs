//! Logs: NDJSON ingest, the query language against real PostgreSQL, keyset pages, and the
//! analytics compared with the runbook's own shell pipelines (grep, jq, awk) on the same files,
//! imported with `opsdeck logs import`.

mod common;

use app::auth::Role;
use common::{json, Call, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::io::Write;
use std::process::Command;
use time::{Duration, OffsetDateTime};

fn sh(script: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn clf(t: OffsetDateTime) -> String {
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        months[u8::from(t.month()) as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn ingest_and_search(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let (_, token) = app::auth::tokens::create(&pool, "logs", "ingest", None)
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let t = |mins: i64| rfc3339(now - Duration::minutes(mins));
    let body = [
        format!(r#"{{"timestamp":"{}","level":"ERROR","message":"Model API error 42","logger":"api","context":{{"execution_time":6.2,"url":"/api/v1/chat","method":"POST","status":502}}}}"#, t(5)),
        format!(r#"{{"time":"{}","levelname":"INFO","msg":"Request started","context":{{"url":"/api/v1/health","status":200,"execution_time":0.01}}}}"#, t(4)),
        format!(r#"{{"ts":"{}","severity":"warning","event":"connection refused by upstream"}}"#, t(3)),
        "this is not json at all".to_string(),
        format!(r#"{{"timestamp":"{}","level":"error","message":"Database connection lost","service":"worker"}}"#, t(2)),
    ]
    .join("\n");
    let post = |body: String, q: &'static str| {
        let c = app.client();
        let url = app.url(&format!("/api/v1/ingest/logs?{q}"));
        let token = token.clone();
        async move { c.post(url).bearer_auth(token).body(body).call().await }
    };
    let res = post(body, "service=api").await;
    assert_eq!(res.status(), StatusCode::OK);
    let out = json(res).await;
    assert_eq!(
        (out["accepted"].as_u64(), out["unparsed"].as_u64()),
        (Some(5), Some(1))
    );
    // Bad requests store nothing and say why.
    assert_eq!(
        app.client()
            .post(app.url("/api/v1/ingest/logs?service=api"))
            .body("{}")
            .call()
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let res = post("{}".into(), "service=no%20spaces").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("service"));
    let res = post("{}".into(), "service=api&format=xml").await;
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("json, nginx or text"));
    let c = app.client();
    let res = c
        .post(app.url("/api/v1/ingest/logs?service=api"))
        .bearer_auth(&token)
        .body(vec![0xffu8, 0xfe, b'\n'])
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM log_lines")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 5);

    let search = |q: &str| {
        let url = app.url(&format!("/api/v1/logs/search?q={}&limit=100", urlencode(q)));
        let v = viewer.clone();
        async move { v.get(url).call().await }
    };
    let messages = |v: &Value| -> Vec<String> {
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_string())
            .collect()
    };
    let cases: Vec<(&str, Vec<&str>)> = vec![
        // The unparsed line has no time of its own: it gets the time it arrived, the newest.
        (
            "",
            vec![
                "this is not json at all",
                "Database connection lost",
                "connection refused by upstream",
                "Request started",
                "Model API error 42",
            ],
        ),
        (
            "level:error",
            vec!["Database connection lost", "Model API error 42"],
        ),
        (
            "level:>=warn",
            vec![
                "Database connection lost",
                "connection refused by upstream",
                "Model API error 42",
            ],
        ),
        ("status:>=500", vec!["Model API error 42"]),
        ("status:2xx", vec!["Request started"]),
        ("path:/api/*", vec!["Request started", "Model API error 42"]),
        (
            "\"connection refused\"",
            vec!["connection refused by upstream"],
        ),
        ("connection -refused", vec!["Database connection lost"]),
        ("service:worker", vec!["Database connection lost"]),
        ("logger:api", vec!["Model API error 42"]),
        ("duration:>5", vec!["Model API error 42"]),
        ("MODEL", vec!["Model API error 42"]),
        ("100%", vec![]),
    ];
    for (q, want) in cases {
        let res = search(q).await;
        assert_eq!(res.status(), StatusCode::OK, "{q}");
        assert_eq!(messages(&json(res).await), want, "{q}");
    }
    let unparsed = json(search("\"not json\"").await).await;
    assert!(unparsed["lines"][0]["parse_error"]
        .as_str()
        .unwrap()
        .contains("not JSON"));
    assert_eq!(
        json(search("level:error").await).await["lines"][0]["service"],
        "worker"
    );

    for (q, want) in [
        ("status:>=x", "a comparison needs a number"),
        ("\"open", "unclosed quote"),
    ] {
        let res = search(q).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(
            json(res).await["error"].as_str().unwrap().contains(want),
            "{q}"
        );
    }
    let res = viewer
        .get(app.url("/api/v1/logs/search?cursor=nonsense"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = viewer
        .get(app.url("/api/v1/logs/search?from=yesterday"))
        .call()
        .await;
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .starts_with("from:"));

    // Keyset pages: two at a time, every line once, newest first.
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut url = app.url("/api/v1/logs/search?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = json(viewer.get(url).call().await).await;
        seen.extend(messages(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], "this is not json at all");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "no line twice across pages");

    // The Logs page shows lines and figures.
    let html = viewer
        .get(app.url("/logs?q=level:error"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Model API error 42") && html.contains("data-testid=\"log-stats\""));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A batch sent again with the same `Idempotency-Key` (a script retrying after a lost answer) is
/// answered as the first time and stored once, also when both arrive at the same moment.
#[sqlx::test(migrations = "../migrations")]
async fn a_batch_sent_again_with_its_idempotency_key_is_stored_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, token) = app::auth::tokens::create(&pool, "retrying", "ingest", None)
        .await
        .unwrap();
    let post = |key: &str, body: &str| {
        app.client()
            .post(app.url("/api/v1/ingest/logs?service=batch"))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .body(body.to_string())
            .send()
    };
    let stored = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM log_lines WHERE service = 'batch'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let body = "{\"level\":\"info\",\"message\":\"one\"}\nnot json\n";
    let first = json(post("batch-1", body).await.unwrap()).await;
    assert_eq!(
        (&first["accepted"], &first["unparsed"], &first["replayed"]),
        (&Value::from(2), &Value::from(1), &Value::from(false))
    );
    let again = json(post("batch-1", body).await.unwrap()).await;
    assert_eq!(
        (&again["accepted"], &again["unparsed"], &again["replayed"]),
        (&Value::from(2), &Value::from(1), &Value::from(true))
    );
    assert_eq!(stored().await, 2);

    // The same key for another body is a mistake the sender must hear about.
    let res = post("batch-1", "{\"message\":\"other\"}").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("different body"));
    // A malformed key is refused before anything is stored.
    let res = post("has space", body).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    assert_eq!(stored().await, 2);

    // Two sends of one batch at the same moment: one stores, the other replays.
    let (a, b) = tokio::join!(post("batch-2", body), post("batch-2", body));
    let (a, b) = (json(a.unwrap()).await, json(b.unwrap()).await);
    let mut replayed = [a["replayed"].as_bool(), b["replayed"].as_bool()];
    replayed.sort();
    assert_eq!(replayed, [Some(false), Some(true)]);
    assert_eq!(stored().await, 4);
    // Without a key, a batch is stored each time it is sent.
    let res = app
        .client()
        .post(app.url("/api/v1/ingest/logs?service=batch"))
        .bearer_auth(&token)
        .body(body)
        .call()
        .await;
    assert_eq!(json(res).await["replayed"], false);
    assert_eq!(stored().await, 6);
}

#[sqlx::test(migrations = "../migrations")]
async fn analytics_equal_the_runbook_pipelines(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("opsdeck-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let app_log = dir.join("app.log");
    let access_log = dir.join("access.log.gz");
    let base = OffsetDateTime::now_utc() - Duration::hours(3);
    let errors = [
        "Model API error",
        "Agent routing failed",
        "Workflow execution failed",
        "Database connection",
    ];
    {
        let mut f = std::fs::File::create(&app_log).unwrap();
        for i in 0..3000i64 {
            let ts = rfc3339(base + Duration::seconds(i * 3));
            let (level, msg) = if i % 7 == 0 {
                (
                    "ERROR",
                    format!(
                        "{} (request {} from 10.0.{}.{})",
                        errors[(i % 4) as usize],
                        i,
                        i % 3,
                        i % 250
                    ),
                )
            } else {
                ("INFO", "api.request_duration".to_string())
            };
            let exec = (i % 97) as f64 / 10.0;
            writeln!(f, r#"{{"timestamp":"{ts}","level":"{level}","message":"{msg}","context":{{"execution_time":{exec},"url":"/api/v1/r{}"}}}}"#, i % 5).unwrap();
        }
        writeln!(f, "garbage line that is not json").unwrap();
    }
    {
        let f = std::fs::File::create(&access_log).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        for i in 0..4000i64 {
            let ip = if i % 3 == 0 {
                "203.0.113.9".to_string()
            } else {
                format!("10.0.0.{}", i % 17)
            };
            let (method, path) = if i % 3 == 0 {
                ("POST", "/api/v1/chat")
            } else {
                ("GET", "/static/app.js")
            };
            let status = [200, 200, 201, 304, 404, 500, 502][(i % 7) as usize];
            writeln!(
                gz,
                r#"{ip} - - [{}] "{method} {path} HTTP/1.1" {status} {} "-" "agent-{}" {:.3}"#,
                clf(base + Duration::seconds(i * 2)),
                i * 10,
                i % 4,
                (i % 61) as f64 / 10.0
            )
            .unwrap();
        }
        gz.finish().unwrap();
    }
    // Import with the CLI, as a user would.
    let url = {
        let name: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await
            .unwrap();
        let mut u = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
        u.set_path(&format!("/{name}"));
        u.to_string()
    };
    for (file, format, service) in [(&app_log, "json", "api"), (&access_log, "nginx", "nginx")] {
        let out = Command::new(env!("CARGO_BIN_EXE_opsdeck"))
            .args(["logs", "import"])
            .arg(file)
            .args(["--format", format, "--service", service])
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("entries stored"), "{stdout}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args([
            "logs",
            "import",
            "/nonexistent.log",
            "--format",
            "json",
            "--service",
            "api",
        ])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.log"));

    let app = TestApp::spawn(pool.clone()).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let range = format!(
        "from={}&to=now",
        (base - Duration::minutes(1)).unix_timestamp()
    );
    let api = json(
        viewer
            .get(app.url(&format!("/api/v1/logs/stats?service=api&{range}")))
            .call()
            .await,
    )
    .await;
    let a = app_log.display();
    // grep "ERROR" app.log | wc -l
    assert_eq!(
        api["errors"].as_i64().unwrap().to_string(),
        sh(&format!("grep ERROR {a} | wc -l"))
    );
    assert_eq!(
        api["total"].as_i64().unwrap().to_string(),
        sh(&format!("wc -l < {a}"))
    );
    // grep "api.request_duration" app.log | jq '.context.execution_time' | awk '{sum+=$1; count++} END {print sum/count}'
    // (here over every line with an execution time, as the stats do)
    let avg: f64 = sh(&format!("grep -v garbage {a} | jq '.context.execution_time' | awk '{{s+=$1; n++}} END {{printf \"%.6f\", s/n}}'")).parse().unwrap();
    assert!(
        (api["response_time"]["avg"].as_f64().unwrap() - avg).abs() < 1e-6,
        "{} vs {avg}",
        api["response_time"]
    );
    let max: f64 = sh(&format!(
        "grep -v garbage {a} | jq '.context.execution_time' | sort -g | tail -1"
    ))
    .parse()
    .unwrap();
    assert_eq!(api["response_time"]["max"].as_f64().unwrap(), max);
    // Top errors: jq -r .message | normalise numbers and addresses | sort | uniq -c | sort -rn
    let top = sh(&format!(
        "grep ERROR {a} | jq -r .message | sed -E 's/[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+/<ip>/g; s/[0-9]+/<n>/g' | sort | uniq -c | sort -rn | head -1"
    ));
    let (count, msg) = top.trim().split_once(' ').unwrap();
    assert_eq!(
        api["top_errors"][0]["count"].as_i64().unwrap().to_string(),
        count
    );
    assert_eq!(api["top_errors"][0]["message"], msg);
    assert_eq!(
        api["top_errors"].as_array().unwrap().len(),
        4,
        "similar errors group: {}",
        api["top_errors"]
    );
    let slow_n = sh(&format!(
        "grep -v garbage {a} | jq 'select(.context.execution_time > 5)' -c | wc -l"
    ));
    assert_eq!(
        api["slow_requests"].as_array().unwrap().len().to_string(),
        slow_n.parse::<usize>().unwrap().min(50).to_string()
    );
    // Errors per hour: jq -r .timestamp | cut -c1-13 | uniq -c
    let hours = sh(&format!(
        "grep ERROR {a} | jq -r .timestamp | cut -c1-13 | sort | uniq -c | wc -l"
    ));
    assert_eq!(
        api["errors_per_hour"].as_array().unwrap().len().to_string(),
        hours
    );

    let ng = json(
        viewer
            .get(app.url(&format!("/api/v1/logs/stats?service=nginx&{range}")))
            .call()
            .await,
    )
    .await;
    let acc = format!("zcat {}", access_log.display());
    // awk '{print $1}' access.log | sort | uniq -c | sort -rn | head
    let top_ip = sh(&format!(
        "{acc} | awk '{{print $1}}' | sort | uniq -c | sort -rn | head -1"
    ));
    let (n, ip) = top_ip.trim().split_once(' ').unwrap();
    assert_eq!(
        (
            ng["top_ips"][0]["ip"].as_str().unwrap(),
            ng["top_ips"][0]["count"].as_i64().unwrap().to_string()
        ),
        (ip, n.to_string())
    );
    let fives = sh(&format!("{acc} | awk '$9 ~ /^5/' | wc -l"));
    let class5 = ng["status_classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "5xx")
        .unwrap()["count"]
        .as_i64()
        .unwrap();
    assert_eq!(class5.to_string(), fives);
    assert_eq!(
        ng["requests"].as_i64().unwrap().to_string(),
        sh(&format!("{acc} | wc -l"))
    );
    let posts = sh(&format!("{acc} | awk '$6 == \"\\\"POST\" && $7 ~ /^\\/api\\// {{print $1}}' | sort | uniq -c | awk '$1 > 100' | wc -l"));
    assert_eq!(
        ng["suspicious_ips"].as_array().unwrap().len().to_string(),
        posts
    );
    assert_eq!(ng["suspicious_ips"][0]["ip"], "203.0.113.9");
    let p99: f64 = sh(&format!("{acc} | awk '{{print $NF}}' | sort -g | awk '{{a[NR]=$1}} END {{i=0.99*(NR-1); lo=int(i); printf \"%.6f\", a[lo+1]+(i-lo)*(a[lo+2]-a[lo+1])}}'")).parse().unwrap();
    assert!(
        (ng["response_time"]["p99"].as_f64().unwrap() - p99).abs() < 1e-6,
        "{} vs {p99}",
        ng["response_time"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The analytics read from rolled-up days equal those read from the lines (percentiles to
/// within the histogram's 0.5 %), and a line written later into a rolled-up day counts at once.
#[sqlx::test(migrations = "../migrations")]
async fn analytics_read_rolled_up_days_the_same(pool: PgPool) {
    use app::logs::analytics::{stats, StatsParams};
    use app::logs::parse::{parse_line, Format};
    use app::logs::rollup_jobs::roll_up;
    use app::logs::store::insert;
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let start = now - Duration::hours(84);
    let nginx: Vec<_> = (0..3000i64)
        .map(|i| {
            let ip = if i % 4 == 0 { "203.0.113.9".to_string() } else { format!("10.0.0.{}", i % 23) };
            let (method, path) = if i % 4 == 0 { ("POST", "/api/v1/chat") } else { ("GET", "/static/app.js") };
            let status = [200, 200, 201, 304, 404, 500, 502][(i % 7) as usize];
            parse_line(
                Format::Nginx,
                &format!(
                    r#"{ip} - - [{}] "{method} {path}?id={i} HTTP/1.1" {status} 10 "-" "agent-{}" {:.3}"#,
                    clf(start + Duration::seconds(i * 100)),
                    i % 5,
                    (i % 83) as f64 / 10.0
                ),
            )
        })
        .collect();
    let app_lines: Vec<_> = (0..2000i64)
        .map(|i| {
            let level = if i % 9 == 0 { "ERROR" } else { "INFO" };
            parse_line(
                Format::Json,
                &format!(
                    r#"{{"timestamp":"{}","level":"{level}","message":"upstream {} failed for 10.1.2.{}","context":{{"execution_time":{}}}}}"#,
                    rfc3339(start + Duration::seconds(i * 150 + 7)),
                    i % 3,
                    i % 200,
                    (i % 31) as f64 / 4.0
                ),
            )
        })
        .collect();
    insert(&state, "web", "test", &nginx, now).await.unwrap();
    insert(&state, "api", "test", &app_lines, now)
        .await
        .unwrap();

    let params = StatsParams::default();
    let from = start - Duration::minutes(30);
    let ranges = [
        (from, now),
        (now - Duration::hours(50), now - Duration::hours(3)),
    ];
    let services = [Some("web"), Some("api"), None];
    let mut before = vec![];
    for (a, b) in ranges {
        for svc in services {
            before.push(stats(&state, "", svc, a, b, &params).await.unwrap());
        }
    }
    let report = roll_up(&state, now).await.unwrap();
    assert!(
        report.days >= 6 && report.hours >= 6 * 24,
        "two services on three whole past days: {report:?}"
    );
    let days: i64 = sqlx::query_scalar("SELECT count(*) FROM log_rollup_days")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(days >= 3);
    let same = |x: &app::logs::LogStats, y: &app::logs::LogStats| {
        let (mut x, mut y) = (x.clone(), y.clone());
        for (a, b) in [
            (x.response_time.p50, y.response_time.p50),
            (x.response_time.p95, y.response_time.p95),
            (x.response_time.p99, y.response_time.p99),
        ] {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!((a - b).abs() <= 0.0051 * b.max(0.1), "{a} vs {b}");
        }
        let avg = (x.response_time.avg.unwrap() - y.response_time.avg.unwrap()).abs();
        assert!(avg < 1e-9);
        for s in [&mut x, &mut y] {
            s.response_time.p50 = None;
            s.response_time.p95 = None;
            s.response_time.p99 = None;
            s.response_time.avg = None;
        }
        assert_eq!(x, y);
    };
    let mut i = 0;
    for (a, b) in ranges {
        for svc in services {
            let after = stats(&state, "", svc, a, b, &params).await.unwrap();
            assert!(after.total > 0);
            same(&after, &before[i]);
            // The summary an incident compares (counts, percentiles, slowest requests) agrees
            // with the full analytics, and leaves the rankings out.
            let p = StatsParams {
                summary_only: true,
                ..params.clone()
            };
            let summary = stats(&state, "", svc, a, b, &p).await.unwrap();
            assert_eq!(
                (summary.total, summary.errors, summary.requests),
                (after.total, after.errors, after.requests)
            );
            assert_eq!(summary.error_rate, after.error_rate);
            assert_eq!(summary.response_time.p95, after.response_time.p95);
            assert_eq!(summary.slow_requests, after.slow_requests);
            assert!(summary.top_paths.len() <= after.top_paths.len());
            i += 1;
        }
    }
    assert!(before[0]
        .suspicious_ips
        .iter()
        .any(|s| s.ip == "203.0.113.9"));

    // A line written behind the service's back (no roll-up mark), as another process could.
    let sneak = |ts: OffsetDateTime, msg: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query("INSERT INTO log_lines (ts, service, level, message, fields, source) VALUES ($1, 'api', 4, $2, '{}', 'test')")
                .bind(ts)
                .bind(msg)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // The part days at the edges are read from the hour rollups, not from the lines: a line
    // slipped in behind the roll-up's back (no mark) into a rolled-up hour is not seen, while
    // one in the current hour is.
    let (a, b) = (now - Duration::hours(50), now - Duration::hours(3));
    let edge_hour = (a + Duration::hours(2))
        .replace_minute(0)
        .unwrap()
        .replace_second(0)
        .unwrap();
    for (ts, msg) in [
        (edge_hour + Duration::minutes(1), "sneaked"),
        (now - Duration::seconds(1), "current"),
    ] {
        // Its day may have no partition yet (the seeded lines can all be before midnight).
        app::logs::store::ensure_partitions(&state, &[ts.date()])
            .await
            .unwrap();
        sneak(ts, msg).await;
    }
    // Written behind the service's back, as another process would; say so, or the shared tail
    // of ranges ending now may still be the one read before (for up to a second).
    app::logs::store::committed(&state);
    let hidden = stats(&state, "", Some("api"), a, b, &params).await.unwrap();
    assert_eq!(
        hidden.errors, before[4].errors,
        "the edge hour comes from its rollup"
    );
    let current = stats(&state, "", Some("api"), from, now, &params)
        .await
        .unwrap();
    assert_eq!(
        current.errors,
        before[1].errors + 1,
        "the current hour comes from the lines"
    );
    sqlx::query("DELETE FROM log_lines WHERE message IN ('sneaked', 'current')")
        .execute(&pool)
        .await
        .unwrap();

    // A range starting inside a rolled-up hour reads that hour's whole minutes from the minute
    // tier and only the seconds before the first of them from the lines; one of an hour or
    // more starts at the start of its minute (and says so), so it reads no lines there at all.
    let minutes: i64 = sqlx::query_scalar("SELECT count(*) FROM log_rollup_minutes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        minutes > 100,
        "minutes are stored as hours roll up: {minutes}"
    );
    let hour = app::logs::rollup::hour_of(now - Duration::hours(50));
    let a2 = hour + Duration::minutes(20) + Duration::seconds(30);
    let short = (a2, a2 + Duration::minutes(30));
    let long = stats(&state, "", Some("api"), a2, b, &params)
        .await
        .unwrap();
    assert_eq!(
        long.from.0,
        hour + Duration::minutes(20),
        "a long range starts at its minute"
    );
    let edge = stats(&state, "", Some("api"), short.0, short.1, &params)
        .await
        .unwrap();
    assert_eq!((edge.from.0, edge.to.0), short, "a short one to the second");
    sneak(
        hour + Duration::minutes(21) + Duration::seconds(10),
        "in a minute",
    )
    .await;
    sneak(a2 + Duration::seconds(5), "in the seconds").await;
    app::logs::store::committed(&state);
    let again = stats(&state, "", Some("api"), short.0, short.1, &params)
        .await
        .unwrap();
    assert_eq!(
        again.errors,
        edge.errors + 1,
        "whole minutes from their rollups, the seconds before them from the lines"
    );
    let again = stats(&state, "", Some("api"), a2, b, &params)
        .await
        .unwrap();
    assert_eq!(
        (again.total, again.errors),
        (long.total, long.errors),
        "a long range's first minute from its rollup too"
    );
    sqlx::query("DELETE FROM log_lines WHERE message IN ('in a minute', 'in the seconds')")
        .execute(&pool)
        .await
        .unwrap();

    // A late line into a rolled-up day is counted at once, and again after the next round.
    let late_day = (start + Duration::hours(30)).date();
    let late_ts = late_day.with_hms(12, 0, 0).unwrap().assume_utc();
    let late = parse_line(
        Format::Json,
        &format!(
            r#"{{"timestamp":"{}","level":"ERROR","message":"late arrival 1"}}"#,
            rfc3339(late_ts)
        ),
    );
    insert(&state, "api", "test", &[late], now).await.unwrap();
    let with_late = stats(&state, "", Some("api"), from, now, &params)
        .await
        .unwrap();
    assert_eq!(with_late.errors, before[1].errors + 1);
    assert!(with_late
        .top_errors
        .iter()
        .any(|e| e.message == "late arrival <n>"));
    roll_up(&state, now).await.unwrap();
    // Marks of finished hours are all taken; the current hour's wait for its live round.
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM log_rollup_pending WHERE hour + interval '65 minutes' <= $1",
    )
    .bind(now)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(pending, 0);
    let rolled_again = stats(&state, "", Some("api"), from, now, &params)
        .await
        .unwrap();
    same(&rolled_again, &with_late);
}

/// Per-service retention: a service kept 2 days loses its older lines (and their rolled-up
/// days), the others keep theirs; the analytics agree before and after the next roll-up.
#[sqlx::test(migrations = "../migrations")]
async fn retention_per_service(pool: PgPool) {
    use app::logs::analytics::{stats, StatsParams};
    use app::logs::parse::{parse_line, Format};
    use app::logs::retention::enforce_retention;
    use app::logs::rollup_jobs::roll_up;
    use app::logs::store::insert;
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let lines = |n: i64| -> Vec<_> {
        (0..n)
            .map(|i| {
                parse_line(
                    Format::Json,
                    &format!(
                        r#"{{"timestamp":"{}","level":"INFO","message":"line {i}"}}"#,
                        rfc3339(now - Duration::hours(i) - Duration::minutes(30))
                    ),
                )
            })
            .collect()
    };
    // 120 lines an hour apart, half past: five days back.
    insert(&state, "kept", "test", &lines(120), now)
        .await
        .unwrap();
    insert(&state, "short", "test", &lines(120), now)
        .await
        .unwrap();
    roll_up(&state, now).await.unwrap();
    let report = enforce_retention(&state, 30, &[("short".to_string(), 2)], now)
        .await
        .unwrap();
    assert!(report.dropped_partitions.is_empty());
    // Lines 0..=47 are within 2 days.
    assert_eq!(report.deleted_lines, 72);
    let count = |svc: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM log_lines WHERE service = $1")
                .bind(svc)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("kept").await, 120);
    assert_eq!(count("short").await, 48);
    let range = (now - Duration::days(6), now + Duration::minutes(1));
    let p = StatsParams::default();
    for _ in 0..2 {
        let short = stats(&state, "", Some("short"), range.0, range.1, &p)
            .await
            .unwrap();
        let kept = stats(&state, "", Some("kept"), range.0, range.1, &p)
            .await
            .unwrap();
        assert_eq!((short.total, kept.total), (48, 120));
        roll_up(&state, now).await.unwrap();
    }
    // A default shorter than a named service's: the others go, the named one stays.
    let report = enforce_retention(&state, 1, &[("short".to_string(), 30)], now)
        .await
        .unwrap();
    assert_eq!(report.deleted_lines, 120 - 24);
    assert_eq!(count("kept").await, 24);
    assert_eq!(count("short").await, 48);
}

/// A backfill through HTTP of lines from hours that are over is rolled up within seconds, not
/// at the next scheduled round; lines of the current hour are left to the lines table.
#[sqlx::test(migrations = "../migrations")]
async fn an_http_backfill_is_rolled_up_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, token) = app::auth::tokens::create(&pool, "logs", "ingest", None)
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let body: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"timestamp":"{}","level":"INFO","message":"backfill {i}"}}"#,
                rfc3339(now - Duration::hours(3) - Duration::minutes(i))
            )
        })
        .collect();
    let res = app
        .client()
        .post(app.url("/api/v1/ingest/logs?service=backfill"))
        .bearer_auth(&token)
        .body(body.join("\n"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut rolled = 0i64;
    for _ in 0..100 {
        rolled = sqlx::query_scalar(
            "SELECT coalesce(sum(lines), 0)::bigint FROM log_rollup_hours WHERE service = 'backfill'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if rolled == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(rolled, 50, "every backfilled line is in an hour rollup");
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM log_rollup_pending WHERE service = 'backfill'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, 0);
}

/// The current hour is read from its live rollup up to the last round: a line slipped in
/// without a mark before the round's end is not seen, a late line (marked) is seen at once and
/// makes the next round rebuild the hour; fresh lines past the round are read from the lines,
/// and the next round takes them in.
#[sqlx::test(migrations = "../migrations")]
async fn the_current_hour_is_read_from_its_live_rollup(pool: PgPool) {
    use app::logs::analytics::{stats, StatsParams};
    use app::logs::parse::{parse_line, Format};
    use app::logs::rollup::{hour_of, LIVE_LAG};
    use app::logs::rollup_jobs::roll_up_live;
    use app::logs::store::insert;
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let upto = now - LIVE_LAG;
    let hour = hour_of(upto);
    let line = |ts: OffsetDateTime, level: &str, msg: &str| {
        parse_line(
            Format::Json,
            &format!(
                r#"{{"timestamp":"{}","level":"{level}","message":"{msg}","context":{{"execution_time":0.5}}}}"#,
                rfc3339(ts)
            ),
        )
    };
    let span = (upto - hour).whole_milliseconds().max(1) as i64;
    let early: Vec<_> = (0..20)
        .map(|i| {
            line(
                hour + Duration::milliseconds(span * i / 20),
                if i % 4 == 0 { "ERROR" } else { "INFO" },
                "early",
            )
        })
        .collect();
    insert(&state, "live", "test", &early, now).await.unwrap();
    insert(&state, "live", "test", &[line(now, "INFO", "fresh")], now)
        .await
        .unwrap();
    let p = StatsParams::default();
    let (from, to) = (hour - Duration::hours(1), now + Duration::seconds(1));
    let before = stats(&state, "", Some("live"), from, to, &p).await.unwrap();
    assert_eq!((before.total, before.errors), (21, 5));

    let r = roll_up_live(&state, now).await.unwrap();
    assert_eq!((r.services, r.rebuilt), (1, 1), "{r:?}");
    let after = stats(&state, "", Some("live"), from, to, &p).await.unwrap();
    assert_eq!(after, before);

    // Slipped in behind the round's back, inside [hour, upto): not seen, so the live rollup is read.
    sqlx::query("INSERT INTO log_lines (ts, service, level, message, fields, source) VALUES ($1, 'live', 4, 'sneaked', '{}', 'test')")
        .bind(hour + Duration::milliseconds(span / 2))
        .execute(&pool)
        .await
        .unwrap();
    let hidden = stats(&state, "", Some("live"), from, to, &p).await.unwrap();
    assert_eq!(hidden.errors, 5);
    // A late line, marked: counted at once (the hour is read from the lines until rebuilt).
    insert(
        &state,
        "live",
        "test",
        &[line(
            hour + Duration::milliseconds(span / 3),
            "ERROR",
            "late",
        )],
        now,
    )
    .await
    .unwrap();
    let late = stats(&state, "", Some("live"), from, to, &p).await.unwrap();
    assert_eq!(
        late.errors, 7,
        "the late line and, read from the lines, the sneaked one"
    );
    let r = roll_up_live(&state, now).await.unwrap();
    assert_eq!(r.rebuilt, 1, "{r:?}");
    assert_eq!(
        stats(&state, "", Some("live"), from, to, &p)
            .await
            .unwrap()
            .errors,
        7
    );

    // The next round grows the partial by the lines since the last one.
    let later = now + LIVE_LAG + Duration::seconds(1);
    if hour_of(later - LIVE_LAG) == hour {
        let r = roll_up_live(&state, later).await.unwrap();
        assert_eq!((r.services, r.rebuilt), (1, 0), "{r:?}");
        let lines: i64 =
            sqlx::query_scalar("SELECT lines FROM log_rollup_live WHERE service = 'live'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(lines, 23, "20 early, sneaked, late and fresh");
    }
}

/// A round of roll-ups killed after it rolled up an hour again but before it merged that hour's
/// day: the day is not read stale. Before, its row stayed in use, without the late line, for
/// good (no mark was left to say otherwise).
#[sqlx::test(migrations = "../migrations")]
async fn a_round_killed_between_an_hour_and_its_day_leaves_no_stale_day(pool: PgPool) {
    use app::logs::analytics::{stats, StatsParams};
    use app::logs::parse::{parse_line, Format};
    use app::logs::rollup_jobs::{roll_up, roll_up_hour};
    use app::logs::store::insert;
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let day = (now - Duration::days(2)).date();
    let hour = day.with_hms(10, 0, 0).unwrap().assume_utc();
    let line = |i: i64| {
        parse_line(
            Format::Json,
            &format!(
                r#"{{"timestamp":"{}","level":"ERROR","message":"boom {i}"}}"#,
                rfc3339(hour + Duration::minutes(i))
            ),
        )
    };
    let lines: Vec<_> = (0..10).map(line).collect();
    insert(&state, "svc", "test", &lines, now).await.unwrap();
    roll_up(&state, now).await.unwrap();
    let (from, to) = (hour - Duration::hours(10), hour + Duration::hours(14));
    let p = StatsParams::default();
    let total = |s: app::logs::LogStats| (s.total, s.errors);
    assert_eq!(
        total(stats(&state, "", Some("svc"), from, to, &p).await.unwrap()),
        (10, 10)
    );
    // A late line marks its hour; the round that takes the mark dies before merging the day.
    insert(&state, "svc", "test", &[line(30)], now)
        .await
        .unwrap();
    assert_eq!(roll_up_hour(&state, "svc", hour).await.unwrap(), Some(11));
    assert_eq!(
        total(stats(&state, "", Some("svc"), from, to, &p).await.unwrap()),
        (11, 11),
        "the day is read from its hours until it is merged again"
    );
    // The next round merges the day again.
    roll_up(&state, now).await.unwrap();
    let whole: i64 = sqlx::query_scalar("SELECT count(*) FROM log_rollup_days WHERE day = $1")
        .bind(day)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(whole, 1);
    assert_eq!(
        total(stats(&state, "", Some("svc"), from, to, &p).await.unwrap()),
        (11, 11)
    );
}

/// The self-check finds a rolled-up hour that differs from its lines (here a line written
/// behind the roll-up's back, as a write committed too late to be seen would be), marks it, and
/// the next round rebuilds it; the repair is counted on `/metrics`.
#[sqlx::test(migrations = "../migrations")]
async fn the_self_check_rebuilds_a_roll_up_that_differs_from_its_lines(pool: PgPool) {
    use app::logs::analytics::{stats, StatsParams};
    use app::logs::parse::{parse_line, Format};
    use app::logs::rollup_jobs::{roll_up, self_check};
    use app::logs::store::insert;
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let hour = (now - Duration::hours(2))
        .replace_minute(0)
        .unwrap()
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap();
    let lines: Vec<_> = (0..5)
        .map(|i| {
            parse_line(
                Format::Json,
                &format!(
                    r#"{{"timestamp":"{}","level":"INFO","message":"m {i}"}}"#,
                    rfc3339(hour + Duration::minutes(i))
                ),
            )
        })
        .collect();
    insert(&state, "chk", "test", &lines, now).await.unwrap();
    roll_up(&state, now).await.unwrap();
    sqlx::query("INSERT INTO log_lines (ts, service, level, message, fields, source) VALUES ($1, 'chk', 2, 'sneaked', '{}', 'test')")
        .bind(hour + Duration::minutes(30))
        .execute(&pool)
        .await
        .unwrap();
    let (from, to) = (hour, hour + Duration::hours(1));
    let p = StatsParams::default();
    assert_eq!(
        stats(&state, "", Some("chk"), from, to, &p)
            .await
            .unwrap()
            .total,
        5
    );
    let report = self_check(&state, now - Duration::hours(3), now)
        .await
        .unwrap();
    assert_eq!(report.repaired, 1, "{report:?}");
    // Marked: read from the lines at once, rebuilt by the next round.
    assert_eq!(
        stats(&state, "", Some("chk"), from, to, &p)
            .await
            .unwrap()
            .total,
        6
    );
    roll_up(&state, now).await.unwrap();
    assert_eq!(
        stats(&state, "", Some("chk"), from, to, &p)
            .await
            .unwrap()
            .total,
        6
    );
    let again = self_check(&state, now - Duration::hours(3), now)
        .await
        .unwrap();
    assert_eq!(again.repaired, 0, "{again:?}");
    let mut out = String::new();
    state.runtime.telemetry.render(&mut out);
    assert!(out.contains("opsdeck_log_rollup_repairs_total 1"), "{out}");
}

/// The Logs page's data: a bad query is said (the services menu still filled), an empty range
/// points at the newest older lines (from the roll-ups), the analytics follow the query, and a
/// window (`from`/`to`) is left as soon as a relative range is picked.
#[sqlx::test(migrations = "../migrations")]
async fn the_logs_page_explains_an_empty_range_and_a_bad_query(pool: PgPool) {
    use app::logs::page::{page_data, PageQuery};
    use app::logs::parse::{parse_line, Format};
    use app::logs::rollup_jobs::roll_up;
    use app::logs::store::insert;
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let old = now - Duration::days(3);
    let lines: Vec<_> = (0..20i64)
        .map(|i| {
            let level = if i % 4 == 0 { "ERROR" } else { "INFO" };
            parse_line(
                Format::Json,
                &format!(
                    r#"{{"timestamp":"{}","level":"{level}","message":"line {i}"}}"#,
                    rfc3339(old + Duration::seconds(i * 60))
                ),
            )
        })
        .collect();
    insert(&state, "api", "test", &lines, now).await.unwrap();
    roll_up(&state, now).await.unwrap();
    let query = |q: &'static str, range: Option<&'static str>, window: Option<(String, String)>| {
        let state = state.clone();
        async move {
            let (from, to) = window.unzip();
            page_data(
                &state,
                Role::Viewer,
                PageQuery {
                    q,
                    service: Some("api"),
                    range,
                    from: from.as_deref(),
                    to: to.as_deref(),
                    cursor: None,
                },
            )
            .await
            .unwrap()
        }
    };

    let bad = query("\"unclosed", None, None).await;
    assert!(
        bad.query_error
            .as_deref()
            .unwrap_or("")
            .contains("unclosed"),
        "{:?}",
        bad.query_error
    );
    assert_eq!(bad.services, ["api"]);

    let empty = query("", Some("1h"), None).await;
    assert!(empty.search.lines.is_empty());
    let newest = OffsetDateTime::from(empty.newest_before.expect("older lines are pointed at"));
    let last_line = old + Duration::seconds(19 * 60);
    assert!(
        newest > last_line && newest - last_line <= Duration::days(1),
        "{newest} for a last line at {last_line}"
    );

    let window = Some((
        (old - Duration::minutes(5)).unix_timestamp().to_string(),
        (old + Duration::hours(1)).unix_timestamp().to_string(),
    ));
    let all = query("", None, window.clone()).await;
    assert_eq!(all.search.lines.len(), 20);
    assert_eq!(all.stats.as_ref().unwrap().total, 20);
    assert!(all.newest_before.is_none());
    let errors = query("level:error", Some("custom"), window.clone()).await;
    let s = errors.stats.unwrap();
    assert_eq!(
        (s.total, s.errors),
        (5, 5),
        "the analytics follow the query"
    );
    // A relative range picked while a window is in the URL wins.
    let relative = query("", Some("1h"), window).await;
    assert!(relative.search.lines.is_empty());
}
