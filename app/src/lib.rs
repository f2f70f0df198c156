//! Opsdeck as the browser sees it: routes, pages, components and the server functions they call.
//! Server-only code sits in `#[cfg(feature = "ssr")]` modules and is never compiled to WASM.

#![recursion_limit = "256"]

pub mod alerts;
pub mod auth;
pub mod backups;
pub mod components;
pub mod error;
pub mod forecast;
pub mod health;
pub mod incidents;
pub mod logs;
pub mod metrics;
pub mod overview;
pub mod redact;
pub mod services;
pub mod specs;
mod text_enum;
pub mod timestamp;
pub mod zone;

#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod locks;
#[cfg(feature = "ssr")]
pub mod partitions;
#[cfg(feature = "ssr")]
pub mod patch;
#[cfg(feature = "ssr")]
pub mod runtime;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Redirect, Route, Router, Routes},
    path, SsrMode,
};

/// The Content Security Policy of a page: scripts only from this site or with this response's
/// nonce (the hydration script), WASM allowed to compile, nothing framed or framing.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    )
}

/// The HTML document around the app, rendered on the server only. Its inline hydration script
/// carries the response's nonce, which the response's CSP names.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(v) = http::HeaderValue::from_str(&content_security_policy(&nonce)) {
            res.insert_header(http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="stylesheet" href="/pkg/opsdeck.css"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Async rendering: the status code (401/403/404) is known before the first byte is sent.
    let ssr = SsrMode::Async;
    view! {
        <Title formatter=|t: String| if t.is_empty() { "Opsdeck".to_string() } else { format!("{t} · Opsdeck") }/>
        <Router>
            <Routes fallback=components::NotFound>
                <Route path=path!("/login") view=auth::LoginPage ssr=ssr.clone()/>
                <ParentRoute path=path!("") view=components::Layout ssr=ssr.clone()>
                    <Route path=path!("") view=overview::OverviewPage ssr=ssr.clone()/>
                    <Route path=path!("/hosts") view=metrics::HostsPage ssr=ssr.clone()/>
                    <Route path=path!("/hosts/:name") view=metrics::HostPage ssr=ssr.clone()/>
                    <Route path=path!("/logs") view=logs::LogsPage ssr=ssr.clone()/>
                    <Route path=path!("/backups") view=backups::BackupsPage ssr=ssr.clone()/>
                    <Route path=path!("/backups/runs/:id") view=backups::BackupRunPage ssr=ssr.clone()/>
                    <Route path=path!("/backups/restores/:id") view=backups::RestorePage ssr=ssr.clone()/>
                    <Route path=path!("/backups/targets/:name/health") view=backups::DbHealthPage ssr=ssr.clone()/>
                    <Route path=path!("/services") view=services::ServicesPage ssr=ssr.clone()/>
                    <Route path=path!("/services/process/:id") view=services::ProcessPage ssr=ssr.clone()/>
                    <Route path=path!("/services/target/:id") view=services::TargetPage ssr=ssr.clone()/>
                    <Route path=path!("/capacity") view=forecast::CapacityPage ssr=ssr.clone()/>
                    <Route path=path!("/incidents") view=incidents::IncidentsPage ssr=ssr.clone()/>
                    <Route path=path!("/incidents/:id") view=incidents::IncidentPage ssr=ssr.clone()/>
                    <Route path=path!("/alerts") view=alerts::AlertsPage ssr=ssr.clone()/>
                    <Route path=path!("/checks") view=alerts::ChecksPage ssr=ssr.clone()/>
                    <Route path=path!("/admin") view=|| view! { <Redirect path="/admin/users"/> } ssr=ssr.clone()/>
                    <Route path=path!("/admin/users") view=auth::UsersPage ssr=ssr.clone()/>
                    <Route path=path!("/admin/tokens") view=auth::TokensPage ssr=ssr.clone()/>
                    <Route path=path!("/admin/audit") view=auth::AuditPage ssr=ssr.clone()/>
                    <Route path=path!("/admin/log-sources") view=logs::LogSourcesPage ssr=ssr.clone()/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
