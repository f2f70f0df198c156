//! Services: watched processes (found by name or command line on each host, by the server's
//! collector and by agents) and Prometheus endpoints scraped on a schedule. Pure parts:
//! `expfmt` (the exposition format), `scrape` (samples, rates, quantiles), `process` (matching,
//! restarts); the database side is in `service` (server only).

#[cfg(feature = "ssr")]
pub mod edit;
pub mod expfmt;
mod pages;
pub mod process;
pub mod scrape;
#[cfg(feature = "ssr")]
mod scrape_runs;
#[cfg(feature = "ssr")]
pub mod service;

pub use pages::{ProcessPage, ServicesPage, TargetPage};

use crate::error::AppError;
use crate::metrics::{Chart, SeriesPoint};
use crate::text_enum::text_enum;
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

text_enum! {
    /// Whether a watched thing (process, scrape target, health check) answers: `unknown` before
    /// it was first looked at.
    pub enum Liveness { Up = "up", Down = "down", Unknown = "unknown" }
}

impl Liveness {
    /// From a stored `up` column: NULL before the first look.
    pub fn from_up(up: Option<bool>) -> Liveness {
        match up {
            Some(true) => Liveness::Up,
            Some(false) => Liveness::Down,
            None => Liveness::Unknown,
        }
    }
}

/// A watched process with its latest state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProcessInfo {
    pub id: i64,
    pub host: String,
    pub name: String,
    /// Paused: kept, but not run until resumed (`PATCH` with `{"paused": false}`).
    #[serde(default)]
    pub paused: bool,
    pub pattern: String,
    pub port: Option<i32>,
    /// `up`, `down`, or `unknown` before the first collection.
    pub state: Liveness,
    /// Since when it is up (its main process's start) or when it was last seen up.
    pub since: Option<Timestamp>,
    pub count: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<f64>,
    pub port_listening: Option<bool>,
    /// Restarts in the last 24 hours.
    pub restarts_24h: Option<f64>,
    pub last_seen: Option<Timestamp>,
}

pub use crate::specs::{NewProcess, NewTarget};

/// A scrape target with the state of its last scrapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TargetInfo {
    pub id: i64,
    pub name: String,
    /// Paused: kept, but not run until resumed (`PATCH` with `{"paused": false}`).
    #[serde(default)]
    pub paused: bool,
    pub url: String,
    pub host: String,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub max_series: i32,
    /// `up`, `down`, or `unknown` before the first scrape.
    pub state: Liveness,
    pub since: Option<Timestamp>,
    pub last_scrape: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<f64>,
    /// Samples stored by the last scrape.
    pub last_samples: Option<i32>,
    /// Series the last scrape dropped (over `max_series`, or not storable).
    pub dropped: i32,
    /// Series the last scrape left out because they are stored here already: the target is an
    /// Opsdeck on this same database (its `/metrics` re-exports them); only that process's own
    /// `opsdeck_*` metrics are kept.
    #[serde(default)]
    pub skipped: i32,
    /// Whether a bearer token is sent (the token itself is never shown).
    pub has_token: bool,
}

/// What the Services pages say of a scrape's series left out as copies.
pub fn skipped_note(skipped: i32) -> String {
    format!(
        "An Opsdeck on this database: {skipped} series it re-exports are stored here already and were left out; its own opsdeck_* metrics are kept."
    )
}

/// Checks a target as given: the error names the field.
#[cfg(feature = "ssr")]
pub fn validate_target(t: &NewTarget) -> Result<(), String> {
    process::validate_watch(&t.name, "x", None)?;
    let u = url::Url::parse(&t.url).map_err(|e| format!("url: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err("url: must be an http:// or https:// URL".into());
    }
    if !(1..=86_400).contains(&t.interval_seconds) {
        return Err("interval_seconds: between 1 and 86400".into());
    }
    if !(1..=300).contains(&t.timeout_seconds) {
        return Err("timeout_seconds: between 1 and 300".into());
    }
    if t.timeout_seconds > t.interval_seconds.max(1) {
        return Err("timeout_seconds: must not be longer than interval_seconds".into());
    }
    if let Some(m) = t.max_series {
        if !(1..=1_000_000).contains(&m) {
            return Err("max_series: between 1 and 1000000".into());
        }
    }
    if let Some(h) = &t.host {
        crate::metrics::validate_host(h)?;
    }
    if let Some(tok) = &t.bearer_token {
        if tok.is_empty() || tok.len() > 4096 || tok.chars().any(|c| c.is_control() || c == ' ') {
            return Err(
                "bearer_token: 1 to 4096 characters, no spaces or control characters".into(),
            );
        }
    }
    Ok(())
}

/// A row of the Services page: its state and sparklines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicesPageData {
    pub processes: Vec<(ProcessInfo, Sparks)>,
    pub targets: Vec<(TargetInfo, Sparks)>,
    pub can_edit: bool,
    pub own_host: String,
    /// The host the page is limited to, if any.
    pub host: Option<String>,
}

/// The last hour, for the sparklines: CPU and RSS (processes), or requests per second and
/// scrape duration (targets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Sparks {
    pub first: Vec<f64>,
    pub second: Vec<f64>,
}

/// A process's or a target's detail page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailData {
    pub title: String,
    pub host: String,
    pub state: Liveness,
    pub summary: Vec<(String, String)>,
    /// e.g. "RSS grows 38.0 MB/day (over the last 24 h)".
    pub trend: Option<String>,
    pub charts: Vec<Chart>,
    pub warning: Option<String>,
    /// The window shown: `1h` … `30d`, or `custom`.
    #[serde(default)]
    pub range_label: String,
}

/// The shortest history a memory trend is drawn from.
pub const MIN_TREND_SPAN_SECONDS: i64 = 3600;
/// The fewest samples a memory trend is drawn from.
pub const MIN_TREND_POINTS: usize = 6;

/// RSS growth per day from a series' points (bytes), and the fitted line's end points.
pub fn rss_trend(points: &[SeriesPoint]) -> Option<(f64, [(i64, f64); 2])> {
    // A slope over minutes says nothing per day (start-up, a cache filling): an hour at least,
    // with enough samples to fit a line through.
    let span = points.last()?.ts.unix_timestamp() - points.first()?.ts.unix_timestamp();
    if span < MIN_TREND_SPAN_SECONDS || points.len() < MIN_TREND_POINTS {
        return None;
    }
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.ts.unix_timestamp() as f64, p.avg))
        .collect();
    let (slope, icept, _, _) = crate::forecast::model::least_squares(&xy)?;
    let (a, b) = (
        points.first()?.ts.unix_timestamp(),
        points.last()?.ts.unix_timestamp(),
    );
    Some((
        slope * 86_400.0,
        [(a, slope * a as f64 + icept), (b, slope * b as f64 + icept)],
    ))
}

#[server(prefix = "/sfn", endpoint = "services/page")]
pub async fn get_services_page(host: Option<String>) -> Result<ServicesPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(crate::auth::Role::Viewer).await?;
        let host = host.filter(|h| !h.is_empty());
        service::page_data(&ctx.state, user.role, host.as_deref()).await
    })
    .await
}

/// A process's or a target's page over a time window: the last `range` (default 24 h, so a
/// memory trend has a day to go on) or `from`–`to`, as on a host's page.
#[server(prefix = "/sfn", endpoint = "services/detail")]
pub async fn get_service_detail(
    kind: String,
    id: i64,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<DetailData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(crate::auth::Role::Viewer).await?;
        let (from, to, label) = crate::metrics::window_now(
            range.as_deref(),
            from.as_deref(),
            to.as_deref(),
            DETAIL_RANGE,
        )?;
        let mut d = service::detail(&ctx.state, &kind, id, from, to).await?;
        d.range_label = label;
        Ok(d)
    })
    .await
}

/// The range a process's or a target's page opens on.
pub const DETAIL_RANGE: &str = "24h";

#[server(prefix = "/sfn", endpoint = "services/add-process")]
pub async fn add_process(
    name: String,
    pattern: String,
    port: String,
    host: String,
) -> Result<i64, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let port = match port.trim() {
            "" => None,
            p => Some(
                p.parse::<i64>()
                    .map_err(|_| AppError::unprocessable(format!("port: `{p}` is not a number")))?,
            ),
        };
        let host = Some(host.trim().to_string()).filter(|h| !h.is_empty());
        service::add_process(
            &ctx,
            &NewProcess {
                name,
                pattern,
                port,
                host,
            },
        )
        .await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "services/add-target")]
pub async fn add_target(
    name: String,
    url: String,
    interval_seconds: i64,
    timeout_seconds: i64,
    bearer_token: String,
) -> Result<i64, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::add_target(
            &ctx,
            &NewTarget {
                name,
                url,
                interval_seconds,
                timeout_seconds,
                host: None,
                max_series: None,
                bearer_token: Some(bearer_token.trim().to_string()).filter(|t| !t.is_empty()),
            },
        )
        .await
    })
    .await
}

/// A watched process's or a scrape target's Edit form: the fields it sends are changed, the
/// rest kept. A target's URL and token are never shown, so an empty one is kept.
#[server(prefix = "/sfn", endpoint = "services/edit")]
pub async fn edit_service(
    kind: String,
    id: String,
    #[server(flatten)] form: std::collections::BTreeMap<String, String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        use crate::patch::{form_id, from_form, FormField::*};
        let id = form_id(&id)?;
        let unprocessable = AppError::Unprocessable;
        match kind.as_str() {
            "process" => {
                let fields = [("pattern", Text), ("port", OptionalInt), ("host", Text)];
                let change = from_form(&form, &fields).map_err(unprocessable)?;
                edit::patch_process(&ctx, id, change).await
            }
            "target" => {
                let fields = [
                    ("url", NewOnly),
                    ("interval_seconds", Int),
                    ("timeout_seconds", Int),
                    ("bearer_token", NewOnly),
                ];
                let change = from_form(&form, &fields).map_err(unprocessable)?;
                edit::patch_target(&ctx, id, change).await
            }
            k => Err(AppError::bad_request(format!(
                "kind `{k}`: process or target"
            ))),
        }
    })
    .await
}

/// A row's action on a watched process or a scrape target: `delete`, `pause` or `resume`.
#[server(prefix = "/sfn", endpoint = "services/change")]
pub async fn change_service(kind: String, id: i64, action: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let paused = crate::patch::Change::paused;
        match (kind.as_str(), action.as_str()) {
            ("process", "delete") => service::delete_process(&ctx, id).await,
            ("target", "delete") => service::delete_target(&ctx, id).await,
            ("process", "pause" | "resume") => {
                edit::patch_process(&ctx, id, paused(action == "pause")).await
            }
            ("target", "pause" | "resume") => {
                edit::patch_target(&ctx, id, paused(action == "pause")).await
            }
            (k, a) => Err(AppError::bad_request(format!(
                "`{a}` on `{k}`: delete, pause or resume a process or target"
            ))),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    #[test]
    fn a_memory_trend_needs_an_hour_of_samples() {
        let at = |minute: i64, v: f64| SeriesPoint {
            ts: Timestamp(
                time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + minute * 60).unwrap(),
            ),
            avg: v,
            min: v,
            max: v,
        };
        // (samples as (minute, MiB), expected MiB per day)
        type Case = (Vec<(i64, f64)>, Option<f64>);
        let cases: Vec<Case> = vec![
            (vec![], None),
            (vec![(0, 100.0)], None),
            // Start-up: 40 minutes of growth is not a leak rate.
            (
                (0..=40).step_by(5).map(|m| (m, 100.0 + m as f64)).collect(),
                None,
            ),
            // An hour but too few samples to fit.
            (vec![(0, 100.0), (30, 101.0), (60, 102.0)], None),
            // An hour of 1 MiB per 10 minutes: 144 MiB per day.
            (
                (0..=60)
                    .step_by(10)
                    .map(|m| (m, 100.0 + m as f64 / 10.0))
                    .collect(),
                Some(144.0),
            ),
            // Flat: no growth.
            (
                (0..=120).step_by(10).map(|m| (m, 100.0)).collect(),
                Some(0.0),
            ),
        ];
        for (samples, want) in cases {
            let points: Vec<SeriesPoint> = samples.iter().map(|&(m, v)| at(m, v)).collect();
            let got = rss_trend(&points).map(|(per_day, _)| per_day);
            match (got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => {
                    assert!((g - w).abs() < 1e-6, "{samples:?}: {g} per day, want {w}")
                }
                _ => panic!("{samples:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn targets_are_checked() {
        let ok = NewTarget {
            name: "app".into(),
            url: "http://127.0.0.1:8000/metrics".into(),
            interval_seconds: 15,
            timeout_seconds: 10,
            host: None,
            max_series: None,
            bearer_token: None,
        };
        assert!(validate_target(&ok).is_ok());
        for (t, err) in [
            (
                NewTarget {
                    url: "ftp://x/".into(),
                    ..ok.clone()
                },
                "url: must be",
            ),
            (
                NewTarget {
                    url: "nope".into(),
                    ..ok.clone()
                },
                "url:",
            ),
            (
                NewTarget {
                    interval_seconds: 0,
                    ..ok.clone()
                },
                "interval_seconds",
            ),
            (
                NewTarget {
                    timeout_seconds: 20,
                    ..ok.clone()
                },
                "timeout_seconds: must not",
            ),
            (
                NewTarget {
                    max_series: Some(0),
                    ..ok.clone()
                },
                "max_series",
            ),
            (
                NewTarget {
                    name: "a b".into(),
                    ..ok.clone()
                },
                "name:",
            ),
            (
                NewTarget {
                    host: Some("a/b".into()),
                    ..ok.clone()
                },
                "host:",
            ),
            (
                NewTarget {
                    bearer_token: Some("a b".into()),
                    ..ok.clone()
                },
                "bearer_token:",
            ),
        ] {
            let e = validate_target(&t).unwrap_err();
            assert!(e.starts_with(err), "{e}");
        }
    }
}
