//! Cross-cutting request handling: CSRF refusal, the login gate for pages, security headers,
//! request counters.

use app::auth::service::{current_user, RequestCtx};
use app::error::AppError;
use app::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// Why a state-changing request is refused as cross-site, or None when it may go on.
/// Browsers send `Sec-Fetch-Site` and `Origin`; scripts and agents send neither and are let
/// through (they authenticate with tokens or their own cookie jar, which no other site can use).
pub fn cross_site_reason(method: &Method, headers: &HeaderMap) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return Some(format!(
                "cross-site request refused (Sec-Fetch-Site: {site})"
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = text("x-forwarded-host").or(text("host")).unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        if origin == "null" || origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Some(format!(
                "cross-site request refused (Origin {origin} is not this site)"
            ));
        }
    }
    None
}

pub async fn csrf(req: Request, next: Next) -> Response {
    match cross_site_reason(req.method(), req.headers()) {
        Some(reason) => AppError::forbidden(reason).into_response(),
        None => next.run(req).await,
    }
}

/// Requests one session may have in flight at once: a browser opens at most six connections
/// to a site, a dashboard and a few tabs stay well below this; a client flooding the server
/// with its session gets 429 at once, before the session is even loaded.
pub const SESSION_IN_FLIGHT: usize = 16;

/// The session cookie's value, hashed (it is never kept).
fn session_key(headers: &HeaderMap) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let prefix = format!("{}=", crate::SESSION_COOKIE);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find_map(|c| c.strip_prefix(prefix.as_str()))
        .map(|id| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut h);
            h.finish()
        })
}

/// At most [`SESSION_IN_FLIGHT`] requests of one session at once.
pub async fn per_session_limit(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = session_key(req.headers()) else {
        return next.run(req).await;
    };
    match state.runtime.in_flight.enter(key, SESSION_IN_FLIGHT) {
        Some(_guard) => next.run(req).await,
        None => {
            let body = axum::Json(serde_json::json!({
                "error": format!(
                    "too many requests at once from this session (at most {SESSION_IN_FLIGHT}); \
                     wait for some to finish"
                )
            }));
            let mut res = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
    }
}

/// Paths anyone may fetch; every other page needs a signed-in user.
pub fn is_public_path(path: &str) -> bool {
    path == "/login"
        || path == "/favicon.svg"
        || path == "/metrics"
        || path == "/status"
        || path.starts_with("/pkg/")
        || path.starts_with("/api/")
        || path.starts_with("/sfn/")
}

/// Percent-encodes a path and query for the `next` parameter.
pub fn encode_next(path_and_query: &str) -> String {
    let mut out = String::with_capacity(path_and_query.len());
    for b in path_and_query.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Unauthenticated page requests go to the login page (303), remembering where they were going.
pub async fn require_login_for_pages(ctx: RequestCtx, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page = matches!(*req.method(), Method::GET | Method::HEAD) && !is_public_path(path);
    let is_login = path == "/login";
    if !is_page && !is_login {
        return next.run(req).await;
    }
    let user = match current_user(&ctx).await {
        Ok(u) => u,
        Err(e @ AppError::Unavailable(_)) => return unavailable_page(&e),
        Err(e) => return e.into_response(),
    };
    match (user, is_login) {
        (None, false) => {
            let target = req
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", encode_next(target))).into_response()
        }
        (Some(_), true) => Redirect::to("/").into_response(),
        _ => next.run(req).await,
    }
}

fn unavailable_page(e: &AppError) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Opsdeck: database unavailable</title>\
         <link rel=\"stylesheet\" href=\"/pkg/opsdeck.css\"></head><body><main class=\"content narrow\">\
         <div class=\"notice error banner\" role=\"alert\"><strong>Opsdeck cannot reach its database.</strong> {e} \
         This page will work again as soon as the database is back.</div></main></body></html>"
    );
    let mut res = (StatusCode::SERVICE_UNAVAILABLE, axum::response::Html(body)).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

/// The headers every response carries. Pages set their own CSP with the nonce of their
/// hydration script (`app::shell`); everything else gets one without any inline script. Behind
/// HTTPS (`secure_cookies`), browsers are told to keep to it.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
            ),
        );
    }
    if state.config.secure_cookies {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// The route as a pattern (`/api/v1/users/{username}`), so labels stay few.
fn route_of(req: &Request) -> String {
    if let Some(p) = req.extensions().get::<MatchedPath>() {
        return p.as_str().to_string();
    }
    let path = req.uri().path();
    if path.starts_with("/pkg/") {
        "/pkg/*".into()
    } else if path.starts_with("/api/") {
        "/api/unmatched".into()
    } else {
        "/unmatched".into()
    }
}

/// Counts every request in the process's telemetry (`/metrics`).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let route = route_of(&req);
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    state.runtime.telemetry.record(
        &method,
        &route,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_requests_are_refused() {
        type Case = (Method, &'static [(&'static str, &'static str)], bool);
        let cases: Vec<Case> = vec![
            (Method::POST, &[("host", "ops.local:3000")], false),
            (
                Method::POST,
                &[
                    ("host", "ops.local:3000"),
                    ("origin", "http://ops.local:3000"),
                ],
                false,
            ),
            (
                Method::POST,
                &[
                    ("host", "ops.local:3000"),
                    ("origin", "https://evil.example"),
                ],
                true,
            ),
            (
                Method::POST,
                &[("host", "ops.local:3000"), ("origin", "null")],
                true,
            ),
            (
                Method::POST,
                &[("host", "ops.local:3000"), ("sec-fetch-site", "cross-site")],
                true,
            ),
            (
                Method::POST,
                &[("host", "ops.local:3000"), ("sec-fetch-site", "same-site")],
                true,
            ),
            (
                Method::POST,
                &[
                    ("host", "ops.local:3000"),
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "http://ops.local:3000"),
                ],
                false,
            ),
            (
                Method::GET,
                &[("host", "a"), ("origin", "https://evil.example")],
                false,
            ),
            (
                Method::DELETE,
                &[("host", "a"), ("origin", "https://evil.example")],
                true,
            ),
        ];
        for (method, pairs, refused) in cases {
            let h = headers(pairs);
            assert_eq!(
                cross_site_reason(&method, &h).is_some(),
                refused,
                "{method} {pairs:?}"
            );
        }
    }

    #[test]
    fn next_is_encoded() {
        assert_eq!(encode_next("/hosts"), "/hosts");
        assert_eq!(encode_next("/logs?q=a b&x=1"), "/logs%3Fq%3Da%20b%26x%3D1");
    }

    #[test]
    fn public_paths() {
        for p in [
            "/login",
            "/pkg/opsdeck.wasm",
            "/api/v1/health",
            "/sfn/auth/login",
            "/favicon.svg",
            "/status",
        ] {
            assert!(is_public_path(p), "{p}");
        }
        for p in [
            "/",
            "/hosts",
            "/admin/users",
            "/loginx",
            "/status/x",
            "/statusx",
        ] {
            assert!(!is_public_path(p), "{p}");
        }
    }
}
