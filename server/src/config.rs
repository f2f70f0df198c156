//! The command line, and the settings layered from it: defaults, then the TOML file
//! (`--config`/`OPSDECK_CONFIG`), then environment variables, then flags. The settings
//! themselves are declared once, in `app::config` (`SETTINGS`); the flags of `opsdeck serve` are
//! made from that table, and a bare `opsdeck` reads the same environment. After layering,
//! every value is checked, including against the product areas' own rules (a process watch, a
//! scrape target, a log source), so a bad setting is named at start.

use app::config::{Config, SETTINGS};
use clap::{Args, Parser, Subcommand};
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

/// Flags every subcommand takes. Their environment variables are read with the other settings'
/// (`OPSDECK_CONFIG`, `DATABASE_URL`), in the same layers.
#[derive(Debug, Default, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (keys as in the README's configuration table) [env: OPSDECK_CONFIG]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// PostgreSQL connection URL, e.g. postgres://opsdeck:secret@127.0.0.1/opsdeck [env: DATABASE_URL]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

// Parsed once at start: the size of the serve settings does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web UI and the JSON API (the default).
    Serve(ServeFlags),
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
    /// Metrics storage: pack closed hours into compressed chunks now.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Maintenance windows: what they cover notifies no one while they last.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Mark a moment on the charts and incident timelines: `opsdeck annotate "deploy 1.4.2"
    /// --host web-1 --tag deploy` (scripts elsewhere POST /api/v1/annotations with a token).
    Annotate {
        /// What happened.
        text: String,
        /// The host it concerns (default: every host).
        #[arg(long)]
        host: Option<String>,
        /// A tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// When (RFC 3339 or Unix seconds; default: now).
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Open a window now: `opsdeck maintenance start --host web-1 --for 30m`.
    Start {
        /// A host pattern (`web-*`); without one, and without checks or rules, everything.
        #[arg(long)]
        host: Option<String>,
        /// A health check it covers (repeatable).
        #[arg(long = "check")]
        checks: Vec<String>,
        /// A rule it covers (repeatable).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// How long: `90s`, `30m`, `2h`, `1d`.
        #[arg(long = "for")]
        length: String,
        /// Its name (default: `maintenance`).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the windows not over.
    List,
    /// End a window now (or delete one not begun, or a recurring one).
    End { id: i64 },
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
pub enum MetricsCommand {
    /// Pack every series' samples of the hours closed more than 10 minutes ago into compressed
    /// chunks now (the server does it every 5 minutes), and print what it did.
    Compact,
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

/// The flags of `opsdeck serve`: one per setting, made from `SETTINGS` (`--session-idle-minutes
/// 60`), each taking a value. `--config` and `--database-url` are global flags.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServeFlags(pub Vec<(&'static str, String)>);

/// Settings given by the global flags rather than `opsdeck serve`'s own.
const GLOBAL_SETTINGS: [&str; 2] = ["config", "database_url"];

impl clap::FromArgMatches for ServeFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut given = vec![];
        for s in SETTINGS
            .iter()
            .filter(|s| !GLOBAL_SETTINGS.contains(&s.key))
        {
            if let Some(v) = m.get_one::<String>(s.key) {
                given.push((s.key, v.clone()));
            }
        }
        Ok(Self(given))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for ServeFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SETTINGS
            .iter()
            .filter(|s| !GLOBAL_SETTINGS.contains(&s.key))
            .fold(cmd, |cmd, s| {
                cmd.arg(
                    clap::Arg::new(s.key)
                        .long(s.flag())
                        .value_name("VALUE")
                        .action(clap::ArgAction::Set)
                        .help(format!(
                            "{} [env: {}] [default: {}]",
                            s.help.trim(),
                            s.env,
                            s.default
                        )),
                )
            })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
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
    #[error("{0}")]
    Invalid(String),
}

/// Applies the TOML file's keys to `c`. Unknown keys are an error, so a typo never passes
/// silently.
pub fn apply_file(c: &mut Config, path: &Path, text: &str) -> Result<(), ConfigError> {
    let parse = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let table: toml::Table =
        toml::from_str(text).map_err(|e| parse(app::config::toml_error(&e)))?;
    for (key, value) in table {
        if GLOBAL_SETTINGS[0] == key {
            return Err(parse(
                "`config`: give the file's location with --config or OPSDECK_CONFIG, not inside it"
                    .into(),
            ));
        }
        c.set_toml(&key, value)
            .map_err(|e| parse(format!("{key}: {e}")))?;
    }
    Ok(())
}

/// Defaults, then the file, then the environment (`env` looks a variable up; empty counts as
/// unset), then the global flags and `flags`; then every value checked.
pub fn load_from(
    global: &GlobalArgs,
    flags: &ServeFlags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut c = Config::default();
    let file = global
        .config
        .clone()
        .or_else(|| env("OPSDECK_CONFIG").map(PathBuf::from));
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        apply_file(&mut c, path, &text)?;
    }
    for s in SETTINGS {
        if let Some(v) = env(s.env) {
            c.set_text(s.key, &v)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", s.env)))?;
        }
    }
    if let Some(url) = &global.database_url {
        c.set_text("database_url", url)
            .map_err(|e| ConfigError::Invalid(format!("--database-url: {e}")))?;
    }
    c.config = file;
    for (key, v) in &flags.0 {
        c.set_text(key, v)
            .map_err(|e| ConfigError::Invalid(format!("--{}: {e}", key.replace('_', "-"))))?;
    }
    if c.host_name.is_empty() {
        c.host_name = crate::metrics::collector::local_host_name();
    }
    c.check().map_err(ConfigError::Invalid)?;
    check_against_areas(&c).map_err(ConfigError::Invalid)?;
    Ok(c)
}

/// `load_from` with the process's environment.
pub fn load(global: &GlobalArgs, flags: &ServeFlags) -> Result<Config, ConfigError> {
    load_from(global, flags, |name| std::env::var(name).ok())
}

/// The values the product areas have rules for: each named by what it is.
fn check_against_areas(c: &Config) -> Result<(), String> {
    for s in &c.log_sources {
        app::logs::parse::Format::parse(&s.format)
            .map_err(|e| format!("log source {}: {e}", s.path))?;
        app::logs::validate_service(&s.service)
            .map_err(|e| format!("log source {}: {e}", s.path))?;
    }
    for svc in c.log_retention_services.keys() {
        app::logs::validate_service(svc).map_err(|e| format!("log_retention_services: {e}"))?;
    }
    for p in &c.processes {
        app::services::process::validate_watch(&p.name, &p.pattern, p.port)
            .map_err(|e| format!("process {}: {e}", p.name))?;
        if let Some(h) = &p.host {
            app::metrics::validate_host(h).map_err(|e| format!("process {}: {e}", p.name))?;
        }
    }
    for t in &c.scrape_targets {
        app::services::validate_target(t).map_err(|e| format!("scrape target {}: {e}", t.name))?;
    }
    if let Some(u) = &c.public_url {
        app::alerts::rules::check_http_url("public_url", u)?;
    }
    if c.trust_forwarded_for {
        tracing::warn!(
            "trust_forwarded_for is deprecated: set trusted_proxies (OPSDECK_TRUSTED_PROXIES) to \
             your proxies' addresses instead"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn with_url() -> GlobalArgs {
        GlobalArgs {
            config: None,
            database_url: Some("postgres://x@h/db".into()),
        }
    }

    #[test]
    fn file_keys_are_checked() {
        let p = Path::new("opsdeck.toml");
        let mut c = Config::default();
        apply_file(
            &mut c,
            p,
            "listen = \"0.0.0.0:8080\"\nsecure_cookies = true\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 8080);
        let cases = [
            ("lisen = \"x\"", "unknown key `lisen`"),
            ("listen = \"not an address\"", "not an address"),
            ("secure_cookies = \"yes\"", "expected true or false"),
            ("config = \"/x\"", "--config"),
            ("listen = ", "line 1"),
        ];
        for (text, want) in cases {
            let err = apply_file(&mut Config::default(), p, text)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(want) && err.contains("opsdeck.toml"),
                "{text}: {err}"
            );
        }
    }

    /// Flags over environment over file over defaults, and every setting reachable from each.
    #[test]
    fn layers_in_order_and_bad_values_are_named() {
        let dir = std::env::temp_dir().join(format!("opsdeck-layers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("opsdeck.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1111\"\nlogin_max_failures = 7\nsession_idle_minutes = 45\n",
        )
        .unwrap();
        let global = GlobalArgs {
            config: Some(path.clone()),
            database_url: Some("postgres://x@h/db".into()),
        };
        let env = env_of(&[
            ("OPSDECK_LISTEN", "127.0.0.1:2222"),
            ("OPSDECK_LOGIN_MAX_FAILURES", "9"),
            ("OPSDECK_SMTP_URL", ""),
        ]);
        let flags = ServeFlags(vec![("listen", "127.0.0.1:3333".into())]);
        let c = load_from(&global, &flags, &env).unwrap();
        assert_eq!(c.listen.port(), 3333, "flag over environment");
        assert_eq!(c.login_max_failures, 9, "environment over file");
        assert_eq!(c.session_idle_minutes, 45, "file over default");
        assert_eq!(c.session_absolute_hours, 8, "default");
        assert_eq!(c.smtp_url, None, "empty variable is unset");
        assert_eq!(c.config.as_deref(), Some(path.as_path()));
        assert!(!c.host_name.is_empty(), "the system's host name by default");
        // No flags at all (a bare `opsdeck`): the environment still counts.
        let bare = load_from(&global, &ServeFlags::default(), &env).unwrap();
        assert_eq!(bare.listen.port(), 2222);

        type Env = &'static [(&'static str, &'static str)];
        let cases: Vec<(GlobalArgs, ServeFlags, Env, &str)> = vec![
            (
                GlobalArgs::default(),
                ServeFlags::default(),
                &[],
                "no database",
            ),
            (
                GlobalArgs {
                    database_url: Some("mysql://x".into()),
                    ..Default::default()
                },
                ServeFlags::default(),
                &[],
                "postgres://",
            ),
            (
                with_url(),
                ServeFlags(vec![("session_idle_minutes", "0".into())]),
                &[],
                "session_idle_minutes",
            ),
            (
                with_url(),
                ServeFlags(vec![("collect_interval", "soon".into())]),
                &[],
                "--collect-interval",
            ),
            (
                with_url(),
                ServeFlags::default(),
                &[("OPSDECK_RETENTION_RAW_DAYS", "0")],
                "retention",
            ),
            (
                with_url(),
                ServeFlags::default(),
                &[("OPSDECK_MAX_CONNECTIONS", "many")],
                "OPSDECK_MAX_CONNECTIONS",
            ),
            (
                with_url(),
                ServeFlags::default(),
                &[(
                    "OPSDECK_PROCESSES",
                    "[{name = \"p\", pattern = \"x\", port = 0}]",
                )],
                "process p: port",
            ),
            (
                with_url(),
                ServeFlags::default(),
                &[(
                    "OPSDECK_SCRAPE_TARGETS",
                    "[{name = \"t\", url = \"ftp://x/\"}]",
                )],
                "scrape target t: url",
            ),
            (
                with_url(),
                ServeFlags::default(),
                &[("OPSDECK_TRUSTED_PROXIES", "10.0.0.0/40")],
                "OPSDECK_TRUSTED_PROXIES",
            ),
        ];
        for (global, flags, env, want) in cases {
            let err = load_from(&global, &flags, env_of(env))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
            load_from(&g, &ServeFlags::default(), |_| None)
        };
        let ok = load_text(
            "[log_retention_services]\napi = 7\n\n[[processes]]\nname = \"uvicorn\"\npattern = \"uvicorn*app:main\"\nport = 8000\n\n\
             [[scrape_targets]]\nname = \"api\"\nurl = \"http://127.0.0.1:8000/metrics\"\n",
        )
        .unwrap();
        assert_eq!(ok.processes[0].port, Some(8000));
        assert_eq!(ok.log_retention_services["api"], 7);
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

    /// Every setting can be given as a flag of `opsdeck serve` (or a global flag), and the
    /// flag names follow the keys.
    #[test]
    fn every_setting_has_a_flag() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").expect("serve");
        for s in SETTINGS {
            let flag = s.flag();
            let found = serve
                .get_arguments()
                .chain(cmd.get_arguments())
                .any(|a| a.get_long() == Some(flag.as_str()));
            assert!(found, "--{flag}");
        }
        let parsed = Cli::try_parse_from([
            "opsdeck",
            "serve",
            "--listen",
            "0.0.0.0:9",
            "--secure-cookies",
            "true",
        ])
        .unwrap();
        match parsed.command {
            Some(Command::Serve(f)) => assert_eq!(
                f.0,
                vec![
                    ("listen", "0.0.0.0:9".to_string()),
                    ("secure_cookies", "true".to_string())
                ]
            ),
            other => panic!("{other:?}"),
        }
    }
}
