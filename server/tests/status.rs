//! The public status page: off by default; on, `/status` and `/api/v1/status` answer without a
//! session and show only the checks marked public under their public names (never a URL, host
//! or internal name), 90 daily uptime cells with maintenance left out (days older than the
//! results' 30 days kept as daily counts when they expire), and open incidents that were given
//! a public title, by that title only.

mod common;

use app::auth::Role;
use common::{Call, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_status_page_is_off_unless_turned_on(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    for path in ["/status", "/api/v1/status"] {
        let res = app.client().get(app.url(path)).call().await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_status_page_shows_only_what_was_chosen(pool: PgPool) {
    let mut config = common::test_config();
    config.status_page = true;
    config.status_page_title = "Acme status".into();
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let mut ids = vec![];
    for check in [
        json!({"name": "api-internal", "url": "http://user:pw@127.0.0.1:9/health?token=s3cret", "host": "web-1",
               "public": true, "public_name": "Website"}),
        json!({"name": "db-replica", "url": "http://127.0.0.1:9/db"}),
    ] {
        ids.push(
            admin
                .post(app.url("/api/v1/checks"))
                .json(&check)
                .expect_json(StatusCode::CREATED)
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let now = OffsetDateTime::now_utc();
    let record = |id: i64, at: OffsetDateTime, up: bool| {
        let pool = pool.clone();
        async move {
            let r = if up {
                Ok(())
            } else {
                Err("refused".to_string())
            };
            app::alerts::service::record_check(&pool, id, at, 2.0, None, r)
                .await
                .unwrap();
        }
    };
    // Yesterday: 3 up, 1 down (75 %). Two days ago: 2 up, and 2 down inside a maintenance
    // window (100 %). 40 days ago: 1 up, 1 down (50 %), kept as daily counts when they expire.
    let noon = |days: i64| (now - Duration::days(days)).replace_time(time::macros::time!(12:00));
    for (d, m, up) in [(1, 0, true), (1, 1, true), (1, 2, true), (1, 3, false)] {
        record(ids[0], noon(d) + Duration::minutes(m), up).await;
    }
    for (m, up) in [(0, true), (1, true), (10, false), (11, false)] {
        record(ids[0], noon(2) + Duration::minutes(m), up).await;
    }
    for (m, up) in [(0, true), (1, false)] {
        record(ids[0], noon(40) + Duration::minutes(m), up).await;
    }
    record(ids[1], now, false).await;
    sqlx::query(
        "INSERT INTO maintenance_windows (name, checks, starts_at, ends_at, created_by)
         VALUES ('db upgrade', ARRAY['api-internal'], $1, $2, 'root')",
    )
    .bind(noon(2) + Duration::minutes(5))
    .bind(noon(2) + Duration::minutes(20))
    .execute(&pool)
    .await
    .unwrap();
    let deleted = app::alerts::service::expire_results(&pool, now)
        .await
        .unwrap();
    assert_eq!(deleted, 2, "the results of 40 days ago expire");
    // Incidents: one given a public title, one not.
    for (title, public) in [("hot on web-1", Some("Slow pages")), ("disk on db-1", None)] {
        sqlx::query(
            "INSERT INTO incidents (title, severity, hosts, started_at, last_event_at, public_title)
             VALUES ($1, 'warning', ARRAY['web-1'], now(), now(), $2)",
        )
        .bind(title)
        .bind(public)
        .execute(&pool)
        .await
        .unwrap();
    }

    // No session needed.
    let anonymous = app.client();
    let s: Value = anonymous
        .get(app.url("/api/v1/status"))
        .call()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["title"], "Acme status");
    assert_eq!(s["checks"].as_array().unwrap().len(), 1, "{s}");
    let c = &s["checks"][0];
    assert_eq!(c["name"], "Website");
    let days = c["days"].as_array().unwrap();
    assert_eq!(days.len(), 90);
    let cell = |ago: i64| {
        let day = (now - Duration::days(ago)).date().to_string();
        days.iter().find(|d| d["day"] == day.as_str()).unwrap()["uptime"].clone()
    };
    assert_eq!(cell(1), json!(75.0));
    assert_eq!(cell(2), json!(100.0), "maintenance left out");
    assert_eq!(cell(40), json!(50.0), "kept when the results expired");
    assert_eq!(cell(3), Value::Null);
    assert_eq!(s["incidents"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["incidents"][0]["title"], "Slow pages");

    let res = anonymous.get(app.url("/status")).call().await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Website") && html.contains("Slow pages"),
        "{html}"
    );
    for secret in [
        "127.0.0.1",
        "s3cret",
        "api-internal",
        "db-replica",
        "web-1",
        "hot on",
        "disk on",
        "/health",
    ] {
        assert!(!html.contains(secret), "`{secret}` leaks: {html}");
        assert!(!s.to_string().contains(secret), "`{secret}` leaks: {s}");
    }

    // An operator takes the incident off the page, through the API.
    let id: i64 = sqlx::query_scalar("SELECT id FROM incidents WHERE public_title IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    let viewer = app.signed_in("watcher", Role::Viewer).await;
    let res = viewer
        .post(app.url(&format!("/api/v1/incidents/{id}/public")))
        .json(&json!({"title": null}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = admin
        .post(app.url(&format!("/api/v1/incidents/{id}/public")))
        .json(&json!({"title": null}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let public: Option<String> =
        sqlx::query_scalar("SELECT public_title FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(public, None);
}
