//! Backups: scheduled `pg_dump -Fc` runs with checksums and manifests, verification by
//! `pg_restore --list` and by test restores into scratch databases, retention, restores that
//! cannot make things worse, and the database-health page. Pure rules (cron, retention, URLs)
//! live in their own modules with table-driven tests; the I/O is in `service` (server only).

#[cfg(feature = "ssr")]
pub mod conn;
#[cfg(feature = "ssr")]
pub mod cron;
mod pages;
pub mod retention;
#[cfg(feature = "ssr")]
pub mod service;

pub use pages::{BackupRunPage, BackupsPage, DbHealthPage, RestorePage};

use crate::auth::Role;
use crate::error::AppError;
use crate::text_enum::text_enum;
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One table in a backup: its row count in the snapshot `pg_dump` read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ManifestEntry {
    pub schema: String,
    pub table: String,
    pub rows: i64,
}

/// A backup target as shown (the URL never carries its password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", schema(as = BackupTargetInfo))]
pub struct TargetInfo {
    pub name: String,
    /// Opsdeck's own database.
    pub own: bool,
    pub database: String,
    /// The connection URL without its password.
    pub database_url: String,
    pub schedule: Option<String>,
    pub timezone: String,
    pub keep_days: i32,
    pub keep_min: i32,
    pub verify_every_hours: i32,
    /// Its schedule is paused (a run by hand still works).
    #[serde(default)]
    pub paused: bool,
    pub next_run_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// When a test restore last proved a backup of this target restorable.
    pub last_verified_at: Option<Timestamp>,
    /// No successful backup within twice the schedule's interval (or ever, with a schedule).
    pub overdue: bool,
    /// The id of the run in progress, if any.
    pub running: Option<i64>,
}

text_enum! {
    /// How far a backup run or a restore job got.
    pub enum JobStatus { Running = "running", Succeeded = "succeeded", Failed = "failed" }
}

text_enum! {
    /// What started a backup run.
    pub enum Trigger { Schedule = "schedule", Manual = "manual", PreRestore = "pre_restore" }
}

text_enum! {
    /// Where a restore goes: a new database beside the old, or over it.
    pub enum RestoreMode { NewDatabase = "new_database", InPlace = "in_place" }
}

/// One backup run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BackupRun {
    pub id: i64,
    pub target: String,
    pub trigger: Trigger,
    pub requested_by: Option<String>,
    pub status: JobStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub duration_seconds: Option<f64>,
    /// Bytes written so far (live while running).
    pub bytes_written: i64,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    /// Checksum and `pg_restore --list` passed after the run (or at the last verification).
    pub verified: bool,
    pub verify_detail: Option<String>,
    pub test_restored_at: Option<Timestamp>,
    /// The last test restore's outcome: tables and row counts equal to the manifest.
    pub test_restore_ok: Option<bool>,
    pub test_restore_detail: Option<String>,
    pub expired_at: Option<Timestamp>,
    pub pg_dump_version: Option<String>,
    pub server_version: Option<String>,
    pub file: Option<String>,
    pub error: Option<String>,
    pub stderr_tail: String,
    pub manifest: Vec<ManifestEntry>,
}

/// A restore job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RestoreJob {
    pub id: i64,
    pub backup_id: i64,
    pub target: String,
    pub mode: RestoreMode,
    pub database: String,
    pub requested_by: String,
    pub status: JobStatus,
    /// What it is doing now (or did last).
    pub step: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub pre_restore_backup_id: Option<i64>,
    pub detail: Option<String>,
    pub stderr_tail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VerifyOutcome {
    pub ok: bool,
    pub detail: String,
}

/// A point of the size-over-time chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCard {
    pub target: TargetInfo,
    pub size_chart: Option<crate::metrics::Chart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupsOverview {
    pub role: Role,
    pub cards: Vec<TargetCard>,
    pub runs: Vec<BackupRun>,
    /// The newest restores, of the filtered target or of all.
    pub restores: Vec<RestoreJob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub role: Role,
    pub run: BackupRun,
    pub database: String,
    pub own: bool,
}

/// The runbook's maintenance SQL, as figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DbHealth {
    pub target: String,
    pub database: String,
    pub size_bytes: i64,
    pub connections: i64,
    pub max_connections: i64,
    pub tables: Vec<TableHealth>,
    pub indexes: Vec<IndexHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TableHealth {
    pub name: String,
    pub total_bytes: i64,
    pub live_rows: i64,
    pub dead_rows: i64,
    pub dead_ratio: f64,
    pub last_vacuum: Option<Timestamp>,
    pub last_analyze: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IndexHealth {
    pub name: String,
    pub table: String,
    pub bytes: i64,
    pub scans: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbHealthPageData {
    pub role: Role,
    pub health: DbHealth,
}

/// A valid target name: it names a directory and appears in URLs.
pub fn validate_target_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "target name `{name}`: 1–64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        ))
    }
}

#[server(prefix = "/sfn", endpoint = "backups/overview")]
pub async fn get_backups_overview(
    target: Option<String>,
    status: Option<String>,
) -> Result<BackupsOverview, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(Role::Viewer).await?;
        service::overview(&ctx.state, user.role, target.as_deref(), status.as_deref()).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "backups/run-detail")]
pub async fn get_run_detail(id: i64) -> Result<RunDetail, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(Role::Viewer).await?;
        service::run_detail(&ctx.state, user.role, id).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "backups/restore-job")]
pub async fn get_restore_job(id: i64) -> Result<RestoreJob, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(Role::Viewer).await?;
        service::restore_job(&ctx.state.pool, id).await
    })
    .await
}

/// "Back up now": redirects to the new run's page.
#[server(prefix = "/sfn", endpoint = "backups/run")]
pub async fn back_up_now(target: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let id = service::start_run_audited(&ctx, &target).await?;
        leptos_axum::redirect(&format!("/backups/runs/{id}"));
        Ok(())
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "backups/verify")]
pub async fn verify_backup(
    id: i64,
    test_restore: Option<String>,
) -> Result<VerifyOutcome, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let test = test_restore
            .as_deref()
            .is_some_and(|v| v == "true" || v == "on");
        service::verify_audited(&ctx, id, test).await
    })
    .await
}

/// Starts a restore (admin, password and typed database name): redirects to its progress page.
#[server(prefix = "/sfn", endpoint = "backups/restore")]
pub async fn restore_backup(
    id: i64,
    password: String,
    confirm: String,
    mode: String,
    new_database: Option<String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let req = service::RestoreRequest {
            password,
            confirm,
            mode,
            new_database: new_database.filter(|s| !s.trim().is_empty()),
        };
        let job = service::start_restore(&ctx, id, req).await?;
        leptos_axum::redirect(&format!("/backups/restores/{job}"));
        Ok(())
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "backups/targets/create")]
pub async fn add_target(
    name: String,
    database_url: String,
    schedule: Option<String>,
    timezone: Option<String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let new = service::NewTarget {
            name,
            database_url,
            schedule: schedule.filter(|s| !s.trim().is_empty()),
            timezone: timezone.filter(|s| !s.trim().is_empty()),
            keep_days: None,
            keep_min: None,
            verify_every_hours: None,
        };
        service::create_target_audited(&ctx, new).await?;
        Ok(())
    })
    .await
}

/// A backup target's Edit form (admins). Its database URL is never shown (it holds a
/// password), so an empty one is kept; empty retention fields go back to their defaults.
#[server(prefix = "/sfn", endpoint = "backups/targets/edit")]
pub async fn edit_backup_target(
    target: String,
    #[server(flatten)] form: std::collections::BTreeMap<String, String>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        use crate::patch::{from_form, FormField::*};
        let fields = [
            ("database_url", NewOnly),
            ("schedule", Optional),
            ("timezone", Optional),
            ("keep_days", OptionalInt),
            ("keep_min", OptionalInt),
            ("verify_every_hours", OptionalInt),
        ];
        let change = from_form(&form, &fields).map_err(AppError::Unprocessable)?;
        service::patch_target_audited(&ctx, &target, change)
            .await
            .map(|_| ())
    })
    .await
}

/// Pauses (`pause`) or resumes (`resume`) a target's schedule (admins); a run by hand still works.
#[server(prefix = "/sfn", endpoint = "backups/targets/pause")]
pub async fn pause_backup_target(target: String, action: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let change = crate::patch::Change::pause_action(&action)?;
        service::patch_target_audited(&ctx, &target, change)
            .await
            .map(|_| ())
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "backups/health")]
pub async fn get_db_health(target: String) -> Result<DbHealthPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = ctx.require(Role::Viewer).await?;
        let health = service::db_health(&ctx.state, &target).await?;
        Ok(DbHealthPageData {
            role: user.role,
            health,
        })
    })
    .await
}

/// `ANALYZE` or `VACUUM` a table (operator); `VACUUM FULL` only with the table's name typed.
#[server(prefix = "/sfn", endpoint = "backups/maintenance")]
pub async fn run_maintenance(
    target: String,
    table: String,
    action: String,
    confirm: Option<String>,
) -> Result<String, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::maintenance_audited(&ctx, &target, &table, &action, confirm.as_deref()).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        for ok in ["opsdeck", "shop-db", "a", "db_2.eu"] {
            assert!(validate_target_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(validate_target_name(bad).is_err(), "{bad}");
        }
    }
}
