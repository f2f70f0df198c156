//! Backups against real PostgreSQL with real pg_dump and pg_restore: a round trip restores equal
//! data, a corrupted dump is refused, a restore that fails half-way changes nothing, roles and
//! passwords guard restores, a killed backup leaves no file that passes as complete, schedules
//! start one run however many processes look, and retention expires the right files.

mod common;

use app::auth::Role;
use common::{db_url, json, own_db_url, Call, TestApp};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use std::path::PathBuf;
use std::time::Duration;

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch database with data of many types in two schemas, dropped when the test ends.
struct Fixture {
    name: String,
}

impl Fixture {
    async fn new(admin: &PgPool, rows: i64) -> Self {
        let name = unique("shop");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin)
            .await
            .unwrap();
        let mut c = PgConnection::connect(&db_url(&name)).await.unwrap();
        for sql in [
            "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE, created timestamptz NOT NULL, prefs jsonb, avatar bytea)",
            "CREATE SCHEMA sales",
            "CREATE TABLE sales.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer bigint REFERENCES customers(id), total numeric(12,2), note text)",
            "CREATE TABLE empty_table (x int)",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        sqlx::query(
            "INSERT INTO customers SELECT g, 'Kund ' || g || ' ü€😀', 'c' || g || '@example.com', '2026-01-01'::timestamptz + g * interval '1 min',
                    jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g)), decode(md5(g::text), 'hex')
             FROM generate_series(1, $1) g",
        )
        .bind(rows)
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO sales.orders (customer, total, note) SELECT 1 + g % $1, g * 1.25, CASE WHEN g % 3 = 0 THEN NULL ELSE E'line\\nbreak\\ttab' END
             FROM generate_series(1, $1 * 2) g",
        )
        .bind(rows)
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        Fixture { name }
    }

    fn url(&self) -> String {
        db_url(&self.name)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Best effort, on a connection of its own (the test's pool belongs to its runtime).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let Ok(url) = std::env::var("DATABASE_URL") else {
                    return;
                };
                let Ok(mut c) = PgConnection::connect(&url).await else {
                    return;
                };
                for db in [name.clone(), format!("{name}_copy")] {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
                let _ = c.close().await;
            });
        })
        .join();
    }
}

/// Every table's rows as one fingerprint: equal fingerprints, equal contents.
async fn fingerprint(url: &str) -> Vec<(String, i64, String)> {
    let mut c = PgConnection::connect(url).await.unwrap();
    let mut out = vec![];
    for t in ["public.customers", "sales.orders", "public.empty_table"] {
        let row: (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t"
        ))
        .fetch_one(&mut c)
        .await
        .unwrap();
        out.push((t.to_string(), row.0, row.1.unwrap_or_default()));
    }
    c.close().await.unwrap();
    out
}

fn config_for(pool_db_url: String) -> app::config::Config {
    let mut c = common::test_config();
    c.database_url = app::config::Secret::new(pool_db_url);
    c.data_dir = std::env::temp_dir().join(unique("opsdeck-backups"));
    c
}

async fn spawn(pool: &PgPool) -> (TestApp, app::config::Config) {
    let cfg = config_for(own_db_url(pool).await);
    // As `opsdeck serve` does at start.
    app::backups::service::ensure_own_target(pool)
        .await
        .unwrap();
    let app = TestApp::spawn_with(pool.clone(), cfg.clone()).await;
    (app, cfg)
}

async fn add_target(app: &TestApp, admin: &Client, name: &str, url: &str) -> Value {
    let res = admin
        .post(app.url("/api/v1/backups/targets"))
        .json(&json!({"name": name, "database_url": url}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    json(res).await
}

async fn start_backup(app: &TestApp, who: &Client, target: &str) -> i64 {
    let res = who
        .post(app.url("/api/v1/backups/run"))
        .json(&json!({"target": target}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    json(res).await["id"].as_i64().unwrap()
}

async fn wait_run(app: &TestApp, who: &Client, id: i64) -> Value {
    for _ in 0..600 {
        let run = json(
            who.get(app.url(&format!("/api/v1/backups/{id}")))
                .call()
                .await,
        )
        .await;
        // Done and verified (the check follows the run at once).
        if run["status"] != "running"
            && (run["status"] == "failed" || run["verify_detail"].is_string())
        {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("backup {id} did not finish");
}

async fn wait_restore(app: &TestApp, who: &Client, id: i64) -> Value {
    for _ in 0..600 {
        let job = json(
            who.get(app.url(&format!("/api/v1/restores/{id}")))
                .call()
                .await,
        )
        .await;
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("restore {id} did not finish");
}

fn dump_path(cfg: &app::config::Config, run: &Value) -> PathBuf {
    cfg.data_dir
        .join("backups")
        .join(run["target"].as_str().unwrap())
        .join(run["file"].as_str().unwrap())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_round_trip_restores_equal_data(pool: PgPool) {
    let fx = Fixture::new(&pool, 2000).await;
    let (app, cfg) = spawn(&pool).await;
    let admin_pw = "ada-password-123";
    app.add_user("ada", Role::Admin, admin_pw).await;
    let admin = app.client();
    assert_eq!(
        app.login(&admin, "ada", admin_pw).await.status(),
        StatusCode::OK
    );
    let operator = app.signed_in("olga", Role::Operator).await;

    let target = add_target(&app, &admin, "shop", &fx.url()).await;
    assert_eq!(target["database"], fx.name);
    assert!(!target.to_string().contains("password="), "{target}");
    let listed = json(admin.get(app.url("/api/v1/backups/targets")).call().await).await;
    let secret = url::Url::parse(&fx.url())
        .unwrap()
        .password()
        .unwrap()
        .to_string();
    assert!(
        !listed.to_string().contains(&secret),
        "the password never comes back"
    );
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "opsdeck" || t["name"] == "shop"));

    let id = start_backup(&app, &operator, "shop").await;
    let run = wait_run(&app, &operator, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["verified"], true, "{run}");
    let manifest = run["manifest"].as_array().unwrap();
    let rows = |t: &str| {
        manifest
            .iter()
            .find(|m| {
                format!(
                    "{}.{}",
                    m["schema"].as_str().unwrap(),
                    m["table"].as_str().unwrap()
                ) == t
            })
            .map(|m| m["rows"].as_i64().unwrap())
    };
    assert_eq!(rows("public.customers"), Some(2000));
    assert_eq!(rows("sales.orders"), Some(4000));
    assert_eq!(rows("public.empty_table"), Some(0));
    let path = dump_path(&cfg, &run);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as i64, run["size"].as_i64().unwrap());
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        run["sha256"].as_str().unwrap()
    );
    assert!(run["pg_dump_version"].as_str().unwrap().contains("pg_dump"));
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty());

    // A test restore proves it restorable, and its scratch database is gone afterwards, with
    // the one a test restore killed midway left behind (no lock held, nobody connected).
    let left_over = format!("opsdeck_verify_{}_999_deadbeef", fx.name);
    sqlx::query(&format!("CREATE DATABASE {left_over}"))
        .execute(&pool)
        .await
        .unwrap();
    let v = operator
        .post(app.url(&format!("/api/v1/backups/{id}/verify?test_restore=true")))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("equal to the manifest"),
        "{v}"
    );
    let scratch: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'opsdeck\\_verify\\_' || $1 || '\\_%'",
    )
    .bind(&fx.name)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        scratch,
        Vec::<String>::new(),
        "no scratch database of this target is left"
    );
    let targets = json(admin.get(app.url("/api/v1/backups/targets")).call().await).await;
    let shop = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "shop")
        .unwrap()
        .clone();
    assert!(shop["last_verified_at"].is_string(), "{shop}");

    // Restore into a new database: the same contents, not only the same counts.
    let res = admin
        .post(app.url(&format!("/api/v1/backups/{id}/restore")))
        .json(&json!({"password": admin_pw, "confirm": fx.name, "mode": "new_database", "new_database": format!("{}_copy", fx.name)}))
        .call().await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = json(res).await["id"].as_i64().unwrap();
    let done = wait_restore(&app, &admin, job).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        fingerprint(&fx.url()).await,
        fingerprint(&db_url(&format!("{}_copy", fx.name))).await
    );
    // Restoring again into the same name is refused before anything happens.
    let res = admin
        .post(app.url(&format!("/api/v1/backups/{id}/restore")))
        .json(&json!({"password": admin_pw, "confirm": fx.name, "mode": "new_database", "new_database": format!("{}_copy", fx.name)}))
        .call().await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // The restore history lists it (newest first), for this target and in all.
    for query in ["?target=shop", "", "?limit=1"] {
        let history = json(
            operator
                .get(app.url(&format!("/api/v1/restores{query}")))
                .call()
                .await,
        )
        .await;
        let first = &history.as_array().unwrap()[0];
        assert_eq!(first["id"].as_i64(), Some(job), "{query}: {history}");
        assert_eq!(first["target"], "shop");
        assert_eq!(first["status"], "succeeded");
        assert_eq!(first["database"], format!("{}_copy", fx.name));
    }
    let none = json(
        operator
            .get(app.url("/api/v1/restores?target=elsewhere"))
            .call()
            .await,
    )
    .await;
    assert_eq!(none, json!([]));
    let bad = operator
        .get(app.url("/api/v1/restores?limit=0"))
        .call()
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // The audit log has every step.
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'backup.%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    for a in [
        "backup.target.create",
        "backup.run",
        "backup.test_restore",
        "backup.restore.start",
        "backup.restore.finish",
        "backup.restore.refused",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    // The download is the file.
    let res = admin
        .get(app.url(&format!("/api/v1/backups/{id}/download")))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().len(), bytes.len());
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn restores_need_an_admin_the_password_and_the_name(pool: PgPool) {
    let fx = Fixture::new(&pool, 10).await;
    let (app, cfg) = spawn(&pool).await;
    app.add_user("ada", Role::Admin, "ada-password-123").await;
    let admin = app.client();
    app.login(&admin, "ada", "ada-password-123").await;
    let operator = app.signed_in("olga", Role::Operator).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    add_target(&app, &admin, "shop", &fx.url()).await;

    // Viewers read but do not run; nobody but admins sees targets over the API.
    let res = viewer
        .post(app.url("/api/v1/backups/run"))
        .json(&json!({"target": "shop"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = operator
        .get(app.url("/api/v1/backups/targets"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = operator
        .post(app.url("/api/v1/backups/run"))
        .json(&json!({"target": "nope"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // One run at a time per target, even across processes: hold the lock as another would.
    let target_id: i64 = sqlx::query_scalar("SELECT id FROM backup_targets WHERE name = 'shop'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut other = PgConnection::connect(&own_db_url(&pool).await)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(format!("opsdeck.backup.{target_id}"))
        .execute(&mut other)
        .await
        .unwrap();
    let res = operator
        .post(app.url("/api/v1/backups/run"))
        .json(&json!({"target": "shop"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("already running"));
    other.close().await.unwrap();

    let id = start_backup(&app, &operator, "shop").await;
    assert_eq!(wait_run(&app, &viewer, id).await["status"], "succeeded");
    let list = json(
        viewer
            .get(app.url("/api/v1/backups?target=shop&status=succeeded"))
            .call()
            .await,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let res = viewer
        .get(app.url("/api/v1/backups?status=bogus"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let body = |pw: &str, confirm: &str| json!({"password": pw, "confirm": confirm, "mode": "new_database"});
    let restore = |c: &Client, b: Value| {
        let c = c.clone();
        let url = app.url(&format!("/api/v1/backups/{id}/restore"));
        async move { c.post(url).json(&b).call().await }
    };
    assert_eq!(
        restore(&viewer, body("vic-password-123", &fx.name))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        restore(&operator, body("olga-password-123", &fx.name))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let res = restore(&admin, body("wrong-password-1", &fx.name)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("password is wrong"));
    let res = restore(&admin, body("ada-password-123", "not-the-name")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains(&fx.name));
    let res = restore(
        &admin,
        json!({"password": "ada-password-123", "confirm": fx.name, "mode": "sideways"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = restore(&admin, json!({"password": "ada-password-123", "confirm": fx.name, "mode": "new_database", "new_database": "Robert'); DROP"})).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM restore_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "nothing was started");
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'backup.restore.refused' AND NOT success",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(refused, 4);

    // Opsdeck's own database: into a new database only.
    let own = start_backup(&app, &operator, "opsdeck").await;
    let run = wait_run(&app, &operator, own).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let own_db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let res = admin
        .post(app.url(&format!("/api/v1/backups/{own}/restore")))
        .json(&json!({"password": "ada-password-123", "confirm": own_db, "mode": "in_place"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The same database added again under another name and spelling of its address: judged by
    // what it is, not by what it is called.
    let alias_url = own_db_url(&pool).await.replace("127.0.0.1", "localhost");
    add_target(&app, &admin, "opsdeck-alias", &alias_url).await;
    let alias = start_backup(&app, &operator, "opsdeck-alias").await;
    let run = wait_run(&app, &operator, alias).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let body = admin
        .post(app.url(&format!("/api/v1/backups/{alias}/restore")))
        .json(&json!({"password": "ada-password-123", "confirm": own_db, "mode": "in_place"}))
        .expect_json(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("the database Opsdeck runs on"),
        "{body}"
    );
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM restore_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        jobs, 0,
        "no restore was started over Opsdeck's own database"
    );
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_corrupted_dump_is_refused_and_a_failed_restore_changes_nothing(pool: PgPool) {
    let fx = Fixture::new(&pool, 500).await;
    let (app, cfg) = spawn(&pool).await;
    app.add_user("ada", Role::Admin, "ada-password-123").await;
    let admin = app.client();
    app.login(&admin, "ada", "ada-password-123").await;
    add_target(&app, &admin, "shop", &fx.url()).await;
    let id = start_backup(&app, &admin, "shop").await;
    let run = wait_run(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    // Changes after the backup, which an in-place restore would undo.
    let mut c = PgConnection::connect(&fx.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO customers VALUES (100000, 'after the backup', NULL, now(), NULL, NULL)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let before = fingerprint(&fx.url()).await;
    let in_place = json!({"password": "ada-password-123", "confirm": fx.name, "mode": "in_place"});

    // 1. A damaged file: verification says so, the restore is refused, nothing changes.
    let path = dump_path(&cfg, &run);
    let original = std::fs::read(&path).unwrap();
    let mut damaged = original.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    std::fs::write(&path, &damaged).unwrap();
    let v = json(
        admin
            .post(app.url(&format!("/api/v1/backups/{id}/verify")))
            .call()
            .await,
    )
    .await;
    assert_eq!(v["ok"], false);
    assert!(
        v["detail"].as_str().unwrap().contains("checksum mismatch"),
        "{v}"
    );
    let res = admin
        .post(app.url(&format!("/api/v1/backups/{id}/restore")))
        .json(&in_place)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = wait_restore(&app, &admin, json(res).await["id"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["detail"]
            .as_str()
            .unwrap()
            .contains("checksum mismatch"),
        "{job}"
    );
    assert!(
        job["pre_restore_backup_id"].is_null(),
        "refused before anything else"
    );
    assert_eq!(fingerprint(&fx.url()).await, before);
    std::fs::write(&path, &original).unwrap();

    // 2. A restore that fails half-way (a view elsewhere depends on a table the restore must
    //    replace): one transaction, rolled back; the database is exactly as it was.
    sqlx::query("CREATE SCHEMA reports")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("CREATE VIEW reports.big_orders AS SELECT * FROM sales.orders WHERE total > 100")
        .execute(&mut c)
        .await
        .unwrap();
    let before = fingerprint(&fx.url()).await;
    let res = admin
        .post(app.url(&format!("/api/v1/backups/{id}/restore")))
        .json(&in_place)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = wait_restore(&app, &admin, json(res).await["id"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["detail"].as_str().unwrap().contains("as it was"),
        "{job}"
    );
    assert_eq!(fingerprint(&fx.url()).await, before);
    let pre = job["pre_restore_backup_id"]
        .as_i64()
        .expect("a pre-restore backup was taken");
    let pre_run = json(
        admin
            .get(app.url(&format!("/api/v1/backups/{pre}")))
            .call()
            .await,
    )
    .await;
    assert_eq!(pre_run["status"], "succeeded");
    assert_eq!(pre_run["trigger"], "pre_restore");

    // 3. Without the obstacle the in-place restore succeeds and brings back the backup's data.
    sqlx::query("DROP SCHEMA reports CASCADE")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let res = admin
        .post(app.url(&format!("/api/v1/backups/{id}/restore")))
        .json(&in_place)
        .call()
        .await;
    let job = wait_restore(&app, &admin, json(res).await["id"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let n: i64 = {
        let mut c = PgConnection::connect(&fx.url()).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM customers WHERE id = 100000")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(n, 0, "the row added after the backup is gone");
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_killed_backup_leaves_no_file_that_passes_as_complete(pool: PgPool) {
    // Big enough that pg_dump runs for a while.
    let fx = Fixture::new(&pool, 400_000).await;
    let cfg = config_for(own_db_url(&pool).await);
    sqlx::query("INSERT INTO backup_targets (name, database_url) VALUES ('shop', $1)")
        .bind(fx.url())
        .execute(&pool)
        .await
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["backup", "run", "shop"])
        .env("DATABASE_URL", own_db_url(&pool).await)
        .env("OPSDECK_DATA_DIR", &cfg.data_dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = cfg.data_dir.join("backups").join("shop");
    let partial_with_data = || {
        std::fs::read_dir(&dir).ok().is_some_and(|d| {
            d.filter_map(|e| e.ok()).any(|e| {
                e.file_name().to_string_lossy().ends_with(".partial")
                    && e.metadata().map(|m| m.len() > 0).unwrap_or(false)
            })
        })
    };
    for _ in 0..300 {
        if partial_with_data() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(partial_with_data(), "the dump started writing");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let dumps = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".dump"))
            .collect()
    };
    assert!(
        dumps().is_empty(),
        "no complete-looking file: {:?}",
        dumps()
    );
    let status: String = sqlx::query_scalar("SELECT status FROM backup_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        status, "running",
        "the row still says running until the heartbeat is missed"
    );

    // A minute later (simulated by ageing the heartbeat), any process marks it failed and
    // removes the partial file.
    sqlx::query("UPDATE backup_runs SET heartbeat_at = now() - interval '2 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    let state = app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool.clone(),
        cfg.clone(),
    );
    assert_eq!(app::backups::service::fail_stale(&state).await.unwrap(), 1);
    let (status, error): (String, String) = sqlx::query_as("SELECT status, error FROM backup_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    assert!(error.contains("stopped while this backup ran"), "{error}");
    assert!(!partial_with_data() && std::fs::read_dir(&dir).unwrap().count() == 0);
    // pg_dump died with its parent (no orphan still writing).
    let orphans = std::process::Command::new("pgrep")
        .args(["-f", &format!("pg_dump.*{}", fx.name)])
        .output()
        .unwrap();
    assert!(orphans.stdout.is_empty(), "pg_dump outlived opsdeck");
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_due_schedule_starts_one_run_however_many_processes_look(pool: PgPool) {
    let fx = Fixture::new(&pool, 10).await;
    let cfg = config_for(own_db_url(&pool).await);
    let state = app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool.clone(),
        cfg.clone(),
    );
    let mut new = app::backups::service::NewTarget {
        name: "shop".into(),
        database_url: fx.url(),
        schedule: Some("0 2 * * *".into()),
        timezone: Some("Europe/Paris".into()),
        keep_days: None,
        keep_min: None,
        verify_every_hours: None,
    };
    let info = app::backups::service::create_target(&pool, new.clone())
        .await
        .unwrap();
    let next = info.next_run_at.expect("a next run");
    assert!(next > time::OffsetDateTime::now_utc());
    new.name = "bad".into();
    new.schedule = Some("0 25 * * *".into());
    let err = app::backups::service::create_target(&pool, new.clone())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("hour: 25 is out of range"),
        "{err}"
    );
    new.schedule = None;
    new.timezone = Some("Mars/Olympus".into());
    assert!(app::backups::service::create_target(&pool, new)
        .await
        .unwrap_err()
        .to_string()
        .contains("time zone"));

    sqlx::query(
        "UPDATE backup_targets SET next_run_at = now() - interval '1 minute' WHERE name = 'shop'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let (a, b) = tokio::join!(
        app::backups::service::start_due_runs(&state, now),
        app::backups::service::start_due_runs(&state, now)
    );
    assert_eq!(
        a.unwrap().len() + b.unwrap().len(),
        1,
        "one run for one due time"
    );
    let next: time::OffsetDateTime =
        sqlx::query_scalar("SELECT next_run_at FROM backup_targets WHERE name = 'shop'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(next > now);
    // Paris 02:00 is 01:00 or 00:00 UTC.
    assert!(next.hour() == 1 || next.hour() == 0, "{next}");
    for _ in 0..300 {
        let s: String = sqlx::query_scalar("SELECT status FROM backup_runs")
            .fetch_one(&pool)
            .await
            .unwrap();
        if s != "running" {
            assert_eq!(s, "succeeded");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn retention_expires_old_files_and_keeps_history(pool: PgPool) {
    let cfg = config_for(own_db_url(&pool).await);
    let state = app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool.clone(),
        cfg.clone(),
    );
    let tid: i64 = sqlx::query_scalar("INSERT INTO backup_targets (name, database_url, keep_days, keep_min) VALUES ('old', 'postgres://x@h/db', 30, 2) RETURNING id")
        .fetch_one(&pool)
        .await
        .unwrap();
    let dir = cfg.data_dir.join("backups/old");
    std::fs::create_dir_all(&dir).unwrap();
    // Six successes 10 to 60 days old (the 50-day one test-restored), and one failure.
    let mut files = vec![];
    for (i, days) in [10, 20, 29, 40, 50, 60].into_iter().enumerate() {
        let path = dir.join(format!("{i}.dump"));
        std::fs::write(&path, b"x").unwrap();
        sqlx::query(
            "INSERT INTO backup_runs (target_id, trigger, status, started_at, finished_at, path, sha256, size, test_restore_ok)
             VALUES ($1, 'schedule', 'succeeded', now() - make_interval(days => $2), now() - make_interval(days => $2), $3, 'x', 1, $4)",
        )
        .bind(tid)
        .bind(days)
        .bind(path.to_string_lossy().as_ref())
        .bind(days == 50)
        .execute(&pool)
        .await
        .unwrap();
        files.push(path);
    }
    sqlx::query("INSERT INTO backup_runs (target_id, trigger, status, started_at, finished_at) VALUES ($1, 'schedule', 'failed', now() - interval '90 days', now() - interval '90 days')")
        .bind(tid)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        app::backups::service::apply_all_retention(&state)
            .await
            .unwrap(),
        2
    );
    let exists: Vec<bool> = files.iter().map(|f| f.exists()).collect();
    // Kept: 10, 20 and 29 days (young) and 50 (the newest verified); 40 and 60 expire.
    assert_eq!(exists, vec![true, true, true, false, true, false]);
    let (expired, total): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE expired_at IS NOT NULL), count(*) FROM backup_runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((expired, total), (2, 7), "expired runs stay in the history");
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_restore_killed_midway_leaves_the_database_as_it_was_and_is_marked_failed(pool: PgPool) {
    use common::procs;
    let fx = Fixture::new(&pool, 300_000).await;
    let own = own_db_url(&pool).await;
    let cfg = config_for(own.clone());
    sqlx::query("INSERT INTO backup_targets (name, database_url) VALUES ('shop', $1)")
        .bind(fx.url())
        .execute(&pool)
        .await
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["backup", "run", "shop"])
        .env("DATABASE_URL", &own)
        .env("OPSDECK_DATA_DIR", &cfg.data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: i64 = sqlx::query_scalar("SELECT id FROM backup_runs WHERE status = 'succeeded'")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Changed since the backup, so a restore that went through would show.
    let mut c = PgConnection::connect(&fx.url()).await.unwrap();
    sqlx::query("DELETE FROM sales.orders WHERE id % 2 = 0")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let before = fingerprint(&fx.url()).await;

    let port = procs::free_port();
    let mut serve = procs::serve(&own, "restorer", &cfg.data_dir, port, &[]).await;
    let (admin, _) = procs::admin_and_token(&serve.base).await;
    let res = admin
        .post(format!("{}/api/v1/backups/{run}/restore", serve.base))
        .json(&json!({"password": procs::ADMIN_PASSWORD, "confirm": fx.name, "mode": "in_place"}))
        .call()
        .await;
    assert_eq!(
        res.status(),
        StatusCode::ACCEPTED,
        "{}",
        res.text().await.unwrap()
    );
    let job = json(res).await["id"].as_i64().unwrap();
    // Killed while pg_restore works on the database. Its connection details are in a service
    // file, not on its command line: find it by the dump it reads, which is in this test's
    // data directory.
    let pattern = format!("pg_restore.*{}", cfg.data_dir.display());
    let restoring = || {
        std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !restoring() {
        assert!(
            std::time::Instant::now() < deadline,
            "pg_restore never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    serve.proc.kill9();
    for _ in 0..100 {
        if !restoring() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!restoring(), "pg_restore outlived opsdeck");
    assert_eq!(
        fingerprint(&fx.url()).await,
        before,
        "the database is as it was before the restore"
    );

    // Once its heartbeat is old (a minute; aged here), the next process to start marks the
    // job failed and says why; it is not left "running".
    sqlx::query("UPDATE restore_jobs SET heartbeat_at = now() - interval '2 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    let _serve = procs::serve(&own, "restorer", &cfg.data_dir, port, &[]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (status, detail) = loop {
        let (status, detail): (String, Option<String>) =
            sqlx::query_as("SELECT status, detail FROM restore_jobs WHERE id = $1")
                .bind(job)
                .fetch_one(&pool)
                .await
                .unwrap();
        if status != "running" || std::time::Instant::now() > deadline {
            break (status, detail.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, "failed");
    assert!(
        detail.contains("the database is as it was before"),
        "{detail}"
    );
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

/// A tmpfs of `size` mounted at `dir` for the test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_full_disk_fails_the_run_clearly_and_keeps_older_backups(pool: PgPool) {
    let own = own_db_url(&pool).await;
    let cfg = config_for(own.clone());
    // A 3 MB filesystem for the backups (mounting needs root, as CI and scripts/test.sh run).
    let Some(_disk) = SmallDisk::mount(&cfg.data_dir, "3m") else {
        assert!(
            std::env::var("OPSDECK_TESTS_NO_ROOT").is_ok(),
            "cannot mount a small tmpfs (run as root, or set OPSDECK_TESTS_NO_ROOT to skip this test)"
        );
        return;
    };
    let fx = Fixture::new(&pool, 2_000).await;
    sqlx::query("INSERT INTO backup_targets (name, database_url) VALUES ('shop', $1)")
        .bind(fx.url())
        .execute(&pool)
        .await
        .unwrap();
    // (Before the fix a full disk left pg_dump blocked on its pipe and the run hung forever.)
    let backup = || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opsdeck"))
            .args(["backup", "run", "shop"])
            .env("DATABASE_URL", &own)
            .env("OPSDECK_DATA_DIR", &cfg.data_dir)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the backup run hung");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    };
    let out = backup();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (first, path, sha): (i64, String, String) =
        sqlx::query_as("SELECT id, path, sha256 FROM backup_runs WHERE status = 'succeeded'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let first_bytes = std::fs::read(&path).unwrap();

    // The database grows past what the disk holds.
    let mut c = PgConnection::connect(&fx.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO customers SELECT g, md5(g::text) || md5((g * 7)::text), NULL, now(), NULL, decode(md5(g::text) || md5((g + 1)::text), 'hex')
         FROM generate_series(100000, 300000) g",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let out = backup();
    assert!(!out.status.success(), "the run fails");
    let (status, error): (String, String) =
        sqlx::query_as("SELECT status, error FROM backup_runs WHERE id <> $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(
        error.to_lowercase().contains("no space left") || error.contains("disk is full"),
        "the reason names the full disk: {error}"
    );
    // The older backup is untouched; nothing half-written is left behind.
    assert_eq!(std::fs::read(&path).unwrap(), first_bytes);
    assert_eq!(hex::encode(Sha256::digest(&first_bytes)), sha);
    let names: Vec<String> = std::fs::read_dir(std::path::Path::new(&path).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "only the first backup's file: {names:?}");
}
