//! The Logs page: a search with the query language over a time range (or a window zoomed into
//! from the timeline) and service; the matches over time on a true time axis; the matching
//! lines, newest first with keyset pages, each expandable to all its fields; then, for the same
//! lines, the analytics (errors, error rate, errors and requests per hour, top errors, response
//! times, status classes, top paths and IPs, suspicious IPs, slow requests), whose rows add
//! their filter to the query. `/` focuses the search box.

use super::{
    get_logs_page, list_log_sources, timeline, AddLogSource, DeleteLogSource, EditLogSource, Facet,
    LogLine, LogStats, PauseLogSource,
};
use crate::components::{
    action_error, fmt_time, param, pause_toggle, urlencode, Choice, Confirm, EditBox, EmptyState,
    ErrorNotice, KeepForm, PageHeader, PostButton,
};
use crate::metrics::AutoRefresh;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_query_map;

/// Seconds as milliseconds: every duration on the page in one unit.
fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0} ms", v * 1000.0))
        .unwrap_or_else(|| "–".into())
}

/// The query with `term` added (the links of facets, analytics rows and charts).
fn with_term(q: &str, term: &str) -> String {
    if q.trim().is_empty() {
        term.to_string()
    } else {
        format!("{} {term}", q.trim())
    }
}

/// A query term for a top error: its text up to the first placeholder (`<n>`, `<id>`…), as a
/// phrase; none when that leaves nothing to search for.
fn error_term(message: &str) -> Option<String> {
    let head = message.split('<').next().unwrap_or("").trim();
    (head.len() >= 3 && !head.contains('"')).then(|| format!("\"{head}\""))
}

#[component]
pub fn LogsPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| param(query, k).filter(|s| !s.is_empty());
    let data = Resource::new(
        move || {
            (
                get("q"),
                get("service"),
                get("range"),
                get("from"),
                get("to"),
                get("cursor"),
            )
        },
        |(q, s, r, f, t, c)| get_logs_page(q, s, r, f, t, c),
    );
    let live = move || get("live").is_some() && get("from").is_none() && get("cursor").is_none();
    let q_now = move || get("q").unwrap_or_default();
    // A window (after a click on a bar) unless a relative range was picked since.
    let window = move || match (get("from"), get("range").as_deref()) {
        (Some(f), None | Some("custom")) => Some((f, get("to").unwrap_or_default())),
        _ => None,
    };
    let range_now = move || match window() {
        Some(_) => "custom".to_string(),
        None => get("range")
            .filter(|r| r != "custom")
            .unwrap_or_else(|| "24h".into()),
    };
    // Links keep the service (and the query, the range or window, unless they change it).
    let link = move |q: Option<String>, when: Option<(i64, i64)>| {
        let mut p = vec![];
        if let Some(s) = get("service") {
            p.push(format!("service={}", urlencode(&s)));
        }
        if let Some(q) = q.filter(|q| !q.is_empty()) {
            p.push(format!("q={}", urlencode(&q)));
        }
        match (when, window()) {
            (Some((f, t)), _) => p.push(format!("from={f}&to={t}")),
            (None, Some((f, t))) => p.push(format!("from={}&to={}", urlencode(&f), urlencode(&t))),
            (None, None) => p.push(format!("range={}", range_now())),
        }
        format!("/logs?{}", p.join("&"))
    };
    view! {
        <PageHeader title="Logs" subtitle="Application and nginx logs: search and analytics. Press / to search."/>
        <SlashFocus target="log-q".to_string()/>
        <Transition fallback=|| view! { <p class="muted">"Searching…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! {
                        <SearchForm q=q_now() range=range_now() window=window() service=get("service") services=vec![] error=None/>
                        <ErrorNotice error=e/>
                    }.into_any(),
                    Ok(d) => {
                        let services = d.services.clone();
                        let next = d.search.next_cursor.clone().map(|c| {
                            let mut params = vec![format!("cursor={c}")];
                            for k in ["q", "service", "range", "from", "to"] {
                                if let Some(v) = get(k) {
                                    params.push(format!("{k}={}", urlencode(&v)));
                                }
                            }
                            format!("/logs?{}", params.join("&"))
                        });
                        let empty = d.search.lines.is_empty();
                        let nothing_stored = services.is_empty();
                        let add = move |term: &str| link(Some(with_term(&q_now(), term)), None);
                        let zoom = move |f: i64, t: i64| link(get("q"), Some((f, t)));
                        let (from, to) = (
                            time::OffsetDateTime::from(d.search.from).unix_timestamp(),
                            time::OffsetDateTime::from(d.search.to).unix_timestamp(),
                        );
                        let zoom_out = window().map(|_| {
                            let span = (to - from).max(60);
                            let now = time::OffsetDateTime::now_utc().unix_timestamp();
                            let t = (to + span / 2).min(now);
                            link(get("q"), Some((t - 2 * span, t)))
                        });
                        let live_href = {
                            let mut p = vec![];
                            if let Some(s) = get("service") { p.push(format!("service={}", urlencode(&s))); }
                            if let Some(q) = get("q") { p.push(format!("q={}", urlencode(&q))); }
                            let r = if window().is_some() { "24h".to_string() } else { range_now() };
                            p.push(format!("range={r}"));
                            if !live() { p.push("live=1".into()); }
                            format!("/logs?{}", p.join("&"))
                        };
                        let range_label = format!("{} – {}", fmt_time(&d.search.from), fmt_time(&d.search.to));
                        let older = d.newest_before.map(|end| {
                            let end_s = time::OffsetDateTime::from(end).unix_timestamp();
                            (fmt_time(&end), zoom(end_s - (to - from).max(3600), end_s))
                        });
                        let timeline = (!d.histogram.is_empty() || d.stats.is_some())
                            .then(|| timeline::layout(from, to, d.histogram_step, &d.histogram, crate::zone::offset_at(from)));
                        view! {
                            <SearchForm q=q_now() range=range_now() window=window() service=get("service") services=services error=d.query_error.clone()/>
                            <p class="muted small row" data-testid="log-range">
                                <span>{range_label}</span>
                                {zoom_out.map(|href| view! { <a class="btn small" href=href data-testid="zoom-out">"Zoom out"</a> })}
                                {window().map(|_| view! { <a class="btn small" href=link(get("q"), None).replace("range=custom", "range=24h")>"Last 24 h"</a> })}
                                <a class=if live() { "btn small active" } else { "btn small" } href=live_href data-testid="live-tail">
                                    {if live() { "Live: on (every 5 s)" } else { "Live tail" }}
                                </a>
                            </p>
                            {live().then(|| view! { <AutoRefresh seconds=5/> })}
                            {timeline.map(|t| view! {
                                <div class="card histogram" data-testid="log-histogram">
                                    <TimeBars timeline=t label="Matching lines" href=zoom/>
                                </div>
                            })}
                            {(!d.facets.is_empty()).then(|| view! { <Facets facets=d.facets.clone() href=add/> })}
                            {if d.query_error.is_some() {
                                ().into_any()
                            } else if nothing_stored && empty {
                                view! { <EmptyState title="No logs yet">
                                    "Send lines with POST /api/v1/ingest/logs (NDJSON, an ingest token) or import files with "
                                    <code>"opsdeck logs import FILE --format json|nginx|text --service NAME"</code>"."
                                </EmptyState> }.into_any()
                            } else if empty {
                                view! {
                                    <p class="muted" data-testid="no-matches">
                                        "No line matches in this range."
                                        {older.map(|(when, href)| view! {
                                            " The newest lines before it are from up to "{when}". "
                                            <a href=href data-testid="newest-before">"Show them"</a>
                                        })}
                                    </p>
                                }.into_any()
                            } else {
                                view! { <LogTable lines=d.search.lines/> }.into_any()
                            }}
                            {next.map(|href| view! { <p><a class="btn" href=href data-testid="older">"Older lines →"</a></p> })}
                            {d.new_errors.filter(|n| !n.is_empty()).map(|n| {
                                let rows = n.into_iter().map(|e| {
                                    let href = error_term(&e.message).map(|t| add(&t));
                                    (format!("{} ({})", e.message, e.service), e.count, href)
                                }).collect::<Vec<_>>();
                                view! {
                                    <section class="cards">
                                        <TopList title="New errors: not once in the 7 days before" testid="new-errors" rows=rows/>
                                    </section>
                                }
                            })}
                            {d.stats.map(|s| view! {
                                <details class="analytics" open data-testid="log-analytics">
                                    <summary class="section-title">"Analytics of these lines"</summary>
                                    <Analytics stats=s href=add zoom=zoom/>
                                </details>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// `/` puts the cursor in the field `#{target}` (unless one is typing in a field already): an
/// island, the page's one piece of script for it.
#[island]
fn SlashFocus(target: String) -> impl IntoView {
    Effect::new(move |_| {
        use leptos::wasm_bindgen::JsCast;
        let target = target.clone();
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() != "/" || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let doc = document();
            let typing = doc.active_element().is_some_and(|e| {
                matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                    || e.has_attribute("contenteditable")
            });
            if typing {
                return;
            }
            if let Some(input) = doc
                .get_element_by_id(&target)
                .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
            {
                ev.prevent_default();
                let _ = input.focus();
            }
        });
        on_cleanup(move || handle.remove());
    });
}

/// Counts over time as bars on a true time axis: every bucket at its place (empty ones as a
/// hairline), round tick times below, a bar's title giving its time and count; a bar links to
/// `href(from, to)` (zoom in) when given.
#[component]
fn TimeBars(
    timeline: timeline::Timeline,
    label: &'static str,
    #[prop(optional)] class: &'static str,
    href: impl Fn(i64, i64) -> String + 'static,
) -> impl IntoView {
    let max = timeline.max.max(1) as f64;
    view! {
        <div class=format!("timebars {class}")>
            <div class="timebars-head"><span>{label}</span><span>{format!("max {} per bar", timeline.max)}</span></div>
            <svg viewBox=format!("0 0 {} 80", timeline::WIDTH) preserveAspectRatio="none" role="img" aria-label=label>
                {timeline.ticks.iter().map(|t| view! {
                    <line class="grid" x1=format!("{:.2}", t.x) x2=format!("{:.2}", t.x) y1="0" y2="80"/>
                }).collect_view()}
                {timeline.bars.into_iter().map(|b| {
                    let h = if b.count == 0 { 1.0 } else { (b.count as f64 / max * 76.0).max(2.0) };
                    let when = time::OffsetDateTime::from_unix_timestamp(b.from).map(|t| fmt_time(&t)).unwrap_or_default();
                    view! {
                        <a href=href(b.from, b.to)>
                            <rect class=if b.count == 0 { "empty" } else { "" } x=format!("{:.2}", b.x) y=format!("{:.2}", 80.0 - h) width=format!("{:.2}", (b.width - 0.6).max(0.4)) height=format!("{h:.2}")>
                                <title>{format!("{when}: {}", b.count)}</title>
                            </rect>
                        </a>
                    }
                }).collect_view()}
            </svg>
            <div class="ticks" aria-hidden="true">
                {timeline.ticks.into_iter().map(|t| view! {
                    <span class="tick" style=format!("left: {:.2}%", t.x / timeline::WIDTH * 100.0)>{t.label}</span>
                }).collect_view()}
            </div>
        </div>
    }
}

#[component]
fn Facets(facets: Vec<Facet>, href: impl Fn(&str) -> String + 'static) -> impl IntoView {
    let groups = ["service", "level", "status"];
    view! {
        <section class="facets" data-testid="log-facets">
            {groups.into_iter().map(|g| {
                let items: Vec<&Facet> = facets.iter().filter(|f| f.kind == g).collect();
                view! {
                    <div class="facet">
                        <span class="muted small">{g}</span>
                        {items.into_iter().map(|f| {
                            let term = format!("{}:{}", f.kind, f.value);
                            view! { <a class="chip" href=href(&term)>{format!("{} {}", f.value, f.count)}</a> }
                        }).collect_view()}
                    </div>
                }
            }).collect_view()}
        </section>
    }
}

#[component]
fn SearchForm(
    q: String,
    range: String,
    window: Option<(String, String)>,
    service: Option<String>,
    services: Vec<String>,
    error: Option<String>,
) -> impl IntoView {
    let custom = window.is_some();
    view! {
        <form method="get" action="/logs" class="card search-form" data-testid="log-search">
            <input type="search" id="log-q" name="q" value=q placeholder="words, \"phrases\", level:error, status:>=500, path:/api/*, ip:10.0.0.7, -word" aria-label="Query"
                aria-invalid=error.is_some().then_some("true") aria-describedby=error.is_some().then_some("log-q-error")/>
            <select name="service" aria-label="Service">
                <option value="">"all services"</option>
                {services.into_iter().map(|s| {
                    let sel = service.as_deref() == Some(s.as_str());
                    view! { <option value=s.clone() selected=sel>{s.clone()}</option> }
                }).collect_view()}
            </select>
            <select name="range" aria-label="Range">
                {custom.then(|| view! { <option value="custom" selected>"this window"</option> })}
                {crate::metrics::RANGES.into_iter().map(|(r, _)| view! { <option value=r selected=r == range>{format!("last {r}")}</option> }).collect_view()}
            </select>
            {window.map(|(f, t)| view! {
                <input type="hidden" name="from" value=f/>
                <input type="hidden" name="to" value=t/>
            })}
            <button type="submit" class="btn primary">"Search"</button>
            {error.map(|e| view! { <p class="field-error" id="log-q-error" role="alert" data-testid="error">{e}</p> })}
        </form>
    }
}

#[component]
fn Analytics(
    stats: LogStats,
    href: impl Fn(&str) -> String + Clone + 'static,
    zoom: impl Fn(i64, i64) -> String + Clone + 'static,
) -> impl IntoView {
    let s = stats;
    let rate = format!("{:.2} %", s.error_rate * 100.0);
    let rate_class = if s.error_rate > 0.05 {
        "tile-value bad"
    } else {
        "tile-value"
    };
    let slow_class = if s.slow_count > 0 {
        "tile-value bad"
    } else {
        "tile-value"
    };
    let (from, to) = (
        time::OffsetDateTime::from(s.from).unix_timestamp(),
        time::OffsetDateTime::from(s.to).unix_timestamp(),
    );
    let hourly = |rows: &[super::HourCount]| {
        let counts: Vec<(i64, i64)> = rows
            .iter()
            .map(|h| (time::OffsetDateTime::from(h.hour).unix_timestamp(), h.count))
            .collect();
        timeline::layout(from, to, 3600, &counts, crate::zone::offset_at(from))
    };
    let (errors, requests) = (hourly(&s.errors_per_hour), hourly(&s.requests_per_hour));
    let link = |term: Option<String>| term.map(|t| href(&t));
    let top_errors = s
        .top_errors
        .iter()
        .map(|e| (e.message.clone(), e.count, link(error_term(&e.message))))
        .collect();
    let classes = s
        .status_classes
        .iter()
        .map(|c| {
            (
                c.class.clone(),
                c.count,
                link(Some(format!("status:{}", c.class))),
            )
        })
        .collect();
    let paths = s
        .top_paths
        .iter()
        .map(|p| {
            (
                p.path.clone(),
                p.count,
                link((!p.path.contains(' ')).then(|| format!("path:{}", p.path))),
            )
        })
        .collect();
    let ips = s
        .top_ips
        .iter()
        .map(|p| (p.ip.clone(), p.count, link(Some(format!("ip:{}", p.ip)))))
        .collect();
    let suspicious = s
        .suspicious_ips
        .iter()
        .map(|p| (p.ip.clone(), p.posts, link(Some(format!("ip:{}", p.ip)))))
        .collect();
    let agents = s
        .top_user_agents
        .iter()
        .map(|p| (p.user_agent.clone(), p.count, None))
        .collect();
    let slow = s
        .slow_requests
        .iter()
        .map(|r| {
            (
                format!(
                    "{} {} {}",
                    fmt_time(&r.ts),
                    r.url.clone().unwrap_or_default(),
                    r.service
                ),
                (r.duration * 1000.0).round() as i64,
                None,
            )
        })
        .collect();
    view! {
        <section class="tiles" data-testid="log-stats">
            <div class="card tile"><div class="tile-label">"Lines"</div><div class="tile-value" data-testid="stat-total">{s.total}</div></div>
            <div class="card tile"><div class="tile-label">"Errors"</div><div class="tile-value" data-testid="stat-errors">{s.errors}</div></div>
            <div class="card tile"><div class="tile-label">"Error rate"</div><div class=rate_class data-testid="stat-error-rate">{rate}</div></div>
            <div class="card tile"><div class="tile-label">"Requests"</div><div class="tile-value" data-testid="stat-requests">{s.requests}</div></div>
            <div class="card tile"><div class="tile-label">{format!("Slower than {} ms", s.slow_threshold_seconds * 1000.0)}</div><div class=slow_class data-testid="stat-slow">{s.slow_count}</div></div>
            <div class="card tile"><div class="tile-label">"Response p50 / p95 / p99"</div><div class="tile-value small" data-testid="stat-latency">{format!("{} / {} / {}", ms(s.response_time.p50), ms(s.response_time.p95), ms(s.response_time.p99))}</div></div>
        </section>
        <section class="cards two">
            <div class="card" data-testid="errors-per-hour">
                <TimeBars timeline=errors label="Errors per hour" class="bad" href=zoom.clone()/>
            </div>
            <div class="card" data-testid="requests-per-hour">
                <TimeBars timeline=requests label="Requests per hour" href=zoom/>
            </div>
        </section>
        <section class="cards">
            <TopList title="Top errors" testid="top-errors" rows=top_errors/>
            <TopList title="Status classes" testid="status-classes" rows=classes/>
            <TopList title="Top paths" testid="top-paths" rows=paths/>
            <TopList title="Top client IPs" testid="top-ips" rows=ips/>
            <TopList title=format!("Suspicious IPs (> {} POSTs to /api/)", s.suspicious_post_threshold) testid="suspicious-ips" rows=suspicious/>
            <TopList title="Top user agents" testid="top-agents" rows=agents/>
            <TopList title=format!("Slowest requests ({} in all slower than {} ms)", s.slow_count, s.slow_threshold_seconds * 1000.0) testid="slow-requests"
                rows=slow unit="ms"/>
        </section>
    }
}

/// A top list; a row with a link adds its filter to the query.
#[component]
fn TopList(
    #[prop(into)] title: String,
    testid: &'static str,
    rows: Vec<(String, i64, Option<String>)>,
    #[prop(optional)] unit: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class="card" data-testid=testid>
            <h2 class="section-title">{title}</h2>
            {if rows.is_empty() {
                view! { <p class="muted small">"None in this range."</p> }.into_any()
            } else {
                view! {
                    <table class="table compact"><tbody>
                        {rows.into_iter().map(|(k, n, href)| view! {
                            <tr>
                                <td class="wrap">{match href {
                                    Some(h) => view! { <a href=h title="Add to the query">{k}</a> }.into_any(),
                                    None => k.into_any(),
                                }}</td>
                                <td class="num">{format!("{n}{}", unit.map(|u| format!(" {u}")).unwrap_or_default())}</td>
                            </tr>
                        }).collect_view()}
                    </tbody></table>
                }.into_any()
            }}
        </div>
    }
}

#[component]
fn LogTable(lines: Vec<LogLine>) -> impl IntoView {
    view! {
        <div class="card log-lines" data-testid="log-lines">
            {lines.into_iter().map(|l| {
                let level = l.level.clone().unwrap_or_else(|| "–".into());
                let class = format!("level level-{level}");
                let fields = serde_json::to_string_pretty(&l.fields).unwrap_or_default();
                // Requests (nginx, or an app line with a status): status and time in the row.
                let status = l.fields.get("status").and_then(|v| v.as_i64()).map(|s| {
                    let class = match s {
                        500.. => "status bad",
                        400..=499 => "status warn",
                        _ => "status",
                    };
                    (s, class)
                });
                let took = l.fields.get("duration").and_then(|v| v.as_f64());
                view! {
                    <details class="log-line" data-testid="log-line">
                        <summary>
                            <span class="mono muted">{fmt_time(&l.ts)}</span>" "
                            <span class=class>{level.clone()}</span>" "
                            <span class="muted">{l.service.clone()}</span>" "
                            {status.map(|(s, class)| view! { <span class=class data-testid="line-status">{s}</span>" " })}
                            {took.map(|d| view! { <span class="muted mono" data-testid="line-duration">{ms(Some(d))}</span>" " })}
                            <span class="msg">{l.message.lines().next().unwrap_or("").to_string()}</span>
                        </summary>
                        {l.parse_error.clone().map(|e| view! { <p class="notice error small">{format!("Not parsed: {e}")}</p> })}
                        <pre class="log">{l.message.clone()}</pre>
                        <pre class="log">{fields}</pre>
                    </details>
                }
            }).collect_view()}
        </div>
    }
}

/// The formats a source can be read in, as its form offers them.
const SOURCE_FORMATS: &[(&str, &str)] = &[
    ("json", "JSON lines"),
    ("nginx", "nginx / Apache combined"),
    ("text", "plain text"),
];

#[component]
pub fn LogSourcesPage() -> impl IntoView {
    let add = ServerAction::<AddLogSource>::new();
    let del = ServerAction::<DeleteLogSource>::new();
    // Read back their errors when the page posts without script (`?__err=`).
    let (pause, edit) = (
        ServerAction::<PauseLogSource>::new(),
        ServerAction::<EditLogSource>::new(),
    );
    let sources = Resource::new(
        move || (add.version().get(), del.version().get()),
        |_| list_log_sources(),
    );
    view! {
        <PageHeader title="Log sources" subtitle="Files Opsdeck follows: appended lines are stored as they come, across rotations and restarts."/>
        <crate::auth::AdminTabs/>
        {action_error(move || add.value().get())}
        {action_error(move || del.value().get())}
        {action_error(move || pause.value().get())}
        {action_error(move || edit.value().get())}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match sources.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No log sources">"Add a file below, or list them as [[log_sources]] in the configuration file."</EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap"><table class="table" data-testid="log-sources">
                            <thead><tr><th>"Path"</th><th>"Format"</th><th>"Service"</th><th>"Followed by"</th><th class="num">"Position"</th><th class="num">"Lines"</th><th class="num">"Lines/s"</th><th>"Last line"</th><th>"Last error"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|s| view! {
                                    <tr>
                                        <td class="mono wrap">{s.path.clone()}</td>
                                        <td>{s.format.clone()}</td>
                                        <td>{s.service.clone()}{s.paused.then(|| view! { " "<span class="badge muted" data-testid="paused">"paused"</span> })}</td>
                                        <td>{s.tailer.clone().unwrap_or_else(|| "not yet".into())}</td>
                                        <td class="num">{format!("{} B", s.position)}</td>
                                        <td class="num">{s.lines}</td>
                                        <td class="num">{format!("{:.1}", s.lines_per_sec)}</td>
                                        <td>{s.last_line_at.as_ref().map(fmt_time).unwrap_or_else(|| "–".into())}</td>
                                        <td class=if s.last_error.is_some() { "bad wrap" } else { "wrap" }>{s.last_error.clone().unwrap_or_else(|| "–".into())}</td>
                                        <td><div class="row-actions">
                                            <EditBox url=EditLogSource::url() fields=vec![("id", s.id.to_string())] testid="source-edit">
                                                <label>"Path" <input type="text" name="path" required value=s.path.clone()/></label>
                                                <label>"Format" <Choice name="format" options=SOURCE_FORMATS selected=s.format.clone()/></label>
                                                <label>"Service" <input type="text" name="service" required value=s.service.clone()/></label>
                                            </EditBox>
                                                <PostButton url=PauseLogSource::url() fields=vec![("id", s.id.to_string()), ("action", pause_toggle(s.paused).0.into())] label=pause_toggle(s.paused).1/>
                                                <Confirm label="Stop following" question="Stop following this file? Its stored lines stay.">
                                                    <PostButton url=DeleteLogSource::url() fields=vec![("id", s.id.to_string())] label="Yes, stop" danger=true/>
                                                </Confirm>
                                        </div></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                }
            })}
        </Transition>
        <section class="card">
            <h2>"Follow a file"</h2>
            <KeepForm>
            <ActionForm action=add attr:class="form-grid" attr:data-testid="add-log-source">
                <label>"Path (a * in the file name follows every match)" <input type="text" name="path" required placeholder="/var/log/nginx/access.log"/></label>
                <label>"Format" <Choice name="format" options=SOURCE_FORMATS selected="json"/></label>
                <label>"Service" <input type="text" name="service" required pattern="[A-Za-z0-9._\\-]+" placeholder="api"/></label>
                <button type="submit" class="btn primary">"Follow"</button>
            </ActionForm>
            </KeepForm>
        </section>
    }
}
