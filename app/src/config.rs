//! Every setting of Opsdeck, declared once: its TOML key, environment variable, default and
//! meaning, in [`settings!`] below. Loading is layers over the one struct this makes: defaults,
//! then the TOML file, then `OPSDECK_*` environment variables, then flags (the server crate
//! builds its flags from [`SETTINGS`] and does the layering). Nothing here depends on a product
//! area: areas read the values they need, and the server checks them against the areas' rules
//! once everything is layered.

use crate::specs::{NewLogSource, NewProcess, NewTarget};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

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

/// A span of time written `5s`, `1m`, `2h` (or plain seconds); `0` means off where allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval(pub u64);

impl Interval {
    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

/// `5s`, `1m`, `2h`, `1d`, or plain seconds (`5`).
pub fn parse_interval(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let bad = || format!("`{s}` is not a duration like 30s, 5m or 1h");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .filter(|v| *v <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// A network: `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an address or network (10.0.0.0/8, fd00::/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is in this network. An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`)
    /// counts as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// How a setting's value is read from text (an environment variable or a flag) and from the
/// TOML file.
pub trait SettingValue: Sized {
    fn from_text(text: &str) -> Result<Self, String>;
    fn from_toml(value: toml::Value) -> Result<Self, String>;
}

fn type_error(want: &str, got: &toml::Value) -> String {
    format!("expected {want}, found {}", got.type_str())
}

impl SettingValue for bool {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("`{text}` is not true or false")),
        }
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        value
            .as_bool()
            .ok_or_else(|| type_error("true or false", &value))
    }
}

macro_rules! integer_setting {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn from_text(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|_| format!("`{text}` is not a whole number in range"))
            }

            fn from_toml(value: toml::Value) -> Result<Self, String> {
                let n = value.as_integer().ok_or_else(|| type_error("a whole number", &value))?;
                <$t>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}
integer_setting!(i32, i64, u32);

fn toml_text(value: toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s),
        other => Err(type_error("a string", &other)),
    }
}

impl SettingValue for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.trim().to_string())
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        toml_text(value).map(|s| s.trim().to_string())
    }
}

impl SettingValue for Secret {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(Secret::new(text.trim()))
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        toml_text(value).map(|s| Secret::new(s.trim()))
    }
}

impl SettingValue for PathBuf {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text.trim()))
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        toml_text(value).map(|s| PathBuf::from(s.trim()))
    }
}

impl SettingValue for SocketAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an address and port like 127.0.0.1:3000"))
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        Self::from_text(&toml_text(value)?)
    }
}

impl SettingValue for Interval {
    fn from_text(text: &str) -> Result<Self, String> {
        parse_interval(text).map(Interval)
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Integer(n) => u64::try_from(n)
                .map(Interval)
                .map_err(|_| format!("{n} is negative")),
            other => Self::from_text(&toml_text(other)?),
        }
    }
}

impl<T: SettingValue> SettingValue for Option<T> {
    /// An empty value means "not set".
    fn from_text(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            Ok(None)
        } else {
            T::from_text(text).map(Some)
        }
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        T::from_toml(value).map(Some)
    }
}

/// A list written `a, b, c` in text, an array in TOML.
fn list<T>(text: &str, one: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(one)
        .collect()
}

fn toml_list<T>(
    value: toml::Value,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    match value {
        toml::Value::Array(items) => items
            .into_iter()
            .map(|v| toml_text(v).and_then(|s| one(&s)))
            .collect(),
        other => Err(type_error("an array of strings", &other)),
    }
}

impl SettingValue for Vec<Cidr> {
    fn from_text(text: &str) -> Result<Self, String> {
        list(text, Cidr::parse)
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        toml_list(value, Cidr::parse)
    }
}

impl SettingValue for Vec<PathBuf> {
    fn from_text(text: &str) -> Result<Self, String> {
        list(text, |s| Ok(PathBuf::from(s)))
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        toml_list(value, |s| Ok(PathBuf::from(s.trim())))
    }
}

/// Tables (`[[processes]]`, `[log_retention_services]`): in text, the same value as TOML inline
/// syntax, e.g. `[{name = "api", pattern = "uvicorn*"}]` or `{api = 7}`.
/// A TOML error in one line: where and what, without the source snippet.
pub fn toml_error(e: &toml::de::Error) -> String {
    let shown = e.to_string();
    let mut parts: Vec<&str> = shown
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    if let Some(first) = parts.first_mut() {
        *first = first.trim_start_matches("TOML parse error at ");
    }
    let joined = parts.join(": ");
    if joined.is_empty() {
        e.message().to_string()
    } else {
        joined
    }
}

fn structured_from_text<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    #[derive(serde::Deserialize)]
    struct Wrapped<T> {
        v: T,
    }
    toml::from_str::<Wrapped<T>>(&format!("v = {text}"))
        .map(|w| w.v)
        .map_err(|e| {
            format!(
                "not a TOML inline value of the right shape: {}",
                e.message()
            )
        })
}

fn structured_from_toml<T: DeserializeOwned>(value: toml::Value) -> Result<T, String> {
    value
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

macro_rules! structured_setting {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn from_text(text: &str) -> Result<Self, String> {
                structured_from_text(text)
            }

            fn from_toml(value: toml::Value) -> Result<Self, String> {
                structured_from_toml(value)
            }
        }
    )*};
}
structured_setting!(
    Vec<NewLogSource>,
    Vec<NewProcess>,
    Vec<NewTarget>,
    BTreeMap<String, i64>
);

/// What the documentation and the flags say of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingInfo {
    /// The TOML key, and the flag with `-` for `_` (`--session-idle-minutes`).
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The default as the README writes it.
    pub default: &'static str,
    pub help: &'static str,
}

impl SettingInfo {
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }
}

/// Declares the settings: the `Config` struct, its defaults, the `SETTINGS` table and the
/// setters the layers use. A setting's doc comment is its help text.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $key:ident : $ty:ty = $default:expr, $env:literal, $shown:literal; )*) => {
        /// Opsdeck's settings; see [`SETTINGS`] for their names and defaults.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $( $key: $default, )* }
            }
        }

        /// Every setting, in the order of the README's table.
        pub const SETTINGS: &[SettingInfo] = &[
            $( SettingInfo {
                key: stringify!($key),
                env: $env,
                default: $shown,
                help: concat!($($doc),+),
            }, )*
        ];

        impl Config {
            /// Sets one setting from text (an environment variable or a flag).
            pub fn set_text(&mut self, key: &str, text: &str) -> Result<(), String> {
                match key {
                    $( stringify!($key) => self.$key = <$ty as SettingValue>::from_text(text)?, )*
                    _ => return Err(format!("unknown setting `{key}`")),
                }
                Ok(())
            }

            /// Sets one setting from its value in the TOML file.
            pub fn set_toml(&mut self, key: &str, value: toml::Value) -> Result<(), String> {
                match key {
                    $( stringify!($key) => self.$key = <$ty as SettingValue>::from_toml(value)?, )*
                    _ => return Err(format!("unknown key `{key}`")),
                }
                Ok(())
            }
        }
    };
}

/// The cloud metadata addresses and link-local networks: what the server never fetches unless
/// `outbound_deny` is set otherwise.
pub const DEFAULT_OUTBOUND_DENY: &str = "169.254.0.0/16, fe80::/10, 100.100.100.200, fd00:ec2::254";

fn default_outbound_deny() -> Vec<Cidr> {
    list(DEFAULT_OUTBOUND_DENY, Cidr::parse).unwrap_or_default()
}

settings! {
    /// the TOML file settings are read from (`--config`; not a key of the file itself)
    config: Option<PathBuf> = None, "OPSDECK_CONFIG", "(none)";
    /// PostgreSQL connection URL
    database_url: Secret = Secret::default(), "DATABASE_URL", "(required)";
    /// address to serve on
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 3000)), "OPSDECK_LISTEN", "127.0.0.1:3000";
    /// Opsdeck's own files: backups in `backups/<target>/` (shared storage when several processes run)
    data_dir: PathBuf = PathBuf::from("./data"), "OPSDECK_DATA_DIR", "./data";
    /// mark the session cookie `Secure` and send `Strict-Transport-Security` (set behind HTTPS)
    secure_cookies: bool = false, "OPSDECK_SECURE_COOKIES", "false";
    /// idle timeout (it slides with use; an active session is written again at most once a minute)
    session_idle_minutes: i64 = 30, "OPSDECK_SESSION_IDLE_MINUTES", "30";
    /// absolute session lifetime
    session_absolute_hours: i64 = 8, "OPSDECK_SESSION_ABSOLUTE_HOURS", "8";
    /// reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR networks, comma-separated): the client is the right-most hop not in this list
    trusted_proxies: Vec<Cidr> = Vec::new(), "OPSDECK_TRUSTED_PROXIES", "(none)";
    /// deprecated: `true` trusts the connecting peer as a proxy (as `trusted_proxies` set to it would)
    trust_forwarded_for: bool = false, "OPSDECK_TRUST_FORWARDED_FOR", "false";
    /// database connections per process
    max_connections: u32 = 10, "OPSDECK_MAX_CONNECTIONS", "10";
    /// connections of those kept for sign-in, ingest, alerts and jobs: heavy reads (searches, analytics, long series) share the others, a bounded queue waits, beyond it 503
    reserved_connections: u32 = 4, "OPSDECK_RESERVED_CONNECTIONS", "4";
    /// analytics, facets and timelines of ranges ending now computed at once in the background per process; a few more wait, and beyond that a request gets 503 with `Retry-After`
    analytics_concurrency: u32 = 3, "OPSDECK_ANALYTICS_CONCURRENCY", "3";
    /// the longest any statement may run (`statement_timeout`); backups and restores run outside it
    statement_timeout: Interval = Interval(30), "OPSDECK_STATEMENT_TIMEOUT", "30s";
    /// a PostgreSQL streaming replica of `database_url` for the heavy reads (series, log search, analytics, incident context); writes and the reads that must see them stay on the primary; a secret, never logged
    database_read_url: Option<Secret> = None, "OPSDECK_DATABASE_READ_URL", "(none)";
    /// heavy reads go back to the primary while the replica is down or its replay is more than this behind (the detailed health says which)
    read_max_lag: Interval = Interval(10), "OPSDECK_READ_MAX_LAG", "10s";
    /// password of the `admin` created on first start
    admin_password: Option<Secret> = None, "OPSDECK_ADMIN_PASSWORD", "random";
    /// sign-in attempts for one user name judged within the window without a success (counted before judging, so parallel attempts cannot pass it); beyond, a lock
    login_max_failures: i32 = 5, "OPSDECK_LOGIN_MAX_FAILURES", "5";
    /// sign-in attempts from one client address judged within the window (a success gives its attempt back); beyond, a lock
    login_ip_max_failures: i32 = 20, "OPSDECK_LOGIN_IP_MAX_FAILURES", "20";
    /// window in which failures count, in seconds
    login_window_secs: i64 = 300, "OPSDECK_LOGIN_WINDOW_SECS", "300";
    /// how long a lock lasts, in seconds (HTTP 429)
    login_lockout_secs: i64 = 300, "OPSDECK_LOGIN_LOCKOUT_SECS", "300";
    /// days the audit log is kept
    audit_retention_days: i64 = 400, "OPSDECK_AUDIT_RETENTION_DAYS", "400";
    /// how often the server records its own host (`0` = off)
    collect_interval: Interval = Interval(5), "OPSDECK_COLLECT_INTERVAL", "5s";
    /// name of this host's series
    host_name: String = String::new(), "OPSDECK_HOST_NAME", "system host name";
    /// serve `/metrics` without a token
    metrics_public: bool = false, "OPSDECK_METRICS_PUBLIC", "false";
    /// series one host may have; a batch that would create more is refused with a 422
    max_series_per_host: i64 = 10_000, "OPSDECK_MAX_SERIES_PER_HOST", "10000";
    /// raw samples kept, in days
    retention_raw_days: i64 = 14, "OPSDECK_RETENTION_RAW_DAYS", "14";
    /// 1-minute and 5-minute rollups kept, in days
    retention_1m_days: i64 = 90, "OPSDECK_RETENTION_1M_DAYS", "90";
    /// 1-hour rollups kept, in days
    retention_1h_days: i64 = 730, "OPSDECK_RETENTION_1H_DAYS", "730";
    /// days of log lines kept (whole days dropped)
    log_retention_days: i64 = 30, "OPSDECK_LOG_RETENTION_DAYS", "30";
    /// days kept for named services, e.g. `{api = 7, audit = 365}`: whole days are dropped at the longest retention, the lines of services kept shorter are deleted row by row
    log_retention_services: BTreeMap<String, i64> = BTreeMap::new(), "OPSDECK_LOG_RETENTION_SERVICES", "{}";
    /// files to follow: `[[log_sources]]` tables of `path` (a `*` allowed in the file name), `format` (`json`, `nginx`, `text`), `service`
    log_sources: Vec<NewLogSource> = Vec::new(), "OPSDECK_LOG_SOURCES", "[]";
    /// directories log sources may be in (after symlinks and `..` are resolved); Opsdeck's own configuration file and data directory never
    log_source_dirs: Vec<PathBuf> = vec![PathBuf::from("/var/log")], "OPSDECK_LOG_SOURCE_DIRS", "/var/log";
    /// processes to watch: `[[processes]]` tables of `name`, `pattern`, `port`?, `host`? (default this server's); written to the database at start, updated by name
    processes: Vec<NewProcess> = Vec::new(), "OPSDECK_PROCESSES", "[]";
    /// endpoints to scrape: `[[scrape_targets]]` tables of `name`, `url`, `interval_seconds` (15), `timeout_seconds` (10), `host`?, `max_series` (10000), `bearer_token`?
    scrape_targets: Vec<NewTarget> = Vec::new(), "OPSDECK_SCRAPE_TARGETS", "[]";
    /// how often alert rules are evaluated
    alert_interval: Interval = Interval(15), "OPSDECK_ALERT_INTERVAL", "15s";
    /// an alert that starts firing joins an open incident of its host, or one whose last event is less than this many minutes old; else it opens one
    incident_join_minutes: i64 = 10, "OPSDECK_INCIDENT_JOIN_MINUTES", "10";
    /// addresses health checks, scrapes and webhooks may never reach, checked after DNS resolution and on every redirect (CIDR list)
    outbound_deny: Vec<Cidr> = default_outbound_deny(), "OPSDECK_OUTBOUND_DENY", "169.254.0.0/16, fe80::/10, 100.100.100.200, fd00:ec2::254";
    /// SMTP server for e-mail channels: `smtps://user:password@host:465`, `smtp://host:587?tls=required`, `smtp://127.0.0.1:25` (local relay, no TLS); a secret, never logged
    smtp_url: Option<Secret> = None, "OPSDECK_SMTP_URL", "(none)";
    /// From address of alert e-mails
    smtp_from: Option<String> = None, "OPSDECK_SMTP_FROM", "(none)";
    /// where users reach Opsdeck, for links in notifications
    public_url: Option<String> = None, "OPSDECK_PUBLIC_URL", "(none)";
    /// serve a public status page at `/status` (and `GET /api/v1/status`), no sign-in: the checks marked public, their 90-day uptime, and incidents given a public title
    status_page: bool = false, "OPSDECK_STATUS_PAGE", "false";
    /// the status page's heading
    status_page_title: String = "Service status".to_string(), "OPSDECK_STATUS_PAGE_TITLE", "Service status";
}

impl Config {
    /// The defaults with a database: what tests and tools start from.
    pub fn with_database_url(database_url: impl Into<String>) -> Self {
        Self {
            database_url: Secret::new(database_url),
            host_name: "localhost".into(),
            ..Self::default()
        }
    }

    /// Checks what does not depend on a product area: ranges and required values. The error
    /// names the setting.
    pub fn check(&self) -> Result<(), String> {
        let url = self.database_url.expose();
        if url.is_empty() {
            return Err(
                "no database: set DATABASE_URL (or database_url in the config file)".into(),
            );
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("DATABASE_URL must start with postgres:// or postgresql://".into());
        }
        if let Some(read) = &self.database_read_url {
            let read = read.expose();
            if !(read.starts_with("postgres://") || read.starts_with("postgresql://")) {
                return Err(
                    "database_read_url must start with postgres:// or postgresql://".into(),
                );
            }
        }
        if self.read_max_lag.secs() == 0 {
            return Err("read_max_lag must be at least 1s".into());
        }
        let days = |v: i64| (1..=36_500).contains(&v);
        let checks: [(bool, &str); 17] = [
            (
                self.session_idle_minutes >= 1,
                "session_idle_minutes must be at least 1",
            ),
            (
                self.session_absolute_hours >= 1,
                "session_absolute_hours must be at least 1",
            ),
            (
                self.max_connections >= 2,
                "max_connections must be at least 2",
            ),
            (
                self.reserved_connections >= 1 && self.reserved_connections < self.max_connections,
                "reserved_connections must be at least 1 and fewer than max_connections",
            ),
            (
                (1..=256).contains(&self.analytics_concurrency),
                "analytics_concurrency must be 1 to 256",
            ),
            (
                (1..=86_400).contains(&self.statement_timeout.secs()),
                "statement_timeout must be between 1 second and 1 day",
            ),
            (
                self.login_max_failures >= 1,
                "login_max_failures must be at least 1",
            ),
            (
                self.login_ip_max_failures >= 1,
                "login_ip_max_failures must be at least 1",
            ),
            (
                self.login_window_secs >= 1,
                "login_window_secs must be at least 1",
            ),
            (
                self.login_lockout_secs >= 1,
                "login_lockout_secs must be at least 1",
            ),
            (
                days(self.audit_retention_days),
                "audit_retention_days must be 1 to 36500",
            ),
            (
                (1..=10_000_000).contains(&self.max_series_per_host),
                "max_series_per_host must be 1 to 10000000",
            ),
            (
                days(self.retention_raw_days)
                    && days(self.retention_1m_days)
                    && days(self.retention_1h_days),
                "retention days must be 1 to 36500",
            ),
            (
                days(self.log_retention_days),
                "log_retention_days must be 1 to 36500",
            ),
            (
                (1..=3600).contains(&self.alert_interval.secs()),
                "alert_interval must be between 1 second and 1 hour",
            ),
            (
                (1..=1440).contains(&self.incident_join_minutes),
                "incident_join_minutes must be 1 to 1440",
            ),
            (
                self.log_source_dirs.iter().all(|d| d.is_absolute()),
                "log_source_dirs must be absolute directories",
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
            return Err((*msg).into());
        }
        for (svc, d) in &self.log_retention_services {
            if !days(*d) {
                return Err(format!(
                    "log_retention_services.{svc} must be 1 to 36500 days, not {d}"
                ));
            }
        }
        if let Some(u) = &self.smtp_url {
            if !(u.expose().starts_with("smtp://") || u.expose().starts_with("smtps://")) {
                return Err("smtp_url: must start with smtp:// or smtps://".into());
            }
        }
        if let Some(f) = &self.smtp_from {
            if !f.contains('@') {
                return Err(format!("smtp_from: `{f}` is not an e-mail address"));
            }
        }
        Ok(())
    }

    /// Whether the client address may be taken from `X-Forwarded-For` when the connecting
    /// peer is `peer`.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(peer))
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

    #[test]
    fn every_setting_has_a_distinct_key_and_variable() {
        let mut keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        let mut envs: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
        keys.sort();
        keys.dedup();
        envs.sort();
        envs.dedup();
        assert_eq!(keys.len(), SETTINGS.len());
        assert_eq!(envs.len(), SETTINGS.len());
        for s in SETTINGS {
            assert!(
                s.env == "DATABASE_URL" || s.env == format!("OPSDECK_{}", s.key.to_uppercase()),
                "{} is read from {}",
                s.key,
                s.env
            );
            assert!(!s.help.trim().is_empty(), "{} has no help", s.key);
        }
    }

    /// The README's configuration table is this declaration: same order, variables, keys,
    /// defaults and meanings.
    #[test]
    fn the_readme_table_matches_the_declarations() {
        let readme = include_str!("../../README.md");
        let rows: Vec<Vec<String>> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| variable | TOML key | default | meaning |"))
            .skip(2)
            .take_while(|l| l.starts_with('|') && !l.starts_with("| `RUST_LOG`"))
            .map(|l| {
                l.trim_matches('|')
                    .split(" | ")
                    .enumerate()
                    .map(|(i, c)| {
                        let c = c.trim();
                        // Names and defaults are in backticks; a meaning is as written.
                        if i < 3 { c.trim_matches('`') } else { c }.to_string()
                    })
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), SETTINGS.len(), "one row per setting");
        for (row, s) in rows.iter().zip(SETTINGS) {
            let help: String = s.help.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(
                row.as_slice(),
                [s.env, s.key, s.default, help.as_str()],
                "the README's row for {}",
                s.key
            );
        }
    }

    #[test]
    fn values_from_text_and_toml() {
        let mut c = Config::default();
        let text = [
            ("listen", "0.0.0.0:8080"),
            ("secure_cookies", "yes"),
            ("collect_interval", "1m"),
            ("trusted_proxies", "10.0.0.0/8, 192.168.1.7"),
            ("log_retention_services", "{api = 7}"),
            ("processes", "[{name = \"api\", pattern = \"uvicorn*\"}]"),
            ("smtp_url", ""),
        ];
        for (k, v) in text {
            c.set_text(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        assert_eq!(c.listen.port(), 8080);
        assert!(c.secure_cookies);
        assert_eq!(c.collect_interval, Interval(60));
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.log_retention_services["api"], 7);
        assert_eq!(c.processes[0].pattern, "uvicorn*");
        assert_eq!(c.smtp_url, None, "empty means unset");
        let bad = [
            ("listen", "nowhere", "not an address"),
            ("secure_cookies", "maybe", "not true or false"),
            ("collect_interval", "soon", "not a duration"),
            ("trusted_proxies", "10.0.0.0/33", "prefix length"),
            ("max_connections", "-1", "whole number"),
            ("processes", "[{name = 1}]", "right shape"),
            ("no_such_thing", "1", "unknown setting"),
        ];
        for (k, v, want) in bad {
            let e = c.set_text(k, v).unwrap_err();
            assert!(e.contains(want), "{k}={v}: {e}");
        }
        let table: toml::Table = toml::from_str(
            "alert_interval = 30\nlog_source_dirs = [\"/srv/logs\"]\n[[scrape_targets]]\nname = \"a\"\nurl = \"http://x/\"\n",
        )
        .unwrap();
        for (k, v) in table {
            c.set_toml(&k, v).unwrap();
        }
        assert_eq!(c.alert_interval, Interval(30));
        assert_eq!(c.log_source_dirs, [PathBuf::from("/srv/logs")]);
        assert_eq!(c.scrape_targets[0].interval_seconds, 15);
        let e = c
            .set_toml("secure_cookies", toml::Value::String("yes".into()))
            .unwrap_err();
        assert!(e.contains("expected true or false"), "{e}");
    }

    #[test]
    fn networks() {
        let cases = [
            ("10.0.0.0/8", "10.200.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("169.254.0.0/16", "::ffff:169.254.169.254", true),
            ("fe80::/10", "fe80::1", true),
            ("fe80::/10", "fe00::1", false),
            ("10.0.0.0/8", "::1", false),
        ];
        for (net, ip, inside) in cases {
            let c = Cidr::parse(net).unwrap();
            assert_eq!(c.contains(ip.parse().unwrap()), inside, "{net} ∋ {ip}");
        }
        for bad in ["", "10.0.0.0/", "10.0.0/8", "x", "::1/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(default_outbound_deny().len(), 4);
    }

    #[test]
    fn checks_name_the_setting() {
        let ok = Config::with_database_url("postgres://x@h/db");
        assert_eq!(ok.check(), Ok(()));
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|c| c.database_url = Secret::default()),
                "no database",
            ),
            (
                Box::new(|c| c.database_url = Secret::new("mysql://x")),
                "postgres://",
            ),
            (
                Box::new(|c| c.session_idle_minutes = 0),
                "session_idle_minutes",
            ),
            (
                Box::new(|c| c.reserved_connections = 10),
                "reserved_connections",
            ),
            (Box::new(|c| c.retention_raw_days = 0), "retention"),
            (
                Box::new(|c| c.alert_interval = Interval(0)),
                "alert_interval",
            ),
            (
                Box::new(|c| c.statement_timeout = Interval(0)),
                "statement_timeout",
            ),
            (
                Box::new(|c| c.smtp_from = Some("nobody".into())),
                "smtp_from",
            ),
            (
                Box::new(|c| {
                    c.log_retention_services
                        .insert("api".into(), 0)
                        .map(|_| ())
                        .unwrap_or(())
                }),
                "log_retention_services.api",
            ),
        ];
        for (change, want) in cases {
            let mut c = ok.clone();
            change(&mut c);
            let e = c.check().unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5"), Ok(5));
        assert_eq!(parse_interval("5s"), Ok(5));
        assert_eq!(parse_interval("2m"), Ok(120));
        assert_eq!(parse_interval("0"), Ok(0));
        assert!(parse_interval("-5s").is_err());
        assert!(parse_interval("fast").is_err());
        assert!(parse_interval("99999999999999d").is_err());
    }
}
