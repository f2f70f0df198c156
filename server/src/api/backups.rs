//! Backups API: targets (admin), runs (operator), history (viewer), verification (operator),
//! restores and downloads (admin), database health (viewer) and maintenance (operator).

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::ErrorBody;
use app::auth::service::{audit, RequestCtx};
use app::auth::Role;
use app::backups::service::{self, NewTarget, RestoreRequest};
use app::backups::{BackupRun, DbHealth, RestoreJob, TargetInfo, VerifyOutcome};
use app::error::AppError;
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

api_list!(
    /// Backup targets.
    list_targets: "/api/v1/backups/targets", "backups", Admin, Vec<TargetInfo>,
    |ctx| service::list_targets(&ctx.state).await?
);

api_create!(
    /// Add a backup target.
    create_target: "/api/v1/backups/targets", "backups", NewTarget -> TargetInfo,
    [(status = 409, description = "Name taken", body = ErrorBody)],
    |ctx, new| {
        let mut new = new;
        new.schedule = new.schedule.filter(|s| !s.trim().is_empty());
        service::create_target_audited(&ctx, new).await?
    }
);

api_patch!(
    /// Change a target: any field of its declaration, or `{"paused": true}` (its schedule
    /// stops; a run by hand still works). Its database URL, password included, stays unless a
    /// new one is given.
    patch_target: "/api/v1/backups/targets/{name}", "backups", "name": String, "Target name",
    |ctx, name, change| service::patch_target_audited(&ctx, &name, change).await?
);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    pub target: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    pub id: i64,
}

/// Back up a target now: 202 with the run's id; 409 while one runs.
#[utoipa::path(post, path = "/api/v1/backups/run", tag = "backups", request_body = RunBody, responses(
    (status = 202, description = "Started", body = Started),
    (status = 403, description = "Viewers cannot run backups", body = ErrorBody),
    (status = 404, description = "No such target", body = ErrorBody),
    (status = 409, description = "A backup of this target is running", body = ErrorBody),
))]
pub async fn run(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<(StatusCode, Json<Started>), AppError> {
    let id = service::start_run_audited(&ctx, &body.target).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { id })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this target's runs.
    pub target: Option<String>,
    /// running, succeeded, failed or expired.
    pub status: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// A list's `limit`: `default` when not given, else 1 to `max`.
fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, AppError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::bad_request(format!(
            "limit must be between 1 and {max}"
        )))
    }
}

/// Backup history, newest first.
#[utoipa::path(get, path = "/api/v1/backups", tag = "backups", params(ListQuery), responses(
    (status = 200, description = "Runs", body = Vec<BackupRun>),
    (status = 400, description = "Bad filter", body = ErrorBody),
))]
pub async fn list(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<BackupRun>>, AppError> {
    ctx.require(Role::Viewer).await?;
    let limit = page_limit(q.limit, 100, 1000)?;
    Ok(Json(
        service::list_runs(
            &ctx.state.pool,
            q.target.as_deref().filter(|s| !s.is_empty()),
            q.status.as_deref().filter(|s| !s.is_empty()),
            limit,
        )
        .await?,
    ))
}

/// One backup run with its manifest.
#[utoipa::path(get, path = "/api/v1/backups/{id}", tag = "backups",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = BackupRun),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
pub async fn get_run(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<BackupRun>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(service::get_run(&ctx.state.pool, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Also restore into a scratch database and compare with the manifest.
    pub test_restore: Option<bool>,
}

/// Verify a backup: checksum and `pg_restore --list`; `?test_restore=true` also restores it
/// into a scratch database, compares tables and row counts, and drops it.
#[utoipa::path(post, path = "/api/v1/backups/{id}/verify", tag = "backups",
    params(("id" = i64, Path, description = "Run id"), VerifyQuery),
    responses(
        (status = 200, description = "Outcome", body = VerifyOutcome),
        (status = 403, description = "Viewers cannot verify", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run has no file (failed or expired)", body = ErrorBody),
    ))]
pub async fn verify(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Result<Json<VerifyOutcome>, AppError> {
    Ok(Json(
        service::verify_audited(&ctx, id, q.test_restore.unwrap_or(false)).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// The signed-in admin's password, again.
    pub password: String,
    /// The target database's name, typed.
    pub confirm: String,
    /// `new_database` (default) or `in_place`.
    pub mode: Option<String>,
    /// Name of the new database (default `<db>_restored_<time>`).
    pub new_database: Option<String>,
}

/// Restore a backup (admin): 202 with the restore job's id.
#[utoipa::path(post, path = "/api/v1/backups/{id}/restore", tag = "backups",
    params(("id" = i64, Path, description = "Run id")),
    request_body = RestoreBody,
    responses(
        (status = 202, description = "Started", body = Started),
        (status = 403, description = "Not an admin, or wrong password", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "Restore running, database exists, or no file", body = ErrorBody),
        (status = 422, description = "Confirmation, mode or name wrong", body = ErrorBody),
        (status = 424, description = "The target's server cannot be reached or refused the connection", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords: restores are throttled like sign-ins (Retry-After)", body = ErrorBody),
    ))]
pub async fn restore(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RestoreBody>,
) -> Result<(StatusCode, Json<Started>), AppError> {
    let req = RestoreRequest {
        password: body.password,
        confirm: body.confirm,
        mode: body.mode.unwrap_or_else(|| "new_database".into()),
        new_database: body.new_database.filter(|s| !s.trim().is_empty()),
    };
    let job = service::start_restore(&ctx, id, req).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { id: job })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RestoresQuery {
    /// Only this target's restores.
    pub target: Option<String>,
    /// How many, newest first (1–500, default 50).
    pub limit: Option<i64>,
}

/// Restore jobs, newest first: who restored what, where, and how it ended.
#[utoipa::path(get, path = "/api/v1/restores", tag = "backups", params(RestoresQuery),
    responses(
        (status = 200, description = "The restores", body = Vec<RestoreJob>),
        (status = 400, description = "Bad limit", body = ErrorBody),
    ))]
pub async fn list_restores(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<RestoresQuery>,
) -> Result<Json<Vec<RestoreJob>>, AppError> {
    ctx.require(Role::Viewer).await?;
    let target = q.target.as_deref().filter(|t| !t.is_empty());
    let limit = page_limit(q.limit, 50, 500)?;
    Ok(Json(
        service::list_restores(&ctx.state.pool, target, limit).await?,
    ))
}

/// A restore job's state.
#[utoipa::path(get, path = "/api/v1/restores/{id}", tag = "backups",
    params(("id" = i64, Path, description = "Restore job id")),
    responses(
        (status = 200, description = "The job", body = RestoreJob),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub async fn get_restore(
    ctx: RequestCtx,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RestoreJob>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(service::restore_job(&ctx.state.pool, id).await?))
}

/// Download a backup file (admin; audited).
#[utoipa::path(get, path = "/api/v1/backups/{id}/download", tag = "backups",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "The pg_dump custom-format archive", content_type = "application/octet-stream"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "No file (failed or expired)", body = ErrorBody),
    ))]
pub async fn download(ctx: RequestCtx, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    let user = ctx.require(Role::Admin).await?;
    let (path, name) = service::backup_file(&ctx.state.pool, id).await?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::warn!(file = %path.display(), error = %e, "backup file missing");
        AppError::conflict(format!("the file of backup {id} is missing on this server"))
    })?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    audit(
        &ctx.state.pool,
        Some(&user.username),
        "backup.download",
        Some(&format!("backup {id}")),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({}),
    )
    .await?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    }
    Ok(res)
}

/// The runbook's maintenance figures for a target's database.
#[utoipa::path(get, path = "/api/v1/backups/targets/{name}/health", tag = "backups",
    params(("name" = String, Path, description = "Target name")),
    responses(
        (status = 200, description = "Health", body = DbHealth),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 424, description = "The target's database cannot be reached or refused the connection", body = ErrorBody),
    ))]
pub async fn health(
    ctx: RequestCtx,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<DbHealth>, AppError> {
    ctx.require(Role::Viewer).await?;
    Ok(Json(service::db_health(&ctx.state, &name).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceBody {
    /// `schema.table`.
    pub table: String,
    /// `analyze`, `vacuum` or `vacuum_full`.
    pub action: String,
    /// For `vacuum_full`: the table's name again.
    pub confirm: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceDone {
    pub detail: String,
}

/// ANALYZE or VACUUM a table (operator; audited). VACUUM FULL needs the table's name typed.
#[utoipa::path(post, path = "/api/v1/backups/targets/{name}/maintenance", tag = "backups",
    params(("name" = String, Path, description = "Target name")),
    request_body = MaintenanceBody,
    responses(
        (status = 200, description = "Done", body = MaintenanceDone),
        (status = 403, description = "Viewers cannot", body = ErrorBody),
        (status = 404, description = "No such target or table", body = ErrorBody),
        (status = 422, description = "Unknown action or missing confirmation", body = ErrorBody),
        (status = 424, description = "The target's database cannot be reached or refused the connection", body = ErrorBody),
    ))]
pub async fn maintenance(
    ctx: RequestCtx,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<MaintenanceBody>,
) -> Result<Json<MaintenanceDone>, AppError> {
    let detail = service::maintenance_audited(
        &ctx,
        &name,
        &body.table,
        &body.action,
        body.confirm.as_deref(),
    )
    .await?;
    Ok(Json(MaintenanceDone { detail }))
}
