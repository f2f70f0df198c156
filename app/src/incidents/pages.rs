//! The Incidents page (open ones first, then the last 90 days) and an incident's page: what
//! happened, in order, beside the charts and logs of its window, with acknowledge, assign,
//! notes, close and the post-mortem.

use super::{get_incident_page, get_incidents_page, get_open_incidents, Incident, IncidentAction};
use crate::components::{
    fmt_duration, fmt_time, id_param, EmptyState, ErrorNotice, KeepForm, Loaded, PageHeader,
    PostButton,
};
use crate::metrics::pages::ChartView;
use crate::metrics::AutoRefresh;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

fn severity_badge(i: &Incident) -> impl IntoView {
    let class = match (i.ended_at.is_some(), i.severity.as_str()) {
        (true, _) => "badge ok",
        (false, "critical") => "badge bad",
        _ => "badge warn",
    };
    view! { <span class=class data-testid="incident-severity">{i.severity.as_str()}</span> }
}

/// `firing 2 of 3`, `ended`, `closed`.
fn state_text(i: &Incident) -> String {
    match (i.status.as_str(), i.ended_at) {
        ("closed", _) => "closed".into(),
        (_, Some(_)) => "ended, open for notes".into(),
        _ => format!("{} of {} alerts firing", i.firing, i.alerts),
    }
}

fn length(i: &Incident) -> String {
    let end = i
        .ended_at
        .map(|t| *t)
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    fmt_duration((end - *i.started_at).whole_seconds().max(0) as u64)
}

fn row(i: Incident) -> impl IntoView {
    let (href, title, state) = (
        format!("/incidents/{}", i.id),
        i.title.clone(),
        state_text(&i),
    );
    view! {
        <tr data-testid="incident-row">
            <td>{severity_badge(&i)}</td>
            <td><A href=href><strong>{title}</strong></A>
                <div class="muted small">{state}</div></td>
            <td>{fmt_time(&i.started_at)}</td>
            <td class="num">{length(&i)}</td>
            <td>{if i.hosts.is_empty() { "–".to_string() } else { i.hosts.join(", ") }}</td>
            <td>{match (&i.acked_by, &i.assignee) {
                (_, Some(a)) => format!("assigned to {a}"),
                (Some(a), None) => format!("acknowledged by {a}"),
                (None, None) => "–".into(),
            }}</td>
        </tr>
    }
}

fn table(items: Vec<Incident>, testid: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="table" data-testid=testid>
            <thead><tr><th>"Severity"</th><th>"Incident"</th><th>"Started"</th><th class="num">"Length"</th><th>"Hosts"</th><th>"Who"</th></tr></thead>
            <tbody>{items.into_iter().map(row).collect_view()}</tbody>
        </table></div>
    }
}

/// The Overview's first panel: the open incidents, or one line saying there is none.
#[component]
pub fn OpenIncidents() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_open_incidents());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(open) if open.is_empty() => view! {
                        <p class="muted small" data-testid="overview-incidents">"No open incident. "<A href="/incidents">"Incidents"</A></p>
                    }.into_any(),
                    Ok(open) => view! {
                        <section class="card" data-testid="overview-incidents">
                            <h2>{format!("{} open incident{}", open.len(), if open.len() == 1 { "" } else { "s" })}</h2>
                            <ul class="plain">
                                {open.into_iter().map(|i| {
                                    let (href, title, state, started) = (format!("/incidents/{}", i.id), i.title.clone(), state_text(&i), fmt_time(&i.started_at));
                                    view! {
                                        <li>{severity_badge(&i)}" "<A href=href><strong>{title}</strong></A>
                                            <span class="muted small">{format!(" · since {started} · {state}")}</span></li>
                                    }
                                }).collect_view()}
                            </ul>
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn IncidentsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_incidents_page());
    view! {
        <PageHeader title="Incidents" subtitle="Alerts that fired together, with what happened around them. An alert that starts firing opens an incident or joins an open one of its host (or one active in the last minutes)."/>
        <AutoRefresh seconds=30/>
        <Loaded data=data ok=move |d| {
            view! {
                <section>
                    <h2>"Open"</h2>
                    {if d.open.is_empty() {
                        view! { <EmptyState title="No open incident">"Nothing is firing that an incident holds, and every earlier one is closed."</EmptyState> }.into_any()
                    } else {
                        table(d.open, "open-incidents").into_any()
                    }}
                </section>
                <section>
                    <h2>"Closed in the last 90 days"</h2>
                    {if d.closed.is_empty() {
                        view! { <p class="muted">"None."</p> }.into_any()
                    } else {
                        table(d.closed, "closed-incidents").into_any()
                    }}
                </section>
            }.into_any()
        }/>
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2} %", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0} ms", v * 1000.0))
        .unwrap_or_else(|| "–".into())
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "alert_firing" => "firing",
        "alert_resolved" => "resolved",
        "check_down" => "check down",
        "check_up" => "check up",
        "process_restart" => "restart",
        "backup" => "backup",
        "restore" => "restore",
        "annotation" => "annotation",
        "sign_in" => "sign-in",
        "note" => "note",
        _ => "event",
    }
}

fn kind_class(kind: &str) -> &'static str {
    match kind {
        "alert_firing" | "check_down" | "process_restart" => "badge bad",
        "alert_resolved" | "check_up" => "badge ok",
        "annotation" | "restore" => "badge warn",
        _ => "badge muted",
    }
}

#[component]
pub fn IncidentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || id_param(params);
    let data = Resource::new(id, get_incident_page);
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading the incident and its context…"</p> }>
            {move || Suspend::new(async move {
                let d = match data.await {
                    Err(e) => return view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(d) => d,
                };
                let i = d.detail.incident.clone();
                let ctx = d.detail.context.clone();
                let id = i.id;
                let (from, to) = (ctx.from.unix_timestamp(), ctx.to.unix_timestamp());
                let url = IncidentAction::url();
                let open = i.status == "open";
                let users = d.users.clone();
                view! {
                    <leptos_meta::Title text=format!("Incident {id}: {}", i.title)/>
                    {(open && i.ended_at.is_none()).then(|| view! { <AutoRefresh seconds=30/> })}
                    <div class="page-header">
                        <p class="muted"><A href="/incidents">"Incidents"</A>" ›"</p>
                        <h1>{i.title.clone()}" "{severity_badge(&i)}</h1>
                        <p class="muted" data-testid="incident-state">{state_text(&i)}</p>
                    </div>
                    <dl class="facts" data-testid="incident-facts">
                        <dt>"Started"</dt><dd>{fmt_time(&i.started_at)}</dd>
                        <dt>"Length"</dt><dd>{length(&i)}{i.ended_at.is_none().then_some(" so far")}</dd>
                        <dt>"Hosts"</dt><dd>{if i.hosts.is_empty() { "–".to_string() } else { i.hosts.join(", ") }}</dd>
                        <dt>"Acknowledged"</dt><dd data-testid="incident-acked">{match (&i.acked_by, &i.acked_at) {
                            (Some(u), Some(t)) => format!("by {u} at {}", fmt_time(t)),
                            _ => "not yet".into(),
                        }}</dd>
                        <dt>"Assigned to"</dt><dd data-testid="incident-assignee">{i.assignee.clone().unwrap_or_else(|| "nobody".into())}</dd>
                        <dt>"Status page"</dt><dd data-testid="incident-public">{i.public_title.clone().map(|t| format!("shown as “{t}”")).unwrap_or_else(|| "not shown".into())}</dd>
                        {i.closed_at.map(|t| view! {
                            <dt>"Closed"</dt><dd>{format!("by {} at {}", i.closed_by.clone().unwrap_or_default(), fmt_time(&t))}</dd>
                            <dt>"Summary"</dt><dd class="wrap" data-testid="incident-summary">{i.summary.clone().unwrap_or_default()}</dd>
                        })}
                    </dl>
                    <div class="row-actions">
                        <a class="btn small" href=format!("/api/v1/incidents/{id}/postmortem.md") download=format!("incident-{id}.md") data-testid="postmortem">"Post-mortem (Markdown)"</a>
                        <a class="btn small" href=format!("/logs?from={from}&to={to}") data-testid="incident-logs">"Logs of the window"</a>
                        {(d.can_act && open && i.acked_at.is_none()).then(|| view! {
                            <PostButton url=url fields=vec![("id", id.to_string()), ("action", "ack".into())] label="Acknowledge"/>
                        })}
                    </div>
                    {(d.can_act && open).then(|| view! {
                        <section class="incident-forms">
                            <KeepForm>
                                <form action=url method="post" class="form-grid" data-testid="assign-form">
                                    <input type="hidden" name="id" value=id.to_string()/>
                                    <input type="hidden" name="action" value="assign"/>
                                    <label>"Assign to"
                                        <select name="value">
                                            <option value="">"nobody"</option>
                                            {users.into_iter().map(|u| {
                                                let selected = i.assignee.as_deref() == Some(u.as_str());
                                                view! { <option value=u.clone() selected=selected>{u.clone()}</option> }
                                            }).collect_view()}
                                        </select>
                                    </label>
                                    <button type="submit" class="btn small">"Assign"</button>
                                </form>
                            </KeepForm>
                            <KeepForm>
                                <form action=url method="post" class="form-grid" data-testid="note-form">
                                    <input type="hidden" name="id" value=id.to_string()/>
                                    <input type="hidden" name="action" value="note"/>
                                    <label class="wide">"Note" <textarea name="value" rows="2" required maxlength="10000" placeholder="What you saw, what you tried"></textarea></label>
                                    <button type="submit" class="btn small primary">"Add note"</button>
                                </form>
                            </KeepForm>
                            <details class="edit">
                                <summary class="btn small">"Status page…"</summary>
                                <KeepForm>
                                    <form action=url method="post" class="form-grid" data-testid="publish-form">
                                        <input type="hidden" name="id" value=id.to_string()/>
                                        <input type="hidden" name="action" value="publish"/>
                                        <label class="wide">"Public title (empty: not shown; no host names or URLs)" <input type="text" name="value" maxlength="200" value=i.public_title.clone().unwrap_or_default() placeholder="Payments are slow"/></label>
                                        <button type="submit" class="btn small">"Save"</button>
                                    </form>
                                </KeepForm>
                            </details>
                            <details class="edit">
                                <summary class="btn small">"Close…"</summary>
                                <KeepForm>
                                    <form action=url method="post" class="form-grid" data-testid="close-form">
                                        <input type="hidden" name="id" value=id.to_string()/>
                                        <input type="hidden" name="action" value="close"/>
                                        <label class="wide">"Summary" <textarea name="value" rows="3" required maxlength="20000" placeholder="Cause, fix, follow-ups"></textarea></label>
                                        <button type="submit" class="btn small danger">"Close the incident"</button>
                                    </form>
                                </KeepForm>
                            </details>
                        </section>
                    })}
                    <div class="incident-grid">
                        <section class="card" data-testid="incident-timeline">
                            <h2>"Timeline"</h2>
                            <p class="muted small">{format!("From {} (an hour before the start) to {}.", fmt_time(&ctx.from), fmt_time(&ctx.to))}</p>
                            {if d.detail.events.is_empty() {
                                view! { <p class="muted">"Nothing recorded in this window."</p> }.into_any()
                            } else {
                                view! {
                                    <ol class="timeline">
                                        {d.detail.events.into_iter().map(|e| view! {
                                            <li data-testid="timeline-event" data-kind=e.kind.clone()>
                                                <span class="mono muted small">{fmt_time(&e.at)}</span>" "
                                                <span class=kind_class(&e.kind)>{kind_label(&e.kind)}</span>" "
                                                {e.host.clone().map(|h| view! { <span class="muted">{h}" · "</span> })}
                                                <span class="wrap">{e.text.clone()}</span>
                                            </li>
                                        }).collect_view()}
                                    </ol>
                                }.into_any()
                            }}
                        </section>
                        <section data-testid="incident-context">
                            <h2>"Logs of the window"</h2>
                            {if ctx.logs.is_empty() {
                                view! { <p class="muted">"No log lines in this window."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="table" data-testid="incident-logs-table">
                                        <thead><tr><th>"Service"</th><th class="num">"Lines"</th><th class="num">"Error rate"</th><th class="num">"a day before"</th><th class="num">"a week before"</th><th class="num">"Requests"</th><th class="num">"p95"</th><th class="num">"p95 a day before"</th></tr></thead>
                                        <tbody>{ctx.logs.iter().map(|l| view! {
                                            <tr>
                                                <td><a href=format!("/logs?service={}&from={from}&to={to}", crate::components::urlencode(&l.service))>{l.service.clone()}</a></td>
                                                <td class="num">{l.lines}</td>
                                                <td class="num"><strong>{pct(Some(l.error_rate))}</strong></td>
                                                <td class="num">{pct(l.day_before_error_rate)}</td>
                                                <td class="num">{pct(l.week_before_error_rate)}</td>
                                                <td class="num">{l.requests}</td>
                                                <td class="num">{ms(l.p95_seconds)}</td>
                                                <td class="num">{ms(l.day_before_p95_seconds)}</td>
                                            </tr>
                                        }).collect_view()}</tbody>
                                    </table></div>
                                }.into_any()
                            }}
                            <h3>"New errors"</h3>
                            <p class="muted small">"Error messages (numbers and ids replaced) logged in the window and not once in the 7 days before."</p>
                            {if ctx.new_errors.is_empty() {
                                view! { <p class="muted" data-testid="no-new-errors">"None: every error of the window was seen before."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="plain" data-testid="new-errors">
                                        {ctx.new_errors.iter().map(|e| view! {
                                            <li><strong>{e.count}" ×"</strong>" "<span class="mono wrap">{e.message.clone()}</span>" "<span class="muted">{e.service.clone()}</span></li>
                                        }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                            {(!ctx.slow_requests.is_empty()).then(|| view! {
                                <h3>"Slowest requests"</h3>
                                <div class="table-wrap"><table class="table" data-testid="incident-slow">
                                    <thead><tr><th>"When"</th><th>"Service"</th><th>"URL"</th><th class="num">"Time"</th></tr></thead>
                                    <tbody>{ctx.slow_requests.iter().map(|s| view! {
                                        <tr><td>{fmt_time(&s.ts)}</td><td>{s.service.clone()}</td><td class="wrap mono">{s.url.clone().unwrap_or_default()}</td><td class="num">{ms(Some(s.duration))}</td></tr>
                                    }).collect_view()}</tbody>
                                </table></div>
                            })}
                        </section>
                    </div>
                    <h2>"Hosts"</h2>
                    {if d.charts.is_empty() {
                        view! { <p class="muted">"No host of this incident has reported metrics."</p> }.into_any()
                    } else {
                        view! {
                            <section class="charts" data-testid="incident-charts">
                                {d.charts.into_iter().map(|c| view! { <ChartView chart=c/> }).collect_view()}
                            </section>
                        }.into_any()
                    }}
                }.into_any()
            })}
        </Transition>
    }
}
