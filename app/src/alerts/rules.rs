//! Alert rules, channels and health checks as users write them: validation with errors that
//! name the field, host patterns, the defaults seeded from the runbook, notification bodies
//! (Opsdeck JSON, Slack, Discord, e-mail), the retry schedule and uptime. Pure.

use super::machine::Op;
use super::{AlertStatus, Severity};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use time::Duration;

/// A rule as stored and as given to `POST /api/v1/alerts/rules`. Which fields apply depends on
/// `kind`; `validate` says which are missing or wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// `metric`, `health`, `log`, `log_anomaly`, `forecast`, `backup` or `host` (a host that
    /// sends nothing).
    pub kind: String,
    /// metric and forecast rules: the hosts, `*` for all (the default); `*` matches any run
    /// of characters, as in `web-*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// metric rules: a selector, as `cpu_usage_percent` or `disk_used_percent{mount="/"}`
    /// (every series of the metric that has those labels). forecast rules: the resource
    /// (`cpu_usage_percent`, `memory_used_percent`, `disk_used_percent`…), all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// `>`, `>=`, `<`, `<=`, `==`, `!=` (default `>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// metric: the value; log: the error rate in %, the average response time in seconds, or
    /// the matching line count; forecast: days until 80 %; backup: hours since the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The value that ends a firing alert (hysteresis); the threshold when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_threshold: Option<f64>,
    /// How long the condition must hold before the alert fires.
    #[serde(default)]
    pub for_seconds: i64,
    /// Remind every this many seconds while firing and not acknowledged (0: never).
    #[serde(default)]
    pub repeat_seconds: i64,
    /// Channel names to notify.
    #[serde(default)]
    pub notify: Vec<String>,
    /// `warning` (default) or `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// health rules: a health check's name, or `*` for every check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// log rules: the service (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// log rules: `error_rate`, `avg_response_time` or `query_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// log rules with `query_count`: a search as on the Logs page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// log rules: the window looked at, in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,
    /// log_anomaly rules: fire at this many times the normal errors (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// log_anomaly rules: and at least this many errors in the window (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_errors: Option<i64>,
    /// forecast rules: alert when 80 % is expected within this many days (the threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<f64>,
    /// backup rules: the target (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// backup rules: alert when no successful backup for this many hours (the threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<f64>,
    /// backup rules: count only backups whose test restore succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Whether a saved rule's pending and firing states still hold under its new declaration: they
/// do when only its name or how it notifies changed (channels, severity, reminders), so a
/// firing alert is not ended and announced again. A changed condition, threshold, timing or
/// `enabled` starts the states over. Pure.
pub fn keeps_states(old: &RuleSpec, new: &RuleSpec) -> bool {
    let condition = |s: &RuleSpec| RuleSpec {
        name: String::new(),
        notify: vec![],
        severity: None,
        repeat_seconds: 0,
        ..s.clone()
    };
    condition(old) == condition(new)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Metric,
    Health,
    Log,
    /// A service's errors against the same hour of the 7 days before.
    LogAnomaly,
    Forecast,
    Backup,
    /// A host that sent nothing for a while.
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCondition {
    ErrorRate,
    /// log_anomaly: errors in the window.
    ErrorCount,
    AvgResponseTime,
    QueryCount,
}

/// A rule checked and normalised: what the evaluation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: Kind,
    pub host: String,
    pub op: Op,
    pub threshold: f64,
    pub clear: Option<f64>,
    pub for_duration: Duration,
    pub repeat: Duration,
    pub log: Option<LogCondition>,
    pub window: Duration,
    /// log_anomaly: (times normal, at least this many errors).
    pub anomaly: Option<(f64, i64)>,
}

pub const MAX_WINDOW_SECONDS: i64 = 7 * 86_400;

fn name_ok(field: &str, s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() || s.len() > max {
        return Err(format!("{field}: 1 to {max} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{field}: no control characters"));
    }
    Ok(())
}

/// Checks a rule; the error names the field and what is wrong with it.
pub fn validate(r: &RuleSpec) -> Result<Rule, String> {
    name_ok("name", &r.name, 100)?;
    let kind = match r.kind.as_str() {
        "metric" => Kind::Metric,
        "health" => Kind::Health,
        "log" => Kind::Log,
        "log_anomaly" => Kind::LogAnomaly,
        "forecast" => Kind::Forecast,
        "backup" => Kind::Backup,
        "host" => Kind::Host,
        other => {
            return Err(format!(
                "kind: `{other}` is not one of metric, health, log, log_anomaly, forecast, backup, host"
            ))
        }
    };
    let secs = |field: &str, v: i64, max: i64| {
        if (0..=max).contains(&v) {
            Ok(Duration::seconds(v))
        } else {
            Err(format!("{field}: {v} is not between 0 and {max}"))
        }
    };
    let for_duration = secs("for_seconds", r.for_seconds, MAX_WINDOW_SECONDS)?;
    let repeat = secs("repeat_seconds", r.repeat_seconds, 30 * 86_400)?;
    if r.repeat_seconds > 0 && r.repeat_seconds < 60 {
        return Err("repeat_seconds: at least 60 (or 0 for no reminders)".into());
    }
    for c in &r.notify {
        name_ok("notify", c, 100)?;
    }
    let host = r.host.clone().unwrap_or_else(|| "*".into());
    name_ok("host", &host, 200)?;
    let op = match &r.op {
        Some(o) => Op::parse(o)?,
        None => Op::Gt,
    };
    let finite = |field: &str, v: Option<f64>| match v {
        Some(v) if !v.is_finite() => Err(format!("{field}: must be a number")),
        v => Ok(v),
    };
    let threshold = finite("threshold", r.threshold)?;
    let clear = finite("clear_threshold", r.clear_threshold)?;
    let unexpected = |field: &str, present: bool| {
        if present {
            Err(format!("{field}: does not apply to {} rules", r.kind))
        } else {
            Ok(())
        }
    };
    let mut rule = Rule {
        kind,
        host,
        op,
        threshold: 0.0,
        clear,
        for_duration,
        repeat,
        log: None,
        window: Duration::seconds(r.window_seconds.unwrap_or(300)),
        anomaly: None,
    };
    if kind != Kind::LogAnomaly {
        unexpected("factor", r.factor.is_some())?;
        unexpected("min_errors", r.min_errors.is_some())?;
    }
    match kind {
        Kind::Metric => {
            let m = r
                .metric
                .as_deref()
                .ok_or("metric: required for metric rules")?;
            crate::metrics::parse_selector(m).map_err(|e| format!("metric: {e}"))?;
            rule.threshold = threshold.ok_or("threshold: required for metric rules")?;
            if let Some(c) = clear {
                let wrong_side = match op {
                    Op::Gt | Op::Ge => c > rule.threshold,
                    Op::Lt | Op::Le => c < rule.threshold,
                    Op::Eq | Op::Ne => true,
                };
                if wrong_side {
                    return Err(format!(
                        "clear_threshold: {c} must be on the good side of the threshold {} (the value that ends the alert)",
                        rule.threshold
                    ));
                }
            }
        }
        Kind::Health => {
            let c = r
                .check
                .as_deref()
                .ok_or("check: required for health rules (a check's name or *)")?;
            name_ok("check", c, 100)?;
            unexpected("threshold", threshold.is_some())?;
            // Down is 1, up is 0.
            rule.op = Op::Ge;
            rule.threshold = 1.0;
            rule.clear = None;
        }
        Kind::Log => {
            rule.log = Some(match r.condition.as_deref() {
                Some("error_rate") => LogCondition::ErrorRate,
                Some("avg_response_time") => LogCondition::AvgResponseTime,
                Some("query_count") => LogCondition::QueryCount,
                Some(other) => {
                    return Err(format!(
                        "condition: `{other}` is not one of error_rate, avg_response_time, query_count"
                    ))
                }
                None => return Err("condition: required for log rules (error_rate, avg_response_time or query_count)".into()),
            });
            if rule.log == Some(LogCondition::QueryCount) {
                let q = r.query.as_deref().unwrap_or("");
                if q.trim().is_empty() {
                    return Err("query: required for query_count rules".into());
                }
                crate::logs::query::parse(q).map_err(|e| format!("query: {e}"))?;
            } else {
                unexpected("query", r.query.is_some())?;
            }
            if let Some(s) = &r.service {
                name_ok("service", s, 64)?;
            }
            let w = r.window_seconds.unwrap_or(300);
            if !(60..=MAX_WINDOW_SECONDS).contains(&w) {
                return Err(format!(
                    "window_seconds: {w} is not between 60 and {MAX_WINDOW_SECONDS}"
                ));
            }
            rule.threshold = threshold.ok_or("threshold: required for log rules")?;
        }
        Kind::LogAnomaly => {
            rule.log = Some(match r.condition.as_deref() {
                None | Some("error_count") => LogCondition::ErrorCount,
                Some("error_rate") => LogCondition::ErrorRate,
                Some(other) => {
                    return Err(format!(
                        "condition: `{other}` is not error_count or error_rate"
                    ))
                }
            });
            unexpected("query", r.query.is_some())?;
            unexpected("threshold", threshold.is_some())?;
            if let Some(s) = &r.service {
                name_ok("service", s, 64)?;
            }
            let w = r.window_seconds.unwrap_or(300);
            if !(60..=3600).contains(&w) {
                return Err(format!("window_seconds: {w} is not between 60 and 3600"));
            }
            let factor = finite("factor", r.factor)?.unwrap_or(3.0);
            if !(1.0..=1000.0).contains(&factor) {
                return Err(format!("factor: {factor} is not between 1 and 1000"));
            }
            let min = r.min_errors.unwrap_or(10);
            if !(1..=1_000_000).contains(&min) {
                return Err(format!("min_errors: {min} is not between 1 and 1000000"));
            }
            rule.anomaly = Some((factor, min));
            rule.op = Op::Ge;
            rule.threshold = factor;
            rule.clear = None;
        }
        Kind::Host => {
            // Seconds without a sample; three collection intervals (at least a minute) when 0.
            let t = threshold.unwrap_or(0.0);
            if !(t == 0.0 || (30.0..=86_400.0).contains(&t)) {
                return Err(format!(
                    "threshold: {t} seconds without a sample is not between 30 and 86400"
                ));
            }
            rule.op = Op::Gt;
            rule.threshold = t;
            rule.clear = None;
        }
        Kind::Forecast => {
            if let Some(m) = &r.metric {
                crate::metrics::parse_selector(m).map_err(|e| format!("metric: {e}"))?;
            }
            let d = r
                .days
                .or(threshold)
                .ok_or("days: required for forecast rules")?;
            if !(0.0..=365.0).contains(&d) {
                return Err(format!("days: {d} is not between 0 and 365"));
            }
            rule.op = Op::Le;
            rule.threshold = d;
            rule.clear = None;
        }
        Kind::Backup => {
            let h = r
                .hours
                .or(threshold)
                .ok_or("hours: required for backup rules")?;
            if !(h > 0.0 && h <= 24.0 * 365.0) {
                return Err(format!("hours: {h} is not between 0 and 8760"));
            }
            if let Some(t) = &r.target {
                name_ok("target", t, 100)?;
            }
            rule.op = Op::Gt;
            rule.threshold = h;
            rule.clear = None;
        }
    }
    Ok(rule)
}

pub use super::anomaly::{judge_anomaly, Anomaly};

/// Whether `name` matches a host pattern: `*` alone matches all, `*` inside any run of
/// characters; otherwise the whole name must be equal.
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

fn rule(name: &str, kind: &str) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        kind: kind.into(),
        host: None,
        metric: None,
        op: None,
        threshold: None,
        clear_threshold: None,
        for_seconds: 0,
        repeat_seconds: 0,
        notify: vec![],
        severity: None,
        check: None,
        service: None,
        condition: None,
        query: None,
        window_seconds: None,
        factor: None,
        min_errors: None,
        days: None,
        target: None,
        hours: None,
        verified: None,
        enabled: true,
    }
}

/// The runbook's checks, seeded into a new installation: CPU, memory and disk above 80 % for 5
/// minutes; the health checks; the error rate above 5 %; the average response time above 5 s;
/// no backup for 26 hours; and (Opsdeck's own) a resource expected to reach 80 % within 7 days.
pub fn defaults() -> Vec<RuleSpec> {
    let metric = |name: &str, m: &str| RuleSpec {
        host: Some("*".into()),
        metric: Some(m.into()),
        op: Some(">".into()),
        threshold: Some(80.0),
        clear_threshold: Some(75.0),
        for_seconds: 300,
        repeat_seconds: 4 * 3600,
        ..rule(name, "metric")
    };
    let log = |name: &str, cond: &str, threshold: f64| RuleSpec {
        condition: Some(cond.into()),
        threshold: Some(threshold),
        window_seconds: Some(300),
        for_seconds: 60,
        ..rule(name, "log")
    };
    vec![
        metric("CPU above 80 %", "cpu_usage_percent"),
        metric("Memory above 80 %", "memory_used_percent"),
        metric("Disk above 80 %", "disk_used_percent"),
        RuleSpec {
            check: Some("*".into()),
            for_seconds: 60,
            severity: Some(Severity::Critical),
            repeat_seconds: 3600,
            ..rule("Health check down", "health")
        },
        log("Error rate above 5 %", "error_rate", 5.0),
        log("Average response time above 5 s", "avg_response_time", 5.0),
        RuleSpec {
            hours: Some(26.0),
            severity: Some(Severity::Critical),
            ..rule("No backup for 26 hours", "backup")
        },
        RuleSpec {
            days: Some(7.0),
            ..rule("Reaches 80 % within 7 days", "forecast")
        },
    ]
}

/// A notification channel as given to `POST /api/v1/alerts/channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub name: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// webhook: where to POST.
    #[serde(default)]
    pub url: Option<String>,
    /// email: the addresses, separated by commas.
    #[serde(default)]
    pub to: Option<String>,
    /// webhook body: `json` (default), `slack` or `discord`.
    #[serde(default)]
    pub format: Option<String>,
    /// Notified by every rule that names no channel.
    #[serde(default, rename = "default")]
    pub is_default: bool,
    /// Alerts starting within this many seconds go out as one message (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait_seconds: Option<i32>,
    /// Later changes are batched into one message every this many seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval_seconds: Option<i32>,
    /// Past this many messages an hour, one digest an hour (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_hour: Option<i32>,
}

impl NewChannel {
    /// (group wait, group interval, max per hour), defaults filled in.
    pub fn grouping(&self) -> (i32, i32, i32) {
        (
            self.group_wait_seconds.unwrap_or(30),
            self.group_interval_seconds.unwrap_or(300),
            self.max_per_hour.unwrap_or(20),
        )
    }
}

/// Checks a channel; returns its body format.
pub fn validate_channel(c: &NewChannel) -> Result<&'static str, String> {
    name_ok("name", &c.name, 100)?;
    let (wait, interval, max) = c.grouping();
    if !(0..=3600).contains(&wait) {
        return Err(format!(
            "group_wait_seconds: {wait} is not between 0 and 3600"
        ));
    }
    if !(0..=86_400).contains(&interval) {
        return Err(format!(
            "group_interval_seconds: {interval} is not between 0 and 86400"
        ));
    }
    if !(1..=1000).contains(&max) {
        return Err(format!("max_per_hour: {max} is not between 1 and 1000"));
    }
    match c.kind.as_str() {
        "webhook" => {
            let u = c
                .url
                .as_deref()
                .ok_or("url: required for webhook channels")?;
            check_http_url("url", u)?;
            if c.to.is_some() {
                return Err("to: does not apply to webhook channels".into());
            }
            match c.format.as_deref().unwrap_or("json") {
                "json" => Ok("json"),
                "slack" => Ok("slack"),
                "discord" => Ok("discord"),
                other => Err(format!(
                    "format: `{other}` is not one of json, slack, discord"
                )),
            }
        }
        "email" => {
            let to = c.to.as_deref().ok_or("to: required for email channels")?;
            for a in to.split(',') {
                check_address(a.trim())?;
            }
            if c.url.is_some() {
                return Err("url: does not apply to email channels".into());
            }
            Ok("email")
        }
        other => Err(format!("kind: `{other}` is not webhook or email")),
    }
}

/// An address as SMTP takes it: `local@domain`, nothing fancy.
pub fn check_address(a: &str) -> Result<(), String> {
    let ok = a.len() <= 254
        && a.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !a
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
                && !d.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("to: `{a}` is not an e-mail address"))
    }
}

/// An http(s) URL with a host, at most 2,000 characters.
pub fn check_http_url(field: &str, u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or_else(|| format!("{field}: must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{field}: has no host"));
    }
    if u.len() > 2000 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{field}: not a valid URL (no spaces, at most 2,000 characters)"
        ));
    }
    Ok(())
}

/// A health check as given to `POST /api/v1/checks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCheck {
    pub name: String,
    pub url: String,
    #[serde(default = "default_interval")]
    pub interval_seconds: i32,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: i32,
    /// The status that means up (any 2xx when absent).
    #[serde(default)]
    pub expected_status: Option<i32>,
    /// Text the body must contain to be up.
    #[serde(default)]
    pub expected_body: Option<String>,
    /// The host the checked service runs on: while that host is silent, the check's alerts
    /// are suppressed and listed under the host.
    #[serde(default)]
    pub host: Option<String>,
    /// Shown on the public status page (when it is on).
    #[serde(default)]
    pub public: bool,
    /// Its name there (the check's name when absent): host names and URLs stay private.
    #[serde(default)]
    pub public_name: Option<String>,
}

fn default_interval() -> i32 {
    30
}
fn default_timeout() -> i32 {
    5
}

pub fn validate_check(c: &NewCheck) -> Result<(), String> {
    name_ok("name", &c.name, 100)?;
    if let Some(h) = &c.host {
        name_ok("host", h, 200)?;
    }
    if let Some(p) = &c.public_name {
        name_ok("public_name", p, 100)?;
    }
    check_http_url("url", &c.url)?;
    if !(5..=86_400).contains(&c.interval_seconds) {
        return Err(format!(
            "interval_seconds: {} is not between 5 and 86400",
            c.interval_seconds
        ));
    }
    if !(1..=60).contains(&c.timeout_seconds) {
        return Err(format!(
            "timeout_seconds: {} is not between 1 and 60",
            c.timeout_seconds
        ));
    }
    if c.timeout_seconds > c.interval_seconds {
        return Err(format!(
            "timeout_seconds: {} s is longer than the interval ({} s): a check must end before the next one starts",
            c.timeout_seconds, c.interval_seconds
        ));
    }
    if let Some(s) = c.expected_status {
        if !(100..=599).contains(&s) {
            return Err(format!("expected_status: {s} is not an HTTP status"));
        }
    }
    if c.expected_body.as_deref().is_some_and(|b| b.len() > 1000) {
        return Err("expected_body: at most 1,000 characters".into());
    }
    Ok(())
}

/// Whether a response means up; the reason when it does not.
pub fn judge_response(
    status: u16,
    body: &str,
    expected_status: Option<i32>,
    expected_body: Option<&str>,
) -> Result<(), String> {
    match expected_status {
        Some(s) if i32::from(status) != s => {
            return Err(format!("status {status}, expected {s}"));
        }
        None if !(200..300).contains(&status) => {
            return Err(format!("status {status}, expected 2xx"));
        }
        _ => {}
    }
    if let Some(b) = expected_body.filter(|b| !b.is_empty()) {
        if !body.contains(b) {
            return Err(format!("the body does not contain `{b}`"));
        }
    }
    Ok(())
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub rule: String,
    /// `firing` or `resolved` (`test` for a channel test).
    pub status: AlertStatus,
    pub host: Option<String>,
    pub value: Option<f64>,
    pub at: Timestamp,
    pub severity: Severity,
    pub kind: String,
    /// The instance: host, series labels, check or service.
    pub instance: String,
    pub summary: String,
    /// A reminder of an alert still firing.
    pub reminder: bool,
    /// A link to the Alerts page when Opsdeck's public URL is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Notice {
    pub fn title(&self) -> String {
        let what = match (self.status, self.reminder) {
            (AlertStatus::Firing, true) => "STILL FIRING",
            (AlertStatus::Firing, false) => "FIRING",
            (AlertStatus::Resolved, _) => "RESOLVED",
            (AlertStatus::Pending, _) => "PENDING",
            (AlertStatus::Test, _) => "TEST",
        };
        format!("[{what}] {} ({})", self.rule, self.instance)
    }
}

pub use super::group::{email_text, webhook_body};

/// Attempts per notification before it is given up.
pub const MAX_ATTEMPTS: i32 = 6;

/// How long to wait after the `attempt`-th failure (1-based): 5 s, 15 s, 45 s… at most 10 min.
pub fn backoff(attempt: i32) -> Duration {
    let secs = 5i64.saturating_mul(3i64.saturating_pow(attempt.clamp(1, 20) as u32 - 1));
    Duration::seconds(secs.min(600))
}

/// A rule's duration as people write it: `90 s`, `5 min`, `2 h`, `1 d`.
pub fn human_secs(secs: i64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Uptime in % from (up checks, all checks); None before any.
pub fn uptime(up: i64, total: i64) -> Option<f64> {
    (total > 0).then(|| 100.0 * up as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::group::Message;

    #[test]
    fn only_a_changed_condition_starts_a_rules_states_over() {
        let old: RuleSpec = serde_json::from_value(serde_json::json!({
            "name": "cpu", "kind": "metric", "metric": "cpu_usage_percent", "op": ">",
            "threshold": 90.0, "for_seconds": 300, "notify": ["ops"]
        }))
        .unwrap();
        let with = |f: &dyn Fn(&mut RuleSpec)| {
            let mut s = old.clone();
            f(&mut s);
            s
        };
        for (new, keeps) in [
            (old.clone(), true),
            (
                with(&|s| s.notify = vec!["ops".into(), "mail".into()]),
                true,
            ),
            (with(&|s| s.severity = Some(Severity::Critical)), true),
            (with(&|s| s.repeat_seconds = 3600), true),
            (with(&|s| s.name = "cpu high".into()), true),
            (with(&|s| s.threshold = Some(95.0)), false),
            (with(&|s| s.clear_threshold = Some(80.0)), false),
            (with(&|s| s.for_seconds = 60), false),
            (with(&|s| s.metric = Some("load1".into())), false),
            (with(&|s| s.host = Some("web-*".into())), false),
            (with(&|s| s.enabled = false), false),
        ] {
            assert_eq!(keeps_states(&old, &new), keeps, "{new:?}");
        }
    }

    fn metric(threshold: Option<f64>, clear: Option<f64>, op: Option<&str>) -> RuleSpec {
        RuleSpec {
            metric: Some("cpu_usage_percent".into()),
            threshold,
            clear_threshold: clear,
            op: op.map(str::to_string),
            ..rule("cpu", "metric")
        }
    }

    #[test]
    fn an_unknown_severity_is_refused_when_read_and_names_the_choices() {
        let err = serde_json::from_str::<RuleSpec>(
            r#"{"name": "cpu", "kind": "metric", "severity": "page"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`page`") && err.contains("`critical`"),
            "{err}"
        );
        let ok: RuleSpec =
            serde_json::from_str(r#"{"name": "cpu", "kind": "metric", "severity": "critical"}"#)
                .unwrap();
        assert_eq!(ok.severity, Some(Severity::Critical));
    }

    #[test]
    fn rules_validate_with_errors_that_name_the_field() {
        let ok = validate(&metric(Some(80.0), Some(75.0), None)).unwrap();
        assert_eq!((ok.op, ok.threshold, ok.clear), (Op::Gt, 80.0, Some(75.0)));
        for (spec, field) in [
            (metric(None, None, None), "threshold:"),
            (metric(Some(80.0), Some(85.0), None), "clear_threshold:"),
            (metric(Some(10.0), Some(5.0), Some("<")), "clear_threshold:"),
            (metric(Some(80.0), None, Some("=>")), "op:"),
            (metric(Some(f64::NAN), None, None), "threshold:"),
            (
                RuleSpec {
                    kind: "cron".into(),
                    ..metric(Some(1.0), None, None)
                },
                "kind:",
            ),
            (
                RuleSpec {
                    name: " ".into(),
                    ..metric(Some(1.0), None, None)
                },
                "name:",
            ),
            (
                RuleSpec {
                    metric: Some("cpu{".into()),
                    ..metric(Some(1.0), None, None)
                },
                "metric:",
            ),
            (
                RuleSpec {
                    metric: None,
                    ..metric(Some(1.0), None, None)
                },
                "metric:",
            ),
            (
                RuleSpec {
                    for_seconds: -1,
                    ..metric(Some(1.0), None, None)
                },
                "for_seconds:",
            ),
            (
                RuleSpec {
                    repeat_seconds: 5,
                    ..metric(Some(1.0), None, None)
                },
                "repeat_seconds:",
            ),
            (rule("h", "health"), "check:"),
            (rule("l", "log"), "condition:"),
            (
                RuleSpec {
                    condition: Some("errors".into()),
                    ..rule("l", "log")
                },
                "condition:",
            ),
            (
                RuleSpec {
                    condition: Some("query_count".into()),
                    threshold: Some(1.0),
                    ..rule("l", "log")
                },
                "query:",
            ),
            (
                RuleSpec {
                    condition: Some("query_count".into()),
                    query: Some("status:>=".into()),
                    threshold: Some(1.0),
                    ..rule("l", "log")
                },
                "query:",
            ),
            (
                RuleSpec {
                    condition: Some("error_rate".into()),
                    threshold: Some(5.0),
                    window_seconds: Some(10),
                    ..rule("l", "log")
                },
                "window_seconds:",
            ),
            (
                RuleSpec {
                    condition: Some("error_rate".into()),
                    ..rule("l", "log")
                },
                "threshold:",
            ),
            (rule("f", "forecast"), "days:"),
            (
                RuleSpec {
                    days: Some(400.0),
                    ..rule("f", "forecast")
                },
                "days:",
            ),
            (rule("b", "backup"), "hours:"),
            (
                RuleSpec {
                    hours: Some(-1.0),
                    ..rule("b", "backup")
                },
                "hours:",
            ),
            (
                RuleSpec {
                    check: Some("*".into()),
                    threshold: Some(3.0),
                    ..rule("h", "health")
                },
                "threshold:",
            ),
        ] {
            let e = validate(&spec).unwrap_err();
            assert!(e.starts_with(field), "{spec:?}: {e}");
        }
    }

    #[test]
    fn the_runbook_defaults_are_valid() {
        let d = defaults();
        assert_eq!(d.len(), 8);
        for r in &d {
            validate(r).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        }
        let cpu = validate(&d[0]).unwrap();
        assert_eq!(
            (cpu.threshold, cpu.for_duration),
            (80.0, Duration::minutes(5))
        );
        let backup = validate(&d[6]).unwrap();
        assert_eq!((backup.op, backup.threshold), (Op::Gt, 26.0));
    }

    #[test]
    fn host_patterns() {
        for (p, name, want) in [
            ("*", "web-1", true),
            ("web-1", "web-1", true),
            ("web-1", "web-10", false),
            ("web-*", "web-10", true),
            ("web-*", "db-1", false),
            ("*-1", "web-1", true),
            ("*-1", "web-12", false),
            ("w*b*1", "web-1", true),
            ("a*a", "a", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob(p, name), want, "{p} vs {name}");
        }
    }

    #[test]
    fn channels_validate_and_urls_are_redacted() {
        let hook = |url: &str, format: Option<&str>| NewChannel {
            name: "ops".into(),
            kind: "webhook".into(),
            url: Some(url.into()),
            to: None,
            format: format.map(str::to_string),
            is_default: false,
            group_wait_seconds: None,
            group_interval_seconds: None,
            max_per_hour: None,
        };
        assert_eq!(
            validate_channel(&NewChannel {
                max_per_hour: Some(0),
                ..hook("https://example.com/h", None)
            }),
            Err("max_per_hour: 0 is not between 1 and 1000".into())
        );
        assert_eq!(
            validate_channel(&NewChannel {
                group_wait_seconds: Some(-1),
                ..hook("https://example.com/h", None)
            }),
            Err("group_wait_seconds: -1 is not between 0 and 3600".into())
        );
        assert_eq!(
            validate_channel(&hook(
                "https://hooks.slack.com/services/T/B/x",
                Some("slack")
            )),
            Ok("slack")
        );
        assert_eq!(
            validate_channel(&hook("http://127.0.0.1:9000/hook", None)),
            Ok("json")
        );
        for (c, field) in [
            (hook("ftp://x", None), "url:"),
            (hook("http://", None), "url:"),
            (hook("http://a b", None), "url:"),
            (hook("http://x", Some("teams")), "format:"),
            (
                NewChannel {
                    kind: "sms".into(),
                    ..hook("http://x", None)
                },
                "kind:",
            ),
            (
                NewChannel {
                    kind: "email".into(),
                    url: None,
                    to: Some("ops".into()),
                    ..hook("http://x", None)
                },
                "to:",
            ),
            (
                NewChannel {
                    kind: "email".into(),
                    url: None,
                    to: None,
                    ..hook("http://x", None)
                },
                "to:",
            ),
        ] {
            let e = validate_channel(&c).unwrap_err();
            assert!(e.starts_with(field), "{c:?}: {e}");
        }
        let mail = NewChannel {
            kind: "email".into(),
            url: None,
            to: Some("ops@example.com, oncall@example.org".into()),
            ..hook("http://x", None)
        };
        assert_eq!(validate_channel(&mail), Ok("email"));
    }

    #[test]
    fn checks_validate_and_responses_are_judged() {
        let c = NewCheck {
            name: "api".into(),
            url: "http://127.0.0.1:8000/health".into(),
            interval_seconds: 30,
            timeout_seconds: 5,
            expected_status: None,
            expected_body: None,
            host: None,
            public: false,
            public_name: None,
        };
        assert_eq!(validate_check(&c), Ok(()));
        for (bad, field) in [
            (
                NewCheck {
                    interval_seconds: 1,
                    ..c.clone()
                },
                "interval_seconds:",
            ),
            (
                NewCheck {
                    timeout_seconds: 0,
                    ..c.clone()
                },
                "timeout_seconds:",
            ),
            (
                NewCheck {
                    expected_status: Some(700),
                    ..c.clone()
                },
                "expected_status:",
            ),
            (
                NewCheck {
                    url: "localhost:80".into(),
                    ..c.clone()
                },
                "url:",
            ),
            (
                NewCheck {
                    timeout_seconds: 61,
                    ..c.clone()
                },
                "timeout_seconds: 61 is not between 1 and 60",
            ),
            (
                NewCheck {
                    interval_seconds: 10,
                    timeout_seconds: 30,
                    ..c.clone()
                },
                "timeout_seconds: 30 s is longer than the interval (10 s)",
            ),
        ] {
            let err = validate_check(&bad).unwrap_err();
            assert!(err.starts_with(field), "{err}");
        }
        for (status, body, es, eb, up) in [
            (200, "ok", None, None, true),
            (204, "", None, None, true),
            (301, "", None, None, false),
            (503, "", None, None, false),
            (503, "", Some(503), None, true),
            (200, "", Some(204), None, false),
            (200, "{\"status\":\"ok\"}", None, Some("\"ok\""), true),
            (
                200,
                "{\"status\":\"degraded\"}",
                None,
                Some("\"ok\""),
                false,
            ),
        ] {
            assert_eq!(
                judge_response(status, body, es, eb).is_ok(),
                up,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn bodies_carry_the_contract_fields_in_every_format() {
        let n = Notice {
            rule: "CPU above 80 %".into(),
            status: AlertStatus::Firing,
            host: Some("web-1".into()),
            value: Some(93.5),
            at: Timestamp(time::macros::datetime!(2026-11-24 10:00 UTC)),
            severity: Severity::Warning,
            kind: "metric".into(),
            instance: "web-1".into(),
            summary: "cpu_usage_percent is 93.5 (> 80)".into(),
            reminder: false,
            url: None,
        };
        let one = Message::single(n.clone());
        for format in ["json", "slack", "discord"] {
            let b = webhook_body(format, &one);
            assert_eq!(b["rule"], "CPU above 80 %");
            assert_eq!(b["status"], "firing");
            assert_eq!(b["host"], "web-1");
            assert_eq!(b["value"], 93.5);
            assert_eq!(b["at"], "2026-11-24T10:00:00Z");
        }
        assert!(webhook_body("slack", &one)["text"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING] CPU above 80 % (web-1)"));
        assert!(webhook_body("discord", &one)["content"].is_string());
        assert!(webhook_body("json", &one).get("text").is_none());
        let (subject, body) = email_text(&Message::single(Notice {
            reminder: true,
            ..n.clone()
        }));
        assert_eq!(subject, "Opsdeck [STILL FIRING] CPU above 80 % (web-1)");
        assert!(body.contains("Value:    93.5"));
        // A group: every alert in the text and the mail, the title counting them.
        let two = Message {
            alerts: vec![
                n.clone(),
                Notice {
                    rule: "disk".into(),
                    ..n.clone()
                },
            ],
            ..one
        };
        let text = webhook_body("slack", &two)["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.starts_with("[FIRING 2] 2 alerts: CPU above 80 %, disk\n"),
            "{text}"
        );
        assert!(
            text.contains("[FIRING] disk (web-1): cpu_usage_percent"),
            "{text}"
        );
        let (subject, body) = email_text(&two);
        assert_eq!(subject, "Opsdeck [FIRING 2] 2 alerts: CPU above 80 %, disk");
        assert_eq!(body.matches("Rule:").count(), 2);
    }

    #[test]
    fn anomalies_against_the_same_hour_of_the_week_before() {
        // ((errors, lines) now, (errors, lines) over the 7 same hours, window s, (factor, min, rate)) → breach
        let cases = [
            // Never an error at this hour: 12 errors in 5 min is an anomaly, 9 is below min_errors.
            ((12, 100), (0, 7000), 300, (3.0, 10, false), true),
            ((9, 100), (0, 7000), 300, (3.0, 10, false), false),
            // 840 errors in 7 hours: 10 per 5 min is normal; 29 is not 3×, 30 is.
            ((29, 100), (840, 7000), 300, (3.0, 10, false), false),
            ((30, 100), (840, 7000), 300, (3.0, 10, false), true),
            // Rates: 1 % usual, 2.5 % now is below 3×, 4 % above.
            ((25, 1000), (70, 7000), 300, (3.0, 10, true), false),
            ((40, 1000), (70, 7000), 300, (3.0, 10, true), true),
            // Nothing logged: nothing fires.
            ((0, 0), (0, 0), 300, (1.0, 1, false), false),
        ];
        for (now, base, w, opts, breach) in cases {
            let a = judge_anomaly(now, base, w, opts);
            assert_eq!(a.breach, breach, "{now:?} {base:?} {opts:?}: {a:?}");
        }
        let a = judge_anomaly((30, 100), (840, 7000), 300, (3.0, 10, false));
        assert_eq!(a.normal, 10.0);
        assert_eq!(
            a.describe("api", 300, false),
            "api: 30 errors in 5 min (3.0× normal; normal at this hour: 10.0)"
        );
    }

    #[test]
    fn durations_read_as_written() {
        for (secs, text) in [
            (0, "0 s"),
            (90, "90 s"),
            (300, "5 min"),
            (3600, "1 h"),
            (5400, "90 min"),
            (86_400, "1 d"),
            (90_000, "25 h"),
        ] {
            assert_eq!(human_secs(secs), text);
        }
    }

    #[test]
    fn retries_back_off_and_uptime() {
        let s: Vec<i64> = (1..=7).map(|a| backoff(a).whole_seconds()).collect();
        assert_eq!(s, [5, 15, 45, 135, 405, 600, 600]);
        assert_eq!(backoff(i32::MAX).whole_seconds(), 600);
        assert_eq!(uptime(0, 0), None);
        assert_eq!(uptime(99, 100), Some(99.0));
    }
}
