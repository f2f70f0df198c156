//! Alerts against real parts: a metric rule fires after its for-duration and resolves past its
//! clear threshold; its webhook goes to a real HTTP server on loopback that fails first and is
//! retried; an e-mail goes to an SMTP server on loopback; a health check follows a local server
//! that goes down and comes back; silences, acks and the API with its role checks.

mod common;

use app::alerts::service::{evaluate, seed};
use app::auth::Role;
use app::metrics::{IngestBatch, Labels, Sample};
use app::timestamp::Timestamp;
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use common::{json, test_config, Call, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// A webhook receiver: answers 500 to the first `fail` requests, then 200; keeps every body.
#[derive(Clone, Default)]
struct Hook {
    bodies: Arc<Mutex<Vec<Value>>>,
    fail: Arc<Mutex<u32>>,
}

async fn hook(State(h): State<Hook>, body: axum::Json<Value>) -> AxumStatus {
    h.bodies.lock().unwrap().push(body.0);
    let mut fail = h.fail.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        AxumStatus::INTERNAL_SERVER_ERROR
    } else {
        AxumStatus::OK
    }
}

async fn start_hook(fail: u32) -> (String, Hook) {
    let h = Hook {
        fail: Arc::new(Mutex::new(fail)),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/hook/secret-token", axum::routing::post(hook))
        .with_state(h.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}/hook/secret-token"), h)
}

async fn cpu(pool: &PgPool, host: &str, value: f64) {
    let batch = IngestBatch {
        host: host.into(),
        samples: vec![Sample {
            metric: "cpu_usage_percent".into(),
            labels: Labels::new(),
            ts: Timestamp(OffsetDateTime::now_utc()),
            value,
        }],
    };
    let state = common::state(pool.clone());
    app::metrics::service::ingest(&state, &batch, app::metrics::service::Origin::Local)
        .await
        .unwrap();
}

fn state(app: &TestApp) -> app::state::AppState {
    app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        app.pool.clone(),
        test_config(),
    )
}

async fn notifications(pool: &PgPool) -> Vec<(String, i32, Option<String>)> {
    sqlx::query_as("SELECT status, attempts, last_error FROM alert_notifications ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Makes queued notifications due now (as if their backoff had passed).
async fn make_due(pool: &PgPool) {
    sqlx::query("UPDATE alert_notifications SET next_attempt_at = now() WHERE status = 'queued'")
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_metric_alert_fires_notifies_with_retries_and_resolves(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let (url, hook_state) = start_hook(1).await;
    let res = admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "ops", "kind": "webhook", "url": url, "group_wait_seconds": 0, "group_interval_seconds": 0}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // The URL's path is the secret: it is never shown back.
    let listed = json(admin.get(app.url("/api/v1/alerts/channels")).call().await).await;
    assert!(!listed.to_string().contains("secret-token"), "{listed}");
    let res = admin
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "cpu hot", "kind": "metric", "host": "web-*", "metric": "cpu_usage_percent",
                      "op": ">", "threshold": 80, "for_seconds": 120, "clear_threshold": 75, "notify": ["ops"]}))
        .call().await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let t0 = OffsetDateTime::now_utc();
    cpu(&pool, "web-1", 93.0).await;
    cpu(&pool, "db-1", 99.0).await; // not matched by web-*
    let r = evaluate(&pool, t0).await.unwrap();
    assert_eq!((r.pending, r.firing, r.events), (1, 0, 0), "{r:?}");
    let r = evaluate(&pool, t0 + time::Duration::seconds(121))
        .await
        .unwrap();
    assert_eq!((r.firing, r.events, r.notifications), (1, 1, 1), "{r:?}");
    let alerts = json(admin.get(app.url("/api/v1/alerts")).call().await).await;
    assert_eq!(alerts["active"][0]["status"], "firing");
    assert_eq!(alerts["active"][0]["host"], "web-1");
    assert_eq!(alerts["history"][0]["status"], "firing");

    // The webhook fails once: retried after the backoff, then delivered.
    let st = state(&app);
    let client = server::alerts::notify::client(&common::test_config());
    server::alerts::notify::round(&st, &client).await.unwrap();
    let n = notifications(&pool).await;
    assert_eq!((n[0].0.as_str(), n[0].1), ("queued", 1), "{n:?}");
    assert!(n[0].2.as_deref().unwrap().contains("500"), "{n:?}");
    let wait: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM alert_notifications",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        (3.0..=5.5).contains(&wait),
        "first retry after about 5 s: {wait}"
    );
    assert_eq!(
        server::alerts::notify::round(&st, &client).await.unwrap(),
        0,
        "not due yet"
    );
    make_due(&pool).await;
    server::alerts::notify::round(&st, &client).await.unwrap();
    let n = notifications(&pool).await;
    assert_eq!((n[0].0.as_str(), n[0].1), ("sent", 2), "{n:?}");
    {
        let bodies = hook_state.bodies.lock().unwrap();
        assert_eq!(bodies.len(), 2);
        let b = &bodies[1];
        assert_eq!(b["rule"], "cpu hot");
        assert_eq!(b["status"], "firing");
        assert_eq!(b["host"], "web-1");
        assert_eq!(b["value"], 93.0);
        assert!(OffsetDateTime::parse(
            b["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok());
    }

    // Below the threshold but above the clear value: still firing (hysteresis); below: resolved.
    cpu(&pool, "web-1", 78.0).await;
    let r = evaluate(&pool, t0 + time::Duration::seconds(140))
        .await
        .unwrap();
    assert_eq!((r.firing, r.events), (1, 0), "{r:?}");
    cpu(&pool, "web-1", 40.0).await;
    let r = evaluate(&pool, t0 + time::Duration::seconds(155))
        .await
        .unwrap();
    assert_eq!((r.firing, r.events, r.notifications), (0, 1, 1), "{r:?}");
    server::alerts::notify::round(&st, &client).await.unwrap();
    let last = hook_state.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (last["status"].as_str(), last["value"].as_f64()),
        (Some("resolved"), Some(40.0))
    );
    let alerts = json(admin.get(app.url("/api/v1/alerts")).call().await).await;
    assert_eq!(alerts["active"], json!([]));
    let statuses: Vec<&str> = alerts["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["resolved", "firing"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_webhook_that_keeps_failing_is_given_up_and_silences_hold_notifications(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let (url, hook_state) = start_hook(100).await;
    admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "ops", "kind": "webhook", "url": url, "format": "slack", "group_wait_seconds": 0, "group_interval_seconds": 0}))
        .call()
        .await;
    let rule: Value = json(
        admin
            .post(app.url("/api/v1/alerts/rules"))
            .json(&json!({"name": "cpu", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 50, "notify": ["ops"]}))
            .call().await,
    )
    .await;
    let st = state(&app);
    let client = server::alerts::notify::client(&common::test_config());
    cpu(&pool, "h1", 90.0).await;
    evaluate(&pool, OffsetDateTime::now_utc()).await.unwrap();
    for _ in 0..app::alerts::rules::MAX_ATTEMPTS {
        make_due(&pool).await;
        server::alerts::notify::round(&st, &client).await.unwrap();
    }
    let n = notifications(&pool).await;
    assert_eq!(
        (n[0].0.as_str(), n[0].1),
        ("failed", app::alerts::rules::MAX_ATTEMPTS),
        "{n:?}"
    );
    assert!(hook_state.bodies.lock().unwrap()[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("[FIRING] cpu"));
    let channels = json(admin.get(app.url("/api/v1/alerts/channels")).call().await).await;
    assert_eq!(channels[0]["last_status"], "failed");

    // A silence on the rule: the resolution is recorded, but not sent.
    let res = admin
        .post(app.url("/api/v1/alerts/silences"))
        .json(&json!({"rule_id": rule["id"], "seconds": 3600, "comment": "maintenance"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    cpu(&pool, "h1", 10.0).await;
    let r = evaluate(&pool, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((r.events, r.notifications), (1, 0), "{r:?}");
    let alerts = json(admin.get(app.url("/api/v1/alerts")).call().await).await;
    assert_eq!(alerts["history"][0]["silenced"], true);
    assert_eq!(alerts["silences"][0]["comment"], "maintenance");

    // A silence for a rule that does not exist is refused by name, not a 500.
    let body = admin
        .post(app.url("/api/v1/alerts/silences"))
        .json(&json!({"rule_id": 987654321, "seconds": 3600}))
        .expect_json(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(body["error"], "rule_id: no rule 987654321");
}

#[sqlx::test(migrations = "../migrations")]
async fn acknowledged_alerts_stop_reminding(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let op = app.signed_in("op", Role::Operator).await;
    sqlx::query("INSERT INTO alert_channels (name, kind, target) VALUES ('ops', 'webhook', 'http://127.0.0.1:9/x')")
        .execute(&pool)
        .await
        .unwrap();
    let rule = json(
        op.post(app.url("/api/v1/alerts/rules"))
            .json(&json!({"name": "cpu", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 50,
                          "repeat_seconds": 600, "notify": ["ops"]}))
            .call().await,
    )
    .await;
    let t0 = OffsetDateTime::now_utc();
    cpu(&pool, "h1", 90.0).await;
    let fired = evaluate(&pool, t0).await.unwrap();
    // Samples stay fresh for 5 minutes: keep one coming.
    cpu(&pool, "h1", 91.0).await;
    let reminded = evaluate(&pool, t0 + time::Duration::seconds(240))
        .await
        .unwrap();
    assert_eq!((fired.notifications, reminded.notifications), (1, 0));
    let alerts = json(op.get(app.url("/api/v1/alerts")).call().await).await;
    let instance = alerts["active"][0]["instance"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(instance, "h1 cpu_usage_percent");
    // Not acknowledged: a reminder after 10 minutes.
    sqlx::query("UPDATE alert_states SET notified_at = notified_at - interval '10 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    cpu(&pool, "h1", 92.0).await;
    let r = evaluate(&pool, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(r.notifications, 1, "{r:?}");
    let res = op
        .post(app.url("/api/v1/alerts/ack"))
        .json(&json!({"rule_id": rule["id"], "instance": instance}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    sqlx::query("UPDATE alert_states SET notified_at = notified_at - interval '10 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    let r = evaluate(&pool, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((r.firing, r.notifications), (1, 0), "{r:?}");
    let alerts = json(op.get(app.url("/api/v1/alerts")).call().await).await;
    assert_eq!(alerts["active"][0]["acked_by"], "op");
}

async fn serve_health(listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { axum::Json(json!({"status": "ok"})) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

#[sqlx::test(migrations = "../migrations")]
async fn a_health_check_follows_a_server_that_goes_down_and_comes_back(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let op = app.signed_in("op", Role::Operator).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = serve_health(listener).await;
    let res = op
        .post(app.url("/api/v1/checks"))
        .json(
            &json!({"name": "api", "url": format!("http://{addr}/health"), "interval_seconds": 5,
                      "timeout_seconds": 2, "expected_status": 200, "expected_body": "\"ok\""}),
        )
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = op
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "api down", "kind": "health", "check": "api"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let st = state(&app);
    let client = server::alerts::checks::client(&common::test_config());
    let run = || async {
        sqlx::query("UPDATE health_checks SET next_check_at = now()")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(
            server::alerts::checks::round(&st, &client).await.unwrap(),
            1
        );
        // The check runs in its own task: wait for its result.
        for _ in 0..100 {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM health_results")
                .fetch_one(&pool)
                .await
                .unwrap();
            let pending: bool = sqlx::query_scalar(
                "SELECT last_checked_at IS NULL OR last_checked_at < (SELECT max(at) FROM health_results) FROM health_checks",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if n > 0 && !pending {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        json(op.get(app.url("/api/v1/checks")).call().await).await[0].clone()
    };
    let up = run().await;
    assert_eq!(up["state"], "up", "{up}");
    assert!(up["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        evaluate(&pool, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .firing,
        0
    );

    server_task.abort();
    let _ = server_task.await;
    let down = run().await;
    assert_eq!(down["state"], "down", "{down}");
    assert!(
        down["last_error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{down}"
    );
    let r = evaluate(&pool, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(r.firing, 1, "{r:?}");

    // Back on the same port.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _server_task = serve_health(listener).await;
    let back = run().await;
    assert_eq!(back["state"], "up", "{back}");
    let uptime = back["uptime_24h"].as_f64().unwrap();
    assert!((uptime - 200.0 / 3.0).abs() < 1e-9, "{back}");
    let r = evaluate(&pool, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((r.firing, r.events), (0, 1), "{r:?}");

    // A wrong body is down too, with the reason.
    sqlx::query("UPDATE health_checks SET expected_body = 'degraded'")
        .execute(&pool)
        .await
        .unwrap();
    let wrong = run().await;
    assert_eq!(wrong["state"], "down");
    assert!(
        wrong["last_error"]
            .as_str()
            .unwrap()
            .contains("does not contain"),
        "{wrong}"
    );
}

/// A minimal SMTP server on loopback: accepts one message and hands back what it got.
async fn smtp_once() -> (u16, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (sock, _) = l.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut got = String::new();
        w.write_all(b"220 test ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            got.push_str(&line);
            got.push('\n');
            if in_data {
                if line == "." {
                    in_data = false;
                    w.write_all(b"250 queued\r\n").await.unwrap();
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-test\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go on\r\n"
            } else if upper.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 ok\r\n"
            };
            w.write_all(reply).await.unwrap();
        }
        got
    });
    (port, task)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_test_email_goes_through_smtp(pool: PgPool) {
    let (port, smtp) = smtp_once().await;
    let mut cfg = test_config();
    cfg.smtp_url = Some(app::config::Secret::new(format!("smtp://127.0.0.1:{port}")));
    cfg.smtp_from = Some("Opsdeck <opsdeck@example.com>".into());
    let app = TestApp::spawn_with(pool.clone(), cfg.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let ch = json(
        admin
            .post(app.url("/api/v1/alerts/channels"))
            .json(&json!({"name": "mail", "kind": "email", "to": "ops@example.com"}))
            .call()
            .await,
    )
    .await;
    let res = admin
        .post(app.url(&format!("/api/v1/alerts/channels/{}/test", ch["id"])))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let st = app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool.clone(),
        cfg,
    );
    server::alerts::notify::round(&st, &server::alerts::notify::client(&common::test_config()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), smtp)
        .await
        .unwrap()
        .unwrap();
    assert!(got.contains("RCPT TO:<ops@example.com>"), "{got}");
    assert!(
        got.contains("Subject: Opsdeck [TEST] Test notification (mail)"),
        "{got}"
    );
    assert_eq!(notifications(&pool).await[0].0, "sent");
}

#[sqlx::test(migrations = "../migrations")]
async fn rules_are_validated_role_checked_and_seeded_once(pool: PgPool) {
    assert!(seed(&pool, "http://127.0.0.1:3000/api/v1/health")
        .await
        .unwrap());
    assert!(!seed(&pool, "http://127.0.0.1:3000/api/v1/health")
        .await
        .unwrap());
    let app = TestApp::spawn(pool.clone()).await;
    let viewer = app.signed_in("viewer", Role::Viewer).await;
    let op = app.signed_in("op", Role::Operator).await;
    let rules = json(viewer.get(app.url("/api/v1/alerts/rules")).call().await).await;
    let names: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "CPU above 80 %",
        "Memory above 80 %",
        "Disk above 80 %",
        "Health check down",
        "Error rate above 5 %",
        "Average response time above 5 s",
        "No backup for 26 hours",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let checks = json(viewer.get(app.url("/api/v1/checks")).call().await).await;
    assert_eq!(checks[0]["name"], "opsdeck");

    let res = viewer
        .post(app.url("/api/v1/alerts/rules"))
        .json(
            &json!({"name": "x", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 1}),
        )
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = op.get(app.url("/api/v1/alerts/channels")).call().await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "channels hold secrets: admins only"
    );
    for (body, field) in [
        (
            json!({"name": "x", "kind": "metric", "metric": "cpu_usage_percent"}),
            "threshold",
        ),
        (
            json!({"name": "x", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 1, "notify": ["nowhere"]}),
            "notify",
        ),
        (
            json!({"name": "x", "kind": "health", "check": "missing"}),
            "check",
        ),
        (
            json!({"name": "x", "kind": "log", "condition": "query_count", "query": "status:>=", "threshold": 1}),
            "query",
        ),
        (json!({"name": "x", "kind": "pager"}), "kind"),
    ] {
        let res = op
            .post(app.url("/api/v1/alerts/rules"))
            .json(&body)
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let e = json(res).await;
        assert!(
            e["error"].as_str().unwrap().starts_with(field),
            "{body}: {e}"
        );
    }
    let res = op
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "x", "kind": "metric", "metric": "cpu", "threshold": 1, "bogus": 1}))
        .call()
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let res = op
        .post(app.url("/api/v1/checks"))
        .json(&json!({"name": "x", "url": "ftp://x", "interval_seconds": 30, "timeout_seconds": 5}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A log rule over real lines: 2 errors in 10 lines is 20 %, above 5 %.
    let lines: Vec<_> = (0..10)
        .map(|i| {
            app::logs::parse::parse_line(
                app::logs::parse::Format::Json,
                &format!(
                    r#"{{"level":"{}","message":"m {i}"}}"#,
                    if i < 2 { "ERROR" } else { "INFO" }
                ),
            )
        })
        .collect();
    app::logs::store::insert(
        &common::state(pool.clone()),
        "api",
        "test",
        &lines,
        OffsetDateTime::now_utc() - time::Duration::seconds(30),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE alert_rules SET enabled = false")
        .execute(&pool)
        .await
        .unwrap();
    let res = op
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "errors", "kind": "log", "condition": "error_rate", "threshold": 5, "service": "api"}))
        .call().await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = op
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "m1", "kind": "log", "condition": "query_count", "query": "\"m 1\"", "op": ">=", "threshold": 1}))
        .call().await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let r = evaluate(&pool, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((r.rules, r.firing), (2, 2), "{r:?}");
    let alerts = json(viewer.get(app.url("/api/v1/alerts")).call().await).await;
    let summaries: Vec<&str> = alerts["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("error rate of api is 20")),
        "{summaries:?}"
    );
}
