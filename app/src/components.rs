//! Pieces every page uses: the app shell with navigation, empty and error states, formatting.

use crate::auth::{whoami, CurrentUser, Logout, Role};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::{client::Client, codec::PostUrl, request::ClientReq, Http, ServerFn};
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
                {nav_link("/incidents", "Incidents")}
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

/// A one-button form that posts hidden fields to a server function (`url`: its
/// `ServerFn::url()`). It is what `ActionForm` renders: the pages are islands, so the form posts
/// natively either way, and an error comes back to the page the same way.
#[component]
pub fn PostButton(
    url: &'static str,
    fields: Vec<(&'static str, String)>,
    #[prop(into)] label: String,
    #[prop(optional)] danger: bool,
) -> impl IntoView {
    view! {
        <form action=url method="post" class="inline">
            {fields.into_iter().map(|(k, v)| view! { <input type="hidden" name=k value=v/> }).collect_view()}
            <button type="submit" class=if danger { "btn small danger" } else { "btn small" }>{label}</button>
        </form>
    }
}

/// An item's Edit: a button that opens its form (`children`: the fields, filled in), posted in
/// the background by [`KeepForm`] to the server function at `url` with the hidden `fields`
/// that name the item.
#[component]
pub fn EditBox(
    url: &'static str,
    fields: Vec<(&'static str, String)>,
    testid: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <details class="edit" data-testid=testid>
            <summary class="btn small">"Edit"</summary>
            <KeepForm>
                <form action=url method="post" class="form-grid edit-form">
                    {fields.into_iter().map(|(k, v)| view! { <input type="hidden" name=k value=v/> }).collect_view()}
                    {children()}
                    <button type="submit" class="btn primary">"Save"</button>
                </form>
            </KeepForm>
        </details>
    }
}

/// A create form folded under its button (`summary`): the fields (children), then a submit
/// button labelled `submit`, posted through `action`, keeping what was typed ([`KeepForm`]).
#[component]
pub fn AddBox<ServFn, OutputProtocol>(
    summary: &'static str,
    action: ServerAction<ServFn>,
    testid: &'static str,
    #[prop(default = "Add")] submit: &'static str,
    children: Children,
) -> impl IntoView
where
    ServFn: serde::de::DeserializeOwned
        + ServerFn<Protocol = Http<PostUrl, OutputProtocol>>
        + Clone
        + Send
        + Sync
        + 'static,
    <<ServFn::Client as Client<ServFn::Error>>::Request as ClientReq<ServFn::Error>>::FormData:
        From<leptos::web_sys::FormData>,
    ServFn::Output: Send + Sync + 'static,
    ServFn::Error: Send + Sync + 'static,
    <ServFn as ServerFn>::Client: Client<<ServFn as ServerFn>::Error>,
    OutputProtocol: 'static,
{
    view! {
        <details class="add"><summary class="btn small">{summary}</summary>
            <KeepForm>
                <ActionForm action=action attr:class="form-grid" attr:data-testid=testid>
                    {children()}
                    <button type="submit" class="btn primary">{submit}</button>
                </ActionForm>
            </KeepForm>
        </details>
    }
}

/// A `<select>` of `options` (value, label) with `selected` chosen.
#[component]
pub fn Choice(
    name: &'static str,
    options: &'static [(&'static str, &'static str)],
    #[prop(into)] selected: String,
) -> impl IntoView {
    view! {
        <select name=name>
            {options.iter().map(|(v, l)| view! { <option value=*v selected=*v == selected>{*l}</option> }).collect_view()}
        </select>
    }
}

/// The action and label of a Pause/Resume button.
pub fn pause_toggle(paused: bool) -> (&'static str, &'static str) {
    if paused {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    }
}

/// A row's switch (`toggle`: the action to post and its label, e.g. [`pause_toggle`]) and its
/// Delete, which asks first. `fields` name the row; each form adds its `action`.
#[component]
pub fn RowActions(
    url: &'static str,
    fields: Vec<(&'static str, String)>,
    toggle: (&'static str, &'static str),
    #[prop(into)] question: String,
    #[prop(into, default = "Delete".into())] delete_label: String,
    #[prop(into, default = "Yes, delete".into())] yes: String,
) -> impl IntoView {
    let with = |action: &str| {
        let mut f = fields.clone();
        f.push(("action", action.to_string()));
        f
    };
    let (switch, delete) = (with(toggle.0), with("delete"));
    view! {
        <PostButton url=url fields=switch label=toggle.1/>
        <Confirm label=delete_label question=question>
            <PostButton url=url fields=delete label=yes danger=true/>
        </Confirm>
    }
}

/// Wraps a page's form (an `ActionForm`) so that it is posted in the background: on success the
/// page reloads to show the change; on an error the form keeps everything typed, the message
/// stands under it (with no `?__err=` in the address), and the field it names is marked and
/// focused. Without script the form still posts natively and the page shows the error on top.
///
/// `busy` says what is happening while the server works (default "Saving…"); `inline` keeps
/// it on the line of a row's buttons.
#[island]
pub fn KeepForm(
    #[prop(optional, into)] busy: Option<String>,
    #[prop(optional)] inline: Option<bool>,
    children: Children,
) -> impl IntoView {
    let busy_text = busy.unwrap_or_else(|| "Saving…".into());
    let (error, set_error) = signal(None::<String>);
    let (posting, set_posting) = signal(false);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, set_error, set_posting);
        #[cfg(feature = "hydrate")]
        {
            use leptos::wasm_bindgen::JsCast;
            let Some(form) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
            else {
                return;
            };
            ev.prevent_default();
            if posting.get_untracked() {
                return;
            }
            set_posting.set(true);
            set_error.set(None);
            leptos::task::spawn_local(async move {
                match keep_form::post(&form).await {
                    Ok(()) => {
                        let _ = window().location().reload();
                    }
                    Err(message) => {
                        keep_form::mark_field(&form, &message);
                        set_error.set(Some(message));
                        set_posting.set(false);
                    }
                }
            });
        }
    };
    view! {
        <div class=if inline.unwrap_or(false) { "keep-form inline" } else { "keep-form" } on:submit=on_submit aria-busy=move || posting.get().to_string()>
            {children()}
            {move || posting.get().then(|| view! { <p class="muted small" data-testid="form-busy"><progress></progress>" "{busy_text.clone()}</p> })}
            {move || error.get().map(|e| view! { <p class="notice error form-error" role="alert" data-testid="form-error">{e}</p> })}
        </div>
    }
}

/// Gives every cell of the page's tables its column's name (`data-label`), which narrow screens
/// show beside the value once a table's rows are stacked and its header hidden.
#[cfg(feature = "hydrate")]
pub fn label_table_cells() {
    use leptos::wasm_bindgen::JsCast;
    let Some(doc) = leptos::prelude::window().document() else {
        return;
    };
    let Ok(tables) = doc.query_selector_all(".table-wrap table") else {
        return;
    };
    let elements = |list: web_sys::NodeList| {
        (0..list.length())
            .filter_map(move |i| list.item(i))
            .filter_map(|n| n.dyn_into::<web_sys::Element>().ok())
    };
    for table in elements(tables) {
        let names: Vec<String> = table
            .query_selector_all("thead th")
            .map(|ths| {
                elements(ths)
                    .map(|th| th.text_content().unwrap_or_default().trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let Ok(rows) = table.query_selector_all("tbody tr") else {
            continue;
        };
        for row in elements(rows) {
            let Ok(cells) = row.query_selector_all(":scope > td") else {
                continue;
            };
            for (cell, name) in elements(cells).zip(&names) {
                if !name.is_empty() && !cell.has_attribute("data-label") {
                    let _ = cell.set_attribute("data-label", name);
                }
            }
        }
    }
}

/// The pages that chart over a time range, and the lists that lead to them.
const TIME_PAGES: [&str; 5] = ["/hosts", "/services", "/logs", "/checks", "/capacity"];

/// `href` with the page's time range carried over (`?range=6h` from the current address), for a
/// link to a page with a time picker that names no window of its own. Pure.
pub fn with_range(href: &str, range: &str) -> Option<String> {
    if !crate::metrics::RANGES.iter().any(|(l, _)| *l == range) {
        return None;
    }
    let (path, query) = href.split_once('?').unwrap_or((href, ""));
    let time_page = TIME_PAGES
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    let has_window = query
        .split('&')
        .any(|kv| matches!(kv.split('=').next(), Some("range" | "from" | "to")));
    if !time_page || has_window {
        return None;
    }
    Some(if query.is_empty() {
        format!("{path}?range={range}")
    } else {
        format!("{path}?{query}&range={range}")
    })
}

/// Makes the page's links to other time pages keep its `range` (one time model across pages).
#[cfg(feature = "hydrate")]
pub fn carry_range() {
    use leptos::wasm_bindgen::JsCast;
    let window = leptos::prelude::window();
    let Ok(search) = window.location().search() else {
        return;
    };
    let Some(range) = web_sys::UrlSearchParams::new_with_str(&search)
        .ok()
        .and_then(|p| p.get("range"))
    else {
        return;
    };
    let Some(Ok(links)) = window
        .document()
        .map(|d| d.query_selector_all("a[href^='/']"))
    else {
        return;
    };
    for i in 0..links.length() {
        let Some(a) = links
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
        else {
            continue;
        };
        if let Some(href) = a.get_attribute("href").and_then(|h| with_range(&h, &range)) {
            let _ = a.set_attribute("href", &href);
        }
    }
}

/// The browser half of [`KeepForm`].
#[cfg(feature = "hydrate")]
mod keep_form {
    use crate::error::AppError;
    use leptos::wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{FormData, HtmlFormElement, RequestInit, Response, UrlSearchParams};

    /// Posts the form as the server function expects it; the error's message when it fails.
    pub async fn post(form: &HtmlFormElement) -> Result<(), String> {
        let unreachable = |_: JsValue| "cannot reach the Opsdeck server; try again".to_string();
        let data = FormData::new_with_form(form).map_err(unreachable)?;
        let body = UrlSearchParams::new_with_str_sequence_sequence(&data).map_err(unreachable)?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_body(&body);
        let headers = web_sys::Headers::new().map_err(unreachable)?;
        headers
            .set("Accept", "application/json")
            .map_err(unreachable)?;
        init.set_headers(&headers);
        // The attribute, not `form.action`: a field named `action` (as the incidents' forms
        // have) shadows that property.
        let url = form.get_attribute("action").unwrap_or_else(|| {
            leptos::prelude::window()
                .location()
                .href()
                .unwrap_or_default()
        });
        let res: Response =
            JsFuture::from(leptos::prelude::window().fetch_with_str_and_init(&url, &init))
                .await
                .map_err(unreachable)?
                .unchecked_into();
        if res.ok() {
            return Ok(());
        }
        let text = match res.text() {
            Ok(p) => JsFuture::from(p)
                .await
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        Err(match serde_json::from_str::<AppError>(&text) {
            Ok(e) => e.to_string(),
            Err(_) => format!("the server answered {} {}", res.status(), res.status_text()),
        })
    }

    /// Marks and focuses the field a message names first ("interval_seconds must be …"), and
    /// unmarks the others.
    pub fn mark_field(form: &HtmlFormElement, message: &str) {
        if let Ok(marked) = form.query_selector_all("[aria-invalid]") {
            for i in 0..marked.length() {
                if let Some(e) = marked
                    .item(i)
                    .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
                {
                    let _ = e.remove_attribute("aria-invalid");
                }
            }
        }
        let Some(name) = super::named_field(message) else {
            return;
        };
        if let Ok(Some(field)) =
            form.query_selector(&format!("[name=\"{name}\"]:not([type=hidden])"))
        {
            let _ = field.set_attribute("aria-invalid", "true");
            if let Ok(h) = field.dyn_into::<web_sys::HtmlElement>() {
                let _ = h.focus();
            }
        }
    }
}

/// The form field an error message starts with, if it looks like one (`interval_seconds must be
/// …` → `interval_seconds`).
pub fn named_field(message: &str) -> Option<&str> {
    let word = message.split([' ', ':', ',']).next()?;
    let ok = !word.is_empty()
        && word.len() <= 40
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        && !matches!(
            word,
            "a" | "an"
                | "the"
                | "this"
                | "that"
                | "no"
                | "not"
                | "cannot"
                | "only"
                | "there"
                | "it"
                | "you"
                | "your"
        );
    ok.then_some(word)
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

/// A resource's answer once it comes: `loading` meanwhile (the page before it while it
/// reloads), the error named if it failed, else what `ok` makes of it.
#[component]
pub fn Loaded<T, F, V>(
    data: Resource<Result<T, AppError>>,
    #[prop(default = "Loading…")] loading: &'static str,
    ok: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Transition fallback=move || view! { <p class="muted">{loading}</p> }>
            {move || {
                let ok = ok.clone();
                Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        Ok(d) => ok(d).into_any(),
                    }
                })
            }}
        </Transition>
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
        // A refused input: the message says what to change, with no alarm in front of it.
        AppError::BadRequest(_) | AppError::Unprocessable(_) | AppError::Conflict(_) => ("", None),
        _ => ("Something went wrong", None),
    };
    view! {
        <div class="notice error" role="alert" data-testid="error">
            {(!title.is_empty()).then(|| view! { <strong>{title}</strong>" " })}
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

/// The header of a page below another: its title (the tab's too) under the way back to
/// `parent` at `href`.
#[component]
pub fn SubPageHeader(
    href: &'static str,
    parent: &'static str,
    #[prop(into)] title: Signal<String>,
) -> impl IntoView {
    view! {
        <leptos_meta::Title text=move || title.get()/>
        <div class="page-header">
            <p class="muted"><A href=href>{parent}</A>" ›"</p>
            <h1>{move || title.get()}</h1>
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

/// The page's numeric `id` route parameter (0, which names nothing, when it is not a number).
pub fn id_param(map: leptos::prelude::Memo<leptos_router::params::ParamsMap>) -> i64 {
    param(map, "id")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0)
}

/// `2026-11-25 21:31:05 UTC+1`: the time in the zone times are shown in ([`crate::zone`]), with
/// that zone's offset after it.
pub fn fmt_time<T: Into<OffsetDateTime> + Copy>(t: &T) -> String {
    let t: OffsetDateTime = (*t).into();
    let offset = crate::zone::offset_at(t.unix_timestamp());
    fmt_time_at(t, offset)
}

/// [`fmt_time`] at a given offset (seconds east of UTC). Pure.
pub fn fmt_time_at(t: OffsetDateTime, offset: i64) -> String {
    let local = time::UtcOffset::from_whole_seconds(offset as i32)
        .map(|o| t.to_offset(o))
        .unwrap_or(t.to_offset(time::UtcOffset::UTC));
    let offset = i64::from(local.offset().whole_seconds());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        crate::zone::suffix(offset)
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
    fn links_to_time_pages_keep_the_range() {
        for (href, range, want) in [
            ("/logs", "6h", Some("/logs?range=6h")),
            ("/hosts/web-1", "7d", Some("/hosts/web-1?range=7d")),
            (
                "/services?host=web-1",
                "6h",
                Some("/services?host=web-1&range=6h"),
            ),
            (
                "/services/process/3",
                "15m",
                Some("/services/process/3?range=15m"),
            ),
            ("/hosts/web-1?range=1h", "6h", None),
            ("/hosts/web-1?from=1&to=2", "6h", None),
            ("/checks", "7d", Some("/checks?range=7d")),
            ("/capacity", "30d", Some("/capacity?range=30d")),
            ("/backups", "6h", None),
            ("/hostsfoo", "6h", None),
            ("/logs", "2y", None),
            ("/logs", "6h&x=1", None),
        ] {
            assert_eq!(with_range(href, range).as_deref(), want, "{href} {range}");
        }
    }

    #[test]
    fn an_error_names_its_field_when_it_starts_with_one() {
        for (message, field) in [
            ("name must be 1-64 letters", Some("name")),
            (
                "interval_seconds must be at least 5",
                Some("interval_seconds"),
            ),
            ("url: not an http(s) URL", Some("url")),
            ("a scrape target named api exists", None),
            ("the check does not exist", None),
            ("Something else", None),
            ("", None),
        ] {
            assert_eq!(named_field(message), field, "{message}");
        }
    }

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
    fn times_are_shown_in_the_viewers_zone_with_its_offset() {
        let t = time::macros::datetime!(2026-11-25 21:31:05 +01:00);
        // Outside a request (a background job): UTC.
        assert_eq!(fmt_time(&t), "2026-11-25 20:31:05 UTC");
        for (offset, want) in [
            (0, "2026-11-25 20:31:05 UTC"),
            (3600, "2026-11-25 21:31:05 UTC+1"),
            (5 * 3600 + 1800, "2026-11-26 02:01:05 UTC+5:30"),
            (-10 * 3600, "2026-11-25 10:31:05 UTC-10"),
        ] {
            assert_eq!(fmt_time_at(t, offset), want);
        }
    }
}
