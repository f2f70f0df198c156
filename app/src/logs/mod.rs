//! Logs: JSON application logs, nginx access logs and plain text, stored in PostgreSQL
//! partitioned by day, searched with a small query language, and summed up the way the runbook
//! does by hand (errors, top errors, hourly timelines, response-time percentiles, slow requests,
//! top and suspicious IPs). Parsers and the query language are pure modules with tests; the
//! database side is in `service` (server only).

mod pages;
pub mod parse;
pub mod query;
#[cfg(feature = "ssr")]
pub mod service;

pub use pages::LogsPage;

use crate::auth::Role;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// A stored log line as the API and the pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LogLine {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub ts: OffsetDateTime,
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
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub to: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Count<K> {
    pub key: K,
    pub count: i64,
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
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub hour: OffsetDateTime,
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
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub ts: OffsetDateTime,
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
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub to: OffsetDateTime,
    pub service: Option<String>,
    /// Lines in the range.
    pub total: i64,
    /// Lines of level ERROR or above.
    pub errors: i64,
    /// errors / total (0 when there are no lines).
    pub error_rate: f64,
    /// Lines that are requests (they carry an HTTP status).
    pub requests: i64,
    /// Error messages with numbers, ids and addresses replaced, so that similar errors group.
    pub top_errors: Vec<MessageCount>,
    pub errors_per_hour: Vec<HourCount>,
    pub requests_per_hour: Vec<HourCount>,
    /// In seconds, from `duration` (JSON `execution_time`, nginx request time).
    pub response_time: ResponseTime,
    pub slow_threshold_seconds: f64,
    pub slow_requests: Vec<SlowRequest>,
    pub status_classes: Vec<ClassCount>,
    pub top_paths: Vec<PathCount>,
    pub top_ips: Vec<IpCount>,
    pub suspicious_post_threshold: i64,
    /// More POSTs to `/api/` than the threshold in the range.
    pub suspicious_ips: Vec<SuspiciousIp>,
    pub top_user_agents: Vec<AgentCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsPageData {
    pub role: Role,
    pub services: Vec<String>,
    pub search: SearchResponse,
    pub stats: Option<LogStats>,
}

#[server(prefix = "/sfn", endpoint = "logs/page")]
pub async fn get_logs_page(
    q: Option<String>,
    service: Option<String>,
    range: Option<String>,
    cursor: Option<String>,
) -> Result<LogsPageData, AppError> {
    use crate::error::with_status;
    with_status(
        async {
            let ctx = crate::auth::service::RequestCtx::from_leptos().await?;
            let user = ctx.require(Role::Viewer).await?;
            service::page_data(
                &ctx.state,
                user.role,
                q.as_deref().unwrap_or(""),
                service.as_deref().filter(|s| !s.is_empty()),
                range.as_deref(),
                cursor.as_deref().filter(|s| !s.is_empty()),
            )
            .await
        }
        .await,
    )
}
