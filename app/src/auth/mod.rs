//! Authentication and authorisation: users, roles, sessions, login throttling and the audit log.
//! Shared types and server functions live here; the database side is in `service` (server only).

mod pages;
#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod throttle;
#[cfg(feature = "ssr")]
pub mod tokens;

pub use pages::{AdminTabs, AuditPage, LoginPage, TokensPage, UsersPage};

use crate::error::AppError;
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What a signed-in person may do. Ordered: each role can do everything the previous one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::Type))]
#[cfg_attr(feature = "ssr", sqlx(type_name = "text", rename_all = "lowercase"))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}`: expected viewer, operator or admin"
            )),
        }
    }
}

/// The signed-in user, as the pages and `GET /api/v1/auth/me` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CurrentUser {
    pub username: String,
    pub role: Role,
}

impl CurrentUser {
    pub fn can(&self, needed: Role) -> bool {
        self.role >= needed
    }
}

/// A row of Admin › Users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct UserSummary {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub success: bool,
    pub ip: Option<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub detail: serde_json::Value,
}

/// An API token as Admin › Tokens and `GET /api/v1/tokens` show it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct TokenInfo {
    pub name: String,
    /// `ingest` (agents push metrics and logs) or `metrics` (scrape `/metrics`).
    pub scope: String,
    /// The first characters, to tell tokens apart.
    pub prefix: String,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A page of the audit log, newest first; `next_before` continues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPageData {
    pub entries: Vec<AuditEntry>,
    pub next_before: Option<i64>,
    /// Everyone who has acted, for the actor filter.
    #[serde(default)]
    pub actors: Vec<String>,
    /// The areas acted on (`user`, `alert_rule`, `backup`…), for the action filter.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// Where to send the browser after login. Only paths on this site are honoured, so a crafted
/// link cannot bounce a fresh session to another site.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next.map(str::trim).filter(|n| !n.is_empty()) else {
        return "/".to_string();
    };
    let same_site_path = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && !next.starts_with("/login");
    if same_site_path {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// User names: 1 to 64 of lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("user name is empty".into());
    }
    if name.len() > 64 {
        return Err("user name is longer than 64 characters".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("user name must start with a lowercase letter or a digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "user name contains `{c}`: use lowercase letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 1024;

pub fn validate_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!(
            "password is too short: at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "password is too long: at most {MAX_PASSWORD_LEN} bytes"
        ));
    }
    Ok(())
}

// ---- server functions (the pages call these; the JSON API calls the same service code) ----

#[server(prefix = "/sfn", endpoint = "auth/login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<CurrentUser, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let user = service::login(&ctx, &username, &password).await?;
        leptos_axum::redirect(&safe_next(next.as_deref()));
        Ok(user)
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::logout(&ctx).await?;
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "auth/me")]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    crate::auth::service::in_request(|ctx| async move { service::current_user(&ctx).await }).await
}

#[server(prefix = "/sfn", endpoint = "users/list")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(Role::Admin).await?;
        service::list_users(&ctx.state.pool).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "users/create")]
pub async fn create_user(username: String, role: Role, password: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::create_user(&ctx, &username, role, &password).await?;
        Ok(())
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "users/update")]
pub async fn update_user(
    username: String,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::update_user(&ctx, &username, role, disabled).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "users/password")]
pub async fn reset_password(username: String, password: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move {
        service::set_password(&ctx, &username, &password).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "audit/list")]
pub async fn list_audit(
    before: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
) -> Result<AuditPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(Role::Admin).await?;
        let filter = service::AuditFilter {
            actor: actor.as_deref(),
            action: action.as_deref(),
        };
        service::list_audit(&ctx.state.pool, before, 100, filter).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "tokens/list")]
pub async fn list_tokens() -> Result<Vec<TokenInfo>, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(Role::Admin).await?;
        tokens::list(&ctx.state.pool).await
    })
    .await
}

/// Creates a token and returns it: the only time it is shown.
#[server(prefix = "/sfn", endpoint = "tokens/create")]
pub async fn create_token(name: String, scope: String) -> Result<String, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        let (_, token) = tokens::create_audited(&ctx, &name, &scope).await?;
        Ok(token)
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "tokens/revoke")]
pub async fn revoke_token(name: String) -> Result<(), AppError> {
    crate::auth::service::in_request(|ctx| async move { tokens::revoke_audited(&ctx, &name).await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_stay_on_this_site() {
        let cases = [
            (None, "/"),
            (Some(""), "/"),
            (Some("/hosts"), "/hosts"),
            (
                Some("/logs?q=level:error&from=1h"),
                "/logs?q=level:error&from=1h",
            ),
            (Some("//evil.example/x"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some("hosts"), "/"),
            (Some("/a\nb"), "/"),
            (Some("/login?next=/"), "/"),
        ];
        for (input, want) in cases {
            assert_eq!(safe_next(input), want, "input {input:?}");
        }
    }

    #[test]
    fn user_names_are_checked() {
        let ok = ["admin", "ops-1", "a", "j.doe_2"];
        for name in ok {
            assert!(validate_username(name).is_ok(), "{name}");
        }
        let bad = [
            ("", "empty"),
            ("Admin", "start"),
            ("-x", "start"),
            ("a b", "contains ` `"),
            ("ab/", "contains `/`"),
        ];
        for (name, why) in bad {
            let err = validate_username(name).unwrap_err();
            assert!(err.contains(why), "{name}: {err}");
        }
        assert!(validate_username(&"a".repeat(65))
            .unwrap_err()
            .contains("64"));
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(validate_password("short")
            .unwrap_err()
            .contains("too short"));
        assert!(validate_password("long enough pw").is_ok());
        assert!(validate_password(&"x".repeat(2000))
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().unwrap_err().contains("root"));
        let op = CurrentUser {
            username: "o".into(),
            role: Role::Operator,
        };
        assert!(op.can(Role::Viewer) && op.can(Role::Operator) && !op.can(Role::Admin));
    }
}
