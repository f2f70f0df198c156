//! Notifications a team keeps trusting, with real rounds and a real webhook on loopback: two
//! rules and a check firing within seconds are one incident and one message listing all three;
//! a silent host's check and process alerts are suppressed and listed under the host's own
//! alert; a spike of a new error fires the `log_anomaly` rule, which names the new error, while
//! the same count at an hour that usually has as many does not.

mod common;

use app::alerts::service::{evaluate, flush_outbox};
use app::auth::Role;
use axum::extract::State;
use common::{Call, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

#[derive(Clone, Default)]
struct Hook(Arc<Mutex<Vec<Value>>>);

async fn start_hook() -> (String, Hook) {
    let h = Hook::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(h): State<Hook>, body: axum::Json<Value>| async move {
                    h.0.lock().unwrap().push(body.0);
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(h.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, h)
}

async fn only_these_rules(app: &TestApp, admin: &reqwest::Client, rules: &[Value]) {
    // The runbook's defaults would join in after their minutes.
    sqlx::query("DELETE FROM alert_rules")
        .execute(&app.pool)
        .await
        .unwrap();
    for rule in rules {
        admin
            .post(app.url("/api/v1/alerts/rules"))
            .json(rule)
            .expect_json(StatusCode::CREATED)
            .await;
    }
}

async fn down_check(app: &TestApp, admin: &reqwest::Client, name: &str, host: Option<&str>) {
    let id = admin
        .post(app.url("/api/v1/checks"))
        .json(&json!({"name": name, "url": "http://127.0.0.1:9/health", "host": host}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    app::alerts::service::record_check(
        &app.pool,
        id,
        OffsetDateTime::now_utc(),
        3.0,
        None,
        Err("connection refused".to_string()),
    )
    .await
    .unwrap();
}

const SILENT_AFTER: Duration = Duration::minutes(1);

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn alerts_firing_together_go_out_as_one_message(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let (url, hook) = start_hook().await;
    // The default grouping: 30 s of group wait.
    admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "ops", "kind": "webhook", "url": url, "default": true}))
        .expect_json(StatusCode::CREATED)
        .await;
    down_check(&app, &admin, "api", None).await;
    only_these_rules(
        &app,
        &admin,
        &[
            json!({"name": "hot", "kind": "metric", "host": "web-1", "metric": "cpu_usage_percent", "threshold": 90.0}),
            json!({"name": "full", "kind": "metric", "host": "web-1", "metric": "memory_used_percent", "threshold": 90.0, "severity": "critical"}),
            json!({"name": "api down", "kind": "health", "check": "api"}),
        ],
    )
    .await;
    let now = OffsetDateTime::now_utc();
    common::sample(&pool, "web-1", "cpu_usage_percent", 99.0, now).await;
    common::sample(&pool, "web-1", "memory_used_percent", 95.0, now).await;
    let r = evaluate(&pool, now).await.unwrap();
    assert_eq!((r.events, r.notifications), (3, 3), "{r:?}");
    let incidents: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(incidents, 1, "one incident");

    // Within the group wait: nothing goes out, and the page says what it waits for.
    assert_eq!(
        flush_outbox(&pool, now + Duration::seconds(5), SILENT_AFTER)
            .await
            .unwrap(),
        0
    );
    let log = admin
        .get(app.url("/api/v1/alerts/notifications"))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(log.as_array().unwrap().len(), 3, "{log}");
    assert_eq!(log[0]["outcome"], "waiting");
    assert!(
        log[0]["why"].as_str().unwrap().starts_with("grouping"),
        "{log}"
    );
    // After it: one message listing all three, most urgent first.
    assert_eq!(
        flush_outbox(&pool, now + Duration::seconds(31), SILENT_AFTER)
            .await
            .unwrap(),
        1
    );
    let st = common::state(pool.clone());
    let client = server::alerts::notify::client(&common::test_config());
    server::alerts::notify::round(&st, &client).await.unwrap();
    let bodies = hook.0.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let b = &bodies[0];
    let mut rules: Vec<&str> = b["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules[0], "full", "critical first: {b}");
    rules.sort();
    assert_eq!(rules, ["api down", "full", "hot"]);
    assert_eq!(b["rule"], "full", "the lead's fields at the top: {b}");
    let log = admin
        .get(app.url("/api/v1/alerts/notifications"))
        .expect_json(StatusCode::OK)
        .await;
    for line in log.as_array().unwrap() {
        assert_eq!(line["outcome"], "sent", "{line}");
        assert_eq!(line["why"], "in one message with 2 other alerts", "{line}");
        assert_eq!(line["delivery"], "sent", "{line}");
    }

    // A change soon after is batched: it waits for the 5-minute interval since that message.
    common::sample(
        &pool,
        "web-1",
        "cpu_usage_percent",
        10.0,
        OffsetDateTime::now_utc(),
    )
    .await;
    let r = evaluate(&pool, now + Duration::seconds(40)).await.unwrap();
    assert_eq!(r.notifications, 1, "{r:?}");
    let soon = OffsetDateTime::now_utc() + Duration::seconds(60);
    assert_eq!(flush_outbox(&pool, soon, SILENT_AFTER).await.unwrap(), 0);
    let log = admin
        .get(app.url("/api/v1/alerts/notifications"))
        .expect_json(StatusCode::OK)
        .await;
    assert!(
        log[0]["why"].as_str().unwrap().starts_with("batched"),
        "{log}"
    );
    // (Six minutes on, web-1 would count as silent: this flush allows for that.)
    assert_eq!(
        flush_outbox(&pool, soon + Duration::minutes(5), Duration::hours(1))
            .await
            .unwrap(),
        1
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_silent_hosts_check_and_process_alerts_are_suppressed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let (url, hook) = start_hook().await;
    admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "ops", "kind": "webhook", "url": url, "default": true, "group_wait_seconds": 10}))
        .expect_json(StatusCode::CREATED)
        .await;
    only_these_rules(
        &app,
        &admin,
        &[
            json!({"name": "host silent", "kind": "host", "host": "*", "severity": "critical"}),
            json!({"name": "gunicorn down", "kind": "metric", "host": "web-*", "metric": "process_up", "op": "<", "threshold": 1}),
            json!({"name": "site down", "kind": "health", "check": "*"}),
        ],
    )
    .await;
    let now = OffsetDateTime::now_utc();
    // web-2 last reported 7 minutes ago, its process down; its site's check fails now; web-1
    // reports and is fine.
    let then = now - Duration::minutes(7);
    common::sample(&pool, "web-2", "process_up", 0.0, then).await;
    common::sample(&pool, "web-1", "process_up", 1.0, now).await;
    let r = evaluate(&pool, then).await.unwrap();
    assert_eq!(r.events, 1, "the process alert fired then: {r:?}");
    down_check(&app, &admin, "site", Some("web-2")).await;
    let r = evaluate(&pool, now).await.unwrap();
    assert!(r.errors.is_empty(), "{r:?}");
    let firing: Vec<String> = sqlx::query_scalar(
        "SELECT rule_name FROM alert_events WHERE status = 'firing' ORDER BY rule_name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(firing, ["gunicorn down", "host silent", "site down"]);

    flush_outbox(&pool, now + Duration::seconds(11), SILENT_AFTER)
        .await
        .unwrap();
    let st = common::state(pool.clone());
    server::alerts::notify::round(&st, &server::alerts::notify::client(&common::test_config()))
        .await
        .unwrap();
    let bodies = hook.0.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let b = &bodies[0];
    assert_eq!(b["rule"], "host silent");
    assert_eq!(b["alerts"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["suppressed"][0]["host"], "web-2");
    let mut held: Vec<&str> = b["suppressed"][0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    held.sort();
    assert_eq!(held, ["gunicorn down", "site down"], "{b}");
    let log = admin
        .get(app.url("/api/v1/alerts/notifications"))
        .expect_json(StatusCode::OK)
        .await;
    let suppressed: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["outcome"] == "suppressed")
        .collect();
    assert_eq!(suppressed.len(), 2, "{log}");
    assert!(
        suppressed[0]["why"]
            .as_str()
            .unwrap()
            .starts_with("web-2: silent for"),
        "{log}"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_spike_of_a_new_error_fires_the_log_anomaly_rule(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    only_these_rules(
        &app,
        &admin,
        &[json!({"name": "api errors", "kind": "log_anomaly", "service": "api", "window_seconds": 300})],
    )
    .await;
    // A bad rule is refused naming its field.
    let bad = admin
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "x", "kind": "log_anomaly", "factor": 0.5}))
        .expect_json(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(bad["error"], "factor: 0.5 is not between 1 and 1000");

    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let days: Vec<time::Date> = (0..=8).map(|d| (now - Duration::days(d)).date()).collect();
    app::logs::store::ensure_partitions(&state, &days)
        .await
        .unwrap();
    let line = |service: &str, at: OffsetDateTime, level: i16, message: String| {
        sqlx::query("INSERT INTO log_lines (ts, service, level, message) VALUES ($1, $2, $3, $4)")
            .bind(at)
            .bind(service.to_string())
            .bind(level)
            .bind(message)
            .execute(&pool)
    };
    // api: quiet all week; now 15 errors of a message never seen, among normal lines.
    for i in 0..15 {
        let at = now - Duration::seconds(10 + i);
        line("api", at, 4, format!("payment gateway refused order {i}"))
            .await
            .unwrap();
        line("api", at, 2, "request served".into()).await.unwrap();
    }
    // web: as many errors now, but as many every day at this hour (rolled up hourly).
    let hour = |t: OffsetDateTime| t.replace_time(time::Time::from_hms(t.hour(), 0, 0).unwrap());
    for d in 1..=7 {
        for i in 0..200 {
            let at = hour(now - Duration::days(d)) + Duration::seconds(i * 17);
            line("web", at, 4, "upstream timed out".into())
                .await
                .unwrap();
        }
    }
    for i in 0..15 {
        line(
            "web",
            now - Duration::seconds(10 + i),
            4,
            "upstream timed out".into(),
        )
        .await
        .unwrap();
    }
    app::logs::rollup_jobs::roll_up(&state, now).await.unwrap();
    sqlx::query("UPDATE alert_rules SET spec = spec - 'service' WHERE name = 'api errors'")
        .execute(&pool)
        .await
        .unwrap();
    let r = evaluate(&pool, now).await.unwrap();
    assert!(r.errors.is_empty(), "{r:?}");
    let firing: Vec<(String, String)> = sqlx::query_as(
        "SELECT instance, summary FROM alert_events WHERE status = 'firing' ORDER BY instance",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(firing.len(), 1, "only api fires: {firing:?}");
    assert_eq!(firing[0].0, "api");
    assert!(
        firing[0].1.contains("15 errors in 5 min")
            && firing[0]
                .1
                .contains("top new error (15×): payment gateway refused order <n>"),
        "{firing:?}"
    );
    // web's state is kept as ok (within normal).
    let web: Option<String> =
        sqlx::query_scalar("SELECT phase FROM alert_states WHERE instance = 'web'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(web, None, "web is within normal");
}
