//! The Logs page: a search with the query language over a time range and service, newest first
//! with keyset pages, each line expandable to all its fields; above it, the analytics for the
//! same range (errors, error rate, top errors, response times, status classes, top paths and IPs,
//! suspicious IPs, slow requests).

use super::{
    get_logs_page, list_log_sources, AddLogSource, DeleteLogSource, Facet, LogLine, LogStats,
};
use crate::components::{action_error, fmt_time, param, EmptyState, ErrorNotice, PageHeader};
use crate::metrics::AutoRefresh;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

const RANGES: [&str; 6] = ["1h", "6h", "24h", "7d", "30d", "90d"];

fn secs(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3} s")).unwrap_or_else(|| "–".into())
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
    let range_now = move || get("range").unwrap_or_else(|| "24h".into());
    view! {
        <PageHeader title="Logs" subtitle="Application and nginx logs: search and analytics."/>
        <Transition fallback=|| view! { <p class="muted">"Searching…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! {
                        <SearchForm q=q_now() range=range_now() service=get("service") services=vec![]/>
                        <ErrorNotice error=e/>
                    }.into_any(),
                    Ok(d) => {
                        let services = d.services.clone();
                        let next = d.search.next_cursor.clone().map(|c| {
                            let mut params = vec![format!("cursor={c}")];
                            for k in ["q", "service", "range"] {
                                if let Some(v) = get(k) {
                                    params.push(format!("{k}={}", urlencode(&v)));
                                }
                            }
                            format!("/logs?{}", params.join("&"))
                        });
                        let empty = d.search.lines.is_empty();
                        let nothing_stored = services.is_empty();
                        // Links keep the query and service and change one thing.
                        let base = {
                            let mut p = vec![];
                            if let Some(s) = get("service") { p.push(format!("service={}", urlencode(&s))); }
                            p
                        };
                        let q_base = q_now();
                        let facet_href = {
                            let base = base.clone();
                            let range = range_now();
                            move |term: &str| {
                                let q = if q_base.is_empty() { term.to_string() } else { format!("{q_base} {term}") };
                                let mut p = base.clone();
                                p.push(format!("q={}", urlencode(&q)));
                                p.push(format!("range={range}"));
                                format!("/logs?{}", p.join("&"))
                            }
                        };
                        let zoom_href = {
                            let mut p = base.clone();
                            if let Some(q) = get("q") { p.push(format!("q={}", urlencode(&q))); }
                            move |from: i64, to: i64| format!("/logs?{}&from={from}&to={to}", p.join("&"))
                        };
                        let live_href = {
                            let mut p = base.clone();
                            if let Some(q) = get("q") { p.push(format!("q={}", urlencode(&q))); }
                            p.push(format!("range={}", range_now()));
                            if !live() { p.push("live=1".into()); }
                            format!("/logs?{}", p.join("&"))
                        };
                        let range_label = format!("{} – {}", fmt_time(&d.search.from), fmt_time(&d.search.to));
                        view! {
                            <SearchForm q=q_now() range=range_now() service=get("service") services=services/>
                            <p class="muted small row" data-testid="log-range">
                                <span>{range_label}</span>
                                <a class=if live() { "btn small active" } else { "btn small" } href=live_href data-testid="live-tail">
                                    {if live() { "Live: on (every 5 s)" } else { "Live tail" }}
                                </a>
                            </p>
                            {live().then(|| view! { <AutoRefresh seconds=5/> })}
                            {(!d.histogram.is_empty()).then(|| view! { <Histogram bars=d.histogram.clone() step=d.histogram_step zoom=zoom_href/> })}
                            {(!d.facets.is_empty()).then(|| view! { <Facets facets=d.facets.clone() href=facet_href/> })}
                            {d.stats.map(|s| view! { <Analytics stats=s/> })}
                            {if nothing_stored && empty {
                                view! { <EmptyState title="No logs yet">
                                    "Send lines with POST /api/v1/ingest/logs (NDJSON, an ingest token) or import files with "
                                    <code>"opsdeck logs import FILE --format json|nginx|text --service NAME"</code>"."
                                </EmptyState> }.into_any()
                            } else if empty {
                                view! { <p class="muted" data-testid="no-matches">"No line matches in this range."</p> }.into_any()
                            } else {
                                view! { <LogTable lines=d.search.lines/> }.into_any()
                            }}
                            {next.map(|href| view! { <p><a class="btn" href=href data-testid="older">"Older lines →"</a></p> })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// Matches over time; a bar links to its own time range (zoom in).
#[component]
fn Histogram(
    bars: Vec<(i64, i64)>,
    step: i64,
    zoom: impl Fn(i64, i64) -> String + 'static,
) -> impl IntoView {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let n = bars.len().max(1) as f64;
    let w = 1000.0 / n;
    view! {
        <div class="card histogram" data-testid="log-histogram">
            <svg viewBox="0 0 1000 80" preserveAspectRatio="none" role="img" aria-label="Matches over time">
                {bars.into_iter().enumerate().map(|(i, (t, c))| {
                    let h = (c as f64 / max * 76.0).max(1.0);
                    let when = time::OffsetDateTime::from_unix_timestamp(t).map(|t| fmt_time(&t)).unwrap_or_default();
                    view! {
                        <a href=zoom(t, t + step)>
                            <rect x=format!("{:.2}", i as f64 * w + 0.5) y=format!("{:.2}", 80.0 - h) width=format!("{:.2}", (w - 1.0).max(0.5)) height=format!("{h:.2}")>
                                <title>{format!("{when}: {c}")}</title>
                            </rect>
                        </a>
                    }
                }).collect_view()}
            </svg>
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

fn urlencode(s: &str) -> String {
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

#[component]
fn SearchForm(
    q: String,
    range: String,
    service: Option<String>,
    services: Vec<String>,
) -> impl IntoView {
    view! {
        <form method="get" action="/logs" class="card search-form" data-testid="log-search">
            <input type="search" name="q" value=q placeholder="words, \"phrases\", level:error, status:>=500, path:/api/*, ip:10.0.0.7, -word" aria-label="Query"/>
            <select name="service" aria-label="Service">
                <option value="">"all services"</option>
                {services.into_iter().map(|s| {
                    let sel = service.as_deref() == Some(s.as_str());
                    view! { <option value=s.clone() selected=sel>{s.clone()}</option> }
                }).collect_view()}
            </select>
            <select name="range" aria-label="Range">
                {RANGES.into_iter().map(|r| view! { <option value=r selected=r == range>{format!("last {r}")}</option> }).collect_view()}
            </select>
            <button type="submit" class="btn primary">"Search"</button>
        </form>
    }
}

#[component]
fn Analytics(stats: LogStats) -> impl IntoView {
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
    view! {
        <section class="tiles" data-testid="log-stats">
            <div class="card tile"><div class="tile-label">"Lines"</div><div class="tile-value" data-testid="stat-total">{s.total}</div></div>
            <div class="card tile"><div class="tile-label">"Errors"</div><div class="tile-value" data-testid="stat-errors">{s.errors}</div></div>
            <div class="card tile"><div class="tile-label">"Error rate"</div><div class=rate_class data-testid="stat-error-rate">{rate}</div></div>
            <div class="card tile"><div class="tile-label">"Requests"</div><div class="tile-value">{s.requests}</div></div>
            <div class="card tile"><div class="tile-label">{format!("Slower than {} s", s.slow_threshold_seconds)}</div><div class=slow_class data-testid="stat-slow">{s.slow_count}</div></div>
            <div class="card tile"><div class="tile-label">"Response p50 / p95 / p99"</div><div class="tile-value small" data-testid="stat-latency">{format!("{} / {} / {}", secs(s.response_time.p50), secs(s.response_time.p95), secs(s.response_time.p99))}</div></div>
        </section>
        <section class="cards">
            <TopList title="Top errors" testid="top-errors" rows=s.top_errors.iter().map(|e| (e.message.clone(), e.count)).collect()/>
            <TopList title="Status classes" testid="status-classes" rows=s.status_classes.iter().map(|c| (c.class.clone(), c.count)).collect()/>
            <TopList title="Top paths" testid="top-paths" rows=s.top_paths.iter().map(|p| (p.path.clone(), p.count)).collect()/>
            <TopList title="Top client IPs" testid="top-ips" rows=s.top_ips.iter().map(|p| (p.ip.clone(), p.count)).collect()/>
            <TopList title=format!("Suspicious IPs (> {} POSTs to /api/)", s.suspicious_post_threshold) testid="suspicious-ips" rows=s.suspicious_ips.iter().map(|p| (p.ip.clone(), p.posts)).collect()/>
            <TopList title="Top user agents" testid="top-agents" rows=s.top_user_agents.iter().map(|p| (p.user_agent.clone(), p.count)).collect()/>
            <TopList title="Errors per hour" testid="errors-per-hour" rows=s.errors_per_hour.iter().map(|h| (fmt_time(&h.hour), h.count)).collect()/>
            <TopList title=format!("Slowest requests ({} in all slower than {} s)", s.slow_count, s.slow_threshold_seconds) testid="slow-requests"
                rows=s.slow_requests.iter().map(|r| (format!("{} {} {}", fmt_time(&r.ts), r.url.clone().unwrap_or_default(), r.service), (r.duration * 1000.0).round() as i64)).collect()
                unit="ms"/>
        </section>
    }
}

#[component]
fn TopList(
    #[prop(into)] title: String,
    testid: &'static str,
    rows: Vec<(String, i64)>,
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
                        {rows.into_iter().map(|(k, n)| view! {
                            <tr><td class="wrap">{k}</td><td class="num">{format!("{n}{}", unit.map(|u| format!(" {u}")).unwrap_or_default())}</td></tr>
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
                view! {
                    <details class="log-line" data-testid="log-line">
                        <summary>
                            <span class="mono muted">{fmt_time(&l.ts)}</span>" "
                            <span class=class>{level.clone()}</span>" "
                            <span class="muted">{l.service.clone()}</span>" "
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

/// Admin › Log sources: the files followed, with each one's position, rate and last error.
#[component]
pub fn LogSourcesPage() -> impl IntoView {
    let add = ServerAction::<AddLogSource>::new();
    let del = ServerAction::<DeleteLogSource>::new();
    let sources = Resource::new(
        move || (add.version().get(), del.version().get()),
        |_| list_log_sources(),
    );
    view! {
        <PageHeader title="Log sources" subtitle="Files Opsdeck follows: appended lines are stored as they come, across rotations and restarts."/>
        <crate::auth::AdminTabs/>
        {action_error(move || add.value().get())}
        {action_error(move || del.value().get())}
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
                                        <td>{s.service.clone()}</td>
                                        <td>{s.tailer.clone().unwrap_or_else(|| "not yet".into())}</td>
                                        <td class="num">{format!("{} B", s.position)}</td>
                                        <td class="num">{s.lines}</td>
                                        <td class="num">{format!("{:.1}", s.lines_per_sec)}</td>
                                        <td>{s.last_line_at.as_ref().map(fmt_time).unwrap_or_else(|| "–".into())}</td>
                                        <td class=if s.last_error.is_some() { "bad wrap" } else { "wrap" }>{s.last_error.clone().unwrap_or_else(|| "–".into())}</td>
                                        <td>
                                            <ActionForm action=del attr:class="inline">
                                                <input type="hidden" name="id" value=s.id/>
                                                <button type="submit" class="btn small">"Stop following"</button>
                                            </ActionForm>
                                        </td>
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
            <ActionForm action=add attr:class="form-grid" attr:data-testid="add-log-source">
                <label>"Path (a * in the file name follows every match)" <input type="text" name="path" required placeholder="/var/log/nginx/access.log"/></label>
                <label>"Format" <select name="format"><option value="json">"JSON lines"</option><option value="nginx">"nginx / Apache combined"</option><option value="text">"plain text"</option></select></label>
                <label>"Service" <input type="text" name="service" required pattern="[A-Za-z0-9._\\-]+" placeholder="api"/></label>
                <button type="submit" class="btn primary">"Follow"</button>
            </ActionForm>
        </section>
    }
}
