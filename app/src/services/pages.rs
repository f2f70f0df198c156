//! The Services page (watched processes and scrape targets with their state and 24-hour
//! sparklines) and the detail pages of a process and a target.

use super::{
    get_service_detail, get_services_page, AddProcess, AddTarget, ChangeService, EditService,
    Liveness, ProcessInfo, Sparks, TargetInfo,
};
use crate::components::{
    action_error, ago, fmt_time, id_param, param, pause_toggle, AddBox, EditBox, EmptyState,
    Loaded, PageHeader, RowActions,
};
use crate::metrics::pages::{sparkline, zoom_out_link, ChartView, RangeNav, WindowQuery};
use crate::metrics::{AutoRefresh, Unit};
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

/// Values scaled to 0–100 of their own maximum, for a sparkline of any unit.
fn scaled(values: &[f64]) -> Vec<f64> {
    let max = values.iter().copied().fold(0.0, f64::max);
    if max <= 0.0 {
        return values.iter().map(|_| 0.0).collect();
    }
    values.iter().map(|v| v / max * 100.0).collect()
}

fn badge(state: &Liveness) -> impl IntoView {
    let class = match state {
        Liveness::Up => "badge ok",
        Liveness::Down => "badge bad",
        Liveness::Unknown => "badge",
    };
    view! { <span class=class data-testid="service-state">{state.as_str()}</span> }
}

fn since(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "–".into(), |t| format!("{} ago", ago(t)))
}

/// "paused" while paused, the state otherwise.
fn paused_badge(paused: bool, state: &Liveness) -> AnyView {
    if paused {
        view! { <span class="badge muted" data-testid="paused">"paused"</span> }.into_any()
    } else {
        badge(state).into_any()
    }
}

/// Edit, pause or resume, and delete, for one row.
fn row_actions(
    kind: &'static str,
    id: i64,
    paused: bool,
    delete_label: &'static str,
    edit: impl IntoView,
) -> impl IntoView {
    let (question, yes) = if kind == "process" {
        (
            "Stop watching this process? Its samples stay.",
            "Yes, stop watching",
        )
    } else {
        (
            "Stop scraping this target? Its samples stay.",
            "Yes, remove",
        )
    };
    view! {
        <div class="row-actions">
            {edit}
            <RowActions url=ChangeService::url() fields=vec![("kind", kind.to_string()), ("id", id.to_string())]
                toggle=pause_toggle(paused) question=question delete_label=delete_label yes=yes/>
        </div>
    }
}

fn process_row(p: ProcessInfo, s: Sparks, can_edit: bool) -> impl IntoView {
    let cpu = p
        .cpu_percent
        .map(|c| format!("{c:.1} %"))
        .unwrap_or_else(|| "–".into());
    let rss = p
        .rss_bytes
        .map(|v| Unit::Bytes.format(v))
        .unwrap_or_else(|| "–".into());
    let port = match (p.port, p.port_listening) {
        (None, _) => "–".to_string(),
        (Some(n), Some(true)) => format!("{n} listening"),
        (Some(n), Some(false)) => format!("{n} closed"),
        (Some(n), None) => n.to_string(),
    };
    let (pattern, host) = (p.pattern.clone(), p.host.clone());
    view! {
        <tr data-testid="process-row">
            <td><A href=format!("/services/process/{}", p.id)>{p.name.clone()}</A><div class="muted small mono">{p.pattern.clone()}</div></td>
            <td><A href=format!("/hosts/{}", p.host)>{p.host.clone()}</A></td>
            <td>{paused_badge(p.paused, &p.state)}<div class="muted small">{since(p.since)}</div></td>
            <td class="num">{p.count.map(|c| format!("{c:.0}")).unwrap_or_else(|| "–".into())}</td>
            <td class="num">{cpu}{sparkline(&s.first)}</td>
            <td class="num">{rss}{sparkline(&scaled(&s.second))}</td>
            <td class=if p.port_listening == Some(false) { "bad" } else { "" }>{port}</td>
            <td class="num">{p.restarts_24h.map(|r| format!("{r:.0}")).unwrap_or_else(|| "0".into())}</td>
            <td>{can_edit.then(|| row_actions("process", p.id, p.paused, "Stop watching", view! {
                <EditBox url=EditService::url() fields=vec![("kind", "process".into()), ("id", p.id.to_string())] testid="process-edit">
                    <label>"Process name or command-line part" <input type="text" name="pattern" required value=pattern/></label>
                    <label>"Port (empty: none)" <input type="number" name="port" min="1" max="65535" value=p.port.map(|n| n.to_string()).unwrap_or_default()/></label>
                    <label>"Host" <input type="text" name="host" required value=host/></label>
                </EditBox>
            }))}</td>
        </tr>
    }
}

fn target_row(t: TargetInfo, s: Sparks, can_edit: bool) -> impl IntoView {
    view! {
        <tr data-testid="target-row">
            <td><A href=format!("/services/target/{}", t.id)>{t.name.clone()}</A><div class="muted small mono wrap">{t.url.clone()}</div></td>
            <td>{paused_badge(t.paused, &t.state)}<div class="muted small">{since(t.since)}</div></td>
            <td>{t.last_success.as_ref().map(fmt_time).unwrap_or_else(|| "never".into())}</td>
            <td class="num">{t.last_samples.map(|n| n.to_string()).unwrap_or_else(|| "–".into())}</td>
            <td class="num">{s.first.last().map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())}{sparkline(&scaled(&s.first))}</td>
            <td class="num">{t.last_duration_ms.map(|d| format!("{d:.0} ms")).unwrap_or_else(|| "–".into())}{sparkline(&scaled(&s.second))}</td>
            <td class=if t.last_error.is_some() { "bad wrap" } else { "wrap" }>
                {t.last_error.clone().unwrap_or_else(|| "–".into())}
                {(t.dropped > 0).then(|| view! { <div class="warn-text">{format!("{} series dropped (limit {})", t.dropped, t.max_series)}</div> })}
                {(t.skipped > 0).then(|| view! { <div class="muted small" data-testid="target-skipped" title=super::skipped_note(t.skipped)>{format!("{} series left out: stored here already", t.skipped)}</div> })}
            </td>
            <td>{can_edit.then(|| row_actions("target", t.id, t.paused, "Remove", view! {
                <EditBox url=EditService::url() fields=vec![("kind", "target".into()), ("id", t.id.to_string())] testid="target-edit">
                    <label>"New URL (empty: unchanged)" <input type="url" name="url" autocomplete="off"/></label>
                    <label>"Every (s)" <input type="number" name="interval_seconds" min="1" required value=t.interval_seconds/></label>
                    <label>"Timeout (s)" <input type="number" name="timeout_seconds" min="1" required value=t.timeout_seconds/></label>
                    <label>{if t.has_token { "New bearer token (empty: keep the one set)" } else { "Bearer token (empty: none)" }} <input type="password" name="bearer_token" autocomplete="off"/></label>
                </EditBox>
            }))}</td>
        </tr>
    }
}

#[component]
pub fn ServicesPage() -> impl IntoView {
    let add_p = ServerAction::<AddProcess>::new();
    let add_t = ServerAction::<AddTarget>::new();
    let del = ServerAction::<ChangeService>::new();
    // Read back an Edit's error when the page posts without script (`?__err=`).
    let edit = ServerAction::<EditService>::new();
    let query = use_query_map();
    let host = move || param(query, "host");
    let data = Resource::new(
        move || {
            (
                add_p.version().get(),
                add_t.version().get(),
                del.version().get(),
                host(),
            )
        },
        |(_, _, _, h)| get_services_page(h),
    );
    view! {
        <PageHeader title="Services" subtitle="Watched processes on each host and Prometheus endpoints scraped: up or down, CPU, memory, restarts, scrape health."/>
        <AutoRefresh seconds=30/>
        {action_error(move || add_p.value().get())}
        {action_error(move || add_t.value().get())}
        {action_error(move || del.value().get())}
        {action_error(move || edit.value().get())}
        <Loaded data=data ok=move |d| {
            let can_edit = d.can_edit;
            let own = d.host.clone().unwrap_or_else(|| d.own_host.clone());
            view! {
                {d.host.clone().map(|h| view! {
                    <p class="muted" data-testid="services-host">"On host "<A href=format!("/hosts/{h}")>{h.clone()}</A>" · "<A href="/services">"every host"</A></p>
                })}
                <section class="card">
                    <h2>"Processes"</h2>
                    {if d.processes.is_empty() {
                        view! { <EmptyState title="No watched processes">"Watch a process by its name or a part of its command line, optionally with the port it should listen on."</EmptyState> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="processes">
                                <thead><tr><th>"Process"</th><th>"Host"</th><th>"State"</th><th class="num">"Instances"</th><th class="num">"CPU (1 h)"</th><th class="num">"RSS (1 h)"</th><th>"Port"</th><th class="num">"Restarts (24 h)"</th><th></th></tr></thead>
                                <tbody>{d.processes.into_iter().map(|(p, s)| process_row(p, s, can_edit)).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }}
                    {can_edit.then(|| view! {
                        <AddBox summary="Watch a process" action=add_p testid="add-process" submit="Watch">
                            <label>"Name" <input type="text" name="name" required pattern="[A-Za-z0-9._\\-]+" placeholder="uvicorn"/></label>
                            <label>"Process name or command-line part (* for any)" <input type="text" name="pattern" required placeholder="uvicorn*app:main"/></label>
                            <label>"Port (optional)" <input type="number" name="port" min="1" max="65535" placeholder="8000"/></label>
                            <label>"Host" <input type="text" name="host" value=own.clone()/></label>
                        </AddBox>
                    })}
                </section>
                <section class="card">
                    <h2>"Scrape targets"</h2>
                    {if d.targets.is_empty() {
                        view! { <EmptyState title="No scrape targets">"Add any endpoint in the Prometheus text format: your service's /metrics, a node_exporter, another Opsdeck."</EmptyState> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="targets">
                                <thead><tr><th>"Target"</th><th>"State"</th><th>"Last success"</th><th class="num">"Samples"</th><th class="num">"Requests/s (1 h)"</th><th class="num">"Duration (1 h)"</th><th>"Last error"</th><th></th></tr></thead>
                                <tbody>{d.targets.into_iter().map(|(t, s)| target_row(t, s, can_edit)).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }}
                    {can_edit.then(|| view! {
                        <AddBox summary="Add a scrape target" action=add_t testid="add-target">
                            <label>"Name" <input type="text" name="name" required pattern="[A-Za-z0-9._\\-]+" placeholder="api"/></label>
                            <label>"URL" <input type="url" name="url" required placeholder="http://127.0.0.1:8000/metrics"/></label>
                            <label>"Every (s)" <input type="number" name="interval_seconds" min="1" value="15"/></label>
                            <label>"Timeout (s)" <input type="number" name="timeout_seconds" min="1" value="10"/></label>
                            <label>"Bearer token (optional, never shown again)" <input type="password" name="bearer_token" autocomplete="off"/></label>
                        </AddBox>
                    })}
                </section>
            }.into_any()
        }/>
    }
}

#[component]
fn Detail(kind: &'static str) -> impl IntoView {
    let params = use_params_map();
    let win = WindowQuery::new(super::DETAIL_RANGE);
    let id = move || id_param(params);
    let data = Resource::new(
        move || (id(), win.args()),
        move |(id, (r, f, t))| get_service_detail(kind.to_string(), id, r, f, t),
    );
    let current = move || win.current();
    let live =
        move || win.from().is_none() && !matches!(win.range().as_deref(), Some("7d" | "30d"));
    view! {
        {move || live().then(|| view! { <AutoRefresh seconds=30/> })}
        <RangeNav base=Signal::derive(move || format!("/services/{kind}/{}", id())) current=Signal::derive(current)/>
        <Loaded data=data ok=move |d| {
            view! {
                <leptos_meta::Title text=d.title.clone()/>
                <div class="page-header">
                    <p class="muted"><A href="/services">"Services"</A>" › "<A href=format!("/hosts/{}", d.host)>{d.host.clone()}</A></p>
                    <h1>{d.title.clone()}" "{badge(&d.state)}</h1>
                </div>
                {d.warning.clone().map(|w| view! { <p class="notice warn" data-testid="service-warning">{w}</p> })}
                <dl class="facts" data-testid="service-facts">
                    {d.summary.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
                </dl>
                {d.trend.clone().map(|t| view! { <p class="trend" data-testid="rss-trend">{t}</p> })}
                <p class="muted small" data-testid="detail-range">
                    {format!("Showing {}", if d.range_label == "custom" { "a custom range".to_string() } else { format!("the last {}", d.range_label) })}
                    {zoom_out_link(&format!("/services/{kind}/{}", id()), &d.range_label, d.charts.first().map(|c| (c.from, c.to)))}
                </p>
                <section class="charts">
                    {d.charts.into_iter().map(|c| view! { <ChartView chart=c zoom=true/> }).collect_view()}
                </section>
            }.into_any()
        }/>
    }
}

#[component]
pub fn ProcessPage() -> impl IntoView {
    view! { <Detail kind="process"/> }
}

#[component]
pub fn TargetPage() -> impl IntoView {
    view! { <Detail kind="target"/> }
}
