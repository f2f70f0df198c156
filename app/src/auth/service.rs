//! Server side of authentication: password hashing, the login flow with throttling, sessions,
//! user management and the audit log. Both server functions and JSON handlers call this.

use super::{
    validate_password, validate_username, AuditEntry, AuditPageData, CurrentUser, Role, UserSummary,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::OnceLock;
use time::OffsetDateTime;
use tower_sessions::Session;

const USER_ID_KEY: &str = "opsdeck.user_id";
/// Sign-in time in Unix milliseconds.
const LOGIN_AT_KEY: &str = "opsdeck.login_at_ms";
/// The minute (Unix time / 60) the session was last written: it is written again, extending its
/// idle expiry, when a request comes in a later minute, rather than on every request.
const SEEN_MINUTE_KEY: &str = "opsdeck.seen_minute";

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
pub const ARGON2_M_KIB: u32 = 19_456;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .unwrap_or_else(|_| unreachable!("constant argon2 parameters are valid"));
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            AppError::Internal
        })
}

/// Hash a password into a PHC string, off the async workers.
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "hashing task failed");
            AppError::Internal
        })?
}

/// A hash of a random password, verified against when the user name is unknown so that a
/// wrong name costs as much time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking(&random_password())
            .unwrap_or_else(|_| "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$invalid".into())
    })
}

/// Verify a password against a stored PHC string (or the dummy hash when there is none).
pub async fn verify_password(stored: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let has_user = stored.is_some();
        let phc = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = match PasswordHash::new(&phc) {
            Ok(parsed) => hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && has_user
    })
    .await
    .unwrap_or(false)
}

/// 20 characters from an alphabet without look-alikes: about 115 bits.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut b = [0u8; 1];
        OsRng.fill_bytes(&mut b);
        // Rejection sampling keeps the distribution uniform.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        if b[0] < limit {
            out.push(ALPHABET[b[0] as usize % ALPHABET.len()] as char);
        }
    }
    out
}

/// Who is asking, from where, with which session: built once per request.
#[derive(Clone)]
pub struct RequestCtx {
    pub state: AppState,
    pub session: Session,
    pub ip: Option<String>,
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop when configured.
pub fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .and_then(|v| v.parse::<std::net::IpAddr>().ok());
        if let Some(ip) = forwarded {
            return Some(ip.to_string());
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string())
}

impl FromRequestParts<AppState> for RequestCtx {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = parts.extensions.get::<Session>().cloned().ok_or_else(|| {
            tracing::error!("session layer missing");
            AppError::Internal
        })?;
        Ok(Self {
            state: state.clone(),
            session,
            ip: client_ip(parts, state.config.trust_forwarded_for),
        })
    }
}

impl RequestCtx {
    /// Inside a server function.
    pub async fn from_leptos() -> AppResult<Self> {
        let state = leptos::prelude::use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the Leptos context");
            AppError::Internal
        })?;
        let mut parts = leptos::prelude::use_context::<Parts>().ok_or_else(|| {
            tracing::error!("request parts missing from the Leptos context");
            AppError::Internal
        })?;
        <Self as FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await
    }

    /// The signed-in user with at least `role`, or 401/403.
    pub async fn require(&self, role: Role) -> AppResult<CurrentUser> {
        let user = current_user(self).await?.ok_or(AppError::Unauthorized)?;
        if user.can(role) {
            Ok(user)
        } else {
            Err(AppError::forbidden(format!(
                "this needs the {role} role; you are {}",
                user.role
            )))
        }
    }
}

/// The signed-in user, if the session is valid: not past its absolute lifetime, user still
/// enabled, password not changed since the login.
pub async fn current_user(ctx: &RequestCtx) -> AppResult<Option<CurrentUser>> {
    let Some(user_id) = ctx.session.get::<i64>(USER_ID_KEY).await? else {
        return Ok(None);
    };
    let login_at_ms = ctx.session.get::<i64>(LOGIN_AT_KEY).await?.unwrap_or(0);
    if session_expired(
        login_at_ms,
        now_ms(),
        ctx.state.config.session_absolute_hours,
    ) {
        ctx.session.flush().await?;
        return Ok(None);
    }
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT username, role FROM users
         WHERE id = $1 AND NOT disabled AND sessions_valid_after <= to_timestamp($2)",
    )
    .bind(user_id)
    .bind(login_at_ms as f64 / 1000.0)
    .fetch_optional(&ctx.state.pool)
    .await?;
    match row {
        Some((username, role)) => {
            let minute = now_ms() / 60_000;
            if ctx.session.get::<i64>(SEEN_MINUTE_KEY).await? != Some(minute) {
                ctx.session.insert(SEEN_MINUTE_KEY, minute).await?;
            }
            Ok(Some(CurrentUser {
                username,
                role: parse_role(&role)?,
            }))
        }
        None => {
            ctx.session.flush().await?;
            Ok(None)
        }
    }
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A session ends `absolute_hours` after sign-in, however active it is.
pub fn session_expired(login_at_ms: i64, now_ms: i64, absolute_hours: i64) -> bool {
    now_ms - login_at_ms > absolute_hours * 3_600_000
}

fn parse_role(s: &str) -> AppResult<Role> {
    s.parse().map_err(|e: String| {
        tracing::error!(role = s, "bad role in database: {e}");
        AppError::Internal
    })
}

/// Keys of the throttle table: one per user name, one per client address.
fn throttle_keys(username: &str, ip: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!(
        "user:{}",
        username.chars().take(64).collect::<String>()
    )];
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    keys
}

async fn check_throttle(pool: &PgPool, keys: &[String]) -> AppResult<()> {
    let wait: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM max(locked_until) - now())::float8
         FROM login_throttle WHERE key = ANY($1) AND locked_until > now()",
    )
    .bind(keys)
    .fetch_one(pool)
    .await?;
    match wait {
        Some(secs) => Err(AppError::TooManyRequests {
            retry_after_secs: secs.ceil().max(1.0) as u64,
        }),
        None => Ok(()),
    }
}

async fn record_failure(
    pool: &PgPool,
    key: &str,
    limit: i32,
    window_secs: i64,
    lockout_secs: i64,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO login_throttle AS t (key, failures, window_start, locked_until)
         VALUES ($1, 1, now(), CASE WHEN $2 <= 1 THEN now() + make_interval(secs => $4) END)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN t.window_start < now() - make_interval(secs => $3) THEN 1 ELSE t.failures + 1 END,
           window_start = CASE WHEN t.window_start < now() - make_interval(secs => $3) THEN now() ELSE t.window_start END,
           locked_until = CASE
             WHEN (CASE WHEN t.window_start < now() - make_interval(secs => $3) THEN 1 ELSE t.failures + 1 END) >= $2
             THEN now() + make_interval(secs => $4)
             ELSE t.locked_until END",
    )
    .bind(key)
    .bind(limit)
    .bind(window_secs as f64)
    .bind(lockout_secs as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// The whole login: throttle check, password check against argon2id, session id cycled,
/// audit entry either way.
pub async fn login(ctx: &RequestCtx, username: &str, password: &str) -> AppResult<CurrentUser> {
    let pool = &ctx.state.pool;
    let cfg = &ctx.state.config;
    let username = username.trim();
    let keys = throttle_keys(username, ctx.ip.as_deref());
    if let Err(e) = check_throttle(pool, &keys).await {
        if matches!(e, AppError::TooManyRequests { .. }) {
            audit(
                pool,
                Some(username),
                "auth.login_throttled",
                Some(username),
                false,
                ctx.ip.as_deref(),
                serde_json::json!({}),
            )
            .await?;
        }
        return Err(e);
    }
    let row: Option<(i64, String, String, bool)> = if password.len() > super::MAX_PASSWORD_LEN {
        None
    } else {
        sqlx::query_as("SELECT id, password_hash, role, disabled FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?
    };
    let stored = row.as_ref().map(|r| r.1.clone());
    let password_ok = verify_password(
        stored,
        password.chars().take(super::MAX_PASSWORD_LEN).collect(),
    )
    .await;
    let user = match row {
        Some((id, _, role, false)) if password_ok => Some((id, role)),
        _ => None,
    };
    let Some((user_id, role)) = user else {
        record_failure(
            pool,
            &keys[0],
            cfg.login_max_failures,
            cfg.login_window_secs,
            cfg.login_lockout_secs,
        )
        .await?;
        if let Some(ip_key) = keys.get(1) {
            record_failure(
                pool,
                ip_key,
                cfg.login_ip_max_failures,
                cfg.login_window_secs,
                cfg.login_lockout_secs,
            )
            .await?;
        }
        audit(
            pool,
            None,
            "auth.login_failed",
            Some(username),
            false,
            ctx.ip.as_deref(),
            serde_json::json!({}),
        )
        .await?;
        return Err(AppError::BadCredentials);
    };
    let role = parse_role(&role)?;
    ctx.session.cycle_id().await?;
    ctx.session.insert(USER_ID_KEY, user_id).await?;
    ctx.session.insert(LOGIN_AT_KEY, now_ms()).await?;
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(&keys[0])
        .execute(pool)
        .await?;
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    audit(
        pool,
        Some(username),
        "auth.login",
        Some(username),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({}),
    )
    .await?;
    Ok(CurrentUser {
        username: username.to_string(),
        role,
    })
}

/// Ends the session: the server-side record is deleted, not only the cookie.
pub async fn logout(ctx: &RequestCtx) -> AppResult<()> {
    let user = current_user(ctx).await?;
    ctx.session.flush().await?;
    if let Some(user) = user {
        audit(
            &ctx.state.pool,
            Some(&user.username),
            "auth.logout",
            Some(&user.username),
            true,
            ctx.ip.as_deref(),
            serde_json::json!({}),
        )
        .await?;
    }
    Ok(())
}

pub async fn audit(
    pool: &PgPool,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    success: bool,
    ip: Option<&str>,
    detail: serde_json::Value,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor, action, target, success, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(success)
    .bind(ip)
    .bind(detail)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn list_audit(
    pool: &PgPool,
    before: Option<i64>,
    limit: i64,
) -> AppResult<AuditPageData> {
    let limit = limit.clamp(1, 500);
    let mut entries: Vec<AuditEntry> = sqlx::query_as(
        "SELECT id, at, actor, action, target, success, ip, detail FROM audit_log
         WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next_before = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPageData {
        entries,
        next_before,
    })
}

pub async fn list_users(pool: &PgPool) -> AppResult<Vec<UserSummary>> {
    Ok(sqlx::query_as(
        "SELECT username, role, disabled, created_at, last_login_at FROM users ORDER BY username",
    )
    .fetch_all(pool)
    .await?)
}

/// Creates a user; `actor` is None when the CLI does it.
pub async fn create_user(
    ctx: &RequestCtx,
    actor: Option<&CurrentUser>,
    username: &str,
    role: Role,
    password: &str,
) -> AppResult<UserSummary> {
    let user = insert_user(&ctx.state.pool, username, role, password).await?;
    audit(
        &ctx.state.pool,
        actor.map(|a| a.username.as_str()),
        "user.create",
        Some(username),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({ "role": role }),
    )
    .await?;
    Ok(user)
}

/// Validates and inserts a user (no audit: callers record who did it).
pub async fn insert_user(
    pool: &PgPool,
    username: &str,
    role: Role,
    password: &str,
) -> AppResult<UserSummary> {
    validate_username(username).map_err(AppError::Unprocessable)?;
    validate_password(password).map_err(AppError::Unprocessable)?;
    let hash = hash_password(password.to_string()).await?;
    let row: Result<(OffsetDateTime,), sqlx::Error> = sqlx::query_as(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING created_at",
    )
    .bind(username)
    .bind(&hash)
    .bind(role.as_str())
    .fetch_one(pool)
    .await;
    match row {
        Ok((created_at,)) => Ok(UserSummary {
            username: username.to_string(),
            role,
            disabled: false,
            created_at,
            last_login_at: None,
        }),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(AppError::conflict(
            format!("user `{username}` already exists"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Changes a password; every session of that user made before now stops working.
pub async fn set_password(
    ctx: &RequestCtx,
    actor: Option<&CurrentUser>,
    username: &str,
    password: &str,
) -> AppResult<()> {
    change_password(&ctx.state.pool, username, password).await?;
    audit(
        &ctx.state.pool,
        actor.map(|a| a.username.as_str()),
        "user.password",
        Some(username),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({}),
    )
    .await
}

pub async fn change_password(pool: &PgPool, username: &str, password: &str) -> AppResult<()> {
    validate_password(password).map_err(AppError::Unprocessable)?;
    let hash = hash_password(password.to_string()).await?;
    let n = sqlx::query(
        "UPDATE users SET password_hash = $2, sessions_valid_after = now(), updated_at = now() WHERE username = $1",
    )
    .bind(username)
    .bind(&hash)
    .execute(pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::not_found(format!("no user `{username}`")));
    }
    Ok(())
}

/// Changes role and/or enabled state, refusing to leave the team without an active admin.
pub async fn update_user(
    ctx: &RequestCtx,
    actor: &CurrentUser,
    username: &str,
    role: Option<Role>,
    disabled: Option<bool>,
) -> AppResult<()> {
    let mut tx = ctx.state.pool.begin().await?;
    // Serialise changes to admins so two concurrent demotions cannot both pass the check.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsdeck.users.admins'))")
        .execute(&mut *tx)
        .await?;
    let current: Option<(String, bool)> =
        sqlx::query_as("SELECT role, disabled FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((old_role, old_disabled)) = current else {
        return Err(AppError::not_found(format!("no user `{username}`")));
    };
    let old_role = parse_role(&old_role)?;
    let new_role = role.unwrap_or(old_role);
    let new_disabled = disabled.unwrap_or(old_disabled);
    let was_active_admin = old_role == Role::Admin && !old_disabled;
    let stays_active_admin = new_role == Role::Admin && !new_disabled;
    if was_active_admin && !stays_active_admin {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled AND username <> $1",
        )
        .bind(username)
        .fetch_one(&mut *tx)
        .await?;
        if others == 0 {
            return Err(AppError::conflict(format!(
                "`{username}` is the last active admin; make someone else admin first"
            )));
        }
    }
    sqlx::query(
        "UPDATE users SET role = $2, disabled = $3, updated_at = now(),
           sessions_valid_after = CASE WHEN $3 AND NOT disabled THEN now() ELSE sessions_valid_after END
         WHERE username = $1",
    )
    .bind(username)
    .bind(new_role.as_str())
    .bind(new_disabled)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut detail = serde_json::Map::new();
    if new_role != old_role {
        detail.insert(
            "role".into(),
            serde_json::json!({ "from": old_role, "to": new_role }),
        );
    }
    if new_disabled != old_disabled {
        detail.insert("disabled".into(), serde_json::json!(new_disabled));
    }
    audit(
        &ctx.state.pool,
        Some(&actor.username),
        "user.update",
        Some(username),
        true,
        ctx.ip.as_deref(),
        serde_json::Value::Object(detail),
    )
    .await
}

/// What the first start did about the admin account.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstAdmin {
    /// Users exist already: nothing done.
    Existing,
    /// `admin` was created; the password is returned when Opsdeck generated it.
    Created { generated_password: Option<String> },
}

/// With no users at all, create `admin` (password from `OPSDECK_ADMIN_PASSWORD` or random).
/// Safe when several processes start at once: the check and insert run under one lock.
pub async fn ensure_first_admin(
    pool: &PgPool,
    admin_password: Option<&str>,
) -> AppResult<FirstAdmin> {
    let generated = admin_password.is_none().then(random_password);
    let password = admin_password
        .map(str::to_string)
        .or_else(|| generated.clone())
        .unwrap_or_default();
    validate_password(&password)
        .map_err(|e| AppError::Unprocessable(format!("OPSDECK_ADMIN_PASSWORD: {e}")))?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsdeck.first_admin'))")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(FirstAdmin::Existing);
    }
    let hash = hash_password(password).await?;
    sqlx::query("INSERT INTO users (username, password_hash, role) VALUES ('admin', $1, 'admin')")
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (actor, action, target, success, detail) VALUES (NULL, 'user.create', 'admin', true, '{\"role\":\"admin\",\"first_start\":true}')",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(FirstAdmin::Created {
        generated_password: generated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let phc = hash_blocking("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(hasher()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(hasher().verify_password(b"wrong", &parsed).is_err());
    }

    #[test]
    fn random_passwords_are_long_and_distinct() {
        let a = random_password();
        let b = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(validate_password(&a).is_ok());
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify_password(None, "anything at all".into()).await);
        let phc = hash_password("right password".into()).await.unwrap();
        assert!(verify_password(Some(phc.clone()), "right password".into()).await);
        assert!(!verify_password(Some(phc), "wrong password".into()).await);
        assert!(!verify_password(Some("not a phc string".into()), "x".into()).await);
    }

    #[test]
    fn sessions_end_after_the_absolute_lifetime() {
        let h = 3_600_000;
        let cases = [
            (0, 0, 8, false),
            (0, 8 * h, 8, false),
            (0, 8 * h + 1, 8, true),
            (5 * h, 12 * h, 8, false),
            (0, 30 * h, 24, true),
        ];
        for (login, now, hours, expired) in cases {
            assert_eq!(
                session_expired(login, now, hours),
                expired,
                "{login} {now} {hours}"
            );
        }
    }

    #[test]
    fn throttle_keys_cover_user_and_address() {
        assert_eq!(
            throttle_keys("bob", Some("10.0.0.1")),
            vec!["user:bob", "ip:10.0.0.1"]
        );
        assert_eq!(throttle_keys("bob", None), vec!["user:bob"]);
        assert_eq!(throttle_keys(&"x".repeat(100), None)[0].len(), 5 + 64);
    }
}
