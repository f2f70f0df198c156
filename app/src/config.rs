//! Typed configuration shared by the server process and the server functions.
//! Loading it (defaults, TOML file, `OPSDECK_*` variables) is the server crate's job.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A value that must never reach a log line or a response: `Debug` prints a placeholder.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Mark the session cookie `Secure` (set when Opsdeck is served over HTTPS).
    pub secure_cookies: bool,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub login_max_failures: i32,
    pub login_ip_max_failures: i32,
    pub login_window_secs: i64,
    pub login_lockout_secs: i64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    pub max_connections: u32,
    /// How long raw samples and the 1-minute and 1-hour rollups are kept.
    pub retention: crate::metrics::Retention,
    /// Seconds between two collections of the server's own host metrics (0 turns it off).
    pub collect_interval_secs: u64,
    /// Name under which the server's own host metrics are stored.
    pub host_name: String,
    /// Serve `/metrics` without a token (otherwise a `metrics`-scope token is needed).
    pub metrics_public: bool,
    /// Log sources from the configuration file: (path, format, service).
    pub log_sources: Vec<(String, String, String)>,
    /// Log lines older than this many days are dropped (whole daily partitions).
    pub log_retention_days: i64,
    /// Services kept longer or shorter than `log_retention_days`: (service, days).
    pub log_retention_services: Vec<(String, i64)>,
    /// `[[processes]]` from the configuration file, watched from the first start.
    pub processes: Vec<crate::services::NewProcess>,
    /// `[[scrape_targets]]` from the configuration file.
    pub scrape_targets: Vec<crate::services::NewTarget>,
    /// How often alert rules are evaluated (`OPSDECK_ALERT_INTERVAL`, default 15 s).
    pub alert_interval: std::time::Duration,
    /// SMTP server for e-mail notifications, as `smtps://user:password@host:465`.
    pub smtp_url: Option<Secret>,
    /// The From address of e-mail notifications.
    pub smtp_from: Option<String>,
    /// The address users reach Opsdeck at, for links in notifications.
    pub public_url: Option<String>,
}

impl Config {
    /// Defaults that suit a single host; every field can be overridden.
    pub fn with_database_url(database_url: impl Into<String>) -> Self {
        Self {
            database_url: Secret::new(database_url),
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./data"),
            secure_cookies: false,
            session_idle_minutes: 30,
            session_absolute_hours: 8,
            login_max_failures: 5,
            login_ip_max_failures: 20,
            login_window_secs: 300,
            login_lockout_secs: 300,
            trust_forwarded_for: false,
            max_connections: 10,
            retention: crate::metrics::Retention::default(),
            collect_interval_secs: 5,
            host_name: "localhost".into(),
            metrics_public: false,
            log_sources: Vec::new(),
            log_retention_days: 30,
            log_retention_services: Vec::new(),
            processes: Vec::new(),
            scrape_targets: Vec::new(),
            alert_interval: std::time::Duration::from_secs(15),
            smtp_url: None,
            smtp_from: None,
            public_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = Config::with_database_url("postgres://u:hunter2hunter2@h/db");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(c.database_url.expose(), "postgres://u:hunter2hunter2@h/db");
    }
}
