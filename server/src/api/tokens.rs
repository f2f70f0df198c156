//! API tokens for agents and Prometheus (admin only).

use super::ErrorBody;
use app::auth::{tokens, TokenInfo};
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

api_list!(
    /// All tokens (never the tokens themselves).
    list: "/api/v1/tokens", "tokens", Admin, Vec<TokenInfo>,
    |ctx| tokens::list(&ctx.state.pool).await?
);

api_create!(
    /// Create a token; the response carries it once.
    create: "/api/v1/tokens", "tokens", NewToken -> CreatedToken,
    [(status = 409, description = "Name taken", body = ErrorBody)],
    |ctx, new| {
        let (info, token) = tokens::create_audited(&ctx, &new.name, &new.scope).await?;
        CreatedToken { info, token }
    }
);

api_delete!(
    /// Revoke a token: it stops working at once.
    revoke: "/api/v1/tokens/{name}", "tokens", "name": String, "Token name", "Revoked",
    |ctx, name| tokens::revoke_audited(&ctx, &name).await?
);
