//! The Alerts page (what is firing, then the rules, channels, silences and history), the
//! Health checks page (state, uptime, latency) and the Overview's "is anything wrong?" panel.

use super::wrong::Tone;
use super::{
    get_alerts_page, get_checks_page, get_wrong, ActiveAlert, AddChannel, AddCheck, AddRule,
    ChannelAction, CheckAction, CheckInfo, EditChannel, EditCheck, EditRule, EndSilence,
    InstanceAction, MuteAlert, RuleAction, RuleForm, RuleInfo,
};
use crate::components::{
    action_error, ago, fmt_time, pause_toggle, AddBox, Choice, EditBox, EmptyState, KeepForm,
    Loaded, PageHeader, PostButton, RowActions,
};
use crate::metrics::pages::{zoom_out_link, ChartView, RangeNav, WindowQuery};
use crate::metrics::AutoRefresh;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::components::A;

/// The bodies a webhook channel can send, as its forms offer them.
const WEBHOOK_FORMATS: &[(&str, &str)] = &[
    ("json", "Opsdeck JSON"),
    ("slack", "Slack"),
    ("discord", "Discord"),
];

fn status_badge(status: &str, severity: &str) -> impl IntoView {
    let class = match (status, severity) {
        ("firing", "critical") => "badge bad",
        ("firing", _) => "badge warn",
        ("resolved", _) | ("up", _) => "badge ok",
        ("down", _) => "badge bad",
        _ => "badge muted",
    };
    view! { <span class=class data-testid="alert-status">{status.to_string()}</span> }
}

fn active_row(a: ActiveAlert, can_edit: bool) -> impl IntoView {
    let firing = a.status == "firing";
    view! {
        <tr data-testid="active-alert" class=if firing { "firing" } else { "" }>
            <td>{status_badge(a.status.as_str(), a.severity.as_str())}</td>
            <td><strong>{a.rule.clone()}</strong><div class="muted small">{a.instance.clone()}</div></td>
            <td class="wrap">{a.summary.clone()}</td>
            <td title=fmt_time(&a.since)>{ago(a.since)}</td>
            <td>
                {a.acked_by.clone().map(|u| view! { <span class="badge">{format!("acked by {u}")}</span> })}
                {a.silenced.then(|| view! { <span class="badge">"silenced"</span> })}
                {a.maintenance.clone().map(|m| view! { <span class="badge warn" data-testid="in-maintenance" title=m.clone()>"in maintenance"</span><div class="muted small">{m}</div> })}
            </td>
            <td>{(can_edit && firing).then(|| {
                let fields = |action: &str| vec![("rule_id", a.rule_id.to_string()), ("instance", a.instance.clone()), ("action", action.to_string())];
                view! {
                    {a.acked_by.is_none().then(|| view! { <PostButton url=InstanceAction::url() fields=fields("ack") label="Acknowledge"/> })}
                    {a.maintenance.is_none().then(|| {
                        let mute = |minutes: &str| vec![("rule_id", a.rule_id.to_string()), ("instance", a.instance.clone()), ("minutes", minutes.to_string())];
                        view! {
                            <PostButton url=MuteAlert::url() fields=mute("60") label="Mute 1 h"/>
                            <PostButton url=MuteAlert::url() fields=mute("240") label="Mute 4 h"/>
                            <PostButton url=MuteAlert::url() fields={
                                let mut f = mute("60");
                                f.push(("until", "09:00".to_string()));
                                f
                            } label="Mute until 09:00"/>
                        }
                    })}
                }
            })}</td>
        </tr>
    }
}

/// A rule's Edit: the form's fields for its kind, filled with what it has now; its name and
/// kind stay (a rule of another kind is another rule).
fn rule_edit(r: &RuleInfo) -> impl IntoView {
    let f = RuleForm::of(&r.spec);
    let (target_label, metric_label, threshold_label) = match f.kind.as_str() {
        "health" => ("Check (* for all)", None, None),
        "log" => (
            "Service (empty: every service)",
            Some("Condition: error_rate, avg_response_time or query_count"),
            Some("Threshold"),
        ),
        "forecast" => (
            "Hosts (* for all)",
            Some("Resource (empty: all)"),
            Some("Within days"),
        ),
        "backup" => (
            "Backup target (empty: every target)",
            None,
            Some("Hours without a backup"),
        ),
        "log_anomaly" => (
            "Service (empty: each service)",
            Some("Condition: error_count or error_rate"),
            Some("Times normal (default 3)"),
        ),
        "host" => (
            "Hosts (* for all)",
            None,
            Some("Seconds without a sample (empty: 3 intervals)"),
        ),
        _ => ("Hosts (* for all)", Some("Metric"), Some("Threshold")),
    };
    let metric_kind = f.kind == "metric";
    let op = f.op.clone();
    let id = r.id;
    view! {
        <EditBox url=EditRule::url() fields=vec![("id", id.to_string()), ("kind", f.kind.clone())] testid="rule-edit">
                <label>{target_label}<input type="text" name="target" value=f.target.clone()/></label>
                {match metric_label {
                    Some(l) => view! { <label>{l}<input type="text" name="metric" value=f.metric.clone()/></label> }.into_any(),
                    None => view! { <input type="hidden" name="metric" value=""/> }.into_any(),
                }}
                {if metric_kind {
                    view! {
                        <label>"Comparison"
                            <select name="op">
                                {[">", ">=", "<", "<="].into_iter().map(|o| view! { <option value=o selected=op.as_str() == o || (op.is_empty() && o == ">")>{o}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>"Clears below (empty: the threshold)"<input type="number" step="any" name="clear_threshold" value=f.clear_threshold.clone()/></label>
                    }.into_any()
                } else {
                    view! { <input type="hidden" name="op" value=""/><input type="hidden" name="clear_threshold" value=""/> }.into_any()
                }}
                {match threshold_label {
                    Some(l) => view! { <label>{l}<input type="number" step="any" name="threshold" value=f.threshold.clone()/></label> }.into_any(),
                    None => view! { <input type="hidden" name="threshold" value=""/> }.into_any(),
                }}
                <label>"For (seconds)"<input type="number" min="0" name="for_seconds" value=f.for_seconds.clone()/></label>
                <label>"Notify (channels, comma-separated; empty: the default ones)"<input type="text" name="notify" value=f.notify.clone()/></label>
        </EditBox>
    }
}

/// A channel's grouping, in words.
fn grouping(c: &super::ChannelInfo) -> String {
    let h = super::rules::human_secs;
    format!(
        "groups {} · batches every {} · at most {} messages/h",
        h(c.group_wait_seconds.into()),
        h(c.group_interval_seconds.into()),
        c.max_per_hour
    )
}

/// What went through the channels' outboxes: what waits and why, what went out together,
/// what was suppressed because its host is down.
fn notification_log(lines: Vec<super::NotificationLine>) -> impl IntoView {
    view! {
        <section class="card" data-testid="notification-log">
            <h2>"Notifications"</h2>
            <p class="muted small">"Alerts starting together go out as one message per channel; later changes are batched; past a channel's hourly cap, one digest an hour. A silent host's check, process and metric alerts are listed under the host instead of sent one by one."</p>
            {if lines.is_empty() {
                view! { <p class="muted">"Nothing sent yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table" data-testid="notifications">
                        <thead><tr><th>"When"</th><th>"Alert"</th><th>"Channel"</th><th>"Outcome"</th></tr></thead>
                        <tbody>{lines.into_iter().map(|l| {
                            let tone = match l.outcome.as_str() {
                                "sent" => if l.delivery.as_deref() == Some("failed") { "badge bad" } else { "badge ok" },
                                "waiting" => "badge warn",
                                _ => "badge muted",
                            };
                            let outcome = match (l.outcome.as_str(), l.delivery.as_deref()) {
                                ("sent", Some("queued")) => "sending".to_string(),
                                ("sent", Some("failed")) => "failed".to_string(),
                                (o, _) => o.to_string(),
                            };
                            view! {
                                <tr data-testid="notification-row">
                                    <td>{fmt_time(&l.at)}</td>
                                    <td><span class=match l.status.as_str() { "firing" => "badge warn", "resolved" => "badge ok", _ => "badge muted" }>{l.status.to_string()}</span>" "<strong>{l.rule.clone()}</strong><div class="muted small wrap">{l.instance.clone()}</div></td>
                                    <td>{l.channel.clone()}</td>
                                    <td><span class=tone data-testid="notification-outcome">{outcome}</span><div class="muted small">{l.why.clone()}{l.message.map(|m| format!(" · message #{m}"))}</div></td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

fn rule_row(r: RuleInfo, can_edit: bool) -> impl IntoView {
    let editor = can_edit.then(|| rule_edit(&r));
    let state = if r.firing > 0 {
        view! { <span class="badge bad">{format!("{} firing", r.firing)}</span> }.into_any()
    } else if r.pending > 0 {
        view! { <span class="badge warn">{format!("{} pending", r.pending)}</span> }.into_any()
    } else if r.spec.enabled {
        view! { <span class="badge ok">"ok"</span> }.into_any()
    } else {
        view! { <span class="badge">"off"</span> }.into_any()
    };
    let toggle = if r.spec.enabled {
        ("disable", "Turn off")
    } else {
        ("enable", "Turn on")
    };
    let id = r.id;
    view! {
        <tr data-testid="rule-row">
            <td><strong>{r.spec.name.clone()}</strong><div class="muted small">{r.spec.kind.clone()}{r.builtin.then_some(" · from the runbook")}</div></td>
            <td class="wrap">{r.describe.clone()}</td>
            <td>{if r.spec.notify.is_empty() { "the default channels".to_string() } else { r.spec.notify.join(", ") }}</td>
            <td>{state}</td>
            <td>{editor}{can_edit.then(|| view! {
                <RowActions url=RuleAction::url() fields=vec![("id", id.to_string())] toggle=toggle question="Delete this rule? Its history stays."/>
            })}</td>
        </tr>
    }
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let add_rule = ServerAction::<AddRule>::new();
    let rule_act = ServerAction::<RuleAction>::new();
    let edit_rule = ServerAction::<EditRule>::new();
    let inst_act = ServerAction::<InstanceAction>::new();
    let unsilence = ServerAction::<EndSilence>::new();
    let add_channel = ServerAction::<AddChannel>::new();
    let chan_act = ServerAction::<ChannelAction>::new();
    // Read back an Edit's error when the page posts without script (`?__err=`).
    let edit_channel = ServerAction::<EditChannel>::new();
    let data = Resource::new(
        move || {
            (
                add_rule.version().get(),
                rule_act.version().get(),
                edit_rule.version().get(),
                inst_act.version().get(),
                unsilence.version().get(),
                add_channel.version().get(),
                chan_act.version().get(),
            )
        },
        |_| get_alerts_page(),
    );
    view! {
        <PageHeader title="Alerts" subtitle="What is firing now, the rules that watch metrics, health checks, logs, forecasts and backups, and where notifications go."/>
        <AutoRefresh seconds=15/>
        {action_error(move || add_rule.value().get())}
        {action_error(move || rule_act.value().get())}
        {action_error(move || edit_rule.value().get())}
        {action_error(move || inst_act.value().get())}
        {action_error(move || unsilence.value().get())}
        {action_error(move || add_channel.value().get())}
        {action_error(move || chan_act.value().get())}
        {action_error(move || edit_channel.value().get())}
        {move || chan_act.value().get().and_then(|r| r.ok()).map(|done| view! {
            <p class="notice ok" data-testid="channel-test-sent">{done}</p>
        })}
        <Loaded data=data ok=move |d| {
            let can_edit = d.can_edit;
            let firing = d.overview.active.iter().filter(|a| a.status == "firing").count();
            let channel_names: Vec<String> = d.channels.iter().map(|c| c.name.clone()).collect();
            view! {
                <p class="muted small" data-testid="alerts-evaluated">
                    {format!("Rules are evaluated every {} s", d.interval_seconds)}
                    {d.last_evaluated.map(|t| format!("; last round {} ago.", ago(t))).unwrap_or_else(|| "; no round has run yet.".into())}
                </p>
                <section class="card">
                    <h2>{if firing > 0 { format!("Firing ({firing})") } else { "Firing".to_string() }}</h2>
                    {if d.overview.active.is_empty() {
                        view! { <EmptyState title="Nothing is firing">"Every enabled rule is within its threshold."</EmptyState> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="active-alerts">
                                <thead><tr><th>"State"</th><th>"Rule"</th><th>"Why"</th><th>"For"</th><th></th><th></th></tr></thead>
                                <tbody>{d.overview.active.into_iter().map(|a| active_row(a, can_edit)).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }}
                </section>
                <section class="card">
                    <h2>"Rules"</h2>
                    {if d.rules.is_empty() {
                        view! { <EmptyState title="No rules">"Add a rule below, or through POST /api/v1/alerts/rules."</EmptyState> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="rules">
                                <thead><tr><th>"Rule"</th><th>"Condition"</th><th>"Notifies"</th><th>"State"</th><th></th></tr></thead>
                                <tbody>{d.rules.into_iter().map(|r| rule_row(r, can_edit)).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }}
                    {can_edit.then(|| view! {
                        <AddBox summary="Add a rule" action=add_rule testid="add-rule" submit="Save rule">
                            <label>"Name" <input type="text" name="name" required maxlength="100" placeholder="API disk above 90 %"/></label>
                            <label>"Kind"
                                <select name="kind">
                                    <option value="metric">"metric threshold"</option>
                                    <option value="health">"health check down"</option>
                                    <option value="log">"logs"</option>
                                    <option value="log_anomaly">"log errors above normal"</option>
                                    <option value="forecast">"capacity forecast"</option>
                                    <option value="backup">"no backup"</option>
                                    <option value="host">"host sends nothing"</option>
                                </select>
                            </label>
                            <label>"Host / check / service / target (* for all)" <input type="text" name="target" placeholder="*"/></label>
                            <label>"Metric, or log condition (error_rate, avg_response_time)" <input type="text" name="metric" placeholder="disk_used_percent{mount=\"/\"}"/></label>
                            <label>"Comparison"
                                <select name="op">
                                    <option value=">">">"</option><option value=">=">">="</option>
                                    <option value="<">"<"</option><option value="<=">"<="</option>
                                </select>
                            </label>
                            <label>"Threshold (metric value, %, s, days, hours or times normal)" <input type="text" name="threshold" inputmode="decimal" placeholder="90"/></label>
                            <label>"Clears at (optional)" <input type="text" name="clear_threshold" inputmode="decimal" placeholder="85"/></label>
                            <label>"For (seconds)" <input type="number" name="for_seconds" min="0" value="300"/></label>
                            <label>"Notify (channel names, comma-separated)" <input type="text" name="notify" placeholder=channel_names.join(", ")/></label>
                        </AddBox>
                    })}
                </section>
                {d.is_admin.then(|| view! {
                    <section class="card">
                        <h2>"Channels"</h2>
                        {if d.channels.is_empty() {
                            view! { <EmptyState title="No channels">"Add a webhook (JSON, Slack or Discord) or an e-mail channel, then name it in a rule's Notify."</EmptyState> }.into_any()
                        } else {
                            view! {
                                <div class="table-wrap"><table class="table" data-testid="channels">
                                    <thead><tr><th>"Channel"</th><th>"Goes to"</th><th>"Last delivery"</th><th></th></tr></thead>
                                    <tbody>{d.channels.into_iter().map(|c| {
                                        let id = c.id;
                                        view! {
                                            <tr data-testid="channel-row">
                                                <td><strong>{c.name.clone()}</strong>{c.paused.then(|| view! { " "<span class="badge muted" data-testid="paused">"paused"</span> })}{c.is_default.then(|| view! { " "<span class="badge ok" data-testid="default-channel">"default"</span> })}<div class="muted small">{format!("{} · {}", c.kind, c.format)}</div><div class="muted small" data-testid="channel-grouping">{grouping(&c)}</div></td>
                                                <td class="mono wrap">{c.url.clone().or(c.to.clone()).unwrap_or_default()}</td>
                                                <td class=if c.last_status.as_deref() == Some("failed") { "bad wrap" } else { "wrap" }>
                                                    {c.last_status.clone().unwrap_or_else(|| "never used".into())}
                                                    {c.last_error.clone().map(|e| view! { <div class="muted small">{e}</div> })}
                                                </td>
                                                <td>
                                                    <EditBox url=EditChannel::url() fields=vec![("id", id.to_string())] testid="channel-edit">
                                                        {if c.kind == "email" {
                                                            view! { <label>"E-mail to (comma-separated)" <input type="text" name="to" required value=c.to.clone().unwrap_or_default()/></label> }.into_any()
                                                        } else {
                                                            view! {
                                                                <label>"New webhook URL (empty: unchanged)" <input type="url" name="url" autocomplete="off"/></label>
                                                                <label>"Webhook body" <Choice name="format" options=WEBHOOK_FORMATS selected=c.format.clone()/></label>
                                                            }.into_any()
                                                        }}
                                                        <label>"Default (rules that name no channel notify it)" <Choice name="default" options=&[("false", "no"), ("true", "yes")] selected=c.is_default.to_string()/></label>
                                                        <label>"Group wait (s)" <input type="number" name="group_wait_seconds" min="0" max="3600" value=c.group_wait_seconds.to_string()/></label>
                                                        <label>"Group interval (s)" <input type="number" name="group_interval_seconds" min="0" max="86400" value=c.group_interval_seconds.to_string()/></label>
                                                        <label>"Messages an hour at most" <input type="number" name="max_per_hour" min="1" max="1000" value=c.max_per_hour.to_string()/></label>
                                                    </EditBox>
                                                    <PostButton url=ChannelAction::url() fields=vec![("id", id.to_string()), ("action", "test".into())] label="Send test"/>
                                                    <RowActions url=ChannelAction::url() fields=vec![("id", id.to_string())] toggle=pause_toggle(c.paused) question="Delete this channel? Rules that name it stop notifying it."/>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}</tbody>
                                </table></div>
                            }.into_any()
                        }}
                        {(!d.smtp_configured).then(|| view! {
                            <p class="muted small">"E-mail channels need OPSDECK_SMTP_URL and OPSDECK_SMTP_FROM on the server."</p>
                        })}
                        <AddBox summary="Add a channel" action=add_channel testid="add-channel" submit="Save channel">
                            <label>"Name" <input type="text" name="name" required maxlength="100" placeholder="ops-slack"/></label>
                            <label>"Kind" <select name="kind"><option value="webhook">"webhook"</option><option value="email">"e-mail"</option></select></label>
                            <label>"Webhook URL (kept secret, shown redacted)" <input type="url" name="url" autocomplete="off" placeholder="https://hooks.slack.com/services/…"/></label>
                            <label>"Webhook body" <Choice name="format" options=WEBHOOK_FORMATS selected="json"/></label>
                            <label>"E-mail to (comma-separated)" <input type="text" name="to" placeholder="ops@example.com"/></label>
                            <label class="check"><input type="checkbox" name="is_default" value="true"/>" Default: rules that name no channel (the built-in ones) notify it"</label>
                            <label>"Group wait (s): alerts starting together go out as one message" <input type="number" name="group_wait" min="0" max="3600" value="30"/></label>
                            <label>"Group interval (s): later changes batched" <input type="number" name="group_interval" min="0" max="86400" value="300"/></label>
                            <label>"Messages an hour at most (then one digest an hour)" <input type="number" name="max_per_hour" min="1" max="1000" value="20"/></label>
                        </AddBox>
                    </section>
                })}
                {can_edit.then(|| notification_log(d.notifications.clone()))}
                <section class="card" data-testid="maintenance">
                    <h2>"Maintenance windows"</h2>
                    <p class="muted small">"What a window covers is evaluated and shown, but notifies no one; a check's results in it do not count against its uptime. Recurring windows and scripts' windows: "<code>"POST /api/v1/maintenance"</code>", or "<code>"opsdeck maintenance start"</code>"."</p>
                    {if d.maintenance.is_empty() {
                        view! { <p class="muted">"None open or coming."</p> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="maintenance-windows">
                                <thead><tr><th>"Window"</th><th>"Covers"</th><th>"When"</th><th>"By"</th><th></th></tr></thead>
                                <tbody>{d.maintenance.clone().into_iter().map(|w| view! {
                                    <tr data-testid="maintenance-row">
                                        <td><strong>{w.name.clone()}</strong>" "{w.active.then(|| view! { <span class="badge warn">"in force"</span> })}</td>
                                        <td>{w.what.clone()}</td>
                                        <td>{w.when.clone()}</td>
                                        <td>{w.created_by.clone()}</td>
                                        <td>{can_edit.then(|| view! {
                                            <PostButton url=super::EndMaintenance::url() fields=vec![("id", w.id.to_string())] label="End now"/>
                                        })}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }}
                    {can_edit.then(|| view! {
                        <details>
                            <summary class="btn small">"Open a window"</summary>
                            <KeepForm>
                                <form action=super::OpenMaintenance::url() method="post" class="form-grid" data-testid="open-maintenance">
                                    <label>"Name" <input type="text" name="name" required maxlength="100" placeholder="kernel update"/></label>
                                    <label>"Hosts (pattern, empty: any)" <input type="text" name="host" placeholder="web-*"/></label>
                                    <label>"Checks (comma-separated)" <input type="text" name="checks"/></label>
                                    <label>"Rules (comma-separated)" <input type="text" name="rules"/></label>
                                    <label>"For (minutes)" <input type="number" name="minutes" min="1" max="44640" value="60" required/></label>
                                    <button type="submit" class="btn primary">"Open"</button>
                                </form>
                            </KeepForm>
                        </details>
                    })}
                </section>
                {(!d.overview.silences.is_empty()).then(|| view! {
                    <section class="card">
                        <h2>"Silences"</h2>
                        <div class="table-wrap"><table class="table" data-testid="silences">
                            <thead><tr><th>"Rule"</th><th>"Host"</th><th>"Until"</th><th>"By"</th><th></th></tr></thead>
                            <tbody>{d.overview.silences.clone().into_iter().map(|s| view! {
                                <tr>
                                    <td>{s.rule.clone().unwrap_or_else(|| "every rule".into())}</td>
                                    <td>{s.host.clone().unwrap_or_else(|| "any".into())}</td>
                                    <td>{fmt_time(&s.ends_at)}</td>
                                    <td>{s.created_by.clone()}{(!s.comment.is_empty()).then(|| format!(": {}", s.comment))}</td>
                                    <td>{can_edit.then(|| view! {
                                        <ActionForm action=unsilence attr:class="inline">
                                            <input type="hidden" name="id" value=s.id/>
                                            <button type="submit" class="btn small">"End now"</button>
                                        </ActionForm>
                                    })}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table></div>
                    </section>
                })}
                <section class="card">
                    <h2>"History"</h2>
                    {if d.overview.history.is_empty() {
                        view! { <EmptyState title="No alerts yet">"Firings and resolutions will be listed here."</EmptyState> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="alert-history">
                                <thead><tr><th>"When"</th><th>"State"</th><th>"Rule"</th><th>"Why"</th></tr></thead>
                                <tbody>{d.overview.history.into_iter().map(|e| view! {
                                    <tr>
                                        <td>{fmt_time(&e.at)}</td>
                                        <td>{status_badge(e.status.as_str(), "warning")}{e.silenced.then(|| view! { <span class="badge">"silenced"</span> })}</td>
                                        <td><strong>{e.rule.clone()}</strong><div class="muted small">{e.instance.clone()}</div></td>
                                        <td class="wrap">{e.summary.clone()}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }}
                </section>
            }.into_any()
        }/>
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| {
        if v >= 99.995 {
            "100 %".to_string()
        } else {
            format!("{v:.2} %")
        }
    })
    .unwrap_or_else(|| "–".into())
}

/// The last results as a row of 50 small bars, oldest first, slots not yet filled in grey (as
/// Uptime Kuma shows them).
#[component]
fn Heartbeat(recent: Vec<bool>) -> impl IntoView {
    let down = recent.iter().filter(|u| !**u).count();
    let label = format!("Last {} results: {} down", recent.len(), down);
    (!recent.is_empty()).then(|| {
        view! {
            <div class="heartbeat" data-testid="heartbeat" role="img" aria-label=label.clone() title=label>
                {(recent.len()..50).map(|_| view! { <span class="beat empty"></span> }).collect_view()}
                {recent.into_iter().map(|up| view! { <span class=if up { "beat up" } else { "beat down" }></span> }).collect_view()}
            </div>
        }
    })
}

fn check_card(c: CheckInfo, chart: Option<crate::metrics::Chart>, can_edit: bool) -> impl IntoView {
    let id = c.id;
    view! {
        <article class="card" data-testid="check-card">
            <h2>{if c.paused { view! { <span class="badge muted" data-testid="paused">"paused"</span> }.into_any() } else { status_badge(c.state.as_str(), "critical").into_any() }}" "{c.check.name.clone()}</h2>
            <p class="muted small mono wrap">{c.check.url.clone()}</p>
            <Heartbeat recent=c.recent.clone()/>
            <dl class="facts">
                <dt>"Since"</dt><dd>{c.since.map(ago).unwrap_or_else(|| "–".into())}</dd>
                <dt>"Latency"</dt><dd>{c.latency_ms.filter(|_| c.state == "up").map(|l| format!("{l:.0} ms")).unwrap_or_else(|| "–".into())}</dd>
                <dt>"Uptime 24 h"</dt><dd data-testid="uptime-24h">{pct(c.uptime_24h)}</dd>
                <dt>"7 days"</dt><dd>{pct(c.uptime_7d)}</dd>
                <dt>"30 days"</dt><dd>{pct(c.uptime_30d)}</dd>
                <dt>"Every"</dt><dd>{format!("{} s, timeout {} s", c.check.interval_seconds, c.check.timeout_seconds)}</dd>
                {c.check.host.clone().map(|h| view! { <dt>"Host"</dt><dd>{h}</dd> })}
                {c.check.public.then(|| view! { <dt>"Status page"</dt><dd data-testid="check-public">{format!("shown as “{}”", c.check.public_name.clone().unwrap_or_else(|| c.check.name.clone()))}</dd> })}
                <dt>"Expects"</dt><dd>{c.check.expected_status.map(|s| format!("status {s}")).unwrap_or_else(|| "2xx".into())}{c.check.expected_body.clone().map(|b| format!(" and `{b}`"))}</dd>
            </dl>
            {c.last_error.clone().filter(|_| c.state == "down").map(|e| view! { <p class="bad-text wrap" data-testid="check-error">{e}</p> })}
            {match chart {
                Some(ch) => view! { <ChartView chart=ch zoom=true/> }.into_any(),
                None => view! { <p class="muted small">"No latency history yet."</p> }.into_any(),
            }}
            {can_edit.then(|| {
                let (interval, timeout) = (c.check.interval_seconds, c.check.timeout_seconds);
                let status = c.check.expected_status.map(|s| s.to_string()).unwrap_or_default();
                let body = c.check.expected_body.clone().unwrap_or_default();
                let host = c.check.host.clone().unwrap_or_default();
                let public = c.check.public.to_string();
                let public_name = c.check.public_name.clone().unwrap_or_default();
                view! {

                    <div class="row-actions">
                    <EditBox url=EditCheck::url() fields=vec![("id", id.to_string())] testid="check-edit">
                            <label>"New URL (empty: unchanged)" <input type="url" name="url" autocomplete="off"/></label>
                            <label>"Every (s)" <input type="number" name="interval_seconds" min="5" value=interval/></label>
                            <label>"Timeout (s)" <input type="number" name="timeout_seconds" min="1" max="60" value=timeout/></label>
                            <label>"Expected status (empty: any 2xx)" <input type="number" name="expected_status" min="100" max="599" value=status/></label>
                            <label>"Body must contain (empty: anything)" <input type="text" name="expected_body" value=body/></label>
                            <label>"Runs on host (empty: none)" <input type="text" name="host" value=host/></label>
                            <label>"On the status page" <Choice name="public" options=&[("false", "no"), ("true", "yes")] selected=public/></label>
                            <label>"Name there (empty: the check's name)" <input type="text" name="public_name" value=public_name/></label>
                    </EditBox>
                        <RowActions url=CheckAction::url() fields=vec![("id", id.to_string())] toggle=pause_toggle(c.paused) question="Delete this check and its results?"/>
                    </div>
                }
            })}
        </article>
    }
}

#[component]
pub fn ChecksPage() -> impl IntoView {
    let add = ServerAction::<AddCheck>::new();
    let del = ServerAction::<CheckAction>::new();
    let edit = ServerAction::<EditCheck>::new();
    let win = WindowQuery::new("24h");
    let data = Resource::new(
        move || {
            (
                add.version().get(),
                del.version().get(),
                edit.version().get(),
                win.args(),
            )
        },
        |(_, _, _, (r, f, t))| get_checks_page(r, f, t),
    );
    let current = move || win.current();
    view! {
        <PageHeader title="Health checks" subtitle="HTTP endpoints fetched on a schedule: up or down, latency, uptime. The rule “Health check down” alerts on them."/>
        {move || win.from().is_none().then(|| view! { <AutoRefresh seconds=30/> })}
        <RangeNav base=Signal::derive(|| "/checks".to_string()) current=Signal::derive(current)/>
        {action_error(move || add.value().get())}
        {action_error(move || del.value().get())}
        {action_error(move || edit.value().get())}
        <Loaded data=data ok=move |d| {
            let can_edit = d.can_edit;
            view! {
                {if d.checks.is_empty() {
                    view! { <EmptyState title="No health checks">"Add the URL of a service's health endpoint; Opsdeck fetches it on a schedule."</EmptyState> }.into_any()
                } else {
                    view! {
                        <p class="muted small" data-testid="checks-range">
                            {format!("Latency over {}", if d.range_label == "custom" { "a custom window".to_string() } else { format!("the last {}", d.range_label) })}
                            {zoom_out_link("/checks", &d.range_label, d.checks.iter().find_map(|(_, c)| c.as_ref().map(|c| (c.from, c.to))))}
                        </p>
                        <section class="cards wide" data-testid="checks">
                            {d.checks.into_iter().map(|(c, ch)| check_card(c, ch, can_edit)).collect_view()}
                        </section>
                    }.into_any()
                }}
                {can_edit.then(|| view! {
                    <section class="card">
                        <AddBox summary="Add a health check" action=add testid="add-check">
                            <label>"Name" <input type="text" name="name" required maxlength="100" placeholder="api"/></label>
                            <label>"URL" <input type="url" name="url" required placeholder="http://127.0.0.1:8000/health"/></label>
                            <label>"Every (s)" <input type="number" name="interval_seconds" min="5" value="30"/></label>
                            <label>"Timeout (s)" <input type="number" name="timeout_seconds" min="1" max="60" value="5"/></label>
                            <label>"Expected status (empty: any 2xx)" <input type="number" name="expected_status" min="100" max="599"/></label>
                            <label>"Body must contain (optional)" <input type="text" name="expected_body" placeholder="\"status\":\"ok\""/></label>
                            <label>"Runs on host (optional: quiet while it is silent)" <input type="text" name="host" placeholder="web-1"/></label>
                            <label class="check"><input type="checkbox" name="public" value="true"/>" Show on the public status page"</label>
                            <label>"Name there (optional)" <input type="text" name="public_name" placeholder="Website"/></label>
                        </AddBox>
                    </section>
                })}
            }.into_any()
        }/>
    }
}

/// The maintenance windows in force, on the Overview: what they cover and until when.
#[component]
pub fn ActiveMaintenance() -> impl IntoView {
    let data = Resource::new(|| (), |_| super::get_active_maintenance());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(w) if !w.is_empty() => Some(view! {
                        <p class="notice warn" data-testid="maintenance-active">
                            <strong>"Maintenance: "</strong>
                            {w.into_iter().map(|l| format!("{} ({}{})", l.name, l.what, l.until.map(|t| format!(", until {}", fmt_time(&t))).unwrap_or_default())).collect::<Vec<_>>().join(" · ")}
                            " — what it covers is evaluated but notifies no one."
                        </p>
                    }),
                    _ => None,
                }
            })}
        </Transition>
    }
}

/// "Is anything wrong?": firing alerts (most severe first) and checks that are down, or a
/// plain all-clear. Sits at the top of the Overview.
#[component]
pub fn OverviewAlerts() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_wrong());
    view! {
        <Loaded data=data loading="Checking alerts…" ok=move |w| {
            let rows = super::wrong::problems(&w);
            let (tone, title) = super::wrong::headline(rows.len(), w.pending);
            let (card, heading) = match tone {
                Tone::Bad => ("card wrong bad-border", "bad"),
                Tone::Pending => ("card wrong warn-border", "warn"),
                Tone::Clear => ("card wrong ok-border", "ok"),
            };
            view! {
                <section class=card data-testid="anything-wrong">
                    <h2 class=heading>{title}</h2>
                    {if rows.is_empty() {
                        view! {
                            <p class="muted">{format!("No alert firing ({} rules watching), {} health check{} up.",
                                w.rules, w.checks_total, if w.checks_total == 1 { "" } else { "s" })}</p>
                        }.into_any()
                    } else {
                        view! {
                            <ul class="wrong-list">
                                {rows.into_iter().take(12).map(|p| {
                                    let badge = if p.check { status_badge("down", "critical").into_any() } else { status_badge("firing", p.severity.as_str()).into_any() };
                                    let rules = (p.check && !p.rules.is_empty()).then(|| format!(" (rules: {})", p.rules.join(", ")));
                                    view! {
                                        <li data-testid="overview-alert">{badge}" "<strong>{p.title}</strong>" · "{p.detail}{rules}
                                            {p.since.map(|s| view! { <span class="muted small">{format!(" for {}", ago(s))}</span> })}</li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                    {(tone != Tone::Clear).then(|| view! {
                        <p><A href="/alerts">"All alerts"</A>" · "<A href="/checks">"Health checks"</A></p>
                    })}
                </section>
            }.into_any()
        }/>
    }
}
