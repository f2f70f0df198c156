//! Product areas whose data collection is not part of this installation yet. Each page says
//! plainly that there is nothing to show and why, rather than showing invented data.

use crate::components::{EmptyState, PageHeader};
use leptos::prelude::*;

#[component]
pub fn AlertsPage() -> impl IntoView {
    view! {
        <PageHeader title="Alerts" subtitle="Threshold rules, health checks and notifications."/>
        <EmptyState title="No alert rules yet">
            "No alert rules or health checks are configured on this Opsdeck yet."
        </EmptyState>
    }
}
