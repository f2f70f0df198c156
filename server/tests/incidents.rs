//! Incidents from real alert rounds: two rules and a health check firing within seconds open one
//! incident; its timeline holds the alerts, the check going down and a deploy annotated by a
//! script's token (also marked on the host's charts); it is acknowledged, noted, ends when its
//! alerts resolve and is closed with a summary; the post-mortem holds it all; errors never seen
//! in the week before are listed as new.

mod common;

use app::auth::Role;
use common::{json, Call, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

async fn evaluate(pool: &PgPool, at: OffsetDateTime) {
    let r = app::alerts::service::evaluate(pool, at).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

fn kinds(detail: &Value) -> Vec<String> {
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn alerts_firing_together_are_one_incident_with_its_story(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let viewer = app.signed_in("watcher", Role::Viewer).await;
    // Only this test's rules: the runbook's defaults would join in after their minutes.
    sqlx::query("DELETE FROM alert_rules")
        .execute(&pool)
        .await
        .unwrap();
    let check = admin
        .post(app.url("/api/v1/checks"))
        .json(&json!({"name": "api", "url": "http://127.0.0.1:9/health"}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    for rule in [
        json!({"name": "hot", "kind": "metric", "host": "web-1", "metric": "cpu_usage_percent", "threshold": 90.0}),
        json!({"name": "full", "kind": "metric", "host": "web-1", "metric": "memory_used_percent", "threshold": 90.0, "severity": "critical"}),
        json!({"name": "api down", "kind": "health", "check": "api"}),
    ] {
        admin
            .post(app.url("/api/v1/alerts/rules"))
            .json(&rule)
            .expect_json(StatusCode::CREATED)
            .await;
    }
    let now = OffsetDateTime::now_utc();
    // The check was up, then went down; CPU and memory on web-1 are high.
    for (at, result) in [
        (now - Duration::minutes(2), Ok(())),
        (
            now - Duration::seconds(5),
            Err("connection refused".to_string()),
        ),
    ] {
        app::alerts::service::record_check(&pool, check, at, 3.0, None, result)
            .await
            .unwrap();
    }
    common::sample(&pool, "web-1", "cpu_usage_percent", 99.0, now).await;
    common::sample(&pool, "web-1", "memory_used_percent", 95.0, now).await;
    // A deploy script marks its deploy with an ingest token, just before.
    let token = admin
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "deployer", "scope": "ingest"}))
        .expect_json(StatusCode::CREATED)
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let deploy_at = now - Duration::minutes(3);
    let plain = app.client();
    plain
        .post(app.url("/api/v1/annotations"))
        .bearer_auth(&token)
        .json(&json!({"text": "deploy 1.4.2", "host": "web-1", "tags": ["deploy"],
                      "ts": deploy_at.format(&time::format_description::well_known::Rfc3339).unwrap()}))
        .expect_json(StatusCode::CREATED)
        .await;
    // Without a token or a session: refused; with a bad body: the field named.
    let res = plain
        .post(app.url("/api/v1/annotations"))
        .json(&json!({"text": "x"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = plain
        .post(app.url("/api/v1/annotations"))
        .bearer_auth(&token)
        .json(&json!({"text": " "}))
        .call()
        .await;
    assert!(res.status().is_client_error());
    assert!(res.text().await.unwrap().contains("text"));

    evaluate(&pool, now).await;
    evaluate(&pool, now + Duration::seconds(1)).await;

    let open = admin
        .get(app.url("/api/v1/incidents?status=open"))
        .expect_json(StatusCode::OK)
        .await;
    let list = open.as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "three alerts within seconds are one incident: {open}"
    );
    let inc = &list[0];
    assert_eq!(
        (inc["alerts"].as_i64(), inc["firing"].as_i64()),
        (Some(3), Some(3))
    );
    assert_eq!(inc["severity"], "critical", "the worst of its alerts");
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["hosts"], json!(["web-1"]));
    let id = inc["id"].as_i64().unwrap();
    let url = |p: &str| app.url(&format!("/api/v1/incidents/{id}{p}"));

    let detail = viewer.get(url("")).expect_json(StatusCode::OK).await;
    let k = kinds(&detail);
    assert_eq!(
        k.iter().filter(|k| *k == "alert_firing").count(),
        3,
        "{k:?}"
    );
    for want in ["check_down", "annotation"] {
        assert!(k.iter().any(|k| k == want), "{want} in {k:?}");
    }
    assert!(detail.to_string().contains("deploy 1.4.2 [deploy]"));
    assert!(detail["context"]["from"].is_string());
    // The annotation is marked on web-1's charts (and not on another host's).
    let state = common::state(pool.clone());
    let charts = app::metrics::service::host_charts(&state, "web-1", Some("1h"), None, None)
        .await
        .unwrap();
    assert!(charts
        .charts
        .iter()
        .all(|c| c.marks.iter().any(|m| m.label == "deploy 1.4.2")));
    let listed = viewer
        .get(app.url("/api/v1/annotations?host=db-1&from=now-1h"))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(listed, json!([]), "web-1's deploy is not db-1's");

    // Acknowledge once; a viewer cannot; a note; an assignee that exists.
    let res = viewer.post(url("/ack")).call().await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        admin.post(url("/ack")).call().await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.post(url("/ack")).call().await.status(),
        StatusCode::CONFLICT
    );
    let res = admin
        .post(url("/notes"))
        .json(&json!({"text": "rolled back 1.4.2"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = admin
        .post(url("/assign"))
        .json(&json!({"user": "nobody-here"}))
        .call()
        .await;
    assert!(res.status().is_client_error());
    let res = admin
        .post(url("/assign"))
        .json(&json!({"user": "watcher"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Everything resolves: the incident ends, and stays open for notes.
    let later = now + Duration::seconds(30);
    common::sample(&pool, "web-1", "cpu_usage_percent", 10.0, later).await;
    common::sample(&pool, "web-1", "memory_used_percent", 10.0, later).await;
    app::alerts::service::record_check(&pool, check, later, 3.0, Some(200), Ok(()))
        .await
        .unwrap();
    evaluate(&pool, later + Duration::seconds(1)).await;
    let inc = json(admin.get(url("")).call().await).await;
    assert_eq!(inc["incident"]["firing"], 0);
    assert!(inc["incident"]["ended_at"].is_string(), "{inc}");
    assert_eq!(inc["incident"]["status"], "open");
    assert_eq!(inc["incident"]["acked_by"], "root");
    assert_eq!(inc["incident"]["assignee"], "watcher");
    let k = kinds(&inc);
    assert_eq!(
        k.iter().filter(|k| *k == "alert_resolved").count(),
        3,
        "{k:?}"
    );
    assert!(k.iter().any(|k| k == "check_up" || k == "note"));

    // Closing needs a summary.
    let res = admin
        .post(url("/close"))
        .json(&json!({"summary": ""}))
        .call()
        .await;
    assert!(res.status().is_client_error());
    let res = admin
        .post(url("/close"))
        .json(&json!({"summary": "1.4.2 leaked memory; rolled back"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let closed = admin
        .get(app.url("/api/v1/incidents?status=closed"))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(closed[0]["id"], id);
    assert_eq!(
        admin
            .get(app.url("/api/v1/incidents?status=open"))
            .expect_json(StatusCode::OK)
            .await,
        json!([])
    );

    // The post-mortem tells it.
    let res = viewer.get(url("/postmortem.md")).call().await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let md = res.text().await.unwrap();
    for want in [
        &format!("# Incident {id}: hot on web-1"),
        "- Severity: critical",
        "## Timeline (UTC)",
        "alert_firing [web-1]: full",
        "check_down",
        "deploy 1.4.2 \\[deploy\\]",
        "root: rolled back 1.4.2",
        "1.4.2 leaked memory; rolled back",
        "Acknowledged by root",
    ] {
        assert!(md.contains(want), "`{want}` in:\n{md}");
    }
    // The audit log has who did what.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'incident.%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "incident.ack",
            "incident.note",
            "incident.assign",
            "incident.close"
        ]
    );

    // Bad input names the problem.
    let res = admin
        .get(app.url("/api/v1/incidents?status=maybe"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("open or closed"));
    let res = admin.get(app.url("/api/v1/incidents/999999")).call().await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_alert_on_another_host_much_later_opens_another_incident(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    sqlx::query("DELETE FROM alert_rules")
        .execute(&pool)
        .await
        .unwrap();
    admin
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "hot", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 90.0}))
        .expect_json(StatusCode::CREATED)
        .await;
    let t0 = OffsetDateTime::now_utc() - Duration::hours(1);
    common::sample(&pool, "web-1", "cpu_usage_percent", 99.0, t0).await;
    evaluate(&pool, t0).await;
    evaluate(&pool, t0 + Duration::seconds(1)).await;
    // Half an hour later, db-1: web-1's incident is still open but quiet for 30 minutes.
    let t1 = t0 + Duration::minutes(30);
    common::sample(&pool, "web-1", "cpu_usage_percent", 99.0, t1).await;
    common::sample(&pool, "db-1", "cpu_usage_percent", 99.0, t1).await;
    evaluate(&pool, t1).await;
    evaluate(&pool, t1 + Duration::seconds(1)).await;
    let open = admin
        .get(app.url("/api/v1/incidents?status=open"))
        .expect_json(StatusCode::OK)
        .await;
    let mut titles: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(titles, ["hot on db-1", "hot on web-1"], "{open}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn errors_never_seen_in_the_week_before_are_new(pool: PgPool) {
    let now = OffsetDateTime::now_utc();
    let line = |at: OffsetDateTime, level: i16, message: &str| {
        sqlx::query(
            "INSERT INTO log_lines (ts, service, level, message) VALUES ($1, 'api', $2, $3)",
        )
        .bind(at)
        .bind(level)
        .bind(message.to_string())
        .execute(&pool)
    };
    let state = common::state(pool.clone());
    let days: Vec<time::Date> = (0..=10).map(|d| (now - Duration::days(d)).date()).collect();
    app::logs::store::ensure_partitions(&state, &days)
        .await
        .unwrap();
    line(now - Duration::days(3), 4, "db timeout after 30s")
        .await
        .unwrap();
    line(now - Duration::days(9), 4, "cache miss storm 7")
        .await
        .unwrap();
    for i in 0..3 {
        line(
            now - Duration::minutes(10 + i),
            4,
            &format!("db timeout after {i}s"),
        )
        .await
        .unwrap();
        line(
            now - Duration::minutes(10 + i),
            4,
            &format!("payment refused card {i}"),
        )
        .await
        .unwrap();
    }
    line(now - Duration::minutes(5), 4, "cache miss storm 9")
        .await
        .unwrap();
    line(now - Duration::minutes(5), 2, "request served")
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let got = app::incidents::service::new_errors(&mut conn, now - Duration::hours(1), now, None)
        .await
        .unwrap();
    // Of another service: none.
    let other =
        app::incidents::service::new_errors(&mut conn, now - Duration::hours(1), now, Some("web"))
            .await
            .unwrap();
    assert!(other.is_empty(), "{other:?}");
    let got: Vec<(String, i64)> = got.into_iter().map(|e| (e.message, e.count)).collect();
    assert_eq!(
        got,
        [
            ("payment refused card <n>".to_string(), 3),
            // Last seen 9 days ago: new within a week.
            ("cache miss storm <n>".to_string(), 1),
        ]
    );
}
