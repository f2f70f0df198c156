//! Server side of authentication: the login flow with throttling, sessions, user management
//! and the audit log. Both server functions and JSON handlers call this.

pub use super::password::{hash_password, random_password, verify_password};
use super::throttle::{self, Verdict};
use super::{
    validate_password, validate_username, AuditEntry, AuditPageData, CurrentUser, Role, UserSummary,
};
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::timestamp::Timestamp;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sqlx::PgPool;
use std::net::{IpAddr, SocketAddr};
use time::OffsetDateTime;
use tower_sessions::Session;

const USER_ID_KEY: &str = "opsdeck.user_id";
/// Sign-in time in Unix milliseconds.
const LOGIN_AT_KEY: &str = "opsdeck.login_at_ms";
/// The minute (Unix time / 60) the session was last written: it is written again, extending its
/// idle expiry, when a request comes in a later minute, rather than on every request.
const SEEN_MINUTE_KEY: &str = "opsdeck.seen_minute";

/// Who does an action, and from where: what the audit log records of it.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub ip: Option<&'a str>,
}

impl<'a> Actor<'a> {
    /// Opsdeck itself, or a tool (the CLI, a benchmark): no address.
    pub fn system(name: &'a str) -> Self {
        Self { name, ip: None }
    }
}

/// Who is asking, from where, with which session: built once per request.
#[derive(Clone)]
pub struct RequestCtx {
    pub state: AppState,
    pub session: Session,
    pub ip: Option<String>,
}

/// An `X-Forwarded-For` hop: an address, with or without a port (`[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The client's address, from the connecting `peer` and the `X-Forwarded-For` hops (left to
/// right, as proxies appended them): when the peer is a trusted proxy, the right-most hop that
/// is not one (what the nearest untrusted party connected from); the hops to its left are the
/// client's own words and never believed. A hop that is not an address ends the walk at the
/// last trusted proxy. Pure; `client_ip` feeds it the request.
pub fn client_address(peer: IpAddr, hops: &[&str], trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    if !trusted(peer) {
        return peer;
    }
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if trusted(ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// The `X-Forwarded-For` hops of a request, every header in order.
fn forwarded_hops(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect()
}

/// The client's address: the socket peer, or, behind `trusted_proxies` (or the deprecated
/// `trust_forwarded_for`, which trusts the peer itself), what `client_address` makes of
/// `X-Forwarded-For`.
pub fn client_ip(parts: &Parts, config: &Config) -> Option<String> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())?;
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    let hops = forwarded_hops(&parts.headers);
    let trusted =
        |ip: IpAddr| config.is_trusted_proxy(ip) || (config.trust_forwarded_for && ip == peer);
    Some(client_address(peer, &hops, trusted).to_string())
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
            ip: client_ip(parts, &state.config),
        })
    }
}

/// A server function's body, given the request's context. The answer's HTTP status follows
/// the error ([`crate::error::with_status`]), so scripts see 401, 403 or 422, not 500.
pub async fn in_request<T, F, Fut>(body: F) -> AppResult<T>
where
    F: FnOnce(RequestCtx) -> Fut,
    Fut: std::future::Future<Output = AppResult<T>>,
{
    let result = async { body(RequestCtx::from_leptos().await?).await }.await;
    crate::error::with_status(result)
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

    /// `user`, acting from this request's address.
    pub fn actor<'a>(&'a self, user: &'a CurrentUser) -> Actor<'a> {
        self.actor_named(&user.username)
    }

    /// Whoever `name` is (a user, or `token <name>`), acting from this request's address.
    pub fn actor_named<'a>(&'a self, name: &'a str) -> Actor<'a> {
        Actor {
            name,
            ip: self.ip.as_deref(),
        }
    }

    /// Records an action of `actor` from this request's address.
    pub async fn audit(
        &self,
        actor: &CurrentUser,
        action: &str,
        target: &str,
        success: bool,
        detail: serde_json::Value,
    ) -> AppResult<()> {
        audit(
            &self.state.pool,
            Some(&actor.username),
            action,
            Some(target),
            success,
            self.ip.as_deref(),
            detail,
        )
        .await
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
    let row = sqlx::query!(
        "SELECT username, role FROM users
         WHERE id = $1 AND NOT disabled AND sessions_valid_after <= to_timestamp($2)",
        user_id,
        login_at_ms as f64 / 1000.0
    )
    .fetch_optional(&ctx.state.pool)
    .await?
    .map(|r| (r.username, r.role));
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

/// At most this much of a user name that matches no user is written to the audit log.
pub const SHOWN_NAME_CHARS: usize = 64;

/// A user name as the audit log may keep it: its first 64 characters.
pub fn shown_name(name: &str) -> String {
    name.chars().take(SHOWN_NAME_CHARS).collect()
}

/// The sign-in throttle's settings.
fn timing(cfg: &Config) -> throttle::Timing {
    throttle::Timing {
        window_secs: cfg.login_window_secs,
        lockout_secs: cfg.login_lockout_secs,
    }
}

/// Takes a password attempt against the name's and the address's counters (`prefix` keeps
/// sign-ins and restore confirmations apart), auditing the attempt that engages a lock.
pub async fn take_attempt(
    ctx: &RequestCtx,
    prefix: &str,
    username: &str,
) -> AppResult<Vec<throttle::Counter>> {
    let cfg = &ctx.state.config;
    let counters = throttle::keys(
        prefix,
        username,
        ctx.ip.as_deref(),
        cfg.login_max_failures,
        cfg.login_ip_max_failures,
    );
    let verdict = throttle::take(&ctx.state.pool, &counters, timing(cfg)).await?;
    if let Verdict::Locked { engaged: true, .. } = verdict {
        audit(
            &ctx.state.pool,
            None,
            if prefix.is_empty() {
                "auth.login_locked"
            } else {
                "auth.restore_locked"
            },
            Some(&shown_name(username)),
            false,
            ctx.ip.as_deref(),
            serde_json::json!({"lockout_secs": cfg.login_lockout_secs}),
        )
        .await?;
    }
    verdict.into_result()?;
    Ok(counters)
}

/// The whole login: the attempt counted first (so parallel attempts cannot all be judged), the
/// password checked against argon2id, the session id cycled, an audit entry either way.
pub async fn login(ctx: &RequestCtx, username: &str, password: &str) -> AppResult<CurrentUser> {
    let pool = &ctx.state.pool;
    let username = username.trim();
    let counters = take_attempt(ctx, "", username).await?;
    let row: Option<(i64, String, String, bool)> = if password.len() > super::MAX_PASSWORD_LEN {
        None
    } else {
        sqlx::query!(
            "SELECT id, password_hash, role, disabled FROM users WHERE username = $1",
            username
        )
        .fetch_optional(pool)
        .await?
        .map(|r| (r.id, r.password_hash, r.role, r.disabled))
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
        // (The attempt stays counted.) A name that matches no user is kept short.
        audit(
            pool,
            None,
            "auth.login_failed",
            Some(&shown_name(username)),
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
    throttle::succeeded(pool, &counters).await?;
    sqlx::query!(
        "UPDATE users SET last_login_at = now() WHERE id = $1",
        user_id
    )
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
    sqlx::query!("INSERT INTO audit_log (actor, action, target, success, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)", actor, action, target, success, ip, detail)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes audit entries older than `days`, and login counters whose window and lock are over
/// (a job, hourly): neither grows without end, whatever unauthenticated clients send.
pub async fn purge_old(pool: &PgPool, cfg: &Config) -> AppResult<(u64, u64)> {
    let audit = sqlx::query!(
        "DELETE FROM audit_log WHERE at < now() - make_interval(days => $1)",
        cfg.audit_retention_days as i32
    )
    .execute(pool)
    .await?
    .rows_affected();
    let throttles = throttle::purge(pool, timing(cfg)).await?;
    Ok((audit, throttles))
}

/// Which audit entries: by whom (exactly) and what (an action, or its area: `alert_rule`
/// matches `alert_rule.save` and `alert_rule.delete`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter<'a> {
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
}

pub async fn list_audit(
    pool: &PgPool,
    before: Option<i64>,
    limit: i64,
    filter: AuditFilter<'_>,
) -> AppResult<AuditPageData> {
    let limit = limit.clamp(1, 500);
    let mut entries: Vec<AuditEntry> = sqlx::query_as(
        "SELECT id, at, actor, action, target, success, ip, detail FROM audit_log
         WHERE ($1::bigint IS NULL OR id < $1) AND ($3::text IS NULL OR actor = $3)
           AND ($4::text IS NULL OR action = $4 OR starts_with(action, $4 || '.'))
         ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit + 1)
    .bind(filter.actor.filter(|s| !s.is_empty()))
    .bind(filter.action.filter(|s| !s.is_empty()))
    .fetch_all(pool)
    .await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next_before = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    // What the filters offer: who acted and the areas acted on (the audit log is small).
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT actor FROM audit_log WHERE actor IS NOT NULL ORDER BY 1 LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT split_part(action, '.', 1) FROM audit_log ORDER BY 1 LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    Ok(AuditPageData {
        entries,
        next_before,
        actors,
        actions,
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
    username: &str,
    role: Role,
    password: &str,
) -> AppResult<UserSummary> {
    let actor = ctx.require(Role::Admin).await?;
    let actor = Some(&actor);
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
    let row = sqlx::query_scalar!(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING created_at",
        username,
        &hash,
        role.as_str()
    )
    .fetch_one(pool)
    .await;
    match row {
        Ok(created_at) => Ok(UserSummary {
            username: username.to_string(),
            role,
            disabled: false,
            created_at: Timestamp(created_at),
            last_login_at: None,
        }),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(AppError::conflict(
            format!("user `{username}` already exists"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Changes a password; every session of that user made before now stops working.
pub async fn set_password(ctx: &RequestCtx, username: &str, password: &str) -> AppResult<()> {
    let actor = ctx.require(Role::Admin).await?;
    let actor = Some(&actor);
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
    let n = sqlx::query!("UPDATE users SET password_hash = $2, sessions_valid_after = now(), updated_at = now() WHERE username = $1", username, &hash)
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
    username: &str,
    role: Option<Role>,
    disabled: Option<bool>,
) -> AppResult<()> {
    let actor = ctx.require(Role::Admin).await?;
    let actor = &actor;
    let mut tx = ctx.state.pool.begin().await?;
    // Serialise changes to admins so two concurrent demotions cannot both pass the check.
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('opsdeck.users.admins'))")
        .execute(&mut *tx)
        .await?;
    let current = sqlx::query!(
        "SELECT role, disabled FROM users WHERE username = $1",
        username
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.role, r.disabled));
    let Some((old_role, old_disabled)) = current else {
        return Err(AppError::not_found(format!("no user `{username}`")));
    };
    let old_role = parse_role(&old_role)?;
    let new_role = role.unwrap_or(old_role);
    let new_disabled = disabled.unwrap_or(old_disabled);
    let was_active_admin = old_role == Role::Admin && !old_disabled;
    let stays_active_admin = new_role == Role::Admin && !new_disabled;
    if was_active_admin && !stays_active_admin {
        let others: i64 = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users WHERE role = 'admin' AND NOT disabled AND username <> $1"#, username)
        .fetch_one(&mut *tx)
        .await?;
        if others == 0 {
            return Err(AppError::conflict(format!(
                "`{username}` is the last active admin; make someone else admin first"
            )));
        }
    }
    sqlx::query!("UPDATE users SET role = $2, disabled = $3, updated_at = now(),
           sessions_valid_after = CASE WHEN $3 AND NOT disabled THEN now() ELSE sessions_valid_after END
         WHERE username = $1", username, new_role.as_str(), new_disabled)
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

/// Changes what a PATCH of a user asks (admins): the password (their sessions end), then the
/// role and state.
pub async fn change_user(
    ctx: &RequestCtx,
    username: &str,
    password: Option<&str>,
    role: Option<Role>,
    disabled: Option<bool>,
) -> AppResult<()> {
    ctx.require(Role::Admin).await?;
    if let Some(pw) = password {
        set_password(ctx, username, pw).await?;
    }
    if role.is_some() || disabled.is_some() {
        update_user(ctx, username, role, disabled).await?;
    }
    Ok(())
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
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('opsdeck.first_admin'))")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM users) AS "any!""#)
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(FirstAdmin::Existing);
    }
    let hash = hash_password(password).await?;
    sqlx::query!(
        "INSERT INTO users (username, password_hash, role) VALUES ('admin', $1, 'admin')",
        &hash
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("INSERT INTO audit_log (actor, action, target, success, detail) VALUES (NULL, 'user.create', 'admin', true, '{\"role\":\"admin\",\"first_start\":true}')")
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
    fn client_addresses_behind_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxies = [
            crate::config::Cidr::parse("10.0.0.0/8").unwrap(),
            crate::config::Cidr::parse("192.168.1.7").unwrap(),
        ];
        let trusted = |a: IpAddr| proxies.iter().any(|c| c.contains(a));
        let cases: &[(&str, &[&str], &str)] = &[
            // No proxy: the peer, whatever it claims.
            ("203.0.113.9", &["1.2.3.4"], "203.0.113.9"),
            // Behind one proxy: the hop it appended.
            ("10.0.0.2", &["198.51.100.7"], "198.51.100.7"),
            // A client that writes its own header cannot choose its address.
            ("10.0.0.2", &["1.1.1.1", "198.51.100.7"], "198.51.100.7"),
            // Two proxies: the right-most hop that is not one.
            (
                "10.0.0.2",
                &["1.1.1.1", "198.51.100.7", "192.168.1.7"],
                "198.51.100.7",
            ),
            // Ports and brackets.
            ("10.0.0.2", &["[2001:db8::5]:443"], "2001:db8::5"),
            ("10.0.0.2", &["198.51.100.7:5000"], "198.51.100.7"),
            // Garbage at the right: the last trusted proxy.
            ("10.0.0.2", &["1.1.1.1", "not-an-ip"], "10.0.0.2"),
            (
                "10.0.0.2",
                &["1.1.1.1", "not-an-ip", "10.9.9.9"],
                "10.9.9.9",
            ),
            // Only proxies: the left-most.
            ("10.0.0.2", &["10.0.0.3"], "10.0.0.3"),
            ("10.0.0.2", &[], "10.0.0.2"),
        ];
        for (peer, hops, want) in cases {
            assert_eq!(
                client_address(ip(peer), hops, trusted),
                ip(want),
                "{peer} {hops:?}"
            );
        }
    }

    #[test]
    fn names_that_match_no_user_are_kept_short() {
        assert_eq!(shown_name("bob"), "bob");
        assert_eq!(shown_name(&"é".repeat(1000)).chars().count(), 64);
    }
}
