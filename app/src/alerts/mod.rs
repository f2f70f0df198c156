//! Alerts and health checks: rules over metrics, health checks, logs, forecasts and backups,
//! evaluated every `OPSDECK_ALERT_INTERVAL` by one process at a time; notifications by webhook
//! and e-mail through a queue in PostgreSQL; HTTP health checks with uptime and latency. Pure
//! parts: `machine` (the state machine) and `rules` (validation, defaults, bodies); the
//! database side is in `service` (server only).

// The rule form's server function takes one argument per form field; the client side that
// the `server` macro generates from it cannot carry an `allow` of its own.
#![allow(clippy::too_many_arguments)]

pub mod anomaly;
pub mod form;
pub mod group;
pub mod machine;
#[cfg(feature = "ssr")]
pub mod maintenance;
mod pages;
pub mod rules;
#[cfg(feature = "ssr")]
pub mod service;
pub mod status;
pub mod wrong;

pub use form::{RuleForm, RULE_FORM_FIELDS};
pub use pages::{ActiveMaintenance, AlertsPage, ChecksPage, OverviewAlerts};
pub use rules::{NewChannel, NewCheck, RuleSpec};

use crate::error::AppError;
use crate::metrics::Chart;
pub use crate::services::Liveness;
use crate::text_enum::text_enum;
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

text_enum! {
    /// How bad an alert is (rules say; `warning` when they do not).
    #[derive(Default)]
    pub enum Severity { #[default] Warning = "warning", Critical = "critical" }
}

text_enum! {
    /// An alert's state as shown and sent: `pending` or `firing` while active, `firing` or
    /// `resolved` in the history, `test` in a channel test's notification only.
    pub enum AlertStatus { Pending = "pending", Firing = "firing", Resolved = "resolved", Test = "test" }
}

/// A notification channel as listed: a webhook's URL is shown redacted (its path is often
/// the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChannelInfo {
    pub id: i64,
    pub name: String,
    /// Paused: kept, but not run until resumed (`PATCH` with `{"paused": false}`).
    #[serde(default)]
    pub paused: bool,
    pub kind: String,
    /// webhook: scheme and host only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// email: the addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub format: String,
    /// Notified by every rule that names no channel.
    #[serde(rename = "default")]
    pub is_default: bool,
    /// The last delivery: `sent`, `failed`, `queued` or null.
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    /// Alerts starting within this many seconds go out as one message.
    #[serde(default)]
    pub group_wait_seconds: i32,
    /// Later changes are batched: one message every this many seconds at most.
    #[serde(default)]
    pub group_interval_seconds: i32,
    /// Past this many messages an hour, one digest an hour.
    #[serde(default)]
    pub max_per_hour: i32,
}

/// A notice through a channel's outbox, for the Alerts page and
/// `GET /api/v1/alerts/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NotificationLine {
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub at: Timestamp,
    pub channel: String,
    pub rule: String,
    pub instance: String,
    pub status: AlertStatus,
    /// `waiting`, `sent` (in a message), `suppressed` (its host is down) or `dropped` (the
    /// channel was paused meanwhile).
    pub outcome: String,
    /// Why: what it waits for, what it went out with, or why it was held back.
    pub why: String,
    /// The message it went out in.
    pub message: Option<i64>,
    /// That message's delivery: `queued`, `sent` or `failed`.
    pub delivery: Option<String>,
}

/// A rule with how many of its instances are firing and pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RuleInfo {
    pub id: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Seeded from the runbook.
    pub builtin: bool,
    pub firing: i64,
    pub pending: i64,
    /// The condition in words, as `cpu_usage_percent > 80 for 5m`.
    pub describe: String,
}

/// An instance that is pending or firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActiveAlert {
    pub rule_id: i64,
    pub rule: String,
    pub kind: String,
    pub severity: Severity,
    pub instance: String,
    pub host: Option<String>,
    /// `pending` or `firing`.
    pub status: AlertStatus,
    pub since: Timestamp,
    pub value: Option<f64>,
    pub summary: String,
    pub acked_by: Option<String>,
    pub silenced: bool,
    /// The maintenance window it is in: evaluated and shown, but notifying no one.
    #[serde(default)]
    pub maintenance: Option<String>,
}

/// A change in the history: `firing` or `resolved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AlertEvent {
    pub id: i64,
    pub rule: String,
    pub instance: String,
    pub host: Option<String>,
    pub status: AlertStatus,
    pub value: Option<f64>,
    pub summary: String,
    pub silenced: bool,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SilenceInfo {
    pub id: i64,
    pub rule: Option<String>,
    pub host: Option<String>,
    pub ends_at: Timestamp,
    pub comment: String,
    pub created_by: String,
}

/// `GET /api/v1/alerts`: what is pending or firing now, then the history, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AlertsOverview {
    pub active: Vec<ActiveAlert>,
    pub history: Vec<AlertEvent>,
    pub silences: Vec<SilenceInfo>,
}

/// A health check with its state and uptime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CheckInfo {
    pub id: i64,
    /// The check as it was given (its URL with any password hidden).
    #[serde(flatten)]
    pub check: NewCheck,
    /// Paused: kept, but not run until resumed (`PATCH` with `{"paused": false}`).
    #[serde(default)]
    pub paused: bool,
    /// `up`, `down`, or `unknown` before the first check.
    pub state: Liveness,
    pub since: Option<Timestamp>,
    /// Latency of the last check in milliseconds.
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
    pub last_checked: Option<Timestamp>,
    /// % of checks up over the last 24 hours, 7 and 30 days (null before any).
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    pub uptime_30d: Option<f64>,
    pub builtin: bool,
    /// The last results, oldest first (at most 50): `true` for up. The heartbeat bar.
    #[serde(default)]
    pub recent: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsPageData {
    pub overview: AlertsOverview,
    pub rules: Vec<RuleInfo>,
    pub channels: Vec<ChannelInfo>,
    pub can_edit: bool,
    pub is_admin: bool,
    pub interval_seconds: u64,
    pub last_evaluated: Option<Timestamp>,
    pub smtp_configured: bool,
    /// Maintenance windows not over.
    #[serde(default)]
    pub maintenance: Vec<maintenance_view::WindowRow>,
    /// The last notices through the channels' outboxes.
    #[serde(default)]
    pub notifications: Vec<NotificationLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksPageData {
    pub checks: Vec<(CheckInfo, Option<Chart>)>,
    pub can_edit: bool,
    /// The window of the latency charts: `1h` … `90d`, or `custom`.
    pub range_label: String,
}

/// The Overview's answer to "is anything wrong?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wrong {
    pub firing: Vec<ActiveAlert>,
    pub pending: usize,
    pub checks_down: Vec<String>,
    pub checks_total: usize,
    pub rules: usize,
}

#[server(prefix = "/sfn", endpoint = "alerts/page")]
pub async fn get_alerts_page() -> Result<AlertsPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(crate::auth::Role::Viewer).await?;
        service::page_data(&ctx.state, user.role).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "alerts/wrong")]
pub async fn get_wrong() -> Result<Wrong, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(crate::auth::Role::Viewer).await?;
        service::wrong(&ctx.state.pool).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "alerts/checks")]
pub async fn get_checks_page(
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<ChecksPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(crate::auth::Role::Viewer).await?;
        let (from, to, label) =
            crate::metrics::window_now(range.as_deref(), from.as_deref(), to.as_deref(), "24h")?;
        Ok(ChecksPageData {
            checks: service::checks_with_charts(&ctx.state.pool, from, to, &label).await?,
            can_edit: user.can(crate::auth::Role::Operator),
            range_label: label,
        })
    })
    .await
}

/// Adds or replaces a rule from the page's form.
#[server(prefix = "/sfn", endpoint = "alerts/add-rule")]
pub async fn add_rule(#[server(flatten)] form: RuleForm) -> Result<i64, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let spec = form.spec().map_err(AppError::Unprocessable)?;
        service::upsert_rule(&ctx, &spec).await
    })
    .await
}

/// Changes a rule from its Edit form: the fields the form sets, the rest kept.
#[server(prefix = "/sfn", endpoint = "alerts/edit-rule")]
pub async fn edit_rule(id: String, #[server(flatten)] form: RuleForm) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let id = crate::patch::form_id(&id)?;
        let spec = form.spec().map_err(AppError::Unprocessable)?;
        let serde_json::Value::Object(all) =
            serde_json::to_value(&spec).map_err(|_| AppError::Internal)?
        else {
            return Err(AppError::Internal);
        };
        let change = RULE_FORM_FIELDS
            .iter()
            .map(|k| (k.to_string(), all.get(*k).cloned().unwrap_or_default()))
            .collect();
        service::patch_rule(&ctx, id, crate::patch::Change(change)).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "alerts/rule-action")]
pub async fn rule_action(id: i64, action: String) -> Result<(), AppError> {
    crate::auth::service::in_request(
        |ctx| async move { service::rule_action(&ctx, id, &action).await },
    )
    .await
}

/// "Mute" a firing alert: a maintenance window over it for `minutes` from now.
/// `until` = `09:00`: until the next 09:00 in the browser's time zone, whatever `minutes` says.
#[server(prefix = "/sfn", endpoint = "alerts/mute")]
pub async fn mute_alert(
    rule_id: i64,
    instance: String,
    minutes: i64,
    until: Option<String>,
) -> Result<(), AppError> {
    let minutes = match until.as_deref() {
        None | Some("") => minutes,
        Some("09:00") => crate::zone::minutes_until(
            crate::zone::current(),
            time::OffsetDateTime::now_utc().unix_timestamp(),
            9,
        ),
        Some(_) => return Err(AppError::bad_request("until: only 09:00")),
    };
    crate::auth::service::in_request(|ctx| async move {
        service::mute_alert(&ctx, rule_id, &instance, minutes)
            .await
            .map(|_| ())
    })
    .await
}

/// The maintenance windows in force now (for the Overview).
#[server(prefix = "/sfn", endpoint = "alerts/maintenance-active")]
pub async fn get_active_maintenance() -> Result<Vec<maintenance_view::WindowLine>, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(crate::auth::Role::Viewer).await?;
        Ok(
            service::active_windows(&ctx.state.pool, time::OffsetDateTime::now_utc())
                .await?
                .into_iter()
                .map(|w| maintenance_view::WindowLine {
                    what: maintenance_view::scope(w.host.as_deref(), &w.checks, &w.rules),
                    name: w.name,
                    until: w.end,
                })
                .collect(),
        )
    })
    .await
}

/// A maintenance window as the pages show it (the API's type is server-only).
pub mod maintenance_view {
    use crate::timestamp::Timestamp;
    use serde::{Deserialize, Serialize};

    /// A window as the Alerts page lists it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct WindowRow {
        pub id: i64,
        pub name: String,
        pub what: String,
        /// `12:00 – 13:00` or `0 2 * * * for 60 min (Europe/Paris)`.
        pub when: String,
        pub active: bool,
        pub created_by: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct WindowLine {
        pub name: String,
        /// What it covers, in words.
        pub what: String,
        /// A one-off window's end.
        pub until: Option<Timestamp>,
    }

    /// `host web-*, checks api, rules hot`, or `everything`. Pure.
    pub fn scope(host: Option<&str>, checks: &[String], rules: &[String]) -> String {
        let mut parts = vec![];
        if let Some(h) = host {
            parts.push(format!("host {h}"));
        }
        if !checks.is_empty() {
            parts.push(format!("checks {}", checks.join(", ")));
        }
        if !rules.is_empty() {
            parts.push(format!("rules {}", rules.join(", ")));
        }
        if parts.is_empty() {
            "everything".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Open a one-off maintenance window from now for `minutes` (the Alerts page's form).
#[server(prefix = "/sfn", endpoint = "alerts/maintenance-open")]
pub async fn open_maintenance(
    name: String,
    host: Option<String>,
    checks: Option<String>,
    rules: Option<String>,
    minutes: i64,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(crate::auth::Role::Operator).await?;
        let list = |s: Option<String>| -> Vec<String> {
            s.unwrap_or_default()
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        if !(1..=31 * 24 * 60).contains(&minutes) {
            return Err(AppError::bad_request("minutes: 1 to 44640"));
        }
        let now = time::OffsetDateTime::now_utc();
        let w = maintenance::NewWindow {
            name,
            host: host.filter(|h| !h.trim().is_empty()),
            checks: list(checks),
            rules: list(rules),
            start: Some(Timestamp(now)),
            end: Some(Timestamp(now + time::Duration::minutes(minutes))),
            schedule: None,
            duration_minutes: None,
            timezone: None,
        };
        service::add_window_by(&ctx.state.pool, &w, &ctx.actor(&user))
            .await
            .map(|_| ())
    })
    .await
}

/// End a maintenance window now.
#[server(prefix = "/sfn", endpoint = "alerts/maintenance-end")]
pub async fn end_maintenance(id: i64) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(crate::auth::Role::Operator).await?;
        service::end_window_by(&ctx.state.pool, id, None, &ctx.actor(&user)).await
    })
    .await
}

/// Acknowledge (`ack`) or silence for an hour (`silence`) a firing instance.
#[server(prefix = "/sfn", endpoint = "alerts/instance-action")]
pub async fn instance_action(
    rule_id: i64,
    instance: String,
    action: String,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::instance_action(&ctx, rule_id, &instance, &action).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "alerts/unsilence")]
pub async fn end_silence(id: i64) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move { service::end_silence(&ctx, id).await })
        .await
}

#[server(prefix = "/sfn", endpoint = "alerts/add-channel")]
pub async fn add_channel(
    name: String,
    kind: String,
    url: String,
    to: String,
    format: String,
    is_default: Option<String>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    max_per_hour: Option<String>,
) -> Result<i64, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let int = |field: &str, v: Option<String>| -> Result<Option<i32>, AppError> {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => s.parse().map(Some).map_err(|_| {
                    AppError::Unprocessable(format!("{field}: `{s}` is not a whole number"))
                }),
            }
        };
        let c = NewChannel {
            name: name.trim().to_string(),
            url: opt(&url).filter(|_| kind == "webhook"),
            to: opt(&to).filter(|_| kind == "email"),
            format: opt(&format).filter(|_| kind == "webhook"),
            kind,
            is_default: is_default.is_some_and(|d| d == "true" || d == "on"),
            group_wait_seconds: int("group_wait_seconds", group_wait)?,
            group_interval_seconds: int("group_interval_seconds", group_interval)?,
            max_per_hour: int("max_per_hour", max_per_hour)?,
        };
        service::upsert_channel(&ctx, &c).await
    })
    .await
}

/// A channel's Edit form. The webhook URL is never shown (it may hold a token), so an empty
/// one is kept.
#[server(prefix = "/sfn", endpoint = "alerts/edit-channel")]
pub async fn edit_channel(
    id: String,
    #[server(flatten)] form: std::collections::BTreeMap<String, String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        use crate::patch::{form_id, from_form, FormField::*};
        let id = form_id(&id)?;
        let fields = [
            ("url", NewOnly),
            ("to", Text),
            ("format", Optional),
            ("default", Bool),
            ("group_wait_seconds", Int),
            ("group_interval_seconds", Int),
            ("max_per_hour", Int),
        ];
        let change = from_form(&form, &fields).map_err(AppError::Unprocessable)?;
        service::patch_channel(&ctx, id, change).await
    })
    .await
}

/// `test` (queue a test notification), `pause`, `resume` or `delete`; answers what was done.
#[server(prefix = "/sfn", endpoint = "alerts/channel-action")]
pub async fn channel_action(id: i64, action: String) -> Result<String, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        match action.as_str() {
            "test" => service::test_channel(&ctx, id).await.map(|_| {
                "A test notification is on its way; the channel's last delivery shows below."
                    .to_string()
            }),
            "delete" => service::delete_channel(&ctx, id)
                .await
                .map(|_| "Channel deleted.".to_string()),
            "pause" | "resume" => {
                let pause = action == "pause";
                service::patch_channel(&ctx, id, crate::patch::Change::paused(pause))
                    .await
                    .map(|_| {
                        if pause {
                            "Channel paused: it is sent nothing until resumed.".to_string()
                        } else {
                            "Channel resumed.".to_string()
                        }
                    })
            }
            a => Err(AppError::bad_request(format!(
                "action `{a}`: test, pause, resume or delete"
            ))),
        }
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "alerts/add-check")]
pub async fn add_check(
    name: String,
    url: String,
    interval_seconds: i32,
    timeout_seconds: i32,
    expected_status: String,
    expected_body: String,
    host: Option<String>,
    public: Option<String>,
    public_name: Option<String>,
) -> Result<i64, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let expected_status = match expected_status.trim() {
            "" => None,
            s => Some(s.parse::<i32>().map_err(|_| {
                AppError::unprocessable(format!("expected_status: `{s}` is not a number"))
            })?),
        };
        let c = NewCheck {
            name: name.trim().to_string(),
            url: url.trim().to_string(),
            interval_seconds,
            timeout_seconds,
            expected_status,
            expected_body: Some(expected_body).filter(|b| !b.is_empty()),
            host: host.map(|h| h.trim().to_string()).filter(|h| !h.is_empty()),
            public: public.is_some_and(|p| p == "true" || p == "on"),
            public_name: public_name
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty()),
        };
        service::upsert_check(&ctx, &c).await
    })
    .await
}

/// Changes a check from its Edit form. The URL is changed only when a new one is typed (the
/// page shows it redacted, so it cannot be sent back as it is); an empty expected status or
/// body clears it.
#[server(prefix = "/sfn", endpoint = "alerts/edit-check")]
pub async fn edit_check(
    id: i64,
    url: String,
    interval_seconds: i32,
    timeout_seconds: i32,
    expected_status: String,
    expected_body: String,
    host: Option<String>,
    public: Option<String>,
    public_name: Option<String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let mut change = serde_json::Map::new();
        if !url.trim().is_empty() {
            change.insert("url".into(), url.trim().into());
        }
        change.insert("interval_seconds".into(), interval_seconds.into());
        change.insert("timeout_seconds".into(), timeout_seconds.into());
        let status = match expected_status.trim() {
            "" => serde_json::Value::Null,
            s => s.parse::<i32>().map(Into::into).map_err(|_| {
                AppError::unprocessable(format!("expected_status: `{s}` is not a number"))
            })?,
        };
        change.insert("expected_status".into(), status);
        let body = Some(expected_body).filter(|b| !b.is_empty());
        change.insert("expected_body".into(), body.into());
        if let Some(h) = host {
            let h = Some(h.trim().to_string()).filter(|h| !h.is_empty());
            change.insert("host".into(), h.into());
        }
        if let Some(p) = public {
            change.insert("public".into(), (p == "true" || p == "on").into());
        }
        if let Some(p) = public_name {
            let p = Some(p.trim().to_string()).filter(|p| !p.is_empty());
            change.insert("public_name".into(), p.into());
        }
        service::patch_check(&ctx, id, crate::patch::Change(change)).await
    })
    .await
}

/// A check's `delete`, `pause` or `resume`.
#[server(prefix = "/sfn", endpoint = "alerts/check-action")]
pub async fn check_action(id: i64, action: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        use crate::patch::Change;
        match action.as_str() {
            "delete" => service::delete_check(&ctx, id).await,
            "pause" => service::patch_check(&ctx, id, Change::paused(true)).await,
            "resume" => service::patch_check(&ctx, id, Change::paused(false)).await,
            a => Err(AppError::bad_request(format!(
                "action `{a}`: delete, pause or resume"
            ))),
        }
    })
    .await
}

#[cfg(test)]
mod form_tests {
    use super::*;

    fn rule(v: serde_json::Value) -> RuleSpec {
        serde_json::from_value(v).unwrap()
    }

    /// A rule shown in its Edit form and sent back unchanged is the same rule, for every kind.
    #[test]
    fn a_rule_round_trips_through_its_form() {
        for spec in [
            rule(
                serde_json::json!({"name": "cpu", "kind": "metric", "host": "web-*", "metric": "cpu_usage_percent",
                "op": ">=", "threshold": 90.5, "clear_threshold": 80.0, "for_seconds": 300, "notify": ["ops", "pager"]}),
            ),
            rule(
                serde_json::json!({"name": "down", "kind": "health", "check": "api", "for_seconds": 60}),
            ),
            rule(
                serde_json::json!({"name": "errors", "kind": "log", "service": "api", "condition": "error_rate", "threshold": 5.0}),
            ),
            rule(serde_json::json!({"name": "soon", "kind": "forecast", "host": "*", "days": 7.0})),
            rule(serde_json::json!({"name": "backup", "kind": "backup", "hours": 26.0})),
        ] {
            let back = RuleForm::of(&spec).spec().unwrap();
            for field in RULE_FORM_FIELDS {
                let (a, b) = (
                    serde_json::to_value(&spec).unwrap(),
                    serde_json::to_value(&back).unwrap(),
                );
                let norm = |v: Option<&serde_json::Value>| v.cloned().filter(|v| !v.is_null());
                // A health rule's check defaults to `*` when the form leaves it empty.
                if field == "check" && spec.check.is_none() {
                    continue;
                }
                assert_eq!(
                    norm(a.get(field)),
                    norm(b.get(field)),
                    "{}: {field}",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn a_form_number_that_is_not_one_is_named() {
        let f = RuleForm {
            kind: "metric".into(),
            threshold: "ninety".into(),
            ..RuleForm::default()
        };
        assert_eq!(f.spec().unwrap_err(), "threshold: `ninety` is not a number");
        let f = RuleForm {
            kind: "metric".into(),
            for_seconds: "5m".into(),
            ..RuleForm::default()
        };
        assert!(f.spec().unwrap_err().starts_with("for_seconds:"));
    }
}
