//! API tokens for agents and Prometheus (admin only).

use super::extract::{ApiJson, ApiPath};
use super::ErrorBody;
use app::auth::service::RequestCtx;
use app::auth::{tokens, Role, TokenInfo};
use app::error::AppError;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// `ingest` or `metrics`.
    pub scope: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The token: shown this once, stored only as a hash.
    pub token: String,
}

/// All tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses(
    (status = 200, description = "Tokens", body = Vec<TokenInfo>),
    (status = 401, description = "Not signed in", body = ErrorBody),
    (status = 403, description = "Not an admin", body = ErrorBody),
))]
pub async fn list(ctx: RequestCtx) -> Result<Json<Vec<TokenInfo>>, AppError> {
    ctx.require(Role::Admin).await?;
    Ok(Json(tokens::list(&ctx.state.pool).await?))
}

/// Create a token; the response carries it once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken, responses(
    (status = 201, description = "Created", body = CreatedToken),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not signed in", body = ErrorBody),
    (status = 403, description = "Not an admin", body = ErrorBody),
    (status = 409, description = "Name taken", body = ErrorBody),
    (status = 422, description = "Invalid name or scope", body = ErrorBody),
))]
pub async fn create(
    ctx: RequestCtx,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    let (info, token) = tokens::create_audited(&ctx, &body.name, &body.scope).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })))
}

/// Revoke a token: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "Token name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such active token", body = ErrorBody),
    ))]
pub async fn revoke(
    ctx: RequestCtx,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    tokens::revoke_audited(&ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
