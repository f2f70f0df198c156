//! The Overview page: "is anything wrong?" at a glance: firing alerts and checks that are
//! down first, then the hosts and Opsdeck's own health.

use crate::components::{fmt_duration, ErrorNotice, PageHeader};
use crate::health::system_health;
use crate::metrics::HostCards;
use leptos::prelude::*;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let health = Resource::new(|| (), |_| system_health());
    view! {
        <PageHeader title="Overview" subtitle="Opsdeck and the services it watches."/>
        <crate::incidents::OpenIncidents/>
        <crate::alerts::ActiveMaintenance/>
        <crate::alerts::OverviewAlerts/>
        <h2 class="section-title">"Hosts"</h2>
        <HostCards/>
        <h2 class="section-title">"Opsdeck itself"</h2>
        <Transition fallback=|| view! { <p class="muted">"Checking…"</p> }>
            {move || Suspend::new(async move {
                match health.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(h) => {
                        let db = h.components.clone().map(|c| c.database);
                        let ok = h.is_ok();
                        view! {
                            <section class="cards">
                                <article class="card stat" data-testid="health-status">
                                    <h2>"Opsdeck"</h2>
                                    <p class=if ok { "big ok" } else { "big bad" }>
                                        {if ok { "Healthy" } else { "Degraded" }}
                                    </p>
                                    <p class="muted">
                                        "Version " {h.version.clone().unwrap_or_default()}
                                    </p>
                                </article>
                                <article class="card stat" data-testid="health-database">
                                    <h2>"Database"</h2>
                                    {match db {
                                        Some(d) if d.status == "ok" => view! {
                                            <p class="big ok">"Reachable"</p>
                                            <p class="muted">
                                                {format!("{:.1} ms round trip · schema v{}", d.latency_ms.unwrap_or_default(), d.schema_version.unwrap_or_default())}
                                            </p>
                                        }.into_any(),
                                        Some(d) => view! {
                                            <p class="big bad">"Unreachable"</p>
                                            <p class="muted">{d.error.unwrap_or_default()}</p>
                                        }.into_any(),
                                        None => view! { <p class="muted">"No data"</p> }.into_any(),
                                    }}
                                </article>
                                <article class="card stat" data-testid="health-uptime">
                                    <h2>"Uptime"</h2>
                                    <p class="big">{fmt_duration(h.uptime_seconds.unwrap_or_default())}</p>
                                    <p class="muted">"since this Opsdeck process started"</p>
                                </article>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
