//! API tokens for machines (agents pushing metrics and logs, Prometheus scraping `/metrics`).
//! Only a SHA-256 of each token is stored; the token is shown once, when it is created.

use super::service::{audit, RequestCtx};
use super::{Role, TokenInfo};
use crate::error::{AppError, AppResult};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

pub const TOKEN_PREFIX: &str = "odk_";

pub fn generate_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::from(TOKEN_PREFIX);
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    while out.len() < TOKEN_PREFIX.len() + 40 {
        let mut b = [0u8; 1];
        OsRng.fill_bytes(&mut b);
        if b[0] < limit {
            out.push(ALPHABET[b[0] as usize % ALPHABET.len()] as char);
        }
    }
    out
}

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn validate_scope(scope: &str) -> Result<(), String> {
    match scope {
        "ingest" | "metrics" => Ok(()),
        other => Err(format!(
            "unknown scope `{other}`: expected ingest or metrics"
        )),
    }
}

/// Creates a token; returns its description and the token itself (the only time it is known).
pub async fn create(
    pool: &PgPool,
    name: &str,
    scope: &str,
    created_by: Option<&str>,
) -> AppResult<(TokenInfo, String)> {
    super::validate_username(name)
        .map_err(|e| AppError::Unprocessable(e.replace("user name", "token name")))?;
    validate_scope(scope).map_err(AppError::Unprocessable)?;
    let token = generate_token();
    let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let row: Result<TokenInfo, sqlx::Error> = sqlx::query_as(
        "INSERT INTO api_tokens (name, scope, token_hash, prefix, created_by) VALUES ($1, $2, $3, $4, $5)
         RETURNING name, scope, prefix, created_by, created_at, last_used_at, revoked_at",
    )
    .bind(name)
    .bind(scope)
    .bind(hash_token(&token))
    .bind(&prefix)
    .bind(created_by)
    .fetch_one(pool)
    .await;
    match row {
        Ok(info) => Ok((info, token)),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(AppError::conflict(
            format!("a token named `{name}` exists already"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Creates a token on behalf of a signed-in admin and records it in the audit log.
pub async fn create_audited(
    ctx: &RequestCtx,
    name: &str,
    scope: &str,
) -> AppResult<(TokenInfo, String)> {
    let admin = ctx.require(Role::Admin).await?;
    let admin = &admin;
    let created = create(&ctx.state.pool, name, scope, Some(&admin.username)).await?;
    audit(
        &ctx.state.pool,
        Some(&admin.username),
        "token.create",
        Some(name),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({"scope": scope}),
    )
    .await?;
    Ok(created)
}

/// Revokes a token on behalf of a signed-in admin and records it in the audit log.
pub async fn revoke_audited(ctx: &RequestCtx, name: &str) -> AppResult<()> {
    let admin = ctx.require(Role::Admin).await?;
    let admin = &admin;
    revoke(&ctx.state.pool, name).await?;
    audit(
        &ctx.state.pool,
        Some(&admin.username),
        "token.revoke",
        Some(name),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({}),
    )
    .await
}

pub async fn list(pool: &PgPool) -> AppResult<Vec<TokenInfo>> {
    Ok(sqlx::query_as(
        "SELECT name, scope, prefix, created_by, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn revoke(pool: &PgPool, name: &str) -> AppResult<()> {
    let n = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
        name
    )
    .execute(pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::not_found(format!("no active token `{name}`")));
    }
    Ok(())
}

/// The token's name when `Authorization: Bearer <token>` is valid for `scope`.
pub async fn verify(pool: &PgPool, authorization: Option<&str>, scope: &str) -> AppResult<String> {
    let token = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(AppError::Unauthorized)?;
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Err(AppError::Unauthorized);
    }
    let name: Option<String> = sqlx::query_scalar!("UPDATE api_tokens SET last_used_at = CASE
             WHEN last_used_at IS NULL OR last_used_at < now() - interval '1 minute' THEN now() ELSE last_used_at END
         WHERE token_hash = $1 AND scope = $2 AND revoked_at IS NULL
         RETURNING name", hash_token(token), scope)
    .fetch_optional(pool)
    .await?;
    name.ok_or(AppError::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with("odk_") && a.len() == 44, "{a}");
        assert_eq!(hash_token("odk_x").len(), 64);
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(validate_scope("ingest").is_ok() && validate_scope("admin").is_err());
    }
}
