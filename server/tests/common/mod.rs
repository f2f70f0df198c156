//! Test harness: the real router served on 127.0.0.1:0 against a fresh database per test.
#![allow(dead_code)]

pub mod procs;

use app::auth::service::insert_user;
use app::auth::Role;
use app::config::Config;
use app::state::AppState;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    /// The state the server answers with (its caches, gates and replica).
    pub state: AppState,
    pub shutdown: Option<oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The URL of `database` on the test cluster (same credentials as DATABASE_URL).
pub fn db_url(database: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut u = url::Url::parse(&base).unwrap();
    u.set_path(&format!("/{database}"));
    u.to_string()
}

/// The URL of the test's own database, for the `opsdeck` binary run as a child.
pub async fn own_db_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    db_url(&name)
}

pub fn test_config() -> Config {
    let mut c = Config::with_database_url("postgres://unused@127.0.0.1/unused");
    c.data_dir = std::env::temp_dir().join("opsdeck-tests");
    // The tests' log files live in temporary directories.
    c.log_source_dirs = vec![std::env::temp_dir()];
    c
}

/// The state the product's functions take, on a test's pool, without a server.
pub fn state(pool: PgPool) -> AppState {
    state_with(pool, test_config())
}

pub fn state_with(pool: PgPool, config: Config) -> AppState {
    AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool,
        config,
    )
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, test_config()).await
    }

    pub async fn spawn_with(pool: PgPool, config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::spawn_on(listener, pool, config).await
    }

    pub async fn spawn_on(listener: tokio::net::TcpListener, pool: PgPool, config: Config) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(server::leptos_options(addr), pool.clone(), config);
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            pool,
            state,
            shutdown: Some(tx),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client with its own cookie jar that does not follow redirects.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub async fn add_user(&self, name: &str, role: Role, password: &str) {
        insert_user(&self.pool, name, role, password).await.unwrap();
    }

    /// A client signed in as a new user of that role.
    pub async fn signed_in(&self, name: &str, role: Role) -> Client {
        let pw = format!("{name}-password-123");
        self.add_user(name, role, &pw).await;
        let c = self.client();
        let res = self.login(&c, name, &pw).await;
        assert_eq!(res.status(), StatusCode::OK, "login of {name}");
        c
    }

    pub async fn login(&self, c: &Client, user: &str, password: &str) -> Response {
        c.post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": user, "password": password }))
            .call()
            .await
    }
}

/// Sending a test request: `.call()` instead of `.send().await.unwrap()`, with the method and
/// URL in the panic when the server cannot be reached; `.expect_json(status)` for the body of
/// an answer that must have that status (the body is shown when it has not).
pub trait Call {
    fn call(self) -> impl std::future::Future<Output = Response>;
    fn expect_json(self, status: StatusCode) -> impl std::future::Future<Output = Value>;
}

impl Call for reqwest::RequestBuilder {
    async fn call(self) -> Response {
        let (client, req) = self.build_split();
        let req = req.expect("a well-formed test request");
        let what = format!("{} {}", req.method(), req.url());
        client
            .execute(req)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    async fn expect_json(self, status: StatusCode) -> Value {
        let res = self.call().await;
        let got = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(got, status, "answer: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

pub async fn json(res: Response) -> Value {
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One sample of `metric` on `host`, stored as the collector stores its own.
pub async fn sample(pool: &PgPool, host: &str, metric: &str, value: f64, at: time::OffsetDateTime) {
    let batch = app::metrics::IngestBatch {
        host: host.into(),
        samples: vec![app::metrics::Sample {
            metric: metric.into(),
            labels: Default::default(),
            ts: app::timestamp::Timestamp(at),
            value,
        }],
    };
    app::metrics::service::ingest(
        &state(pool.clone()),
        &batch,
        app::metrics::service::Origin::Local,
    )
    .await
    .unwrap();
}
