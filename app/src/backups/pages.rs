//! Backups pages: targets with their state and size chart, the run history, a run's detail with
//! its manifest and the restore form, a restore's progress, and the database-health page.
//! Buttons are shown by role; the server functions check the role again.

use super::{
    get_backups_overview, get_db_health, get_restore_job, get_run_detail, AddTarget, BackUpNow,
    BackupRun, EditBackupTarget, JobStatus, PauseBackupTarget, RestoreBackup, RestoreJob,
    RestoreMode, RunMaintenance, TargetCard, VerifyBackup,
};
use crate::auth::Role;
use crate::components::{
    action_error, fmt_duration, fmt_time, id_param, param, EditBox, EmptyState, KeepForm, Loaded,
    PageHeader, PostButton, SubPageHeader,
};
use crate::metrics::{scale_bytes, AutoRefresh, ChartView};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

fn bytes(n: i64) -> String {
    let (v, u) = scale_bytes(n as f64);
    if u == "B" {
        format!("{n} B")
    } else {
        format!("{v:.1} {u}")
    }
}

fn status_badge(status: &str, expired: bool) -> impl IntoView {
    let (class, text) = match (status, expired) {
        (_, true) => ("badge muted", "expired".to_string()),
        ("succeeded", _) => ("badge ok", "succeeded".to_string()),
        ("running", _) => ("badge warn", "running".to_string()),
        (s, _) => ("badge bad", s.to_string()),
    };
    view! { <span class=class data-testid="run-status">{text}</span> }
}

fn verified_cell(run: &BackupRun) -> impl IntoView {
    match run.test_restore_ok {
        Some(true) => view! { <span class="badge ok" title=run.test_restore_detail.clone()>"restorable"</span> }.into_any(),
        Some(false) => view! { <span class="badge bad" title=run.test_restore_detail.clone()>"restore failed"</span> }.into_any(),
        None if run.verified => view! { <span class="badge ok" title=run.verify_detail.clone()>"checksum ✓"</span> }.into_any(),
        None if run.verify_detail.is_some() => view! { <span class="badge bad" title=run.verify_detail.clone()>"check failed"</span> }.into_any(),
        None => view! { <span class="muted">"–"</span> }.into_any(),
    }
}

#[component]
pub fn BackupsPage() -> impl IntoView {
    let query = use_query_map();
    let target = move || param(query, "target").filter(|s| !s.is_empty());
    let status = move || param(query, "status").filter(|s| !s.is_empty());
    let run = ServerAction::<BackUpNow>::new();
    let add = ServerAction::<AddTarget>::new();
    let (pause, edit) = (
        ServerAction::<PauseBackupTarget>::new(),
        ServerAction::<EditBackupTarget>::new(),
    );
    let data = Resource::new(
        move || (target(), status(), run.version().get(), add.version().get()),
        |(t, s, _, _)| get_backups_overview(t, s),
    );
    view! {
        <PageHeader title="Backups" subtitle="Scheduled, verified PostgreSQL backups, and restores that cannot make things worse."/>
        {action_error(move || run.value().get())}
        {action_error(move || pause.value().get())}
        {action_error(move || edit.value().get())}
        <Loaded data=data loading="Loading backups…" ok=move |o| {
            let role = o.role;
            let any_running = o.cards.iter().any(|c| c.target.running.is_some());
            let names: Vec<String> = o.cards.iter().map(|c| c.target.name.clone()).collect();
            view! {
                {any_running.then(|| view! { <AutoRefresh seconds=3/> })}
                {if o.cards.is_empty() {
                    view! { <EmptyState title="No backup targets">"Add a PostgreSQL database below (admins) to back it up."</EmptyState> }.into_any()
                } else {
                    view! {
                        <section class="target-grid">
                            {o.cards.into_iter().map(|c| view! { <TargetCardView card=c role run/> }).collect_view()}
                        </section>
                    }.into_any()
                }}
                <section class="card">
                    <div class="row">
                        <h2>"History"</h2>
                        <form method="get" class="inline" data-testid="history-filter">
                            <select name="target" aria-label="Target">
                                <option value="">"all targets"</option>
                                {names.into_iter().map(|n| {
                                    let sel = target().as_deref() == Some(n.as_str());
                                    view! { <option value=n.clone() selected=sel>{n.clone()}</option> }
                                }).collect_view()}
                            </select>
                            <select name="status" aria-label="Status">
                                {["", "running", "succeeded", "failed", "expired"].into_iter().map(|s| {
                                    let sel = status().as_deref().unwrap_or("") == s;
                                    view! { <option value=s selected=sel>{if s.is_empty() { "any status" } else { s }}</option> }
                                }).collect_view()}
                            </select>
                            <button type="submit" class="btn small">"Filter"</button>
                        </form>
                    </div>
                    <RunTable runs=o.runs/>
                </section>
                <section class="card">
                    <h2>"Restores"</h2>
                    <RestoreTable restores=o.restores/>
                </section>
                {(role >= Role::Admin).then(|| view! { <AddTargetForm add/> })}
            }.into_any()
        }/>
    }
}

#[component]
fn TargetCardView(card: TargetCard, role: Role, run: ServerAction<BackUpNow>) -> impl IntoView {
    let t = card.target;
    let name = t.name.clone();
    let health = format!("/backups/targets/{}/health", t.name);
    view! {
        <article class="card target" data-testid=format!("target-{}", t.name)>
            <div class="row">
                <h2>{t.name.clone()}</h2>
                {t.paused.then(|| view! { <span class="badge muted" data-testid="paused">"schedule paused"</span> })}
                {t.overdue.then(|| view! { <span class="badge bad" data-testid="overdue" title="No successful backup within twice the schedule's interval">"overdue"</span> })}
            </div>
            <p class="muted small">
                {if t.own {
                    "Opsdeck's own database".to_string()
                } else if t.database_url.is_empty() {
                    format!("database {}", t.database)
                } else {
                    t.database_url.clone()
                }}
            </p>
            <dl class="facts">
                <dt>"Schedule"</dt>
                <dd>{t.schedule.clone().map(|s| format!("{s} ({})", t.timezone)).unwrap_or_else(|| "on demand only".into())}</dd>
                <dt>"Next run"</dt>
                <dd>{t.next_run_at.as_ref().map(fmt_time).unwrap_or_else(|| "–".into())}</dd>
                <dt>"Last success"</dt>
                <dd data-testid="last-success">{t.last_success_at.as_ref().map(fmt_time).unwrap_or_else(|| "never".into())}</dd>
                <dt>"Last verified restorable"</dt>
                <dd data-testid="last-verified">{t.last_verified_at.as_ref().map(fmt_time).unwrap_or_else(|| "never".into())}</dd>
                <dt>"Retention"</dt>
                <dd>{format!("{} days, at least {} backups", t.keep_days, t.keep_min)}</dd>
            </dl>
            {t.running.map(|id| view! {
                <p class="notice"><A href=format!("/backups/runs/{id}")>{format!("Backup {id} is running…")}</A></p>
            })}
            {card.size_chart.map(|c| view! { <ChartView chart=c/> })}
            <div class="actions">
                {(role >= Role::Operator).then(|| view! {
                    <ActionForm action=run attr:class="inline">
                        <input type="hidden" name="target" value=name.clone()/>
                        <button type="submit" class="btn primary small" data-testid="back-up-now" disabled=t.running.is_some()>"Back up now"</button>
                    </ActionForm>
                })}
                <A href=health attr:class="btn small">"Database health"</A>
                {(role >= Role::Admin).then(|| {
                    let (action, label) = if t.paused { ("resume", "Resume schedule") } else { ("pause", "Pause schedule") };
                    view! {
                        <PostButton url=PauseBackupTarget::url() fields=vec![("target", t.name.clone()), ("action", action.into())] label=label/>
                        <EditBox url=EditBackupTarget::url() fields=vec![("target", t.name.clone())] testid="backup-target-edit">
                            {(!t.own).then(|| view! { <label>"New database URL (empty: unchanged)" <input type="password" name="database_url" autocomplete="off" placeholder="postgres://user:password@host:5432/db"/></label> })}
                            <label>"Schedule (cron; empty: on demand only)" <input type="text" name="schedule" value=t.schedule.clone().unwrap_or_default() placeholder="0 2 * * *"/></label>
                            <label>"Time zone" <input type="text" name="timezone" value=t.timezone.clone()/></label>
                            <label>"Keep every backup (days)" <input type="number" name="keep_days" min="1" value=t.keep_days/></label>
                            <label>"And at least (newest backups)" <input type="number" name="keep_min" min="1" value=t.keep_min/></label>
                            <label>"Test-restore every (hours; 0: on demand)" <input type="number" name="verify_every_hours" min="0" value=t.verify_every_hours/></label>
                        </EditBox>
                    }
                    .into_any()
                })}
            </div>
        </article>
    }
}

#[component]
fn RunTable(runs: Vec<BackupRun>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="muted" data-testid="no-runs">"No backups match. Use “Back up now” on a target to make the first."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="runs-table">
                <thead>
                    <tr>
                        <th>"#"</th><th>"Target"</th><th>"Trigger"</th><th>"Status"</th><th>"Started"</th>
                        <th>"Duration"</th><th>"Size"</th><th>"Verified"</th>
                    </tr>
                </thead>
                <tbody>
                    {runs.into_iter().map(|r| {
                        let href = format!("/backups/runs/{}", r.id);
                        let size = r.size.map(bytes).unwrap_or_else(|| if r.status == JobStatus::Running { format!("{} so far", bytes(r.bytes_written)) } else { "–".into() });
                        view! {
                            <tr data-testid=format!("run-{}", r.id)>
                                <td><A href=href>{r.id}</A></td>
                                <td>{r.target.clone()}</td>
                                <td>{r.trigger.as_str()}</td>
                                <td>{status_badge(r.status.as_str(), r.expired_at.is_some())}</td>
                                <td>{fmt_time(&r.started_at)}</td>
                                <td>{r.duration_seconds.map(|d| fmt_duration(d.round() as u64)).unwrap_or_else(|| "–".into())}</td>
                                <td>{size}</td>
                                <td>{verified_cell(&r)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}

/// The restore history: what was restored, where, by whom, and how it ended.
#[component]
fn RestoreTable(restores: Vec<RestoreJob>) -> impl IntoView {
    if restores.is_empty() {
        return view! { <p class="muted" data-testid="no-restores">"No restores yet. Open a backup to restore it into a new database (or, for other databases, in place)."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="restores-table">
                <thead>
                    <tr><th>"#"</th><th>"Backup"</th><th>"Into"</th><th>"By"</th><th>"Status"</th><th>"Started"</th><th>"Took"</th></tr>
                </thead>
                <tbody>
                    {restores.into_iter().map(|j| {
                        let took = j.finished_at.map(|f| fmt_duration((f.0 - j.started_at.0).whole_seconds().max(0) as u64)).unwrap_or_else(|| j.step.clone());
                        let into = match j.mode {
                            RestoreMode::InPlace => format!("{} (in place)", j.database),
                            RestoreMode::NewDatabase => j.database.clone(),
                        };
                        view! {
                            <tr data-testid="restore-row">
                                <td><A href=format!("/backups/restores/{}", j.id)>{j.id}</A></td>
                                <td><A href=format!("/backups/runs/{}", j.backup_id)>{format!("{} #{}", j.target, j.backup_id)}</A></td>
                                <td class="mono wrap">{into}</td>
                                <td>{j.requested_by.clone()}</td>
                                <td>{status_badge(j.status.as_str(), false)}</td>
                                <td>{fmt_time(&j.started_at)}</td>
                                <td class="wrap">{took}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}

#[component]
fn AddTargetForm(add: ServerAction<AddTarget>) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Add a target"</h2>
            <KeepForm>
            <ActionForm action=add attr:class="form-grid" attr:data-testid="add-target">
                <label>"Name" <input type="text" name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\\-]*" maxlength="64"/></label>
                <label>"Database URL" <input type="password" name="database_url" required placeholder="postgres://user:password@host:5432/db" autocomplete="off"/></label>
                <label>"Schedule (cron)" <input type="text" name="schedule" placeholder="0 2 * * *"/></label>
                <label>"Time zone" <input type="text" name="timezone" placeholder="UTC"/></label>
                <button type="submit" class="btn primary">"Add target"</button>
            </ActionForm>
            </KeepForm>
            <p class="muted small">"The password is kept on the server and never shown again. The role needs CREATEDB for test restores."</p>
            {action_error(move || add.value().get())}
        </section>
    }
}

#[component]
pub fn BackupRunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || id_param(params);
    let verify = ServerAction::<VerifyBackup>::new();
    let restore = ServerAction::<RestoreBackup>::new();
    let data = Resource::new(
        move || (id(), verify.version().get()),
        |(id, _)| get_run_detail(id),
    );
    view! {
        <SubPageHeader href="/backups" parent="Backups" title=Signal::derive(move || format!("Backup {}", id()))/>
        {action_error(move || verify.value().get())}
        {move || verify.value().get().and_then(|r| r.ok()).map(|o| view! {
            <p class=if o.ok { "notice ok" } else { "notice error" } data-testid="verify-result">{o.detail}</p>
        })}
        <Loaded data=data ok=move |d| {
            let r = d.run;
            let running = r.status == JobStatus::Running;
            let usable = r.status == JobStatus::Succeeded && r.expired_at.is_none();
            let role = d.role;
            let total_rows: i64 = r.manifest.iter().map(|m| m.rows).sum();
            view! {
                {running.then(|| view! { <AutoRefresh seconds=2/> })}
                <section class="card" data-testid="run-detail">
                    <div class="row">
                        <h2>{format!("{} · {}", r.target, r.trigger)}</h2>
                        {status_badge(r.status.as_str(), r.expired_at.is_some())}
                    </div>
                    {running.then(|| view! {
                        <p class="notice" data-testid="run-progress">{format!("pg_dump is running: {} written so far…", bytes(r.bytes_written))}</p>
                    })}
                    {r.error.clone().map(|e| view! { <p class="notice error" data-testid="run-error">{e}</p> })}
                    <dl class="facts">
                        <dt>"Started"</dt><dd>{fmt_time(&r.started_at)}</dd>
                        <dt>"Finished"</dt><dd>{r.finished_at.as_ref().map(fmt_time).unwrap_or_else(|| "–".into())}</dd>
                        <dt>"Duration"</dt><dd>{r.duration_seconds.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "–".into())}</dd>
                        <dt>"Size"</dt><dd data-testid="run-size">{r.size.map(bytes).unwrap_or_else(|| "–".into())}</dd>
                        <dt>"SHA-256"</dt><dd class="mono">{r.sha256.clone().unwrap_or_else(|| "–".into())}</dd>
                        <dt>"File"</dt><dd class="mono">{r.file.clone().unwrap_or_else(|| "–".into())}</dd>
                        <dt>"pg_dump"</dt><dd>{r.pg_dump_version.clone().unwrap_or_else(|| "–".into())}</dd>
                        <dt>"Server"</dt><dd>{r.server_version.clone().unwrap_or_else(|| "–".into())}</dd>
                        <dt>"Requested by"</dt><dd>{r.requested_by.clone().unwrap_or_else(|| "the schedule".into())}</dd>
                        <dt>"Check"</dt><dd data-testid="verify-detail">{r.verify_detail.clone().unwrap_or_else(|| "not checked yet".into())}</dd>
                        <dt>"Test restore"</dt>
                        <dd data-testid="test-restore-detail">{match (&r.test_restored_at, &r.test_restore_detail) {
                            (Some(at), Some(d)) => format!("{} ({})", d, fmt_time(at)),
                            _ => "not yet".into(),
                        }}</dd>
                        <dt>"Expired"</dt><dd>{r.expired_at.as_ref().map(|t| format!("{}: the file was deleted by retention", fmt_time(t))).unwrap_or_else(|| "no".into())}</dd>
                    </dl>
                    {(usable && role >= Role::Operator).then(|| view! {
                        <div class="actions">
                            <ActionForm action=verify attr:class="inline">
                                <input type="hidden" name="id" value=r.id/>
                                <button type="submit" class="btn small" data-testid="verify">"Verify checksum"</button>
                            </ActionForm>
                            <KeepForm inline=true busy="Test restore running: the backup goes into a scratch database and is compared with its manifest. This takes seconds to minutes.">
                            <ActionForm action=verify attr:class="inline">
                                <input type="hidden" name="id" value=r.id/>
                                <input type="hidden" name="test_restore" value="true"/>
                                <button type="submit" class="btn small" data-testid="test-restore">"Test restore"</button>
                            </ActionForm>
                            </KeepForm>
                            {(role >= Role::Admin).then(|| view! {
                                <a class="btn small" href=format!("/api/v1/backups/{}/download", r.id) download>"Download"</a>
                            })}
                        </div>
                    })}
                </section>
                <section class="card">
                    <h2>{format!("Manifest: {} tables, {} rows", r.manifest.len(), total_rows)}</h2>
                    {if r.manifest.is_empty() {
                        view! { <p class="muted">"No manifest (the run did not finish)."</p> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="manifest">
                                <thead><tr><th>"Table"</th><th class="num">"Rows"</th></tr></thead>
                                <tbody>
                                    {r.manifest.iter().map(|m| view! {
                                        <tr><td>{format!("{}.{}", m.schema, m.table)}</td><td class="num">{m.rows}</td></tr>
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any()
                    }}
                </section>
                {(!r.stderr_tail.trim().is_empty()).then(|| view! {
                    <section class="card"><h2>"pg_dump log"</h2><pre class="log">{r.stderr_tail.clone()}</pre></section>
                })}
                {(usable && role >= Role::Admin).then(|| view! { <RestoreForm id=r.id database=d.database.clone() own=d.own restore/> })}
            }.into_any()
        }/>
    }
}

#[component]
fn RestoreForm(
    id: i64,
    database: String,
    own: bool,
    restore: ServerAction<RestoreBackup>,
) -> impl IntoView {
    view! {
        <section class="card danger-zone">
            <h2>"Restore"</h2>
            <p class="muted">
                "The checksum is verified first. “Into a new database” leaves "<strong>{database.clone()}</strong>" untouched. "
                "“In place” first takes a fresh backup, then restores in one transaction: if anything fails, the database stays exactly as it was."
            </p>
            <ActionForm action=restore attr:class="form-grid" attr:data-testid="restore-form">
                <input type="hidden" name="id" value=id/>
                <label>
                    "Mode"
                    <select name="mode">
                        <option value="new_database" selected>"into a new database"</option>
                        <option value="in_place" disabled=own>{if own { "in place (not for Opsdeck's own database)" } else { "in place" }}</option>
                    </select>
                </label>
                <label>"New database name (optional)" <input type="text" name="new_database" placeholder=format!("{database}_restored_…") pattern="[a-z_][a-z0-9_]*"/></label>
                <label>{format!("Type “{database}” to confirm")} <input type="text" name="confirm" required autocomplete="off"/></label>
                <label>"Your password" <input type="password" name="password" required autocomplete="current-password"/></label>
                <button type="submit" class="btn danger" data-testid="restore-submit">"Restore"</button>
            </ActionForm>
            {action_error(move || restore.value().get())}
        </section>
    }
}

#[component]
pub fn RestorePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || id_param(params);
    let data = Resource::new(id, get_restore_job);
    view! {
        <SubPageHeader href="/backups" parent="Backups" title=Signal::derive(move || format!("Restore {}", id()))/>
        <Loaded data=data ok=move |j| {
            let running = j.status == JobStatus::Running;
            view! {
                {running.then(|| view! { <AutoRefresh seconds=2/> })}
                <section class="card" data-testid="restore-job">
                    <div class="row">
                        <h2>{format!("Backup {} of {} → {}", j.backup_id, j.target, j.database)}</h2>
                        {status_badge(j.status.as_str(), false)}
                    </div>
                    {running.then(|| view! { <p class="notice" data-testid="restore-step">{format!("{}…", j.step)}</p> })}
                    {j.detail.clone().map(|d| view! {
                        <p class=if j.status == JobStatus::Succeeded { "notice ok" } else { "notice error" } data-testid="restore-detail">{d}</p>
                    })}
                    <dl class="facts">
                        <dt>"Mode"</dt><dd>{if j.mode == RestoreMode::InPlace { "in place" } else { "into a new database" }}</dd>
                        <dt>"Requested by"</dt><dd>{j.requested_by.clone()}</dd>
                        <dt>"Started"</dt><dd>{fmt_time(&j.started_at)}</dd>
                        <dt>"Finished"</dt><dd>{j.finished_at.as_ref().map(fmt_time).unwrap_or_else(|| "–".into())}</dd>
                        <dt>"Backup"</dt><dd><A href=format!("/backups/runs/{}", j.backup_id)>{format!("#{}", j.backup_id)}</A></dd>
                        <dt>"Pre-restore backup"</dt>
                        <dd>{j.pre_restore_backup_id.map(|p| view! { <A href=format!("/backups/runs/{p}")>{format!("#{p}")}</A> }.into_any()).unwrap_or_else(|| "–".into_any())}</dd>
                    </dl>
                    {(!j.stderr_tail.trim().is_empty()).then(|| view! { <pre class="log">{j.stderr_tail.clone()}</pre> })}
                </section>
            }.into_any()
        }/>
    }
}

#[component]
pub fn DbHealthPage() -> impl IntoView {
    let params = use_params_map();
    let target = move || param(params, "name").unwrap_or_default();
    let act = ServerAction::<RunMaintenance>::new();
    let data = Resource::new(
        move || (target(), act.version().get()),
        |(t, _)| get_db_health(t),
    );
    view! {
        <SubPageHeader href="/backups" parent="Backups" title=Signal::derive(move || format!("Database health: {}", target()))/>
        {action_error(move || act.value().get())}
        {move || act.value().get().and_then(|r| r.ok()).map(|m| view! { <p class="notice ok">{m}</p> })}
        <Loaded data=data loading="Connecting…" ok=move |d| {
            let role = d.role;
            let h = d.health;
            let target = h.target.clone();
            view! {
                <section class="tiles" data-testid="db-health">
                    <div class="card tile"><div class="tile-label">"Database"</div><div class="tile-value">{h.database.clone()}</div></div>
                    <div class="card tile"><div class="tile-label">"Size"</div><div class="tile-value">{bytes(h.size_bytes)}</div></div>
                    <div class="card tile"><div class="tile-label">"Connections"</div><div class="tile-value">{format!("{} / {}", h.connections, h.max_connections)}</div></div>
                </section>
                <section class="card">
                    <h2>"Largest tables"</h2>
                    {if h.tables.is_empty() { view! { <p class="muted">"No user tables."</p> }.into_any() } else { view! {
                    <div class="table-wrap"><table class="table" data-testid="health-tables">
                        <thead><tr><th>"Table"</th><th class="num">"Size"</th><th class="num">"Live rows"</th><th class="num">"Dead rows"</th><th class="num">"Dead %"</th><th>"Last vacuum"</th><th>"Last analyze"</th>{(role >= Role::Operator).then(|| view! { <th>"Maintenance"</th> })}</tr></thead>
                        <tbody>
                            {h.tables.into_iter().map(|t| {
                                let warn = t.dead_ratio > 0.2;
                                let (n1, n2, n3) = (t.name.clone(), t.name.clone(), t.name.clone());
                                let (g1, g2, g3) = (target.clone(), target.clone(), target.clone());
                                view! {
                                    <tr>
                                        <td>{t.name.clone()}</td>
                                        <td class="num">{bytes(t.total_bytes)}</td>
                                        <td class="num">{t.live_rows}</td>
                                        <td class="num">{t.dead_rows}</td>
                                        <td class=if warn { "num bad" } else { "num" }>{format!("{:.1}", t.dead_ratio * 100.0)}</td>
                                        <td>{t.last_vacuum.as_ref().map(fmt_time).unwrap_or_else(|| "never".into())}</td>
                                        <td>{t.last_analyze.as_ref().map(fmt_time).unwrap_or_else(|| "never".into())}</td>
                                        {(role >= Role::Operator).then(|| view! {
                                            <td><div class="actions">
                                                <ActionForm action=act attr:class="inline">
                                                    <input type="hidden" name="target" value=g1/>
                                                    <input type="hidden" name="table" value=n1/>
                                                    <input type="hidden" name="action" value="analyze"/>
                                                    <button type="submit" class="btn small">"ANALYZE"</button>
                                                </ActionForm>
                                                <ActionForm action=act attr:class="inline">
                                                    <input type="hidden" name="target" value=g2/>
                                                    <input type="hidden" name="table" value=n2/>
                                                    <input type="hidden" name="action" value="vacuum"/>
                                                    <button type="submit" class="btn small">"VACUUM"</button>
                                                </ActionForm>
                                                <details class="inline">
                                                    <summary class="btn small">"VACUUM FULL…"</summary>
                                                    <ActionForm action=act attr:class="inline">
                                                        <input type="hidden" name="target" value=g3/>
                                                        <input type="hidden" name="table" value=n3.clone()/>
                                                        <input type="hidden" name="action" value="vacuum_full"/>
                                                        <input type="text" name="confirm" required placeholder=format!("type {n3}") aria-label="Table name to confirm"/>
                                                        <button type="submit" class="btn small danger">"Lock and rewrite"</button>
                                                    </ActionForm>
                                                </details>
                                            </div></td>
                                        })}
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                    }.into_any() }}
                </section>
                <section class="card">
                    <h2>"Largest indexes"</h2>
                    <div class="table-wrap"><table class="table">
                        <thead><tr><th>"Index"</th><th>"Table"</th><th class="num">"Size"</th><th class="num">"Scans"</th></tr></thead>
                        <tbody>
                            {h.indexes.into_iter().map(|i| view! {
                                <tr><td>{i.name}</td><td>{i.table}</td><td class="num">{bytes(i.bytes)}</td><td class=if i.scans == 0 { "num bad" } else { "num" }>{i.scans}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                </section>
            }.into_any()
        }/>
    }
}
