//! Two real `opsdeck serve` processes on one database, as behind a load balancer: a session
//! made on one works on the other, a scheduled backup due at start runs exactly once, and an
//! alert that fires is evaluated and notified once.

mod common;
use common::Call;

use axum::extract::State;
use common::procs::{self, db_url, ADMIN_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn serve(url: &str, host: &str, data: &std::path::Path) -> procs::Serve {
    procs::serve(url, host, data, procs::free_port(), &[]).await
}

#[derive(Clone, Default)]
struct Hook(Arc<Mutex<Vec<Value>>>);

async fn hook(State(h): State<Hook>, body: axum::Json<Value>) -> &'static str {
    h.0.lock().unwrap().push(body.0);
    "ok"
}

#[sqlx::test(migrations = "../migrations")]
async fn two_processes_share_sessions_jobs_and_alerts(pool: PgPool) {
    let url = db_url(&pool).await;
    let data = std::env::temp_dir().join(format!("opsdeck-two-{}", std::process::id()));
    // A backup target due before either process starts: both schedulers look at once.
    sqlx::query(
        "INSERT INTO backup_targets (name, database_url, schedule, next_run_at)
         VALUES ('own-twice', NULL, '0 3 * * *', now() - interval '1 minute')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (a, b) = tokio::join!(serve(&url, "p1", &data), serve(&url, "p2", &data));

    // A session made on A works on B.
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let res = c
        .post(format!("{}/api/v1/auth/login", a.base))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let me = c.get(format!("{}/api/v1/auth/me", b.base)).call().await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["username"], "admin");

    // An alert on A's host: fires once, notified once, though both processes run rounds.
    let h = Hook::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(h.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let res = c
        .post(format!("{}/api/v1/alerts/channels", a.base))
        .json(&json!({"name": "hook", "kind": "webhook", "url": hook_url, "group_wait_seconds": 0}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = c
        .post(format!("{}/api/v1/alerts/rules", b.base))
        .json(
            &json!({"name": "p1 cpu", "kind": "metric", "host": "p1", "metric": "cpu_usage_percent",
                      "op": ">=", "threshold": 0, "notify": ["hook"]}),
        )
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    for _ in 0..100 {
        if !h.0.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more rounds in both processes: still one firing, one notification.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let bodies = h.0.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        (bodies[0]["rule"].as_str(), bodies[0]["host"].as_str()),
        (Some("p1 cpu"), Some("p1"))
    );
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alert_events WHERE rule_name = 'p1 cpu'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(events, 1);

    // The backup that was due ran once.
    let runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM backup_runs r JOIN backup_targets t ON t.id = r.target_id WHERE t.name = 'own-twice'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(runs, 1);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&data);
}
