//! Sign-in, users and the audit log over JSON. Same service code as the pages.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::ErrorBody;
use app::auth::service::{self, RequestCtx};
use app::auth::{AuditPageData, CurrentUser, Role, UserSummary};
use app::error::AppError;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Sign in; sets the session cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = CurrentUser),
        (status = 401, description = "Wrong user name or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this user or address", body = ErrorBody),
    )
)]
pub async fn login(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<CurrentUser>, AppError> {
    Ok(Json(
        service::login(&ctx, &body.username, &body.password).await?,
    ))
}

/// Sign out: the session is deleted on the server.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses((status = 204, description = "Signed out (also when no one was signed in)"))
)]
pub async fn logout(ctx: RequestCtx) -> Result<StatusCode, AppError> {
    service::logout(&ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    responses(
        (status = 200, description = "Signed in", body = CurrentUser),
    )
)]
pub async fn me(ctx: RequestCtx) -> Result<Json<CurrentUser>, AppError> {
    Ok(Json(ctx.require(Role::Viewer).await?))
}

/// All users (admin).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    responses(
        (status = 200, description = "Users", body = Vec<UserSummary>),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_users(ctx: RequestCtx) -> Result<Json<Vec<UserSummary>>, AppError> {
    ctx.require(Role::Admin).await?;
    Ok(Json(service::list_users(&ctx.state.pool).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub role: Role,
    pub password: String,
}

/// Add a user (admin).
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserSummary),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "User exists", body = ErrorBody),
        (status = 422, description = "Invalid name, role or password", body = ErrorBody),
    )
)]
pub async fn create_user(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserSummary>), AppError> {
    let user = service::create_user(&ctx, &body.username, body.role, &body.password).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// New password; the user's existing sessions end.
    pub password: Option<String>,
}

/// Change a user's role, state or password (admin).
#[utoipa::path(
    patch,
    path = "/api/v1/users/{username}",
    tag = "users",
    params(("username" = String, Path, description = "User name")),
    request_body = UserChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Would leave no active admin", body = ErrorBody),
        (status = 422, description = "Invalid value", body = ErrorBody),
    )
)]
pub async fn update_user(
    ctx: RequestCtx,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<UserChange>,
) -> Result<StatusCode, AppError> {
    service::change_user(
        &ctx,
        &username,
        body.password.as_deref(),
        body.role,
        body.disabled,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries older than this id (from `next_before` of the previous page).
    pub before: Option<i64>,
    /// At most this many entries (1 to 500, default 100).
    pub limit: Option<i64>,
    /// Only this user's actions.
    pub actor: Option<String>,
    /// Only this action (`alert_rule.save`), or every action of an area (`alert_rule`).
    pub action: Option<String>,
}

/// The audit log, newest first (admin).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "users",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPageData),
        (status = 400, description = "Bad query string", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn audit(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageData>, AppError> {
    ctx.require(Role::Admin).await?;
    Ok(Json(
        service::list_audit(
            &ctx.state.pool,
            q.before,
            q.limit.unwrap_or(100),
            service::AuditFilter {
                actor: q.actor.as_deref(),
                action: q.action.as_deref(),
            },
        )
        .await?,
    ))
}
