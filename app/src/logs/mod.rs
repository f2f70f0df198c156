//! Logs: JSON application logs, nginx access logs and plain text, stored in PostgreSQL
//! partitioned by day, searched with a small query language, and summed up the way the runbook
//! does by hand (errors, top errors, hourly timelines, response-time percentiles, slow requests,
//! top and suspicious IPs). Parsers and the query language are pure modules with tests; the
//! database side is in `service` (server only).

#[cfg(feature = "ssr")]
pub mod analytics;
#[cfg(feature = "ssr")]
pub mod page;
mod pages;
pub mod parse;
pub mod query;
#[cfg(feature = "ssr")]
pub mod retention;
pub mod rollup;
#[cfg(feature = "ssr")]
pub mod rollup_jobs;
#[cfg(feature = "ssr")]
pub mod search;
#[cfg(feature = "ssr")]
pub mod sources;
#[cfg(feature = "ssr")]
pub mod store;
pub mod timeline;

pub use pages::{LogSourcesPage, LogsPage};

use crate::auth::Role;
use crate::error::AppError;
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Validates a service name (it appears in URLs and facets).
pub fn validate_service(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "service `{name}`: 1–64 letters, digits, `-`, `_` or `.`"
        ))
    }
}

/// A stored log line as the API and the pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LogLine {
    pub id: i64,
    pub ts: Timestamp,
    pub service: String,
    /// trace, debug, info, warn, error, fatal; null when the line had none.
    pub level: Option<String>,
    pub message: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub fields: Map<String, Value>,
    pub parse_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SearchResponse {
    pub lines: Vec<LogLine>,
    /// Pass as `cursor` for the next (older) page; null at the end.
    pub next_cursor: Option<String>,
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MessageCount {
    pub message: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HourCount {
    pub hour: Timestamp,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ResponseTime {
    pub count: i64,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SlowRequest {
    pub ts: Timestamp,
    pub duration: f64,
    pub url: Option<String>,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PathCount {
    pub path: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IpCount {
    pub ip: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SuspiciousIp {
    pub ip: String,
    pub posts: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AgentCount {
    pub user_agent: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ClassCount {
    /// `2xx` … `5xx`.
    pub class: String,
    pub count: i64,
}

/// The runbook's analytics for a time range (and service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LogStats {
    pub from: Timestamp,
    pub to: Timestamp,
    pub service: Option<String>,
    /// Lines in the range.
    pub total: i64,
    /// Lines of level ERROR or above.
    pub errors: i64,
    /// errors / total (0 when there are no lines).
    pub error_rate: f64,
    /// Lines that are requests (they carry an HTTP status or a path), as the other request
    /// panels count them.
    pub requests: i64,
    /// Error messages with numbers, ids and addresses replaced, so that similar errors group.
    pub top_errors: Vec<MessageCount>,
    pub errors_per_hour: Vec<HourCount>,
    pub requests_per_hour: Vec<HourCount>,
    /// In seconds, from `duration` (JSON `execution_time`, nginx request time).
    pub response_time: ResponseTime,
    pub slow_threshold_seconds: f64,
    /// Every request in the range slower than `slow_threshold_seconds` (the list below holds
    /// the slowest 50 of them).
    pub slow_count: i64,
    pub slow_requests: Vec<SlowRequest>,
    pub status_classes: Vec<ClassCount>,
    pub top_paths: Vec<PathCount>,
    pub top_ips: Vec<IpCount>,
    pub suspicious_post_threshold: i64,
    /// More POSTs to `/api/` than the threshold in the range.
    pub suspicious_ips: Vec<SuspiciousIp>,
    pub top_user_agents: Vec<AgentCount>,
}

/// A facet value and how many matches have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facet {
    /// service, level or status.
    pub kind: String,
    pub value: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsPageData {
    pub role: Role,
    pub services: Vec<String>,
    pub search: SearchResponse,
    pub stats: Option<LogStats>,
    pub facets: Vec<Facet>,
    /// Seconds per histogram bar.
    pub histogram_step: i64,
    /// (bar start, Unix seconds; matches).
    pub histogram: Vec<(i64, i64)>,
    /// The query could not be read: why (shown under the search box).
    pub query_error: Option<String>,
    /// The range holds no line, but older ones exist up to this time.
    pub newest_before: Option<Timestamp>,
    /// Error messages of the range not once in the 7 days before it (ranges up to 7 days).
    #[serde(default)]
    pub new_errors: Option<Vec<crate::incidents::NewError>>,
}

#[server(prefix = "/sfn", endpoint = "logs/page")]
pub async fn get_logs_page(
    q: Option<String>,
    service: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
) -> Result<LogsPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(Role::Viewer).await?;
        let nonempty =
            |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let (service, range, from, to, cursor) = (
            nonempty(&service),
            nonempty(&range),
            nonempty(&from),
            nonempty(&to),
            nonempty(&cursor),
        );
        page::page_data(
            &ctx.state,
            user.role,
            page::PageQuery {
                q: q.as_deref().unwrap_or(""),
                service: service.as_deref(),
                range: range.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
                cursor: cursor.as_deref(),
            },
        )
        .await
    })
    .await
}

/// A log source with what its tailer last reported (the API and Admin › Log sources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct SourceRow {
    pub id: i64,
    pub path: String,
    pub format: String,
    pub service: String,
    /// Paused: kept, but not run until resumed (`PATCH` with `{"paused": false}`).
    #[serde(default)]
    pub paused: bool,
    /// Which Opsdeck host follows it.
    pub tailer: Option<String>,
    /// Bytes stored so far, summed over its files.
    pub position: i64,
    pub lines: i64,
    pub lines_per_sec: f64,
    pub last_line_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

#[server(prefix = "/sfn", endpoint = "logs/sources/list")]
pub async fn list_log_sources() -> Result<Vec<SourceRow>, AppError> {
    crate::auth::service::in_request(|ctx| async move { sources::list(&ctx).await }).await
}

#[server(prefix = "/sfn", endpoint = "logs/sources/add")]
pub async fn add_log_source(path: String, format: String, service: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let new = crate::specs::NewLogSource {
            path,
            format,
            service,
        };
        sources::add(&ctx, &new).await.map(|_| ())
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "logs/sources/delete")]
pub async fn delete_log_source(id: i64) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move { sources::delete(&ctx, id).await }).await
}

/// A source's Edit form: its path, format or service.
#[server(prefix = "/sfn", endpoint = "logs/sources/edit")]
pub async fn edit_log_source(
    id: String,
    #[server(flatten)] form: std::collections::BTreeMap<String, String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        use crate::patch::{form_id, from_form, FormField::Text};
        let id = form_id(&id)?;
        let fields = [("path", Text), ("format", Text), ("service", Text)];
        let change = from_form(&form, &fields).map_err(AppError::Unprocessable)?;
        sources::patch(&ctx, id, change).await
    })
    .await
}

/// A source's Pause (the tailer lets the file go, keeping its place) or Resume.
#[server(prefix = "/sfn", endpoint = "logs/sources/pause")]
pub async fn pause_log_source(id: i64, action: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        sources::patch(&ctx, id, crate::patch::Change::pause_action(&action)?).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services() {
        assert!(validate_service("api-1.eu_west").is_ok());
        for bad in ["", "a b", "x/y", &"s".repeat(65)] {
            assert!(validate_service(bad).is_err(), "{bad}");
        }
    }
}
