//! Sign-in, sessions, throttling, roles and CSRF, through the real HTTP server.

mod common;

use app::auth::Role;
use common::{json, Call, TestApp};
use reqwest::StatusCode;
use sqlx::PgPool;

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn login_me_logout_round_trip(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.add_user("alice", Role::Operator, "alice-password-1")
        .await;
    let c = app.client();

    assert_eq!(
        c.get(app.url("/api/v1/auth/me")).call().await.status(),
        StatusCode::UNAUTHORIZED
    );

    let res = app.login(&c, "alice", "alice-password-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("opsdeck_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "not secure unless configured: {cookie}"
    );
    let body = json(res).await;
    assert_eq!(
        body,
        serde_json::json!({"username": "alice", "role": "operator"})
    );

    let me = json(c.get(app.url("/api/v1/auth/me")).call().await).await;
    assert_eq!(me["username"], "alice");
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 1);

    let res = c.post(app.url("/api/v1/auth/logout")).call().await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(app.url("/api/v1/auth/me")).call().await.status(),
        StatusCode::UNAUTHORIZED
    );
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "logout deletes the session server-side");

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE target = 'alice' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(actions, vec!["auth.login", "auth.logout"]);
    let ip: Option<String> =
        sqlx::query_scalar("SELECT ip FROM audit_log WHERE action = 'auth.login'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn secure_cookie_when_configured(pool: PgPool) {
    let mut cfg = common::test_config();
    cfg.secure_cookies = true;
    let app = TestApp::spawn_with(pool, cfg).await;
    app.add_user("bob", Role::Viewer, "bob-password-1").await;
    let res = app.login(&app.client(), "bob", "bob-password-1").await;
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn session_id_changes_at_login(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.add_user("carol", Role::Viewer, "carol-password-1")
        .await;
    let c = app.client();
    let first = app.login(&c, "carol", "carol-password-1").await;
    let id1 = first
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let second = app.login(&c, "carol", "carol-password-1").await;
    let id2 = second
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(id1, id2, "a fresh session id at each sign-in");
}

/// An active session's idle expiry slides, but its row is written at most once a minute, not
/// on every request (a dashboard makes many).
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_session_is_written_at_most_once_a_minute(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let c = app.signed_in("dave", Role::Viewer).await;
    let expiry = || async {
        sqlx::query_scalar::<_, time::OffsetDateTime>("SELECT max(expiry_date) FROM sessions")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let minute = || time::OffsetDateTime::now_utc().unix_timestamp() / 60;
    // Requests within one minute (tried again if a minute boundary falls in between).
    for attempt in 0.. {
        let at = minute();
        let res = c.get(app.url("/api/v1/auth/me")).call().await;
        assert_eq!(res.status(), StatusCode::OK);
        let first = expiry().await;
        for _ in 0..5 {
            let res = c.get(app.url("/api/v1/auth/me")).call().await;
            assert_eq!(res.status(), StatusCode::OK);
            assert!(
                res.headers().get("set-cookie").is_none(),
                "nothing to set again"
            );
        }
        if minute() != at && attempt < 3 {
            continue;
        }
        assert_eq!(expiry().await, first, "the session was not written again");
        assert!(first > time::OffsetDateTime::now_utc() + time::Duration::minutes(20));
        break;
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn wrong_password_is_401_and_audited(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.add_user("dave", Role::Viewer, "dave-password-1").await;
    let c = app.client();
    for (user, pw) in [
        ("dave", "not-the-password"),
        ("nobody", "whatever-password"),
    ] {
        let res = app.login(&c, user, pw).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let body = json(res).await;
        assert_eq!(
            body["error"], "invalid user name or password",
            "same answer for unknown users"
        );
    }
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed' AND NOT success",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(failed, 2);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn five_failures_lock_the_user_name(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.add_user("erin", Role::Viewer, "erin-password-1").await;
    let c = app.client();
    for i in 0..5 {
        let res = app.login(&c, "erin", "wrong-password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let res = app.login(&c, "erin", "erin-password-1").await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((250..=300).contains(&retry), "about 5 minutes: {retry}");
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("too many attempts"));

    // Another user is not affected by erin's lock (the address limit is higher).
    app.add_user("frank", Role::Viewer, "frank-password-1")
        .await;
    assert_eq!(
        app.login(&c, "frank", "frank-password-1").await.status(),
        StatusCode::OK
    );

    // When the lock has passed, the right password works again.
    sqlx::query("UPDATE login_throttle SET locked_until = now() - interval '1 s', window_start = now() - interval '10 min'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        app.login(&c, "erin", "erin-password-1").await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn many_failures_from_one_address_lock_the_address(pool: PgPool) {
    let mut cfg = common::test_config();
    cfg.login_ip_max_failures = 8;
    let app = TestApp::spawn_with(pool, cfg).await;
    app.add_user("gina", Role::Viewer, "gina-password-1").await;
    let c = app.client();
    for i in 0..8 {
        let res = app.login(&c, &format!("guess{i}"), "wrong-password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.login(&c, "gina", "gina-password-1").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn cross_site_posts_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.add_user("hank", Role::Viewer, "hank-password-1").await;
    let c = app.client();
    let body = serde_json::json!({"username": "hank", "password": "hank-password-1"});
    let res = c
        .post(app.url("/api/v1/auth/login"))
        .header("origin", "https://evil.example")
        .json(&body)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("cross-site"));
    let res = c
        .post(app.url("/sfn/auth/logout"))
        .header("sec-fetch-site", "cross-site")
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = c
        .post(app.url("/api/v1/auth/login"))
        .header("origin", app.base.clone())
        .json(&body)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK, "same-origin is fine");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn roles_are_enforced_on_the_server(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let viewer = app.signed_in("vera", Role::Viewer).await;
    let operator = app.signed_in("otto", Role::Operator).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let anon = app.client();
    let new_user =
        serde_json::json!({"username": "newbie", "role": "viewer", "password": "newbie-password"});

    for (client, want) in [
        (&anon, 401),
        (&viewer, 403),
        (&operator, 403),
        (&admin, 200),
    ] {
        let res = client.get(app.url("/api/v1/users")).call().await;
        assert_eq!(res.status().as_u16(), want);
        let res = client.get(app.url("/api/v1/audit")).call().await;
        assert_eq!(res.status().as_u16(), want);
    }
    for (client, want) in [(&anon, 401), (&viewer, 403), (&operator, 403)] {
        let res = client
            .post(app.url("/api/v1/users"))
            .json(&new_user)
            .call()
            .await;
        assert_eq!(res.status().as_u16(), want);
        // The server functions behind the pages check too.
        let res = client.post(app.url("/sfn/users/list")).call().await;
        assert_eq!(res.status().as_u16(), want);
    }
    let res = admin
        .post(app.url("/api/v1/users"))
        .json(&new_user)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(json(res).await["role"], "viewer");
    let res = admin
        .post(app.url("/api/v1/users"))
        .json(&new_user)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    let users = json(admin.get(app.url("/api/v1/users")).call().await).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ada", "newbie", "otto", "vera"]);
    assert!(
        !users.to_string().contains("argon2"),
        "hashes never leave the server"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn disabling_or_resetting_ends_sessions(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = app.signed_in("root", Role::Admin).await;
    let victim = app.signed_in("ivan", Role::Operator).await;
    let other = app.signed_in("judy", Role::Viewer).await;

    let res = admin
        .patch(app.url("/api/v1/users/ivan"))
        .json(&serde_json::json!({"disabled": true}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        victim.get(app.url("/api/v1/auth/me")).call().await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&app.client(), "ivan", "ivan-password-123")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let res = admin
        .patch(app.url("/api/v1/users/judy"))
        .json(&serde_json::json!({"password": "a-brand-new-password"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        other.get(app.url("/api/v1/auth/me")).call().await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&app.client(), "judy", "a-brand-new-password")
            .await
            .status(),
        StatusCode::OK
    );

    // Role changes apply at once, to the live session.
    let judy = app.client();
    app.login(&judy, "judy", "a-brand-new-password").await;
    admin
        .patch(app.url("/api/v1/users/judy"))
        .json(&serde_json::json!({"role": "admin"}))
        .call()
        .await;
    assert_eq!(
        judy.get(app.url("/api/v1/users")).call().await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_last_admin_cannot_be_removed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = app.signed_in("solo", Role::Admin).await;
    for change in [
        serde_json::json!({"role": "viewer"}),
        serde_json::json!({"disabled": true}),
    ] {
        let res = admin
            .patch(app.url("/api/v1/users/solo"))
            .json(&change)
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert!(json(res).await["error"]
            .as_str()
            .unwrap()
            .contains("last active admin"));
    }
    let res = admin
        .patch(app.url("/api/v1/users/ghost"))
        .json(&serde_json::json!({"role": "viewer"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn stored_hashes_are_argon2id_owasp(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.add_user("kim", Role::Viewer, "kim-password-1").await;
    let phc: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'kim'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn first_start_creates_one_admin_once(pool: PgPool) {
    use app::auth::service::{ensure_first_admin, FirstAdmin};
    let (a, b) = tokio::join!(
        ensure_first_admin(&pool, None),
        ensure_first_admin(&pool, None)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let created: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            FirstAdmin::Created {
                generated_password: Some(p),
            } => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one process creates the admin: {outcomes:?}"
    );
    assert!(outcomes.contains(&FirstAdmin::Existing));
    let password = created[0].clone();
    assert_eq!(password.len(), 20);

    let app = TestApp::spawn(pool.clone()).await;
    let res = app.login(&app.client(), "admin", &password).await;
    assert_eq!(json(res).await["role"], "admin");
    assert_eq!(
        ensure_first_admin(&pool, Some("another-password"))
            .await
            .unwrap(),
        FirstAdmin::Existing
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn first_start_takes_the_configured_password(pool: PgPool) {
    use app::auth::service::{ensure_first_admin, FirstAdmin};
    let err = ensure_first_admin(&pool, Some("short")).await.unwrap_err();
    assert!(err.to_string().contains("OPSDECK_ADMIN_PASSWORD"), "{err}");
    let out = ensure_first_admin(&pool, Some("configured-password"))
        .await
        .unwrap();
    assert_eq!(
        out,
        FirstAdmin::Created {
            generated_password: None
        }
    );
    let app = TestApp::spawn(pool).await;
    assert_eq!(
        app.login(&app.client(), "admin", "configured-password")
            .await
            .status(),
        StatusCode::OK
    );
}
