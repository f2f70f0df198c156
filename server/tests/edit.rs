//! Edit and pause: `PATCH` on checks, channels, rules, watched processes, scrape targets, log
//! sources and backup targets changes only the fields given, validates like a new item, keeps
//! secrets it is not given, refuses a taken name, checks roles, and `paused` really stops the
//! work (no check claimed, no scrape, no watch for agents, no scheduled backup, no notification
//! to a paused channel).

mod common;

use app::auth::Role;
use common::{json, Call, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn patch(c: &reqwest::Client, url: String, body: Value) -> (StatusCode, String) {
    let res = c.patch(url).json(&body).call().await;
    let status = res.status();
    (status, res.text().await.unwrap())
}

/// The listed item called `name` (by `name`, or `path` for log sources).
fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|x| x[key] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// A CPU sample of 99 % on web-1, now; returns when.
async fn hot_cpu(pool: &PgPool) -> time::OffsetDateTime {
    let state = common::state(pool.clone());
    let now = time::OffsetDateTime::now_utc();
    let batch = app::metrics::IngestBatch {
        host: "web-1".into(),
        samples: vec![app::metrics::Sample {
            metric: "cpu_usage_percent".into(),
            labels: Default::default(),
            ts: app::timestamp::Timestamp(now),
            value: 99.0,
        }],
    };
    app::metrics::service::ingest(&state, &batch, app::metrics::service::Origin::Local)
        .await
        .unwrap();
    now
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn checks_are_edited_paused_and_resumed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let op = app.signed_in("op", Role::Operator).await;
    let viewer = app.signed_in("viewer", Role::Viewer).await;
    let id = op
        .post(app.url("/api/v1/checks"))
        .json(&json!({"name": "api", "url": "http://127.0.0.1:9/health", "expected_body": "ok"}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    op.post(app.url("/api/v1/checks"))
        .json(&json!({"name": "db", "url": "http://127.0.0.1:9/db"}))
        .expect_json(StatusCode::CREATED)
        .await;
    let url = app.url(&format!("/api/v1/checks/{id}"));

    // Only the fields given change; the others stay as they were.
    let (s, body) = patch(&op, url.clone(), json!({"interval_seconds": 120})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let list = json(op.get(app.url("/api/v1/checks")).call().await).await;
    let api = find(&list, "name", "api");
    assert_eq!(api["interval_seconds"], 120);
    assert_eq!(api["expected_body"], "ok");
    assert_eq!(api["paused"], false);

    // Bad input is refused with the field's name, and nothing changes.
    for (body, names) in [
        (json!({"interval_seconds": "often"}), "interval_seconds"),
        (json!({"colour": "red"}), "colour"),
        (json!({"paused": "yes"}), "paused"),
        (json!({"url": "ftp://x"}), "url"),
    ] {
        let (s, text) = patch(&op, url.clone(), body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {text}");
        assert!(text.contains(names), "{body}: {text}");
    }
    let (s, text) = patch(&op, url.clone(), json!({"name": "db"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("`db`"), "{text}");
    let (s, _) = patch(
        &op,
        app.url("/api/v1/checks/999999"),
        json!({"paused": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = patch(&viewer, url.clone(), json!({"paused": true})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let list = json(op.get(app.url("/api/v1/checks")).call().await).await;
    assert_eq!(find(&list, "name", "api")["interval_seconds"], 120);

    // Paused: kept, listed as paused, and never claimed to run.
    let (s, _) = patch(&op, url.clone(), json!({"paused": true, "name": "api2"})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    sqlx::query("UPDATE health_checks SET next_check_at = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    let due = app::alerts::service::claim_checks(&pool).await.unwrap();
    assert_eq!(
        due.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["db"]
    );
    let list = json(op.get(app.url("/api/v1/checks")).call().await).await;
    assert_eq!(find(&list, "name", "api2")["paused"], true);
    assert_eq!(
        find(&list, "name", "api2")["state"],
        "unknown",
        "a paused check is not judged"
    );

    // The heartbeat: the last 50 results, oldest first.
    let t0 = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    for i in 0..55i64 {
        let result = if i % 10 == 9 {
            Err("502".to_string())
        } else {
            Ok(())
        };
        app::alerts::service::record_check(
            &pool,
            id,
            t0 + time::Duration::seconds(i),
            5.0,
            Some(200),
            result,
        )
        .await
        .unwrap();
    }
    let list = json(op.get(app.url("/api/v1/checks")).call().await).await;
    let recent: Vec<bool> =
        serde_json::from_value(find(&list, "name", "api2")["recent"].clone()).unwrap();
    let want: Vec<bool> = (5..55).map(|i| i % 10 != 9).collect();
    assert_eq!(recent, want);

    let (s, _) = patch(&op, url, json!({"paused": false})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    sqlx::query("UPDATE health_checks SET next_check_at = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    let due = app::alerts::service::claim_checks(&pool).await.unwrap();
    assert_eq!(due.len(), 2);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE target = 'api2' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        actions.contains(&"health_check.pause".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"health_check.resume".to_string()),
        "{actions:?}"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn channels_keep_their_secret_rules_follow_a_rename_and_paused_ones_get_nothing(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let op = app.signed_in("op", Role::Operator).await;
    let secret = "http://127.0.0.1:9/hooks/T0KEN-s3cret";
    let id = admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "ops", "kind": "webhook", "url": secret}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let rule = op
        .post(app.url("/api/v1/alerts/rules"))
        .json(
            &json!({"name": "cpu", "kind": "metric", "metric": "cpu_usage_percent",
                      "threshold": 90.0, "notify": ["ops"]}),
        )
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let url = app.url(&format!("/api/v1/alerts/channels/{id}"));
    let (s, _) = patch(&op, url.clone(), json!({"paused": true})).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "channels are admins' (their address is a secret)"
    );

    let (s, body) = patch(
        &admin,
        url.clone(),
        json!({"name": "oncall", "format": "slack"}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let target: String = sqlx::query_scalar("SELECT target FROM alert_channels WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(target, secret, "the URL was kept");
    let rules = json(op.get(app.url("/api/v1/alerts/rules")).call().await).await;
    assert_eq!(find(&rules, "name", "cpu")["notify"], json!(["oncall"]));

    // A paused channel is sent nothing; the rule, itself paused and resumed, still names it.
    let (s, _) = patch(&admin, url, json!({"paused": true})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let channels = json(admin.get(app.url("/api/v1/alerts/channels")).call().await).await;
    assert_eq!(find(&channels, "name", "oncall")["paused"], true);
    let rule_url = app.url(&format!("/api/v1/alerts/rules/{rule}"));
    let (s, _) = patch(&op, rule_url.clone(), json!({"paused": true})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let rules = json(op.get(app.url("/api/v1/alerts/rules")).call().await).await;
    assert_eq!(find(&rules, "name", "cpu")["enabled"], false);
    let (s, _) = patch(
        &op,
        rule_url.clone(),
        json!({"paused": false, "threshold": 95.0}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let rules = json(op.get(app.url("/api/v1/alerts/rules")).call().await).await;
    let cpu = find(&rules, "name", "cpu");
    assert_eq!(
        (cpu["enabled"].clone(), cpu["threshold"].clone()),
        (json!(true), json!(95.0))
    );
    let (s, text) = patch(&op, rule_url, json!({"kind": "nonsense"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");

    // Make it fire: a sample over the threshold, held for the rule's `for` (0 s by default).
    let now = hot_cpu(&pool).await;
    let mut fired = 0;
    for later in [0, 1, 400] {
        let r = app::alerts::service::evaluate(&pool, now + time::Duration::seconds(later))
            .await
            .unwrap();
        fired += r.events;
        assert_eq!(
            r.notifications, 0,
            "a paused channel is sent nothing: {r:?}"
        );
    }
    assert!(fired >= 1, "the rule fired");
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, 0, "a paused channel is sent nothing");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn processes_and_scrape_targets_are_edited_and_paused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let op = app.signed_in("op", Role::Operator).await;
    let p = op
        .post(app.url("/api/v1/processes"))
        .json(&json!({"name": "api", "pattern": "uvicorn", "host": "web-1"}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    op.post(app.url("/api/v1/processes"))
        .json(&json!({"name": "worker", "pattern": "celery", "host": "web-1"}))
        .expect_json(StatusCode::CREATED)
        .await;
    let purl = app.url(&format!("/api/v1/processes/{p}"));
    let (s, body) = patch(&op, purl.clone(), json!({"port": 8000})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let (s, text) = patch(&op, purl.clone(), json!({"port": 70000})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (s, text) = patch(&op, purl.clone(), json!({"name": "worker"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{text}");
    let watches = app::services::service::watches_for(&pool, "web-1")
        .await
        .unwrap();
    assert_eq!(
        watches,
        [
            ("api".to_string(), "uvicorn".to_string(), Some(8000)),
            ("worker".to_string(), "celery".to_string(), None)
        ]
    );
    let (s, _) = patch(&op, purl, json!({"paused": true})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let watches = app::services::service::watches_for(&pool, "web-1")
        .await
        .unwrap();
    assert_eq!(watches.len(), 1, "a paused watch is dropped: {watches:?}");
    let list = json(op.get(app.url("/api/v1/processes")).call().await).await;
    let api = find(&list, "name", "api");
    assert_eq!(
        (api["paused"].clone(), api["state"].clone()),
        (json!(true), json!("unknown"))
    );

    let t = op
        .post(app.url("/api/v1/scrape-targets"))
        .json(&json!({"name": "node", "url": "http://127.0.0.1:9/metrics", "bearer_token": "tok-123"}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let turl = app.url(&format!("/api/v1/scrape-targets/{t}"));
    let (s, body) = patch(
        &op,
        turl.clone(),
        json!({"interval_seconds": 60, "paused": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let token: Option<String> =
        sqlx::query_scalar("SELECT bearer_token FROM scrape_targets WHERE id = $1")
            .bind(t)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(token.as_deref(), Some("tok-123"), "the token was kept");
    sqlx::query("UPDATE scrape_targets SET next_scrape_at = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(app::services::service::claim_due(&pool)
        .await
        .unwrap()
        .is_empty());
    let (s, _) = patch(
        &op,
        turl.clone(),
        json!({"paused": false, "bearer_token": null}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let due = app::services::service::claim_due(&pool).await.unwrap();
    assert_eq!(due.len(), 1);
    let list = json(op.get(app.url("/api/v1/scrape-targets")).call().await).await;
    let node = find(&list, "name", "node");
    assert_eq!(node["interval_seconds"], 60);
    assert_eq!(node["has_token"], false);
    let listed = list.to_string();
    assert!(!listed.contains("tok-123"), "{listed}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn log_sources_and_backup_targets_are_edited_and_paused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let op = app.signed_in("op", Role::Operator).await;
    let dir = std::env::temp_dir().join(format!("opsdeck-edit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("app.log");
    std::fs::write(&log, "").unwrap();
    let id = admin
        .post(app.url("/api/v1/logs/sources"))
        .json(&json!({"path": log, "format": "json", "service": "api"}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let url = app.url(&format!("/api/v1/logs/sources/{id}"));
    let (s, _) = patch(&op, url.clone(), json!({"paused": true})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, text) = patch(&admin, url.clone(), json!({"path": "/etc/shadow"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (s, body) = patch(
        &admin,
        url.clone(),
        json!({"service": "web", "paused": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let list = json(admin.get(app.url("/api/v1/logs/sources")).call().await).await;
    let src = find(&list, "service", "web");
    assert_eq!(
        (src["paused"].clone(), src["format"].clone()),
        (json!(true), json!("json"))
    );

    // The built-in target can be paused but never pointed at another database.
    app::backups::service::ensure_own_target(&pool)
        .await
        .unwrap();
    let targets = json(admin.get(app.url("/api/v1/backups/targets")).call().await).await;
    let own = targets[0]["name"].as_str().unwrap().to_string();
    let turl = app.url(&format!("/api/v1/backups/targets/{own}"));
    let (s, text) = patch(
        &admin,
        turl.clone(),
        json!({"database_url": "postgres://x@127.0.0.1/other"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("database_url"), "{text}");
    let (s, body) = patch(
        &admin,
        turl.clone(),
        json!({"schedule": "* * * * *", "keep_days": 3, "paused": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let targets = json(admin.get(app.url("/api/v1/backups/targets")).call().await).await;
    let t = find(&targets, "name", &own);
    assert_eq!(
        (t["paused"].clone(), t["keep_days"].clone()),
        (json!(true), json!(3))
    );
    // Due (never planned, or planned in the past) but paused: no run starts.
    sqlx::query("UPDATE backup_targets SET next_run_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    let state = common::state(pool.clone());
    let started = app::backups::service::start_due_runs(&state, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(started.is_empty(), "{started:?}");
    let (s, text) = patch(&admin, turl, json!({"schedule": "every day"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("schedule"), "{text}");
    let (s, _) = patch(
        &admin,
        app.url("/api/v1/backups/targets/nope"),
        json!({"paused": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A rule that names no channel (the built-in ones) notifies the default channels, and only
/// those that are not paused; marking a channel default is a field like any other.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn rules_naming_no_channel_notify_the_default_ones(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let op = app.signed_in("op", Role::Operator).await;
    let mut ids = vec![];
    for (name, default) in [("oncall", true), ("team", false), ("backup-pager", true)] {
        let id = admin
            .post(app.url("/api/v1/alerts/channels"))
            .json(&json!({"name": name, "kind": "webhook", "url": "http://127.0.0.1:9/hook", "default": default}))
            .expect_json(StatusCode::CREATED)
            .await["id"]
            .as_i64()
            .unwrap();
        ids.push(id);
    }
    let channels = json(admin.get(app.url("/api/v1/alerts/channels")).call().await).await;
    assert_eq!(find(&channels, "name", "oncall")["default"], true);
    assert_eq!(find(&channels, "name", "team")["default"], false);
    // The third default is paused: it gets nothing.
    let (s, _) = patch(
        &admin,
        app.url(&format!("/api/v1/alerts/channels/{}", ids[2])),
        json!({"paused": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    op.post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "hot", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 90.0}))
        .expect_json(StatusCode::CREATED)
        .await;

    let now = hot_cpu(&pool).await;
    for later in [0, 1] {
        app::alerts::service::evaluate(&pool, now + time::Duration::seconds(later))
            .await
            .unwrap();
    }
    let to: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.name FROM alert_outbox n JOIN alert_channels c ON c.id = n.channel_id
         JOIN alert_events e ON e.id = n.event_id JOIN alert_rules r ON r.id = e.rule_id
         WHERE r.name = 'hot' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(to, ["oncall"]);

    // `default` changes like any field.
    let (s, _) = patch(
        &admin,
        app.url(&format!("/api/v1/alerts/channels/{}", ids[0])),
        json!({"default": false}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let channels = json(admin.get(app.url("/api/v1/alerts/channels")).call().await).await;
    assert_eq!(find(&channels, "name", "oncall")["default"], false);
}

/// A firing rule edited for its channels or severity keeps firing (no second "firing"
/// event); a changed threshold starts it over.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_rule_keeps_firing_through_a_change_of_channels_not_of_its_condition(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "oncall", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}))
        .expect_json(StatusCode::CREATED)
        .await;
    let id = admin
        .post(app.url("/api/v1/alerts/rules"))
        .json(&json!({"name": "hot", "kind": "metric", "metric": "cpu_usage_percent", "threshold": 90.0}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let now = hot_cpu(&pool).await;
    let phases = || async {
        let p: Vec<String> = sqlx::query_scalar(
            "SELECT phase FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id WHERE r.name = 'hot'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        p
    };
    let evaluate = |later: i64| {
        let pool = pool.clone();
        async move {
            app::alerts::service::evaluate(&pool, now + time::Duration::seconds(later))
                .await
                .unwrap();
        }
    };
    evaluate(0).await;
    evaluate(1).await;
    assert_eq!(phases().await, ["firing"]);
    let events = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id
             WHERE r.name = 'hot' AND e.status = 'firing'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n
    };
    assert_eq!(events().await, 1);

    let url = app.url(&format!("/api/v1/alerts/rules/{id}"));
    let (s, body) = patch(
        &admin,
        url.clone(),
        json!({"notify": ["oncall"], "severity": "critical"}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(phases().await, ["firing"], "new channels keep it firing");
    evaluate(2).await;
    assert_eq!(events().await, 1, "and it is not announced again");

    let (s, body) = patch(&admin, url, json!({"threshold": 95.0})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert!(phases().await.is_empty(), "a new threshold starts it over");
}

/// Changes to checks, channels, processes and scrape targets are audited with who and from
/// where, and the audit log filters by actor and by action (or a whole area of actions).
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn changes_are_audited_and_the_audit_log_filters(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let op = app.signed_in("op", Role::Operator).await;
    let check = op
        .post(app.url("/api/v1/checks"))
        .json(&json!({"name": "api", "url": "http://127.0.0.1:9/health"}))
        .expect_json(StatusCode::CREATED)
        .await["id"]
        .as_i64()
        .unwrap();
    let (s, _) = patch(
        &op,
        app.url(&format!("/api/v1/checks/{check}")),
        json!({"paused": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    op.post(app.url("/api/v1/scrape-targets"))
        .json(&json!({"name": "node", "url": "http://127.0.0.1:9/metrics", "bearer_token": "tok-audit"}))
        .expect_json(StatusCode::CREATED)
        .await;
    admin
        .post(app.url("/api/v1/alerts/channels"))
        .json(&json!({"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/hook/s3cret"}))
        .expect_json(StatusCode::CREATED)
        .await;

    let page = admin
        .get(app.url("/api/v1/audit?actor=op"))
        .expect_json(StatusCode::OK)
        .await;
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"health_check.save"), "{actions:?}");
    assert!(actions.contains(&"health_check.pause"), "{actions:?}");
    assert!(actions.contains(&"services.target.add"), "{actions:?}");
    assert!(entries.iter().all(|e| e["actor"] == "op"), "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| e["ip"].as_str().is_some_and(|ip| !ip.is_empty())),
        "{entries:?}"
    );
    assert!(
        !page.to_string().contains("tok-audit"),
        "a token never reaches the audit log"
    );

    let area = admin
        .get(app.url("/api/v1/audit?action=health_check"))
        .expect_json(StatusCode::OK)
        .await;
    let actions: Vec<&str> = area["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["health_check.pause", "health_check.save"]);
    let exact = admin
        .get(app.url("/api/v1/audit?action=alert_channel.save"))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(exact["entries"].as_array().unwrap().len(), 1);
    assert!(
        !exact.to_string().contains("s3cret"),
        "a webhook URL never reaches the audit log"
    );
    assert!(area["actors"].as_array().unwrap().contains(&json!("root")));
    assert!(area["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("health_check")));
    let (s, _) = {
        let res = op.get(app.url("/api/v1/audit")).call().await;
        (res.status(), ())
    };
    assert_eq!(s, StatusCode::FORBIDDEN);
}
