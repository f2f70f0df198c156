//! Services: a real child process found, its memory growth seen and its restart counted; a port
//! seen opening and closing; real Prometheus endpoints scraped over loopback (Opsdeck's own
//! /metrics and a fixture with counters, gauges, a histogram and escaped labels), with a target
//! that times out and one that returns garbage; the API with its role checks.

mod common;

use app::auth::Role;
use app::timestamp::Timestamp;
use common::{json, Call, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use server::services::watch::ProcessWatcher;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const CHILD_ENV: &str = "OPSDECK_TEST_LEAKY_CHILD";

/// Not a test: the child process the tests watch. It grows by 4 MiB every 50 ms up to 400 MiB.
#[test]
fn leaky_child_helper() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let mut held: Vec<Vec<u8>> = vec![];
    for _ in 0..100 {
        held.push(vec![1u8; 4 << 20]);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(120));
    drop(held);
}

/// A word only this run's children carry on their command line (a second filter that names no
/// test), so that children of another run on the same machine are never counted.
fn run_token() -> String {
    format!("leaky-run-{}", std::process::id())
}

fn spawn_child() -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "leaky_child_helper",
            &run_token(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn value(samples: &[app::metrics::Sample], metric: &str) -> Option<f64> {
    samples.iter().find(|s| s.metric == metric).map(|s| s.value)
}

#[test]
fn a_child_process_is_found_its_growth_seen_and_its_restart_counted() {
    let mut watcher = ProcessWatcher::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let watches = vec![(
        "leaky".to_string(),
        format!("leaky_child_helper {}*--nocapture", run_token()),
        Some(port),
    )];
    let look = |w: &mut ProcessWatcher| w.collect(&watches, OffsetDateTime::now_utc());

    let before = look(&mut watcher);
    assert_eq!(value(&before, "process_up"), Some(0.0));
    assert_eq!(value(&before, "process_port_listening"), Some(1.0));

    let mut child = spawn_child();
    std::thread::sleep(Duration::from_millis(500));
    let first = look(&mut watcher);
    assert_eq!(value(&first, "process_up"), Some(1.0));
    assert_eq!(value(&first, "process_count"), Some(1.0));
    assert_eq!(
        value(&first, "process_restarts"),
        Some(1.0),
        "down, then up: a (re)start"
    );
    let rss1 = value(&first, "process_resident_memory_bytes").unwrap();
    assert!(value(&first, "process_threads").unwrap() >= 1.0);
    assert!(value(&first, "process_open_fds").unwrap() >= 1.0);
    let labels = &first
        .iter()
        .find(|s| s.metric == "process_up")
        .unwrap()
        .labels;
    assert_eq!(labels["process"], "leaky");

    std::thread::sleep(Duration::from_millis(1500));
    let second = look(&mut watcher);
    let rss2 = value(&second, "process_resident_memory_bytes").unwrap();
    assert!(rss2 > rss1 + 50.0 * 1048576.0, "RSS grew: {rss1} → {rss2}");
    assert_eq!(value(&second, "process_restarts"), Some(0.0));

    // Killed and started again between two looks: one restart, a new PID.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut again = spawn_child();
    std::thread::sleep(Duration::from_millis(300));
    let third = look(&mut watcher);
    assert_eq!(value(&third, "process_up"), Some(1.0));
    assert_eq!(value(&third, "process_restarts"), Some(1.0));

    // The port closes; the process goes away.
    drop(listener);
    again.kill().unwrap();
    again.wait().unwrap();
    let last = look(&mut watcher);
    assert_eq!(value(&last, "process_port_listening"), Some(0.0));
    assert_eq!(value(&last, "process_up"), Some(0.0));
    assert_eq!(value(&last, "process_resident_memory_bytes"), None);
}

/// A fixture exporter: a counter that grows by 30 per scrape, a gauge with an escaped label,
/// a histogram whose new observations land in (0.1, 1]; `/slow` never answers in time and
/// `/garbage` is not the exposition format.
async fn exporter() -> String {
    use axum::routing::get;
    let scrapes = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let n = scrapes.fetch_add(1, Ordering::SeqCst);
                async move {
                    format!(
                        "# HELP requests_total Requests.\n# TYPE requests_total counter\n\
requests_total{{path=\"/api\"}} {}\n\
# TYPE queue_depth gauge\n\
queue_depth{{queue=\"a \\\"quoted\\\" name\\\\x\"}} 7\n\
# TYPE latency_seconds histogram\n\
latency_seconds_bucket{{le=\"0.1\"}} 10\n\
latency_seconds_bucket{{le=\"1\"}} {}\n\
latency_seconds_bucket{{le=\"+Inf\"}} {}\n\
latency_seconds_sum {}\n\
latency_seconds_count {}\n",
                        100 + 30 * n,
                        10 + 10 * n,
                        10 + 10 * n,
                        1 + 5 * n,
                        10 + 10 * n
                    )
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "x 1\n"
            }),
        )
        .route(
            "/garbage",
            get(|| async { "<html>this is not metrics</html>" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn stored(pool: &PgPool, metric: &str, label: (&str, &str)) -> Vec<(OffsetDateTime, f64)> {
    sqlx::query_as(
        "SELECT m.ts, m.value FROM metric_samples m JOIN metric_series s ON s.id = m.series_id
         WHERE s.metric = $1 AND s.labels->>$2 = $3 ORDER BY m.ts",
    )
    .bind(metric)
    .bind(label.0)
    .bind(label.1)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn targets_are_scraped_and_broken_ones_never_stall_the_others(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let op = app.signed_in("olga", Role::Operator).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let base = exporter().await;
    // Opsdeck's own /metrics wants a `metrics` token: the target sends it.
    let (_, metrics_token) = app::auth::tokens::create(&pool, "scrape", "metrics", None)
        .await
        .unwrap();
    for (name, url, timeout, token) in [
        ("own", app.url("/metrics"), 5, Some(metrics_token.clone())),
        ("fixture", format!("{base}/metrics"), 5, None),
        ("slow", format!("{base}/slow"), 2, None),
        ("garbage", format!("{base}/garbage"), 5, None),
    ] {
        let res = op
            .post(app.url("/api/v1/scrape-targets"))
            .json(&json!({"name": name, "url": url, "interval_seconds": 15, "timeout_seconds": timeout, "bearer_token": token}))
            .call().await;
        assert_eq!(res.status(), StatusCode::CREATED, "{name}");
    }
    // Bad input names the field; viewers may read but not change.
    for (body, field) in [
        (json!({"name": "x", "url": "ftp://h/m"}), "url"),
        (
            json!({"name": "y", "url": "http://h/m", "interval_seconds": 0}),
            "interval_seconds",
        ),
        (json!({"name": "bad name", "url": "http://h/m"}), "name"),
    ] {
        let res = op
            .post(app.url("/api/v1/scrape-targets"))
            .json(&body)
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(json(res).await["error"].as_str().unwrap().contains(field));
    }
    let dup = op
        .post(app.url("/api/v1/scrape-targets"))
        .json(&json!({"name": "own", "url": "http://h/m"}))
        .call()
        .await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let res = viewer
        .post(app.url("/api/v1/scrape-targets"))
        .json(&json!({"name": "v", "url": "http://h/m"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let config = common::test_config();
    let state = app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool.clone(),
        config,
    );
    // A series stored here before the scrape: Opsdeck's own /metrics re-exports it.
    let batch = app::metrics::IngestBatch {
        host: "web-1".into(),
        samples: vec![app::metrics::Sample {
            metric: "disk_used_percent".into(),
            labels: [("mount".to_string(), "/".to_string())].into(),
            ts: Timestamp(OffsetDateTime::now_utc()),
            value: 61.0,
        }],
    };
    app::metrics::service::ingest(&state, &batch, app::metrics::service::Origin::Agent)
        .await
        .unwrap();
    let client = server::services::scraper::client(&common::test_config());
    let round = {
        let (state, client) = (state.clone(), client.clone());
        tokio::spawn(async move { server::services::scraper::round(&state, &client).await })
    };
    // The fixture is recorded while the slow target is still waiting for its timeout.
    let mut waited = 0;
    loop {
        let (fixture_done, slow_done): (bool, bool) = sqlx::query_as(
            "SELECT bool_or(name = 'fixture' AND last_scrape_at IS NOT NULL), bool_or(name = 'slow' AND last_scrape_at IS NOT NULL) FROM scrape_targets",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if fixture_done {
            assert!(!slow_done, "the slow target must not finish first");
            break;
        }
        waited += 1;
        assert!(waited < 200, "the fixture was never scraped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(round.await.unwrap().unwrap(), 4);

    let targets = json(viewer.get(app.url("/api/v1/scrape-targets")).call().await).await;
    let by = |name: &str| {
        targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by("fixture")["state"], "up");
    assert_eq!(by("own")["state"], "up", "{}", by("own"));
    assert_eq!(by("own")["has_token"], true);
    assert!(
        !targets.to_string().contains(&metrics_token),
        "the token is never shown"
    );
    assert_eq!(by("slow")["state"], "down");
    assert!(by("slow")["last_error"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    assert_eq!(by("garbage")["state"], "down");
    assert!(
        by("garbage")["last_error"]
            .as_str()
            .unwrap()
            .starts_with("line 1:"),
        "{}",
        by("garbage")
    );

    let gauge = stored(&pool, "queue_depth", ("target", "fixture")).await;
    assert_eq!(gauge.len(), 1);
    assert_eq!(gauge[0].1, 7.0);
    let label: String = sqlx::query_scalar(
        "SELECT labels->>'queue' FROM metric_series WHERE metric = 'queue_depth'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(label, "a \"quoted\" name\\x");
    let host: String =
        sqlx::query_scalar("SELECT host FROM metric_series WHERE metric = 'queue_depth'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // Stored under the host of the server the target was added on (its own, by default).
    assert_eq!(host, common::test_config().host_name);
    // Opsdeck's own /metrics went through too: the process's own metrics, never a copy of the
    // series it re-exports from this database (the disk series above, under target=own).
    let own: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM metric_series WHERE labels->>'target' = 'own' AND metric LIKE 'opsdeck_%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(own > 0);
    let copies: Vec<String> = sqlx::query_scalar(
        "SELECT metric FROM metric_series WHERE labels->>'target' = 'own'
         AND metric NOT LIKE 'opsdeck_http_%' AND metric NOT LIKE 'opsdeck_log_%' AND metric NOT LIKE 'scrape_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(copies.is_empty(), "copies stored: {copies:?}");
    assert!(by("own")["skipped"].as_i64().unwrap() >= 1, "{}", by("own"));
    assert_eq!(by("fixture")["skipped"], 0);
    let disk: i64 =
        sqlx::query_scalar("SELECT count(*) FROM metric_series WHERE metric = 'disk_used_percent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(disk, 1, "the disk series is stored once");
    assert!(stored(&pool, "requests_total:rate", ("target", "fixture"))
        .await
        .is_empty());

    // A second scrape: the counter grew by 30, so its rate × the time between scrapes is 30;
    // the histogram's 10 new observations all fell in (0.1, 1].
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sqlx::query("UPDATE scrape_targets SET next_scrape_at = now() WHERE name = 'fixture'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        server::services::scraper::round(&state, &client)
            .await
            .unwrap(),
        1
    );
    let ups = stored(&pool, "scrape_up", ("target", "fixture")).await;
    assert_eq!(ups.len(), 2);
    let dt = (ups[1].0 - ups[0].0).as_seconds_f64();
    let rate = stored(&pool, "requests_total:rate", ("target", "fixture")).await;
    assert_eq!(rate.len(), 1);
    assert!((rate[0].1 * dt - 30.0).abs() < 1e-4, "{} × {dt}", rate[0].1);
    let p50 = stored(&pool, "latency_seconds:p50", ("target", "fixture")).await;
    assert!((p50[1].1 - 0.55).abs() < 1e-9, "{p50:?}");
    let avg = stored(&pool, "latency_seconds:avg", ("target", "fixture")).await;
    assert!((avg[1].1 - 0.5).abs() < 1e-9, "{avg:?}");

    // The page shows them.
    let html = viewer
        .get(app.url("/services"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("fixture") && html.contains("timed out"),
        "services page"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn processes_api_checks_input_and_roles(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let op = app.signed_in("olga", Role::Operator).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let res = op
        .post(app.url("/api/v1/processes"))
        .json(&json!({"name": "uvicorn", "pattern": "uvicorn*app:main", "port": 8000, "host": "web-1"}))
        .call().await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = json(res).await["id"].as_i64().unwrap();
    for (body, status, needle) in [
        (
            json!({"name": "uvicorn", "pattern": "x", "host": "web-1"}),
            StatusCode::CONFLICT,
            "already watches",
        ),
        (
            json!({"name": "p", "pattern": "x", "port": 70000}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "port",
        ),
        (
            json!({"name": "p", "pattern": "*"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "pattern",
        ),
        (
            json!({"name": "p", "pattern": "x", "host": "a/b"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "host",
        ),
    ] {
        let res = op
            .post(app.url("/api/v1/processes"))
            .json(&body)
            .call()
            .await;
        assert_eq!(res.status(), status, "{body}");
        assert!(json(res).await["error"].as_str().unwrap().contains(needle));
    }
    let res = viewer
        .post(app.url("/api/v1/processes"))
        .json(&json!({"name": "p", "pattern": "x"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let list = json(viewer.get(app.url("/api/v1/processes")).call().await).await;
    assert_eq!(list[0]["name"], "uvicorn");
    assert_eq!(list[0]["state"], "unknown");
    assert_eq!(list[0]["port"], 8000);

    // Agents read their host's watches with an ingest token, and only with one.
    let (_, token) = app::auth::tokens::create(&pool, "agent", "ingest", None)
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let watches = json(
        c.get(app.url("/api/v1/ingest/processes?host=web-1"))
            .bearer_auth(&token)
            .call()
            .await,
    )
    .await;
    assert_eq!(
        watches,
        json!([{"name": "uvicorn", "pattern": "uvicorn*app:main", "port": 8000}])
    );
    let res = c
        .get(app.url("/api/v1/ingest/processes?host=web-1"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Samples from an agent make it "up".
    let now = OffsetDateTime::now_utc();
    let batch = app::metrics::IngestBatch {
        host: "web-1".into(),
        samples: ["process_up", "process_count", "process_uptime_seconds"]
            .iter()
            .map(|m| app::metrics::Sample {
                metric: m.to_string(),
                labels: [("process".to_string(), "uvicorn".to_string())].into(),
                ts: Timestamp(now),
                value: if *m == "process_uptime_seconds" {
                    3600.0
                } else {
                    1.0
                },
            })
            .collect(),
    };
    let res = c
        .post(app.url("/api/v1/ingest/metrics"))
        .bearer_auth(&token)
        .json(&batch)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let list = json(viewer.get(app.url("/api/v1/processes")).call().await).await;
    assert_eq!(list[0]["state"], "up");
    let detail = viewer
        .get(app.url(&format!("/services/process/{id}")))
        .call()
        .await;
    assert_eq!(detail.status(), StatusCode::OK);

    // The configuration file's entries are written at start: added, then updated by name.
    let mut config = common::test_config();
    for pattern in ["gunicorn", "gunicorn*wsgi"] {
        config.processes = vec![app::services::NewProcess {
            name: "web".into(),
            pattern: pattern.into(),
            port: Some(8080),
            host: None,
        }];
        let state = app::state::AppState::new(
            server::leptos_options("127.0.0.1:0".parse().unwrap()),
            pool.clone(),
            config.clone(),
        );
        app::services::service::apply_config(&state).await.unwrap();
    }
    let list = json(viewer.get(app.url("/api/v1/processes")).call().await).await;
    let web: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "web")
        .collect();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0]["pattern"], "gunicorn*wsgi");
    assert_eq!(web[0]["host"], common::test_config().host_name);

    let res = op
        .delete(app.url(&format!("/api/v1/processes/{id}")))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = op
        .delete(app.url(&format!("/api/v1/processes/{id}")))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// A scrape can bring series named like a watched process's, with more labels, onto the same
/// host (another Opsdeck's /metrics re-exports `process_*{process="…"}`). The process's state,
/// restarts and charts are its own series', never the copy's.
#[sqlx::test(migrations = "../migrations")]
async fn a_scraped_copy_of_a_process_series_does_not_stand_in_for_it(pool: PgPool) {
    use app::metrics::service::{ingest, Origin};
    use app::metrics::{IngestBatch, Labels, Sample};
    let state = common::state(pool.clone());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO watched_processes (host, name, pattern) VALUES ('web-1', 'api', 'api serve') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let batch = |labels: &[(&str, &str)], at: OffsetDateTime, up: f64, rss: f64, restarts: f64| {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let samples = [
            ("process_up", up),
            ("process_resident_memory_bytes", rss),
            ("process_restarts", restarts),
            ("process_uptime_seconds", 600.0),
        ]
        .into_iter()
        .map(|(metric, value)| Sample {
            metric: metric.into(),
            labels: labels.clone(),
            ts: Timestamp(at),
            value,
        })
        .collect();
        IngestBatch {
            host: "web-1".into(),
            samples,
        }
    };
    let own = batch(
        &[("process", "api")],
        now - time::Duration::seconds(30),
        1.0,
        100.0 * 1048576.0,
        0.0,
    );
    // Newer, down, small and restarting: were it read, every figure would change.
    let copy = batch(
        &[("process", "api"), ("job", "other-opsdeck")],
        now - time::Duration::seconds(10),
        0.0,
        5.0 * 1048576.0,
        3.0,
    );
    ingest(&state, &own, Origin::Agent).await.unwrap();
    ingest(&state, &copy, Origin::Scrape).await.unwrap();

    let list = app::services::service::list_processes(&pool, now)
        .await
        .unwrap();
    let p = list.iter().find(|p| p.id == id).unwrap();
    assert_eq!(p.state, app::services::Liveness::Up, "{p:?}");
    assert_eq!(p.rss_bytes, Some(100.0 * 1048576.0), "{p:?}");
    assert_eq!(p.restarts_24h, Some(0.0), "{p:?}");

    let d =
        app::services::service::detail(&state, "process", id, now - time::Duration::hours(6), now)
            .await
            .unwrap();
    let chart = |key: &str| d.charts.iter().find(|c| c.key == key).unwrap();
    let rss: Vec<f64> = chart("rss").lines[0].points.iter().map(|p| p.1).collect();
    assert_eq!(rss, vec![100.0 * 1048576.0], "the process's own memory");
    let up: Vec<f64> = chart("up").lines[0].points.iter().map(|p| p.1).collect();
    assert_eq!(up, vec![1.0], "the process's own up");
}
