//! Command line and configuration: defaults, then an optional TOML file, then `OPSDECK_*`
//! environment variables and flags. Secrets are wrapped so they never print.

use app::config::{Config, Secret};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "opsdeck",
    version,
    about = "Opsdeck: a self-hosted ops portal for metrics, logs, backups, forecasts and alerts.",
    long_about = "Opsdeck: a self-hosted ops portal for metrics, logs, backups, forecasts and alerts.\n\n\
        Without a subcommand, `opsdeck` runs `serve`. Configuration comes from defaults, then the \
        TOML file given by --config/OPSDECK_CONFIG, then OPSDECK_* environment variables and flags."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (keys as in the README's configuration table).
    #[arg(long, env = "OPSDECK_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// PostgreSQL connection URL, e.g. postgres://opsdeck:secret@127.0.0.1/opsdeck.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
}

// Parsed once at start: the size of the serve settings does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web UI and the JSON API (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens for agents (scope `ingest`) and Prometheus (scope `metrics`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Collect this host's metrics and push them to an Opsdeck server.
    Agent(AgentArgs),
    /// Back up, list and verify PostgreSQL backups.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Import log files.
    #[command(subcommand)]
    Logs(LogsCommand),
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Import log files (plain or .gz) once, with a progress line and a summary.
    Import {
        /// Files to import, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// json, nginx or text.
        #[arg(long)]
        format: String,
        /// The service the lines belong to.
        #[arg(long)]
        service: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up a target now, in the foreground, and print the outcome (exit 1 on failure).
    Run {
        /// Target name (`opsdeck` is Opsdeck's own database).
        target: String,
    },
    /// List backups, newest first.
    List {
        #[arg(long)]
        target: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// List backup targets.
    Targets,
    /// Verify a backup's checksum and archive; with --test-restore also restore it into a
    /// scratch database and compare row counts (exit 1 when it fails).
    Verify {
        id: i64,
        #[arg(long)]
        test_restore: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Add {
        /// Token name, e.g. web-agents.
        name: String,
        /// ingest (agents push samples) or metrics (scrape /metrics).
        #[arg(long, value_parser = ["ingest", "metrics"])]
        scope: String,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token to revoke.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The Opsdeck server, e.g. https://ops.example.com
    #[arg(long, env = "OPSDECK_SERVER")]
    pub server: String,
    /// File holding an `ingest` token (first line).
    #[arg(long, env = "OPSDECK_TOKEN_FILE")]
    pub token_file: PathBuf,
    /// Time between two collections: `5s`, `30s`, `1m`.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Name for this host's series (default: the system host name).
    #[arg(long, env = "OPSDECK_HOST_NAME")]
    pub host: Option<String>,
    /// How much to keep while the server is unreachable: `1h`, `30m`.
    #[arg(long, default_value = "1h")]
    pub buffer: String,
}

impl ServeArgs {
    /// The serve settings from the OPSDECK_* environment alone: for commands other than
    /// `serve` (e.g. `backup run`), which must find the same data directory.
    pub fn from_env() -> Result<Self, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let m = Only::command().try_get_matches_from(["opsdeck"])?;
        Ok(Only::from_arg_matches(&m)?.serve)
    }
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Days of log lines to keep (whole days are dropped).
    #[arg(long, env = "OPSDECK_LOG_RETENTION_DAYS")]
    pub log_retention_days: Option<i64>,
    /// Address to listen on.
    #[arg(long, env = "OPSDECK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for Opsdeck's own files (backups and the like).
    #[arg(long, env = "OPSDECK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Mark the session cookie Secure: set to true when users reach Opsdeck over HTTPS.
    #[arg(long, env = "OPSDECK_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// Minutes without a request after which a session ends.
    #[arg(long, env = "OPSDECK_SESSION_IDLE_MINUTES")]
    pub session_idle_minutes: Option<i64>,
    /// Hours after sign-in after which a session ends, active or not.
    #[arg(long, env = "OPSDECK_SESSION_ABSOLUTE_HOURS")]
    pub session_absolute_hours: Option<i64>,
    /// Take client addresses from X-Forwarded-For (only behind a proxy you trust).
    #[arg(long, env = "OPSDECK_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: Option<bool>,
    /// Largest number of database connections this process opens.
    #[arg(long, env = "OPSDECK_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
    /// How often the server records its own host's metrics: `5s`, `1m`; `0` turns it off.
    #[arg(long, env = "OPSDECK_COLLECT_INTERVAL")]
    pub collect_interval: Option<String>,
    /// Name for this host's series (default: the system host name).
    #[arg(long, env = "OPSDECK_HOST_NAME")]
    pub host_name: Option<String>,
    /// Serve /metrics without a token (default: a token of scope `metrics` is needed).
    #[arg(long, env = "OPSDECK_METRICS_PUBLIC")]
    pub metrics_public: Option<bool>,
    /// Days raw samples are kept (default 14).
    #[arg(long, env = "OPSDECK_RETENTION_RAW_DAYS")]
    pub retention_raw_days: Option<i64>,
    /// Days 1-minute rollups are kept (default 90).
    #[arg(long, env = "OPSDECK_RETENTION_1M_DAYS")]
    pub retention_1m_days: Option<i64>,
    /// Days 1-hour rollups are kept (default 730).
    #[arg(long, env = "OPSDECK_RETENTION_1H_DAYS")]
    pub retention_1h_days: Option<i64>,
    /// How often alert rules are evaluated: `15s` (the default), `1m`.
    #[arg(long, env = "OPSDECK_ALERT_INTERVAL")]
    pub alert_interval: Option<String>,
    /// SMTP server for e-mail notifications: `smtps://user:password@host:465`,
    /// `smtp://host:587?tls=required`, or `smtp://127.0.0.1:25` (no TLS, local relay).
    #[arg(long, env = "OPSDECK_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From address of e-mail notifications: `Opsdeck <opsdeck@example.com>`.
    #[arg(long, env = "OPSDECK_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// The address users reach Opsdeck at (`https://ops.example.com`), for links in
    /// notifications.
    #[arg(long, env = "OPSDECK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Password for the `admin` user created on first start (otherwise a random one is printed).
    #[arg(long, env = "OPSDECK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// User name: lowercase letters, digits, `.`, `_`, `-`.
        name: String,
        /// viewer (sees everything), operator (also runs actions) or admin (also users, tokens, restores).
        #[arg(long, value_parser = parse_role)]
        role: app::auth::Role,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (read from standard input); their sessions end.
    Passwd {
        /// The user whose password changes.
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with role, state and last sign-in.
    List,
}

fn parse_role(s: &str) -> Result<app::auth::Role, String> {
    s.parse()
}

/// Keys of the optional TOML file. Unknown keys are an error, so a typo never passes silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub secure_cookies: Option<bool>,
    pub session_idle_minutes: Option<i64>,
    pub session_absolute_hours: Option<i64>,
    pub trust_forwarded_for: Option<bool>,
    pub max_connections: Option<u32>,
    pub login_max_failures: Option<i32>,
    pub login_ip_max_failures: Option<i32>,
    pub login_window_secs: Option<i64>,
    pub login_lockout_secs: Option<i64>,
    pub collect_interval: Option<String>,
    pub host_name: Option<String>,
    pub metrics_public: Option<bool>,
    pub retention_raw_days: Option<i64>,
    pub retention_1m_days: Option<i64>,
    pub retention_1h_days: Option<i64>,
    /// `[[log_sources]]` tables: files to follow.
    pub log_sources: Option<Vec<LogSourceConfig>>,
    pub log_retention_days: Option<i64>,
    /// `[log_retention_services]`: days kept for named services (`api = 7`).
    pub log_retention_services: Option<std::collections::BTreeMap<String, i64>>,
    /// `[[processes]]` tables: `name`, `pattern`, optional `port` and `host`.
    pub processes: Option<Vec<app::services::NewProcess>>,
    /// `[[scrape_targets]]` tables: `name`, `url`, optional `interval_seconds`,
    /// `timeout_seconds`, `host`, `max_series`, `bearer_token`.
    pub scrape_targets: Option<Vec<app::services::NewTarget>>,
    pub alert_interval: Option<String>,
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogSourceConfig {
    pub path: String,
    pub format: String,
    pub service: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no database: set DATABASE_URL (or database_url in the config file)")]
    NoDatabase,
    #[error("{0}")]
    Invalid(String),
}

pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

/// Defaults, then the file, then environment variables and flags.
pub fn load(global: &GlobalArgs, serve: &ServeArgs) -> Result<Config, ConfigError> {
    let file = match &global.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            parse_file(path, &text)?
        }
        None => FileConfig::default(),
    };
    let url = global
        .database_url
        .clone()
        .or(file.database_url.clone())
        .ok_or(ConfigError::NoDatabase)?;
    let mut c = Config::with_database_url(url);
    c.database_url = Secret::new(c.database_url.expose().trim());
    macro_rules! layer {
        ($field:ident) => {
            if let Some(v) = serve.$field.clone().or(file.$field.clone()) {
                c.$field = v;
            }
        };
    }
    layer!(listen);
    layer!(data_dir);
    layer!(secure_cookies);
    layer!(session_idle_minutes);
    layer!(session_absolute_hours);
    layer!(trust_forwarded_for);
    layer!(max_connections);
    for (v, field) in [
        (file.login_max_failures, &mut c.login_max_failures),
        (file.login_ip_max_failures, &mut c.login_ip_max_failures),
    ] {
        if let Some(v) = v {
            *field = v;
        }
    }
    for (v, field) in [
        (file.login_window_secs, &mut c.login_window_secs),
        (file.login_lockout_secs, &mut c.login_lockout_secs),
    ] {
        if let Some(v) = v {
            *field = v;
        }
    }
    if let Some(v) = serve
        .collect_interval
        .clone()
        .or(file.collect_interval.clone())
    {
        c.collect_interval_secs = parse_interval(&v)
            .map_err(|e| ConfigError::Invalid(format!("collect_interval: {e}")))?;
    }
    if let Some(v) = serve.alert_interval.clone().or(file.alert_interval.clone()) {
        let secs =
            parse_interval(&v).map_err(|e| ConfigError::Invalid(format!("alert_interval: {e}")))?;
        if !(1..=3600).contains(&secs) {
            return Err(ConfigError::Invalid(format!(
                "alert_interval: `{v}` is not between 1 second and 1 hour"
            )));
        }
        c.alert_interval = std::time::Duration::from_secs(secs);
    }
    if let Some(u) = serve.smtp_url.clone().or(file.smtp_url.clone()) {
        if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
            return Err(ConfigError::Invalid(
                "smtp_url: must start with smtp:// or smtps://".into(),
            ));
        }
        c.smtp_url = Some(app::config::Secret::new(u));
    }
    c.smtp_from = serve.smtp_from.clone().or(file.smtp_from.clone());
    if let Some(f) = &c.smtp_from {
        if !f.contains('@') {
            return Err(ConfigError::Invalid(format!(
                "smtp_from: `{f}` is not an e-mail address"
            )));
        }
    }
    if let Some(u) = serve.public_url.clone().or(file.public_url.clone()) {
        app::alerts::rules::check_http_url("public_url", &u).map_err(ConfigError::Invalid)?;
        c.public_url = Some(u);
    }
    c.host_name = serve
        .host_name
        .clone()
        .or(file.host_name.clone())
        .unwrap_or_else(crate::metrics::collector::local_host_name);
    if let Some(v) = serve.metrics_public.or(file.metrics_public) {
        c.metrics_public = v;
    }
    for (v, field) in [
        (
            serve.retention_raw_days.or(file.retention_raw_days),
            &mut c.retention.raw_secs,
        ),
        (
            serve.retention_1m_days.or(file.retention_1m_days),
            &mut c.retention.minute_secs,
        ),
        (
            serve.retention_1h_days.or(file.retention_1h_days),
            &mut c.retention.hour_secs,
        ),
    ] {
        if let Some(days) = v {
            if !(1..=36_500).contains(&days) {
                return Err(ConfigError::Invalid(format!(
                    "retention days must be 1 to 36500, not {days}"
                )));
            }
            *field = days * 86_400;
        }
    }
    if let Some(days) = serve.log_retention_days.or(file.log_retention_days) {
        if !(1..=36_500).contains(&days) {
            return Err(ConfigError::Invalid(format!(
                "log_retention_days must be 1 to 36500, not {days}"
            )));
        }
        c.log_retention_days = days;
    }
    for s in file.log_sources.clone().unwrap_or_default() {
        app::logs::parse::Format::parse(&s.format)
            .map_err(|e| ConfigError::Invalid(format!("log source {}: {e}", s.path)))?;
        app::logs::service::validate_service(&s.service)
            .map_err(|e| ConfigError::Invalid(format!("log source {}: {e}", s.path)))?;
        c.log_sources.push((s.path, s.format, s.service));
    }
    for (svc, days) in file.log_retention_services.clone().unwrap_or_default() {
        app::logs::service::validate_service(&svc)
            .map_err(|e| ConfigError::Invalid(format!("log_retention_services: {e}")))?;
        if !(1..=36_500).contains(&days) {
            return Err(ConfigError::Invalid(format!(
                "log_retention_services.{svc} must be 1 to 36500 days, not {days}"
            )));
        }
        c.log_retention_services.push((svc, days));
    }
    for p in file.processes.clone().unwrap_or_default() {
        app::services::process::validate_watch(&p.name, &p.pattern, p.port)
            .map_err(|e| ConfigError::Invalid(format!("process {}: {e}", p.name)))?;
        if let Some(h) = &p.host {
            app::metrics::validate_host(h)
                .map_err(|e| ConfigError::Invalid(format!("process {}: {e}", p.name)))?;
        }
        c.processes.push(p);
    }
    for t in file.scrape_targets.clone().unwrap_or_default() {
        app::services::validate_target(&t)
            .map_err(|e| ConfigError::Invalid(format!("scrape target {}: {e}", t.name)))?;
        c.scrape_targets.push(t);
    }
    validate(&c)?;
    Ok(c)
}

/// `5s`, `1m`, or plain seconds (`5`); `0` means off.
pub fn parse_interval(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        return s
            .parse()
            .map_err(|_| format!("`{s}` is not a number of seconds"));
    }
    let secs = app::metrics::parse_duration_secs(s)?;
    u64::try_from(secs).map_err(|_| format!("`{s}` is negative"))
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    let url = c.database_url.expose();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConfigError::Invalid(
            "DATABASE_URL must start with postgres:// or postgresql://".into(),
        ));
    }
    let checks = [
        (
            c.session_idle_minutes >= 1,
            "session_idle_minutes must be at least 1",
        ),
        (
            c.session_absolute_hours >= 1,
            "session_absolute_hours must be at least 1",
        ),
        (c.max_connections >= 2, "max_connections must be at least 2"),
        (
            c.login_max_failures >= 1,
            "login_max_failures must be at least 1",
        ),
        (
            c.login_ip_max_failures >= 1,
            "login_ip_max_failures must be at least 1",
        ),
        (
            c.login_window_secs >= 1,
            "login_window_secs must be at least 1",
        ),
        (
            c.login_lockout_secs >= 1,
            "login_lockout_secs must be at least 1",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, msg)) => Err(ConfigError::Invalid((*msg).into())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(url: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            config: None,
            database_url: url.map(str::to_string),
        }
    }

    #[test]
    fn file_keys_are_checked() {
        let p = Path::new("opsdeck.toml");
        let ok = parse_file(p, "listen = \"0.0.0.0:8080\"\nsecure_cookies = true\n").unwrap();
        assert_eq!(ok.listen, Some("0.0.0.0:8080".parse().unwrap()));
        let cases = [
            ("lisen = \"x\"", "unknown field `lisen`"),
            ("listen = \"not an address\"", "invalid socket address"),
            ("secure_cookies = \"yes\"", "invalid type"),
        ];
        for (text, want) in cases {
            let err = parse_file(p, text).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("opsdeck.toml"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn flags_override_defaults_and_bad_values_are_named() {
        let serve = ServeArgs {
            listen: Some("127.0.0.1:9999".parse().unwrap()),
            ..Default::default()
        };
        let c = load(&global(Some("postgres://x@h/db")), &serve).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.session_idle_minutes, 30);
        assert_eq!(c.session_absolute_hours, 8);

        assert!(matches!(
            load(&global(None), &ServeArgs::default()),
            Err(ConfigError::NoDatabase)
        ));
        let err = load(&global(Some("mysql://x")), &ServeArgs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://"), "{err}");
        let serve = ServeArgs {
            session_idle_minutes: Some(0),
            ..Default::default()
        };
        let err = load(&global(Some("postgres://x@h/db")), &serve)
            .unwrap_err()
            .to_string();
        assert!(err.contains("session_idle_minutes"), "{err}");
        let serve = ServeArgs {
            collect_interval: Some("soon".into()),
            ..Default::default()
        };
        let err = load(&global(Some("postgres://x@h/db")), &serve)
            .unwrap_err()
            .to_string();
        assert!(err.contains("collect_interval"), "{err}");
        let serve = ServeArgs {
            retention_raw_days: Some(0),
            ..Default::default()
        };
        assert!(load(&global(Some("postgres://x@h/db")), &serve)
            .unwrap_err()
            .to_string()
            .contains("retention"));
    }

    #[test]
    fn processes_and_scrape_targets_come_from_the_file_checked() {
        let dir = std::env::temp_dir().join(format!("opsdeck-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("opsdeck.toml");
        let load_text = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let g = GlobalArgs {
                config: Some(path.clone()),
                database_url: Some("postgres://x@h/db".into()),
            };
            load(&g, &ServeArgs::default())
        };
        let ok = load_text(
            "[log_retention_services]\napi = 7\n\n[[processes]]\nname = \"uvicorn\"\npattern = \"uvicorn*app:main\"\nport = 8000\n\n\
             [[scrape_targets]]\nname = \"api\"\nurl = \"http://127.0.0.1:8000/metrics\"\n",
        )
        .unwrap();
        assert_eq!(ok.processes[0].port, Some(8000));
        assert_eq!(ok.log_retention_services, [("api".to_string(), 7)]);
        assert_eq!(ok.scrape_targets[0].interval_seconds, 15);
        for (text, want) in [
            (
                "[[processes]]\nname = \"p\"\npattern = \"x\"\nport = 0\n",
                "process p: port",
            ),
            (
                "[[scrape_targets]]\nname = \"t\"\nurl = \"ftp://x/\"\n",
                "scrape target t: url",
            ),
            (
                "[[scrape_targets]]\nname = \"t\"\nurl = \"http://x/\"\nevery = 5\n",
                "unknown field `every`",
            ),
        ] {
            let err = load_text(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5"), Ok(5));
        assert_eq!(parse_interval("5s"), Ok(5));
        assert_eq!(parse_interval("2m"), Ok(120));
        assert_eq!(parse_interval("0"), Ok(0));
        assert!(parse_interval("-5s").is_err());
        assert!(parse_interval("fast").is_err());
    }
}
