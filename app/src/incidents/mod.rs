//! Incidents: the alerts that fired together, with everything that happened around them (check
//! and process changes, backups and restores, annotations such as deploys, admins' sign-ins,
//! notes) and the context to judge them (the hosts' charts, the logs against a day and a week
//! before, errors never seen in the week before). Annotations live here too. `model` holds the
//! rules (pure); `service` the database side (server only).

pub mod model;
mod pages;
#[cfg(feature = "ssr")]
pub mod service;

pub use pages::{IncidentPage, IncidentsPage, OpenIncidents};

use crate::alerts::Severity;
use crate::error::AppError;
use crate::metrics::Chart;
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// An incident as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct Incident {
    pub id: i64,
    pub title: String,
    /// The worst severity of its alerts.
    pub severity: Severity,
    /// `open` until someone closes it (with a summary), then `closed`.
    pub status: String,
    pub hosts: Vec<String>,
    pub started_at: Timestamp,
    pub last_event_at: Timestamp,
    /// When the last of its alerts resolved; null while one fires.
    pub ended_at: Option<Timestamp>,
    /// Its alerts, and how many of them fire now.
    pub alerts: i64,
    pub firing: i64,
    pub acked_by: Option<String>,
    pub acked_at: Option<Timestamp>,
    pub assignee: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<Timestamp>,
    pub summary: Option<String>,
    /// The title shown on the public status page while it is open; null: not shown there.
    #[serde(default)]
    pub public_title: Option<String>,
}

/// One thing that happened in an incident's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TimelineEvent {
    pub at: Timestamp,
    /// `alert_firing`, `alert_resolved`, `check_down`, `check_up`, `process_restart`,
    /// `backup`, `restore`, `annotation`, `sign_in` or `note`.
    pub kind: String,
    pub host: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Note {
    pub id: i64,
    pub author: String,
    pub text: String,
    pub at: Timestamp,
}

/// A service's logs over the incident's window, against the same window a day and a week before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LogWindow {
    pub service: String,
    pub lines: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub requests: i64,
    pub p95_seconds: Option<f64>,
    pub day_before_lines: i64,
    pub day_before_error_rate: Option<f64>,
    pub day_before_p95_seconds: Option<f64>,
    pub week_before_lines: i64,
    pub week_before_error_rate: Option<f64>,
    pub week_before_p95_seconds: Option<f64>,
}

/// An error message (normalised: numbers, ids and addresses replaced) first seen in the window:
/// not once in the 7 days before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct NewError {
    pub service: String,
    pub message: String,
    pub count: i64,
}

/// What surrounded an incident: its window (an hour before the start to the end, or now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Context {
    pub from: Timestamp,
    pub to: Timestamp,
    /// The busiest services of the window, at most 5.
    pub logs: Vec<LogWindow>,
    pub new_errors: Vec<NewError>,
    pub slow_requests: Vec<crate::logs::SlowRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IncidentDetail {
    pub incident: Incident,
    /// Oldest first.
    pub events: Vec<TimelineEvent>,
    pub notes: Vec<Note>,
    pub context: Context,
}

/// The incident page: the detail and the charts of its hosts over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentPageData {
    pub detail: IncidentDetail,
    pub charts: Vec<Chart>,
    /// Users an incident can be assigned to.
    pub users: Vec<String>,
    pub can_act: bool,
}

/// A mark on the charts: a deploy, a change, anything worth seeing beside the lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Annotation {
    pub id: i64,
    pub ts: Timestamp,
    pub text: String,
    pub tags: Vec<String>,
    /// The host it belongs to; null: every host.
    pub host: Option<String>,
    pub created_by: String,
}

/// The incidents page: open ones first, then the last 90 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentsPageData {
    pub open: Vec<Incident>,
    pub closed: Vec<Incident>,
}

#[server(prefix = "/sfn", endpoint = "incidents/page")]
pub async fn get_incidents_page() -> Result<IncidentsPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(crate::auth::Role::Viewer).await?;
        let pool = &ctx.state.pool;
        Ok(IncidentsPageData {
            open: service::list(pool, Some("open"), 200).await?,
            closed: service::list(pool, Some("closed"), 200).await?,
        })
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "incidents/open")]
pub async fn get_open_incidents() -> Result<Vec<Incident>, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(crate::auth::Role::Viewer).await?;
        service::list(&ctx.state.pool, Some("open"), 20).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "incidents/detail")]
pub async fn get_incident_page(id: i64) -> Result<IncidentPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move { service::page(&ctx, id).await }).await
}

/// Acknowledge (`ack`), assign (`assign`, with `value` the user; empty: nobody), note (`note`,
/// with `value` the text), show on the status page (`publish`, with `value` the public title;
/// empty: not shown) or close (`close`, with `value` the summary) an incident.
#[server(prefix = "/sfn", endpoint = "incidents/act")]
pub async fn incident_action(
    id: i64,
    action: String,
    value: Option<String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::act(&ctx, id, &action, value.as_deref().unwrap_or("")).await
    })
    .await
}
