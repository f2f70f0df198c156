//! Real processes for the tests that need them: `opsdeck serve` and `opsdeck agent` as children,
//! and a private PostgreSQL cluster a test may stop and start without disturbing the others.
#![allow(dead_code)]

use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The URL of the test's own database (the one `#[sqlx::test]` made for it).
pub async fn db_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut u = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    u.set_path(&format!("/{name}"));
    u.to_string()
}

/// The `opsdeck` binary under test: this build's, or `OPSDECK_TEST_BIN` (to run a test against
/// another build, e.g. to show that it fails on an older one).
pub fn opsdeck_bin() -> PathBuf {
    std::env::var_os("OPSDECK_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_opsdeck")))
}

/// A child killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// `kill -9`: no shutdown, no flushing, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Serve {
    pub proc: Proc,
    pub base: String,
    pub port: u16,
}

pub const ADMIN_PASSWORD: &str = "process-tests-123";

/// Starts `opsdeck serve` on `port` (collecting every second) and waits until it answers.
/// `env` adds or overrides settings; its output goes to `<data>/serve-<port>.log`.
pub async fn serve(url: &str, host: &str, data: &Path, port: u16, env: &[(&str, &str)]) -> Serve {
    std::fs::create_dir_all(data).unwrap();
    let log = data.join(format!("serve-{port}-{}.log", unique()));
    let mut cmd = Command::new(opsdeck_bin());
    cmd.arg("serve")
        .env("DATABASE_URL", url)
        .env("OPSDECK_LISTEN", format!("127.0.0.1:{port}"))
        .env("OPSDECK_DATA_DIR", data)
        .env("OPSDECK_HOST_NAME", host)
        .env("OPSDECK_COLLECT_INTERVAL", "1s")
        .env("OPSDECK_ALERT_INTERVAL", "1s")
        .env("OPSDECK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // The tests' log files live in temporary directories.
        .env("OPSDECK_LOG_SOURCE_DIRS", std::env::temp_dir())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let s = Serve {
        proc: Proc {
            child: cmd.spawn().unwrap(),
            log,
        },
        base: format!("http://127.0.0.1:{port}"),
        port,
    };
    let c = reqwest::Client::new();
    for _ in 0..300 {
        if c.get(format!("{}/api/v1/health", s.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "opsdeck serve on {} did not come up:\n{}",
        s.base,
        s.proc.log_tail()
    );
}

/// Starts `opsdeck agent` for `host`, sending to `server` every `interval`.
pub fn agent(server: &str, token: &str, host: &str, interval: &str, dir: &Path) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let token_file = dir.join(format!("token-{host}"));
    std::fs::write(&token_file, token).unwrap();
    let log = dir.join(format!("agent-{host}-{}.log", unique()));
    let child = Command::new(opsdeck_bin())
        .args([
            "agent",
            "--server",
            server,
            "--host",
            host,
            "--interval",
            interval,
        ])
        .arg("--token-file")
        .arg(&token_file)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Proc { child, log }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A signed-in admin client for a serve started by [`serve`], and an ingest token.
pub async fn admin_and_token(base: &str) -> (reqwest::Client, String) {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let res = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "sign in: {}", res.status());
    let res = c
        .post(format!("{base}/api/v1/tokens"))
        .json(&serde_json::json!({"name": format!("t{}", unique()), "scope": "ingest"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "token: {}", res.status());
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    (c, token)
}

/// A PostgreSQL cluster of the test's own, in a temporary directory, that the test may stop
/// and start. Run as the `postgres` user when the tests run as root (PostgreSQL refuses root).
pub struct PrivatePg {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

fn pg_bindir() -> PathBuf {
    if let Ok(d) = std::env::var("OPSDECK_PG_BINDIR") {
        return PathBuf::from(d);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries (/usr/lib/postgresql/*/bin); scripts/test.sh installs them")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL with pg_ctl")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePg {
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).output().unwrap()
    }

    pub fn start_new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("opsdeck-pg-{}-{}", std::process::id(), unique()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let pg = Self {
            dir,
            port: free_port(),
            bin: pg_bindir(),
        };
        let data = pg.dir.join("data");
        let out = pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "opsdeck",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start();
        pg
    }

    pub fn start(&self) {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=60",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server the way an operator's restart does (`-m fast`: connections cut).
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let out = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://opsdeck@127.0.0.1:{}/{database}", self.port)
    }

    pub async fn create_database(&self, name: &str) {
        let pool = PgPool::connect(&self.url("postgres")).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
