//! Health, OpenAPI, input errors, page gating, assets and shutdown, through the real server.

mod common;

use app::auth::Role;
use common::{json, Call, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn health_is_open_and_detailed_on_request(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let c = app.client();
    let res = c.get(app.url("/api/v1/health")).call().await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, serde_json::json!({"status": "ok"}));

    let body = c
        .get(app.url("/api/v1/health?detailed=true"))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    let db = &body["components"]["database"];
    assert_eq!(db["status"], "ok");
    assert!(db["latency_ms"].as_f64().unwrap() >= 0.0);
    let newest = server::MIGRATOR.iter().map(|m| m.version).max().unwrap();
    assert_eq!(db["schema_version"], newest);
    let text = body.to_string();
    assert!(
        !text.contains("postgres") && !text.contains('/'),
        "no secrets or paths: {text}"
    );

    let res = c.get(app.url("/api/v1/health?detailed=maybe")).call().await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("detailed"));
}

#[tokio::test]
async fn health_is_degraded_without_a_database() {
    // Nothing listens on port 1: every connection attempt is refused.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy("postgres://nobody:secret@127.0.0.1:1/none")
        .unwrap();
    let app = TestApp::spawn(pool).await;
    let body = app
        .client()
        .get(app.url("/api/v1/health?detailed=true"))
        .expect_json(StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["components"]["database"]["status"], "down");
    assert!(!body.to_string().contains("secret"));
    let res = app.client().get(app.url("/api/v1/health")).call().await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Without a session there is nothing to look up: straight to the login page.
    let res = app.client().get(app.url("/hosts")).call().await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // With one, pages say what is wrong instead of failing obscurely.
    let res = app
        .client()
        .get(app.url("/hosts"))
        .header("cookie", "opsdeck_session=AAAAAAAAAAAAAAAAAAAAAA")
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("cannot reach its database"));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn openapi_document_lists_the_api(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = app
        .client()
        .get(app.url("/api/v1/openapi.json"))
        .expect_json(StatusCode::OK)
        .await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/health",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/users",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(doc["paths"]["/api/v1/users"].get("post").is_some());
    assert!(doc["components"]["schemas"].get("UserSummary").is_some());
    // Query parameters are documented as query parameters (not path ones), every operation
    // documents the errors it can give, and public ones need no session.
    let audit = &doc["paths"]["/api/v1/audit"]["get"];
    let ins: Vec<&str> = audit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["in"].as_str().unwrap())
        .collect();
    assert_eq!(ins, ["query", "query", "query", "query"]);
    let names: Vec<&str> = audit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["before", "limit", "actor", "action"]);
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for code in ["400", "503"] {
                assert!(
                    op["responses"].get(code).is_some(),
                    "{method} {path}: {code}"
                );
            }
        }
    }
    assert_eq!(
        doc["paths"]["/api/v1/health"]["get"]["security"],
        json!([{}])
    );
    assert!(doc["paths"]["/api/v1/users"]["get"]["responses"]
        .get("401")
        .is_some());
    // Two types named alike do not share one schema: backup targets have their own.
    assert!(doc["components"]["schemas"]
        .get("BackupTargetInfo")
        .is_some());
    // Stored states are documented with the words the answers carry, not the Rust names.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Severity"]["enum"], json!(["warning", "critical"]));
    assert_eq!(
        schemas["JobStatus"]["enum"],
        json!(["running", "succeeded", "failed"])
    );
    assert_eq!(
        schemas["Liveness"]["enum"],
        json!(["up", "down", "unknown"])
    );
    assert!(
        schemas.get("NewTargetBody").is_some(),
        "backup target body keeps its name"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn bad_bodies_get_named_errors_never_500(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let url = app.url("/api/v1/users");
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "malformed",
            Some("application/json"),
            "{\"username\": ".into(),
            400,
            "malformed JSON",
        ),
        (
            "missing field",
            Some("application/json"),
            r#"{"username":"x1","role":"viewer"}"#.into(),
            422,
            "password",
        ),
        (
            "wrong type",
            Some("application/json"),
            r#"{"username":7,"role":"viewer","password":"p"}"#.into(),
            422,
            "username",
        ),
        (
            "unknown role",
            Some("application/json"),
            r#"{"username":"x1","role":"god","password":"long-password"}"#.into(),
            422,
            "role",
        ),
        (
            "unknown field",
            Some("application/json"),
            r#"{"username":"x1","role":"viewer","password":"long-password","x":1}"#.into(),
            422,
            "unknown field",
        ),
        (
            "bad name",
            Some("application/json"),
            r#"{"username":"Bad Name","role":"viewer","password":"long-password"}"#.into(),
            422,
            "user name",
        ),
        (
            "short password",
            Some("application/json"),
            r#"{"username":"x1","role":"viewer","password":"short"}"#.into(),
            422,
            "too short",
        ),
        (
            "no content type",
            None,
            r#"{"username":"x1"}"#.into(),
            400,
            "Content-Type",
        ),
        (
            "too large",
            Some("application/json"),
            format!("{{\"username\":\"{}\"}}", "x".repeat(2 * 1024 * 1024)),
            413,
            "too large",
        ),
    ];
    for (name, ctype, body, want, mentions) in cases {
        let mut req = admin.post(&url).body(body);
        if let Some(ct) = ctype {
            req = req.header("content-type", ct);
        }
        let res = req.call().await;
        assert_eq!(res.status().as_u16(), want, "{name}");
        let err = json(res).await["error"].as_str().unwrap().to_string();
        assert!(err.contains(mentions), "{name}: {err}");
    }
    let res = admin.get(app.url("/api/v1/audit?before=abc")).call().await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A path parameter that does not parse is a JSON error naming it, not plain text.
    let res = admin
        .get(app.url("/api/v1/backups/99999999999999999999"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let err = json(res).await["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("invalid path") && err.contains("99999999999999999999"),
        "{err}"
    );
    // Text PostgreSQL cannot store (a NUL byte) is the request's fault: 400, not 500.
    // (Found by schemathesis: a refused backup target's name went into the audit log.)
    let res = admin
        .post(app.url("/api/v1/backups/targets"))
        .json(&json!({"name": "nul\u{0}name", "database_url": "postgres://x@127.0.0.1:9/x"}))
        .call()
        .await;
    let status = res.status().as_u16();
    let err = json(res).await["error"].as_str().unwrap().to_string();
    assert!(
        status == 400 || status == 422,
        "NUL in a name: {status} {err}"
    );
    let res = admin.get(app.url("/api/v1/no-such-thing")).call().await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("/api/v1/no-such-thing"));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn pages_need_a_session(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let anon = app.client();
    let res = anon.get(app.url("/hosts?range=24h")).call().await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "/login?next=/hosts%3Frange%3D24h"
    );
    let res = anon.get(app.url("/")).call().await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let res = anon
        .get(app.url("/login?next=/hosts%3Frange%3D24h"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"password\"") && html.contains("/pkg/opsdeck.css"));
    assert!(
        html.contains("name=\"next\" value=\"/hosts?range=24h\""),
        "the form posts `next` without WASM"
    );

    let viewer = app.signed_in("vera", Role::Viewer).await;
    let res = viewer.get(app.url("/login")).call().await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "signed-in users skip the login page"
    );
    let res = viewer.get(app.url("/")).call().await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Overview") && html.contains("vera") && html.contains("Reachable"),
        "{html}"
    );
    assert!(
        !html.contains("href=\"/admin\""),
        "viewers get no Admin link"
    );

    // As a browser asks for it (Accept: text/html), and as a script does.
    let res = viewer
        .get(app.url("/admin/users"))
        .header("accept", "text/html")
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = viewer.get(app.url("/admin/users")).call().await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("Not allowed"));

    let admin = app.signed_in("ada", Role::Admin).await;
    let res = admin.get(app.url("/admin/users")).call().await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("vera") && html.contains("href=\"/admin\""));
    let res = admin.get(app.url("/admin/audit")).call().await;
    assert!(res.text().await.unwrap().contains("auth.login"));

    let res = admin.get(app.url("/no/such/page")).call().await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("Page not found"));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn form_login_without_javascript(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.add_user("lee", Role::Viewer, "lee-password-1").await;
    let c = app.client();
    let referer = app.url("/login?next=/logs");
    let res = c
        .post(app.url("/sfn/auth/login"))
        .header("accept", "text/html")
        .header("referer", &referer)
        .form(&[
            ("username", "lee"),
            ("password", "wrong-password"),
            ("next", "/logs"),
        ])
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&referer),
        "back to the form with the error"
    );
    let res = c
        .post(app.url("/sfn/auth/login"))
        .header("accept", "text/html")
        .header("referer", &referer)
        .form(&[
            ("username", "lee"),
            ("password", "lee-password-1"),
            ("next", "/logs"),
        ])
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()["location"], "/logs");
    assert_eq!(
        c.get(app.url("/logs")).call().await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn assets_are_compressed_and_cached(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let c = reqwest::Client::new();
    let res = c
        .get(app.url("/pkg/opsdeck.css"))
        .header("accept-encoding", "br")
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-encoding"], "br");
    assert_eq!(res.headers()["content-type"], "text/css; charset=utf-8");
    let etag = res.headers()["etag"].clone();
    let res = c
        .get(app.url("/pkg/opsdeck.css"))
        .header("if-none-match", etag)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let res = c
        .get(app.url("/pkg/opsdeck.css"))
        .header("accept-encoding", "gzip")
        .call()
        .await;
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let res = c.get(app.url("/pkg/nope.js")).call().await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn security_headers_on_every_response(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for path in [
        "/login",
        "/api/v1/health",
        "/pkg/opsdeck.css",
        "/api/v1/nope",
    ] {
        let res = app.client().get(app.url(path)).call().await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(h.contains_key("referrer-policy"), "{path}");
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn shutdown_finishes_and_stops(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    assert_eq!(
        app.client()
            .get(app.url("/api/v1/health"))
            .call()
            .await
            .status(),
        StatusCode::OK
    );
    app.shutdown.take().unwrap().send(()).unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(10), &mut app.server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "server stops cleanly after the signal"
    );
    assert!(
        reqwest::get(app.url("/api/v1/health")).await.is_err(),
        "no longer accepting"
    );
}
