//! Pieces every page uses: the app shell with navigation, empty and error states, formatting.

use crate::auth::{whoami, CurrentUser, Logout, Role};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::use_location;
use time::OffsetDateTime;

/// The signed-in user, provided by the layout to every page below it.
#[derive(Clone, Copy)]
pub struct UserCtx(pub Resource<Result<Option<CurrentUser>, AppError>>);

#[component]
pub fn Layout() -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let user = Resource::new(move || logout.version().get(), |_| whoami());
    provide_context(UserCtx(user));
    let location = use_location();
    let nav_link = move |href: &'static str, label: &'static str| {
        let active = move || {
            let p = location.pathname.get();
            if href == "/" {
                p == "/"
            } else {
                p == href || p.starts_with(&format!("{href}/"))
            }
        };
        view! {
            <A href=href attr:class=move || if active() { "nav-link active" } else { "nav-link" }>
                {label}
            </A>
        }
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark">"◆"</span>
                " Opsdeck"
            </a>
            <nav class="mainnav" aria-label="Main">
                {nav_link("/", "Overview")}
                {nav_link("/hosts", "Hosts")}
                {nav_link("/logs", "Logs")}
                {nav_link("/services", "Services")}
                {nav_link("/backups", "Backups")}
                {nav_link("/capacity", "Capacity")}
                {nav_link("/alerts", "Alerts")}
                {nav_link("/checks", "Checks")}
                <Transition>
                    {move || Suspend::new(async move {
                        match user.await {
                            Ok(Some(u)) if u.can(Role::Admin) => Some(nav_link("/admin", "Admin")),
                            _ => None,
                        }
                    })}
                </Transition>
            </nav>
            <div class="usermenu">
                <Transition>
                    {move || Suspend::new(async move {
                        user.await.ok().flatten().map(|u| {
                            view! {
                                <span class="whoami" data-testid="whoami">
                                    {u.username.clone()}
                                    <span class=format!("role role-{}", u.role)>{u.role.to_string()}</span>
                                </span>
                            }
                        })
                    })}
                </Transition>
                <ActionForm action=logout attr:class="inline">
                    <button type="submit" class="btn ghost" data-testid="logout">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
        <main class="content">
            <Outlet/>
        </main>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="content narrow">
            <div class="card empty">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address. "<a href="/">"Back to the overview"</a></p>
            </div>
        </main>
    }
}

/// A destructive action asked twice, without script: `label` opens a small panel with the
/// question and the real button (the children, an `ActionForm`), so one stray click deletes
/// nothing.
#[component]
pub fn Confirm(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    children: Children,
) -> impl IntoView {
    view! {
        <details class="confirm" data-testid="confirm">
            <summary class="btn small danger">{label}</summary>
            <div class="confirm-panel" role="group">
                <p class="small">{question}</p>
                {children()}
            </div>
        </details>
    }
}

/// What a page shows when there is nothing yet, with what to do about it.
#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="card empty" data-testid="empty-state">
            <h2>{title}</h2>
            <div class="muted">{children()}</div>
        </div>
    }
}

/// A failed load or action, saying what went wrong.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    let (title, hint) = match &error {
        AppError::Unauthorized => ("Signed out", Some("Your session ended. Sign in again.")),
        AppError::Forbidden(_) => ("Not allowed", None),
        AppError::Unavailable(_) => (
            "Database unavailable",
            Some("Opsdeck keeps trying; this page will work again when the database is back."),
        ),
        _ => ("Something went wrong", None),
    };
    view! {
        <div class="notice error" role="alert" data-testid="error">
            <strong>{title}</strong>
            " "
            <span>{error.to_string()}</span>
            {hint.map(|h| view! { <p class="muted">{h}</p> })}
        </div>
    }
}

/// The error of the last submission of an action, if it failed.
pub fn action_error<T: Clone + Send + Sync + 'static>(
    last: impl Fn() -> Option<Result<T, AppError>> + Send + Sync + 'static,
) -> impl IntoView {
    move || {
        last()
            .and_then(|r| r.err())
            .map(|e| view! { <ErrorNotice error=e/> })
    }
}

#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(optional)] subtitle: Option<&'static str>,
) -> impl IntoView {
    view! {
        <leptos_meta::Title text=title/>
        <div class="page-header">
            <h1>{title}</h1>
            {subtitle.map(|s| view! { <p class="muted">{s}</p> })}
        </div>
    }
}

/// A route's path or query parameter, `None` once the route's map is gone: a page's closures
/// can run after navigation has disposed of it (a panic seen under load with `read()`).
pub fn param(
    map: leptos::prelude::Memo<leptos_router::params::ParamsMap>,
    key: &str,
) -> Option<String> {
    map.try_read().and_then(|m| m.get(key))
}

/// `2026-11-25 20:31 UTC`: the same text on the server and after hydration.
pub fn fmt_time<T: Into<OffsetDateTime> + Copy>(t: &T) -> String {
    let t: OffsetDateTime = (*t).into();
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How long ago `t` was, as [`fmt_duration`] puts it (`5 min 3 s`); never negative.
pub fn ago(t: impl Into<OffsetDateTime>) -> String {
    let secs = (OffsetDateTime::now_utc() - t.into())
        .whole_seconds()
        .max(0) as u64;
    fmt_duration(secs)
}

/// `3 d 4 h`, `5 h 12 min`, `42 s`: the two largest units.
pub fn fmt_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A query-string value, percent-encoded (unreserved characters kept).
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        for (raw, want) in [
            ("web-1", "web-1"),
            (
                "level:error status:>=500",
                "level%3Aerror%20status%3A%3E%3D500",
            ),
            ("\"a&b\"", "%22a%26b%22"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(urlencode(raw), want, "{raw}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (0, "0 s"),
            (59, "59 s"),
            (61, "1 min 1 s"),
            (3600, "1 h 0 min"),
            (90_061, "1 d 1 h"),
        ];
        for (secs, want) in cases {
            assert_eq!(fmt_duration(secs), want);
        }
    }

    #[test]
    fn times_are_utc() {
        let t = time::macros::datetime!(2026-11-25 21:31:05 +01:00);
        assert_eq!(fmt_time(&t), "2026-11-25 20:31:05 UTC");
    }
}
