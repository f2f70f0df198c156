//! A read replica for real: a PostgreSQL streaming replica of the test cluster (scripts/test.sh
//! starts it with pg_basebackup; `OPSDECK_TEST_REPLICA_URL`). Heavy reads (series, log search,
//! analytics, incident context) go to it while it keeps up; when its replay stops and it falls
//! behind more than `read_max_lag`, or when it cannot be reached, they go back to the primary,
//! and the detailed health says so.

mod common;

use app::auth::Role;
use app::config::{Interval, Secret};
use common::{json, Call, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;

fn replica_base() -> String {
    std::env::var("OPSDECK_TEST_REPLICA_URL").expect(
        "OPSDECK_TEST_REPLICA_URL: the URL (without a database) of a streaming replica of the \
         test PostgreSQL; scripts/test.sh starts one",
    )
}

/// How long the replica may take to catch up. Replay is usually well under a second behind,
/// but the test binaries before this one write a lot of WAL on a two-core CI machine, and the
/// replica replays it all (it once took more than 10 s). The product is judged on what it does
/// once the replica has caught up, not on how fast replay is.
const CATCH_UP: Duration = Duration::from_secs(120);

/// This test's database on the replica, once replication has created it there and replayed
/// everything written so far (the migrations included: the last table they create is read soon).
async fn replica_url(pool: &PgPool) -> String {
    let (db, lsn): (String, String) =
        sqlx::query_as("SELECT current_database(), pg_current_wal_lsn()::text")
            .fetch_one(pool)
            .await
            .unwrap();
    let url = format!("{}/{db}", replica_base());
    let start = std::time::Instant::now();
    let mut last = String::from("no attempt yet");
    while start.elapsed() < CATCH_UP {
        match PgConnection::connect(&url).await {
            Ok(mut c) => {
                let (replayed, ready): (Option<String>, bool) = sqlx::query_as(
                    "SELECT pg_last_wal_replay_lsn()::text,
                            coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
                )
                .bind(&lsn)
                .fetch_one(&mut c)
                .await
                .unwrap_or((None, false));
                if ready {
                    return url;
                }
                last = format!("connected; replayed up to {replayed:?}, waiting for {lsn}");
            }
            Err(e) => last = format!("cannot connect yet: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the test database did not reach the replica in {} s ({last})",
        CATCH_UP.as_secs()
    );
}

/// Checks the replica until it is `ok` (caught up within `read_max_lag`), or panics with the
/// last health seen.
async fn until_replica_ok(state: &app::state::AppState, pool: &PgPool) {
    let start = std::time::Instant::now();
    loop {
        let h = state.reads.check_replica(pool).await.unwrap();
        if h.status == "ok" {
            return;
        }
        assert!(
            start.elapsed() < CATCH_UP,
            "the replica did not catch up in {} s: {h:?}",
            CATCH_UP.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn health(app: &TestApp) -> Value {
    json(
        app.client()
            .get(app.url("/api/v1/health?detailed=true"))
            .call()
            .await,
    )
    .await
}

/// Whether a heavy read's connection is the replica's.
async fn heavy_is_replica(state: &app::state::AppState) -> bool {
    let mut c = state.reads.heavy().await.unwrap();
    sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn heavy_reads_go_to_a_replica_that_keeps_up(pool: PgPool) {
    let url = replica_url(&pool).await;
    let mut config = common::test_config();
    config.database_read_url = Some(Secret::new(url.clone()));
    config.read_max_lag = Interval(1);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let state = app.state.clone();
    until_replica_ok(&state, &pool).await;
    assert!(heavy_is_replica(&state).await);
    let before = health(&app).await["components"]["replica"]["replica_reads"]
        .as_u64()
        .unwrap();

    // A page's data through the API: a series read, answered by the replica.
    common::sample(
        &pool,
        "web-1",
        "cpu_usage_percent",
        42.0,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let viewer = app.signed_in("watcher", Role::Viewer).await;
    let res = viewer
        .get(app.url("/api/v1/metrics/series?host=web-1&metric=cpu_usage_percent&from=now-1h"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = health(&app).await;
    assert_eq!(h["components"]["replica"]["status"], "ok", "{h}");
    assert!(
        h["components"]["replica"]["replica_reads"]
            .as_u64()
            .unwrap()
            > before,
        "the series was read on the replica: {h}"
    );
    // Nothing of the connection string shows.
    assert!(!h.to_string().contains("127.0.0.1"), "{h}");

    // Replay stops on the replica while the primary goes on writing: past read_max_lag, heavy
    // reads go back to the primary, and the health says why.
    let mut on_replica = PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut on_replica)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE written_meanwhile (x int)")
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sqlx::query("INSERT INTO written_meanwhile VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    let h = state.reads.check_replica(&pool).await.unwrap();
    assert_eq!(h.status, "lagging", "{h:?}");
    assert!(h.lag_seconds.unwrap() > 1.0, "{h:?}");
    assert!(!heavy_is_replica(&state).await, "back on the primary");
    let h = health(&app).await;
    assert_eq!(h["components"]["replica"]["status"], "lagging", "{h}");
    assert_eq!(h["status"], "ok", "the primary still serves: {h}");

    // A migration the replica has not replayed: however generous read_max_lag is, its new
    // tables are not there yet, so heavy reads stay on the primary until it is.
    let mut patient = common::test_config();
    patient.database_read_url = Some(Secret::new(url.clone()));
    patient.read_max_lag = Interval(3600);
    let patient = common::state_with(pool.clone(), patient);
    let h = patient.reads.check_replica(&pool).await.unwrap();
    assert_eq!(h.status, "ok", "within an hour's lag: {h:?}");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'a migration after this build', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let h = patient.reads.check_replica(&pool).await.unwrap();
    assert_eq!(h.status, "lagging", "{h:?}");
    assert!(
        h.error
            .as_deref()
            .unwrap_or_default()
            .contains("migration 99991231000000"),
        "{h:?}"
    );
    assert!(!heavy_is_replica(&patient).await, "back on the primary");

    // Replay resumes: back on the replica once it has caught up.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut on_replica)
        .await
        .unwrap();
    until_replica_ok(&state, &pool).await;
    assert!(heavy_is_replica(&state).await);
    until_replica_ok(&patient, &pool).await;
    assert!(heavy_is_replica(&patient).await);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_replica_that_is_down_leaves_reads_on_the_primary(pool: PgPool) {
    let mut config = common::test_config();
    // Nothing listens on port 1.
    config.database_read_url = Some(Secret::new("postgres://opsdeck:pw@127.0.0.1:1/opsdeck"));
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let state = app.state.clone();
    let h = state.reads.check_replica(&pool).await.unwrap();
    assert_eq!(h.status, "down", "{h:?}");
    assert!(!heavy_is_replica(&state).await);
    let h = health(&app).await;
    assert_eq!(h["components"]["replica"]["status"], "down", "{h}");
    let error = h["components"]["replica"]["error"].as_str().unwrap();
    assert!(!error.contains("pw") && !error.contains(":1/"), "{error}");
    // A primary given as the replica is refused: reads there would not be a replica's.
    let mut config = common::test_config();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let primary = std::env::var("DATABASE_URL").unwrap();
    let primary = format!("{}/{db}", primary.rsplit_once('/').unwrap().0);
    config.database_read_url = Some(Secret::new(primary));
    let state = common::state_with(pool.clone(), config);
    let h = state.reads.check_replica(&pool).await.unwrap();
    assert_eq!(h.status, "down", "{h:?}");
    assert!(h.error.unwrap().contains("not a replica"));
}
