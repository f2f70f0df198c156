//! Opsdeck against its own users and hostile clients, through the real HTTP server: the sign-in
//! lock under parallel attempts (also from two processes), client addresses behind proxies,
//! what an unauthenticated client can make it write, secrets in URLs, what it may be made to
//! fetch or read, and the small leaks (metric labels, series per host, restore passwords,
//! HSTS, the CSP nonce). Each of these failed on the main branch before the fix.

mod common;

use app::auth::Role;
use app::timestamp::Timestamp;
use common::{json, Call, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;

async fn login_status(app: &TestApp, user: &str, password: &str) -> StatusCode {
    app.login(&app.client(), user, password).await.status()
}

/// 40 wrong passwords for one name, sent all at once to two Opsdeck processes on one database:
/// exactly the five allowed are judged (401), every other is refused without being judged
/// (429). Before, all 40 were judged before the lock engaged.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn parallel_attempts_cannot_outrun_the_lock(pool: PgPool) {
    let a = Arc::new(TestApp::spawn(pool.clone()).await);
    let b = Arc::new(TestApp::spawn(pool.clone()).await);
    a.add_user("ivy", Role::Viewer, "ivy-password-123").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { login_status(&app, "ivy", &format!("wrong-{i}")).await });
    }
    let (mut judged, mut refused) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            StatusCode::UNAUTHORIZED => judged += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((judged, refused), (5, 35));
    assert_eq!(
        login_status(&a, "ivy", "ivy-password-123").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the lock holds for the right password too"
    );
    // Each lock engaging (the name's at the 6th attempt, the address's at the 21st) is audited
    // once, not once per refused attempt.
    let locked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'auth.login_locked'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(locked, 2);
}

async fn failed_login_ip(pool: &PgPool, app: &TestApp, forwarded: Option<&str>) -> String {
    let mut req = app
        .client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "nobody", "password": "wrong-password"}));
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    assert_eq!(req.call().await.status(), StatusCode::UNAUTHORIZED);
    sqlx::query_scalar(
        "SELECT ip FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Without trusted proxies the peer is the client, whatever a header says; behind a trusted
/// proxy the client is the right-most hop that is not one, so a client writing its own
/// `X-Forwarded-For` neither forges its audited address nor escapes the per-address lock.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn client_addresses_come_from_trusted_proxies_only(pool: PgPool) {
    let direct = TestApp::spawn(pool.clone()).await;
    assert_eq!(
        failed_login_ip(&pool, &direct, Some("203.0.113.1")).await,
        "127.0.0.1"
    );
    drop(direct);
    let mut cfg = common::test_config();
    cfg.trusted_proxies = vec![app::config::Cidr::parse("127.0.0.1").unwrap()];
    cfg.login_ip_max_failures = 4;
    let app = TestApp::spawn_with(pool.clone(), cfg).await;
    assert_eq!(
        failed_login_ip(&pool, &app, Some("203.0.113.1, 198.51.100.2")).await,
        "198.51.100.2",
        "the hop the proxy appended, not the one the client wrote"
    );
    // The same client forging a new left-most address each time: still one address, locked.
    let mut last = StatusCode::OK;
    for i in 0..6 {
        let res = app
            .client()
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("10.9.9.{i}, 198.51.100.7"))
            .json(&json!({"username": format!("guess{i}"), "password": "wrong-password"}))
            .call()
            .await;
        last = res.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not locked out with it.
    app.add_user("jay", Role::Viewer, "jay-password-123").await;
    let res = app
        .client()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.8")
        .json(&json!({"username": "jay", "password": "jay-password-123"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// A client that is not signed in writes at most 64 characters of a name per failed attempt,
/// one audit row when a lock engages (not one per refused attempt), and neither the audit log
/// nor the counters grow without end: the retention job purges them.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn unauthenticated_writes_are_bounded_and_purged(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let long = "x".repeat(200_000);
    for _ in 0..12 {
        let _ = login_status(&app, &long, "wrong-password").await;
    }
    let (rows, longest): (i64, Option<i32>) = sqlx::query_as(
        "SELECT count(*), max(greatest(length(target), length(actor))) FROM audit_log",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(longest, Some(64));
    assert_eq!(rows, 5 + 1, "five failures and the name's lock engaging");

    sqlx::query("UPDATE audit_log SET at = now() - interval '401 days' WHERE id = (SELECT min(id) FROM audit_log)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE login_throttle SET window_start = now() - interval '1 hour', locked_until = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    let (audit, counters) = app::auth::service::purge_old(&pool, &common::test_config())
        .await
        .unwrap();
    assert_eq!((audit, counters), (1, 2));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM login_throttle")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// Check and scrape-target URLs, and what is sent on about them, never show a user's
/// password or a query's values, to viewers or anyone; backup targets' URLs are for admins.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn secrets_in_urls_are_never_shown(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let res = admin
        .post(app.url("/api/v1/checks"))
        .json(&json!({"name": "api", "url": "http://svc:pa55word@127.0.0.1:9/health?token=t0ken-s3cret"}))
        .call().await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let res = admin
        .post(app.url("/api/v1/scrape-targets"))
        .json(&json!({"name": "exp", "url": "http://u:pa55word@127.0.0.1:9/metrics?key=t0ken-s3cret"}))
        .call().await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // A down check puts its URL and error into the alert it fires.
    let id: i64 = sqlx::query_scalar("SELECT id FROM health_checks WHERE name = 'api'")
        .fetch_one(&pool)
        .await
        .unwrap();
    app::alerts::service::record_check(
        &pool,
        id,
        time::OffsetDateTime::now_utc(),
        3.0,
        None,
        Err("GET http://svc:pa55word@127.0.0.1:9/health?token=t0ken-s3cret failed".into()),
    )
    .await
    .unwrap();
    app::alerts::service::seed(&pool, "http://127.0.0.1:1/api/v1/health")
        .await
        .unwrap();
    let t0 = time::OffsetDateTime::now_utc();
    for t in [t0, t0 + time::Duration::seconds(61)] {
        app::alerts::service::evaluate(&pool, t).await.unwrap();
    }
    for who in [&viewer, &admin] {
        for path in [
            "/api/v1/checks",
            "/api/v1/scrape-targets",
            "/api/v1/alerts",
            "/checks",
            "/services",
            "/alerts",
        ] {
            let text = who.get(app.url(path)).call().await.text().await.unwrap();
            for secret in ["pa55word", "t0ken-s3cret"] {
                assert!(!text.contains(secret), "{path} shows {secret}");
            }
        }
    }
    let checks = json(viewer.get(app.url("/api/v1/checks")).call().await).await;
    let api = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api")
        .unwrap();
    assert_eq!(api["url"], "http://***@127.0.0.1:9/health?token=***");
    let summaries: Vec<String> = sqlx::query_scalar(
        "SELECT summary FROM alert_states UNION ALL SELECT summary FROM alert_events
         UNION ALL SELECT body::text FROM alert_notifications UNION ALL SELECT notice::text FROM alert_outbox",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(summaries
        .iter()
        .any(|s| s.contains("http://***@127.0.0.1:9/health")));
    assert!(!summaries
        .iter()
        .any(|s| s.contains("pa55word") || s.contains("t0ken-s3cret")));

    // Backup targets: the URL for admins only, and even then without secrets.
    let res = admin
        .post(app.url("/api/v1/backups/targets"))
        .json(&json!({"name": "shop", "database_url": "postgresql://app:pa55word@127.0.0.1:9/shop?sslpassword=t0ken-s3cret"}))
        .call().await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let page = viewer
        .get(app.url("/backups"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("database shop") && !page.contains("postgresql://"),
        "viewers see no URL"
    );
    for who in [&viewer, &admin] {
        let page = who
            .get(app.url("/backups"))
            .call()
            .await
            .text()
            .await
            .unwrap();
        assert!(!page.contains("pa55word") && !page.contains("t0ken-s3cret"));
    }
    let listed = admin
        .get(app.url("/api/v1/backups/targets"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains("postgresql://***@127.0.0.1:9/shop?sslpassword=***"),
        "{listed}"
    );
}

/// A small server on loopback: `/redirect` sends to `to`, `/page` answers an HTML page.
async fn start_site(to: String) -> String {
    let app = axum::Router::new()
        .route(
            "/redirect",
            axum::routing::get(move || {
                let to = to.clone();
                async move { axum::response::Redirect::temporary(&to) }
            }),
        )
        .route(
            "/page",
            axum::routing::get(|| async { "<html>internal-secret-value</html>" }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

fn check(url: &str) -> app::alerts::service::DueCheck {
    app::alerts::service::DueCheck {
        id: 1,
        name: "c".into(),
        url: url.into(),
        timeout_seconds: 3,
        expected_status: None,
        expected_body: None,
    }
}

/// Health checks, scrapes and webhooks never reach an address in `outbound_deny`: given as an
/// address, as a name that resolves to one, or behind a redirect; and their errors do not
/// echo what a server answered.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn what_the_server_fetches_is_bounded(pool: PgPool) {
    let defaults = common::test_config();
    let client = server::alerts::checks::client(&defaults);
    // The cloud metadata address, by default: refused before anything is sent.
    let (_, _, r) = server::alerts::checks::probe(
        &client,
        &defaults,
        &check("http://169.254.169.254/latest/meta-data/"),
    )
    .await;
    assert!(r.unwrap_err().contains("outbound_deny"));
    // A redirect to a denied address.
    let mut cfg = common::test_config();
    cfg.outbound_deny
        .push(app::config::Cidr::parse("127.0.0.2").unwrap());
    let site = start_site("http://127.0.0.2:9/".into()).await;
    let client = server::alerts::checks::client(&cfg);
    let (_, _, r) =
        server::alerts::checks::probe(&client, &cfg, &check(&format!("{site}/redirect"))).await;
    let e = r.unwrap_err();
    assert!(
        e.contains("outbound_deny") && e.contains("127.0.0.2"),
        "{e}"
    );
    // A name that resolves to a denied address.
    let mut local = common::test_config();
    local.outbound_deny = vec![
        app::config::Cidr::parse("127.0.0.0/8").unwrap(),
        app::config::Cidr::parse("::1").unwrap(),
    ];
    let port = site.rsplit(':').next().unwrap();
    let client = server::alerts::checks::client(&local);
    let (_, _, r) = server::alerts::checks::probe(
        &client,
        &local,
        &check(&format!("http://localhost:{port}/page")),
    )
    .await;
    assert!(r.unwrap_err().contains("outbound_deny"));
    // Allowed, but what the page says is not echoed into the error.
    let client = server::alerts::checks::client(&defaults);
    let mut c = check(&format!("{site}/page"));
    c.expected_status = Some(204);
    let (_, _, r) = server::alerts::checks::probe(&client, &defaults, &c).await;
    assert!(!r.unwrap_err().contains("internal-secret-value"));

    // A scrape of that page: a parse error that names the line, not its text.
    let app = TestApp::spawn(pool.clone()).await;
    let st = common::state(pool.clone());
    let admin = app.signed_in("root", Role::Admin).await;
    let res = admin
        .post(app.url("/api/v1/scrape-targets"))
        .json(&json!({"name": "page", "url": format!("{site}/page")}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let due = app::services::service::claim_due(&pool).await.unwrap();
    let client = server::services::scraper::client(&defaults);
    for t in due {
        server::services::scraper::scrape_one(&st, &client, t)
            .await
            .unwrap();
    }
    let err: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM scrape_targets WHERE name = 'page'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let err = err.unwrap();
    assert!(
        err.contains("line 1") && !err.contains("internal-secret-value"),
        "{err}"
    );
    // A webhook to a denied address.
    let r = server::alerts::notify::send_webhook(
        &server::alerts::notify::client(&defaults),
        &defaults,
        "http://169.254.169.254/hook",
        "json",
        &app::alerts::group::Message::single(app::alerts::rules::Notice {
            rule: "test".into(),
            status: app::alerts::AlertStatus::Test,
            host: None,
            value: None,
            at: Timestamp(time::OffsetDateTime::now_utc()),
            severity: app::alerts::Severity::Warning,
            kind: "metric".into(),
            instance: "ops".into(),
            summary: "a test".into(),
            reminder: false,
            url: None,
        }),
    )
    .await;
    assert!(r.unwrap_err().contains("outbound_deny"));
}

/// Log sources only inside `log_source_dirs`, resolved through symlinks, and never Opsdeck's
/// own configuration file or data directory: every viewer can search what a source stores.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn any_file_cannot_become_a_log(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("opsdeck-sources-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("opsdeck.toml"),
        "database_url = \"postgres://x@h/db\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("secret.txt"), "password=hunter2\n").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), logs.join("innocent.log")).unwrap();
    let mut cfg = common::test_config();
    cfg.log_source_dirs = vec![logs.clone(), dir.join("data"), dir.clone()];
    cfg.config = Some(dir.join("opsdeck.toml"));
    cfg.data_dir = dir.join("data");
    cfg.log_source_dirs = vec![logs.clone(), dir.join("data")];
    let app = TestApp::spawn_with(pool.clone(), cfg.clone()).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let add = |path: std::path::PathBuf| {
        admin
            .post(app.url("/api/v1/logs/sources"))
            .json(&json!({"path": path, "format": "text", "service": "x"}))
            .send()
    };
    for (path, why) in [
        (std::path::PathBuf::from("/etc/shadow"), "log_source_dirs"),
        (logs.join("innocent.log"), "log_source_dirs"),
        (logs.join("../secret.txt"), ".."),
        (dir.join("data/backups/x.dump"), "own configuration or data"),
    ] {
        let res = add(path.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path:?}");
        let e = json(res).await["error"].as_str().unwrap().to_string();
        assert!(e.contains(why), "{path:?}: {e}");
    }
    // The configuration file, even inside an allowed directory.
    let mut cfg2 = cfg.clone();
    cfg2.log_source_dirs.push(dir.clone());
    let state = common::state_with(pool.clone(), cfg2);
    let e = app::logs::sources::add_checked(
        &state,
        &app::specs::NewLogSource {
            path: dir.join("opsdeck.toml").to_string_lossy().into_owned(),
            format: "text".into(),
            service: "x".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("own configuration"), "{e}");
    // Inside: fine. A file later swapped for a symlink to outside is not read by the tailer.
    std::fs::write(logs.join("app.log"), "").unwrap();
    assert_eq!(
        add(logs.join("app.log")).await.unwrap().status(),
        StatusCode::CREATED
    );
    std::fs::remove_file(logs.join("app.log")).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), logs.join("app.log")).unwrap();
    let tailer = tokio::spawn(server::logs::tail::run(common::state_with(
        pool.clone(),
        cfg,
    )));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    tailer.abort();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM log_lines")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing of the secret was read");
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM log_source_state")
        .fetch_optional(&pool)
        .await
        .unwrap()
        .flatten();
    assert!(error.unwrap_or_default().contains("log_source_dirs"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The smaller leaks: `/metrics` labels bounded whatever method a client sends; series per
/// host bounded for agents; restore passwords throttled like sign-ins; HSTS behind HTTPS; a
/// CSP without inline scripts but the hydration script's nonce.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn small_leaks_are_closed(pool: PgPool) {
    let mut cfg = common::test_config();
    cfg.max_series_per_host = 5;
    cfg.metrics_public = true;
    cfg.secure_cookies = true;
    let app = TestApp::spawn_with(pool.clone(), cfg).await;
    let c = app.client();
    for m in ["FOO", "BAR", "BAZ1"] {
        let _ = c
            .request(
                Method::from_bytes(m.as_bytes()).unwrap(),
                app.url("/api/v1/health"),
            )
            .call()
            .await;
    }
    let metrics = c
        .get(app.url("/metrics"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("FOO") && !metrics.contains("BAZ1"));
    assert!(metrics.contains("method=\"other\""));

    // Series per host, under parallel batches.
    let (_, token) = app::auth::tokens::create(&pool, "agents", "ingest", None)
        .await
        .unwrap();
    let batch = |host: &str, metrics: std::ops::Range<usize>| {
        json!({"host": host, "samples": metrics.map(|i| json!({
            "metric": format!("m{i}"), "labels": {}, "ts": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339).unwrap(), "value": 1.0
        })).collect::<Vec<_>>()})
    };
    let res = c
        .post(app.url("/api/v1/ingest/metrics"))
        .bearer_auth(&token)
        .json(&batch("h1", 0..6))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("max_series_per_host"));
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..4 {
        let (c, url, token, body) = (
            c.clone(),
            app.url("/api/v1/ingest/metrics"),
            token.clone(),
            batch("h2", k * 3..k * 3 + 3),
        );
        tasks.spawn(async move {
            c.post(url)
                .bearer_auth(token)
                .json(&body)
                .call()
                .await
                .status()
        });
    }
    while tasks.join_next().await.is_some() {}
    let series: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_series WHERE host = 'h2'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(series <= 5, "{series} series");

    // Restore passwords: five wrong ones, then refused unjudged.
    let admin = app.signed_in("root", Role::Admin).await;
    let mut statuses = vec![];
    for _ in 0..6 {
        let res = admin
            .post(app.url("/api/v1/backups/1/restore"))
            .json(&json!({"password": "not-my-password", "confirm": "x", "mode": "new_database", "new_database": "x2"}))
            .call().await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [403, 403, 403, 403, 403, 429]);

    // Headers of a page.
    let res = admin.get(app.url("/")).call().await;
    let hsts = res
        .headers()
        .get("strict-transport-security")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(hsts.contains("max-age="));
    let csp = res
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!script_src.contains("unsafe-inline"), "{csp}");
    let nonce = script_src
        .split_whitespace()
        .find_map(|w| w.strip_prefix("'nonce-"))
        .and_then(|w| w.strip_suffix('\''))
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every script carries the nonce"
    );
    // Without secure cookies, no HSTS.
    let plain = TestApp::spawn(pool.clone()).await;
    let res = plain.client().get(plain.url("/login")).call().await;
    assert!(res.headers().get("strict-transport-security").is_none());
}

/// The analytics count every slow request, not only the 50 slowest they list.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn every_slow_request_is_counted(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let (_, token) = app::auth::tokens::create(&pool, "logs", "ingest", None)
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let lines: Vec<String> = (0..130)
        .map(|i| {
            let ts = (now - time::Duration::minutes(30) + time::Duration::seconds(i))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            let secs = if i < 80 { 5.5 + i as f64 / 100.0 } else { 0.2 };
            format!(r#"{{"timestamp":"{ts}","level":"INFO","message":"req {i}","path":"/api/x","status":200,"execution_time":{secs}}}"#)
        })
        .collect();
    let res = app
        .client()
        .post(app.url("/api/v1/ingest/logs?service=api"))
        .bearer_auth(&token)
        .body(lines.join("\n"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let s = json(
        viewer
            .get(app.url("/api/v1/logs/stats?from=now-2h"))
            .call()
            .await,
    )
    .await;
    assert_eq!(s["slow_count"], 80);
    assert_eq!(s["slow_requests"].as_array().unwrap().len(), 50);
    assert_eq!(s["requests"], 130);
    let s = json(
        viewer
            .get(app.url("/api/v1/logs/stats?from=now-2h&slow=6"))
            .call()
            .await,
    )
    .await;
    assert_eq!(s["slow_count"], 29, "5.5 + i/100 > 6 for i in 51..=79");
    let page = viewer
        .get(app.url("/logs?range=2h"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    let at = page
        .find("data-testid=\"stat-slow\"")
        .expect("the slow tile");
    let tile = &page[at..at + 80];
    assert!(tile.contains(">80<"), "{tile}");
}
