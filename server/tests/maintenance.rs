//! Maintenance windows from real alert rounds: an alert on a host under maintenance is evaluated
//! and shown "in maintenance" but queues no notification, while the same rule on another host
//! does; a check's results inside a window do not count against its uptime; scripts' tokens
//! open windows for one named host and end only their own; bad windows are refused by field.

mod common;

use app::auth::Role;
use common::{Call, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_host_under_maintenance_notifies_no_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let op = app.signed_in("op", Role::Operator).await;
    let viewer = app.signed_in("watcher", Role::Viewer).await;
    sqlx::query("DELETE FROM alert_rules")
        .execute(&pool)
        .await
        .unwrap();
    admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "oncall", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "default": true}))
        .expect_json(StatusCode::CREATED)
        .await;
    admin
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "hot", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 90.0}))
        .expect_json(StatusCode::CREATED)
        .await;
    let now = OffsetDateTime::now_utc();
    // Bad windows are refused, the field named; a viewer may not open one.
    for (body, field) in [
        (
            json!({"name": "x", "host": "web-1", "start": rfc(now), "end": rfc(now - Duration::minutes(1))}),
            "end",
        ),
        (json!({"name": "x", "schedule": "0 2 * * *"}), "start"),
        (
            json!({"name": "x", "schedule": "0 25 * * *", "duration_minutes": 30}),
            "schedule",
        ),
        (
            json!({"name": "", "start": rfc(now), "end": rfc(now + Duration::hours(1))}),
            "name",
        ),
    ] {
        let res = op
            .post(app.url("/api/v1/maintenance"))
            .json(&body)
            .call()
            .await;
        assert!(res.status().is_client_error(), "{body}");
        assert!(
            res.text().await.unwrap().contains(field),
            "{body} names {field}"
        );
    }
    let res = viewer
        .post(app.url("/api/v1/maintenance"))
        .json(&json!({"name": "x", "start": rfc(now), "end": rfc(now + Duration::hours(1))}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let id = op
        .post(app.url("/api/v1/maintenance"))
        .json(&json!({"name": "kernel update", "host": "web-*", "start": rfc(now - Duration::minutes(1)), "end": rfc(now + Duration::hours(1))}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let listed = viewer
        .get(app.url("/api/v1/maintenance"))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["active"], true);

    common::sample(&pool, "web-1", "cpu_usage_percent", 99.0, now).await;
    common::sample(&pool, "db-1", "cpu_usage_percent", 99.0, now).await;
    for s in [0, 1] {
        app::alerts::service::evaluate(&pool, now + Duration::seconds(s))
            .await
            .unwrap();
    }
    // Both fire and are recorded; only db-1's is sent.
    let events: Vec<(Option<String>, bool)> = sqlx::query_as(
        "SELECT host, silenced FROM alert_events WHERE status = 'firing' ORDER BY host",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        events,
        [(Some("db-1".into()), false), (Some("web-1".into()), true)]
    );
    let queued: Vec<String> =
        sqlx::query_scalar("SELECT n.notice->>'host' FROM alert_outbox n ORDER BY n.id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(queued, ["db-1"]);
    // The Alerts page's data shows web-1's alert in maintenance.
    let alerts = viewer
        .get(app.url("/api/v1/alerts"))
        .expect_json(StatusCode::OK)
        .await;
    let active = alerts["active"].as_array().unwrap();
    let web = active.iter().find(|a| a["host"] == "web-1").unwrap();
    let db = active.iter().find(|a| a["host"] == "db-1").unwrap();
    assert_eq!(web["maintenance"], "kernel update");
    assert!(db["maintenance"].is_null());

    // Ended, it is no longer listed; ending it again: not found.
    let res = op
        .delete(app.url(&format!("/api/v1/maintenance/{id}")))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let listed = viewer
        .get(app.url("/api/v1/maintenance"))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(listed, json!([]));
    let res = op
        .delete(app.url(&format!("/api/v1/maintenance/{id}")))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn downtime_in_a_window_is_not_counted_and_tokens_open_one_host(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let check = admin
        .post(app.url("/api/v1/checks"))
        .json(&json!({"name": "api", "url": "http://127.0.0.1:9/health"}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let now = OffsetDateTime::now_utc();
    // Up for three hours, down for the last hour, which a window covered.
    for m in (0..240).step_by(10) {
        let at = now - Duration::minutes(240 - m);
        let result = if m >= 180 {
            Err("refused".to_string())
        } else {
            Ok(())
        };
        app::alerts::service::record_check(&pool, check, at, 2.0, None, result)
            .await
            .unwrap();
    }
    let uptime = || async {
        let checks = admin
            .get(app.url("/api/v1/checks"))
            .expect_json(StatusCode::OK)
            .await;
        let c = checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "api")
            .unwrap()
            .clone();
        c["uptime_24h"].as_f64().unwrap()
    };
    assert!((uptime().await - 75.0).abs() < 0.01, "{}", uptime().await);
    sqlx::query(
        "INSERT INTO maintenance_windows (name, checks, starts_at, ends_at, created_by)
         VALUES ('db migration', '{api}', $1, $2, 'root')",
    )
    .bind(now - Duration::minutes(61))
    .bind(now + Duration::minutes(5))
    .execute(&pool)
    .await
    .unwrap();
    assert!((uptime().await - 100.0).abs() < 0.01, "{}", uptime().await);

    // A script's token: one named host only; it ends its own windows, not others'.
    let token = admin
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "deployer", "scope": "ingest"}))
        .expect_json(StatusCode::CREATED)
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = app.client();
    let window = |host: &str| json!({"name": "deploy", "host": host, "start": rfc(now), "end": rfc(now + Duration::minutes(30))});
    let res = plain
        .post(app.url("/api/v1/maintenance"))
        .bearer_auth(&token)
        .json(&window("web-*"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let mine = plain
        .post(app.url("/api/v1/maintenance"))
        .bearer_auth(&token)
        .json(&window("web-1"))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let others: i64 =
        sqlx::query_scalar("SELECT id FROM maintenance_windows WHERE name = 'db migration'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let res = plain
        .delete(app.url(&format!("/api/v1/maintenance/{others}")))
        .bearer_auth(&token)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = plain
        .delete(app.url(&format!("/api/v1/maintenance/{mine}")))
        .bearer_auth(&token)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = plain
        .post(app.url("/api/v1/maintenance"))
        .json(&window("web-1"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
