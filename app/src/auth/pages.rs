//! Login, Admin › Users, Admin › Tokens and Admin › Audit pages.

use super::{
    list_audit, list_tokens, list_users, CreateToken, CreateUser, Login, ResetPassword,
    RevokeToken, Role, UpdateUser, UserSummary,
};
use crate::components::{
    action_error, fmt_time, param, Confirm, ErrorNotice, KeepForm, Loaded, PageHeader,
};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || param(query, "next").unwrap_or_default();
    let error = move || login.value().get().and_then(|r| r.err());
    view! {
        <leptos_meta::Title text="Sign in"/>
        <main class="login-page">
            <ActionForm action=login attr:class="card login-card" attr:data-testid="login-form">
                <h1 class="brand">
                    <span class="brand-mark">"◆"</span>
                    " Opsdeck"
                </h1>
                <p class="muted">"Sign in to watch and care for your services."</p>
                <label>
                    "User name"
                    <input type="text" name="username" autocomplete="username" required autofocus/>
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <input type="hidden" name="next" value=next/>
                {move || error().map(|e| {
                    let text = match e {
                        AppError::BadCredentials => "Wrong user name or password.".to_string(),
                        other => other.to_string(),
                    };
                    view! { <p class="notice error" role="alert" data-testid="login-error">{text}</p> }
                })}
                <button type="submit" class="btn primary" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
        </main>
    }
}

#[component]
pub fn AdminTabs() -> impl IntoView {
    view! {
        <nav class="tabs" aria-label="Admin">
            <A href="/admin/users">"Users"</A>
            <A href="/admin/tokens">"Tokens"</A>
            <A href="/admin/log-sources">"Log sources"</A>
            <A href="/admin/audit">"Audit log"</A>
        </nav>
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let update = ServerAction::<UpdateUser>::new();
    let reset = ServerAction::<ResetPassword>::new();
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                update.version().get(),
                reset.version().get(),
            )
        },
        |_| list_users(),
    );
    view! {
        <PageHeader title="Users" subtitle="Who can sign in, and what they may do."/>
        <AdminTabs/>
        {action_error(move || update.value().get())}
        {action_error(move || reset.value().get())}
        <Loaded data=users loading="Loading users…" ok=move |list| {
            view! {
                <div class="table-wrap">
                    <table class="table" data-testid="users-table">
                        <thead>
                            <tr>
                                <th>"User"</th>
                                <th>"Role"</th>
                                <th>"State"</th>
                                <th>"Last sign-in"</th>
                                <th>"Actions"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {list.into_iter().map(|u| view! { <UserRow user=u update reset/> }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }/>
        <section class="card">
            <h2>"Add a user"</h2>
            <KeepForm>
            <ActionForm action=create attr:class="form-grid" attr:data-testid="create-user">
                <label>"User name" <input type="text" name="username" required pattern="[a-z0-9][a-z0-9._\\-]*" maxlength="64"/></label>
                <label>
                    "Role"
                    <select name="role">
                        <option value="viewer">"viewer: sees everything"</option>
                        <option value="operator">"operator: also runs actions"</option>
                        <option value="admin">"admin: also manages users and restores"</option>
                    </select>
                </label>
                <label>"Password" <input type="password" name="password" required minlength="10" autocomplete="new-password"/></label>
                <button type="submit" class="btn primary" disabled=move || create.pending().get()>"Add user"</button>
            </ActionForm>
            </KeepForm>
            {action_error(move || create.value().get())}
            {move || matches!(create.value().get(), Some(Ok(()))).then(|| view! { <p class="notice ok">"User added."</p> })}
        </section>
    }
}

#[component]
fn UserRow(
    user: UserSummary,
    update: ServerAction<UpdateUser>,
    reset: ServerAction<ResetPassword>,
) -> impl IntoView {
    let (name_role, name_state, name_pw) = (
        user.username.clone(),
        user.username.clone(),
        user.username.clone(),
    );
    let disabled = user.disabled;
    view! {
        <tr data-testid=format!("user-{}", user.username)>
            <td>{user.username.clone()}</td>
            <td>
                <ActionForm action=update attr:class="inline">
                    <input type="hidden" name="username" value=name_role/>
                    <select name="role" aria-label="Role">
                        {Role::ALL.into_iter().map(|r| view! {
                            <option value=r.as_str() selected=r == user.role>{r.as_str()}</option>
                        }).collect_view()}
                    </select>
                    <button type="submit" class="btn small">"Set role"</button>
                </ActionForm>
            </td>
            <td>
                {if disabled {
                    view! { <span class="badge bad">"disabled"</span> }.into_any()
                } else {
                    view! { <span class="badge ok">"active"</span> }.into_any()
                }}
            </td>
            <td>{user.last_login_at.as_ref().map(fmt_time).unwrap_or_else(|| "never".into())}</td>
            <td>
                <div class="actions">
                <ActionForm action=update attr:class="inline">
                    <input type="hidden" name="username" value=name_state/>
                    <input type="hidden" name="disabled" value=if disabled { "false" } else { "true" }/>
                    <button type="submit" class="btn small">{if disabled { "Enable" } else { "Disable" }}</button>
                </ActionForm>
                <details class="inline">
                    <summary class="btn small">"Reset password"</summary>
                    <ActionForm action=reset attr:class="inline">
                        <input type="hidden" name="username" value=name_pw/>
                        <input type="password" name="password" required minlength="10" placeholder="new password" autocomplete="new-password"/>
                        <button type="submit" class="btn small">"Set"</button>
                    </ActionForm>
                </details>
                </div>
            </td>
        </tr>
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| param(query, k).filter(|s| !s.is_empty());
    let page = Resource::new(
        move || {
            (
                get("before").and_then(|b| b.parse::<i64>().ok()),
                get("actor"),
                get("action"),
            )
        },
        |(before, actor, action)| list_audit(before, actor, action),
    );
    view! {
        <PageHeader title="Audit log" subtitle="Sign-ins and every change (users, tokens, rules, checks, channels, processes, scrape targets, log sources, backups): who, what, when, from where."/>
        <AdminTabs/>
        <Loaded data=page ok=move |p| {
            view! {
                <AuditFilters actors=p.actors.clone() actions=p.actions.clone() actor=get("actor") action=get("action")/>
                {if p.entries.is_empty() {
                    view! { <div class="card empty" data-testid="audit-empty"><p>{if get("actor").is_some() || get("action").is_some() { "No entries match these filters." } else { "No audit entries yet." }}</p></div> }.into_any()
                } else { view! {
                <div class="table-wrap">
                    <table class="table" data-testid="audit-table">
                        <thead>
                            <tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Target"</th><th>"Outcome"</th><th>"From"</th><th>"Detail"</th></tr>
                        </thead>
                        <tbody>
                            {p.entries.into_iter().map(|e| view! {
                                <tr>
                                    <td class="nowrap">{fmt_time(&e.at)}</td>
                                    <td>{e.actor.unwrap_or_else(|| "—".into())}</td>
                                    <td><code>{e.action}</code></td>
                                    <td>{e.target.unwrap_or_default()}</td>
                                    <td>{if e.success { view! { <span class="badge ok">"ok"</span> } } else { view! { <span class="badge bad">"failed"</span> } }}</td>
                                    <td>{e.ip.unwrap_or_default()}</td>
                                    <td class="muted">{if e.detail.as_object().is_some_and(|o| o.is_empty()) { String::new() } else { e.detail.to_string() }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {p.next_before.map(|b| {
                    let mut href = format!("/admin/audit?before={b}");
                    for k in ["actor", "action"] {
                        if let Some(v) = get(k) {
                            href.push_str(&format!("&{k}={}", crate::components::urlencode(&v)));
                        }
                    }
                    view! { <p><a class="btn" href=href>"Older entries →"</a></p> }
                })}
                }.into_any() }}
            }.into_any()
        }/>
    }
}

/// Who and what: a plain GET form, so the filters are in the URL.
#[component]
fn AuditFilters(
    actors: Vec<String>,
    actions: Vec<String>,
    actor: Option<String>,
    action: Option<String>,
) -> impl IntoView {
    let filtered = actor.is_some() || action.is_some();
    view! {
        <form method="get" action="/admin/audit" class="card search-form" data-testid="audit-filters">
            <label>"Who "
                <select name="actor">
                    <option value="">"anyone"</option>
                    {actors.into_iter().map(|a| {
                        let sel = actor.as_deref() == Some(a.as_str());
                        view! { <option value=a.clone() selected=sel>{a.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"What "
                <select name="action">
                    <option value="">"any action"</option>
                    {actions.into_iter().map(|a| {
                        let sel = action.as_deref() == Some(a.as_str());
                        view! { <option value=a.clone() selected=sel>{a.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit" class="btn primary">"Filter"</button>
            {filtered.then(|| view! { <a class="btn" href="/admin/audit">"Clear"</a> })}
        </form>
    }
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    view! {
        <PageHeader title="Tokens" subtitle="For agents pushing metrics (scope ingest) and Prometheus scraping /metrics (scope metrics)."/>
        <AdminTabs/>
        {action_error(move || revoke.value().get())}
        <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <div class="card empty" data-testid="empty-state"><p>"No tokens yet. Create one below for each group of agents."</p></div>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="table" data-testid="tokens-table">
                                <thead><tr><th>"Name"</th><th>"Scope"</th><th>"Starts with"</th><th>"Created"</th><th>"Last used"</th><th>"State"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|t| {
                                        let revoked = t.revoked_at.is_some();
                                        let name = t.name.clone();
                                        view! {
                                            <tr data-testid=format!("token-{}", t.name)>
                                                <td>{t.name.clone()}</td>
                                                <td><code>{t.scope.clone()}</code></td>
                                                <td><code>{t.prefix.clone()}"…"</code></td>
                                                <td class="nowrap">{fmt_time(&t.created_at)}" by "{t.created_by.clone().unwrap_or_else(|| "CLI".into())}</td>
                                                <td class="nowrap">{t.last_used_at.as_ref().map(fmt_time).unwrap_or_else(|| "never".into())}</td>
                                                <td>{if revoked { view! { <span class="badge bad">"revoked"</span> }.into_any() } else { view! { <span class="badge ok">"active"</span> }.into_any() }}</td>
                                                <td>{(!revoked).then(|| view! {
                                                    <Confirm label="Revoke" question="Revoke this token? Agents and scrapers using it stop at once.">
                                                        <ActionForm action=revoke attr:class="inline">
                                                            <input type="hidden" name="name" value=name.clone()/>
                                                            <button type="submit" class="btn small danger">"Yes, revoke"</button>
                                                        </ActionForm>
                                                    </Confirm>
                                                })}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
        <CreateTokenForm/>
    }
}

/// Creating a token shows it once, so this form runs in the browser: the answer stays on the page.
#[island]
fn CreateTokenForm() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    view! {
        <section class="card">
            <h2>"Create a token"</h2>
            <ActionForm action=create attr:class="form-grid" attr:data-testid="create-token">
                <label>"Name" <input type="text" name="name" required pattern="[a-z0-9][a-z0-9._\\-]*" maxlength="64" placeholder="web-agents"/></label>
                <label>
                    "Scope"
                    <select name="scope">
                        <option value="ingest">"ingest: agents push metrics"</option>
                        <option value="metrics">"metrics: scrape /metrics"</option>
                    </select>
                </label>
                <button type="submit" class="btn primary" disabled=move || create.pending().get()>"Create token"</button>
            </ActionForm>
            {move || create.value().get().map(|r| match r {
                Ok(token) => view! {
                    <div class="notice ok" data-testid="new-token">
                        <strong>"Copy this token now; it is not shown again."</strong>
                        <p><code class="secret">{token}</code></p>
                        <p class="muted"><a href="/admin/tokens">"Done: show it in the list"</a></p>
                    </div>
                }.into_any(),
                Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
            })}
        </section>
    }
}
