//! The Capacity page: every resource sorted by its soonest 80 % crossing, the runbook's warning
//! (80 % within 7 days) standing out, and a chart per resource with the forecast band.

use super::{get_capacity_page, ForecastRow};
use crate::components::{fmt_time, EmptyState, Loaded, PageHeader};
use crate::metrics::pages::{zoom_out_link, RangeNav, WindowQuery};
use crate::metrics::ChartView;
use leptos::prelude::*;
use time::OffsetDateTime;

fn when(t: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match t {
        None => "–".into(),
        Some(t) => {
            let days = (t - now).as_seconds_f64() / 86_400.0;
            if days <= 0.0 {
                "now".into()
            } else if days < 2.0 {
                format!("in {:.0} h", days * 24.0)
            } else {
                format!("in {days:.0} days")
            }
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}

/// What a forecast row is about, in the words of the Hosts page: "CPU", "Memory", "Disk /";
/// labels other than the mount follow in braces, so that two series of one host (say, its own
/// and one scraped from an exporter) never read alike.
pub fn resource_name(metric: &str, labels: &crate::metrics::Labels) -> String {
    let name = match (metric, labels.get("mount")) {
        (_, Some(m)) => format!("Disk {m}"),
        ("cpu_usage_percent", None) => "CPU".into(),
        ("memory_used_percent", None) => "Memory".into(),
        ("swap_used_percent", None) => "Swap".into(),
        ("tcp_connections", None) => "TCP connections".into(),
        (m, None) => m.replace('_', " "),
    };
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "mount" && !(metric == "tcp_connections" && *k == "state"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if rest.is_empty() {
        name
    } else {
        format!("{name} {{{}}}", rest.join(", "))
    }
}

fn row_view(r: &ForecastRow, now: OffsetDateTime) -> impl IntoView {
    let soon = r.eta_80.is_some_and(|t| t - now <= time::Duration::days(7));
    let what = resource_name(&r.metric, &r.labels);
    let eta = match (r.eta_80, r.eta_80_low, r.eta_80_high) {
        // Already above: "now (now – now)" says nothing; the reason does.
        (Some(e), Some(lo), Some(hi)) if e == lo && e == hi && r.reason.is_some() => {
            r.reason.clone().unwrap_or_default()
        }
        (Some(_), lo, hi) => format!(
            "{} ({} – {})",
            when(r.eta_80.map(|t| t.0), now),
            when(lo.map(|t| t.0), now),
            hi.map(|h| when(Some(*h), now))
                .unwrap_or_else(|| "beyond a year".into())
        ),
        _ => r.reason.clone().unwrap_or_else(|| "–".into()),
    };
    view! {
        <tr class=if soon { "warn-row" } else { "" } data-testid="forecast-row">
            <td>{r.host.clone()}</td>
            <td>{what}</td>
            <td class="num">{pct(r.current)}</td>
            <td class="num">{pct(r.in_7d)}</td>
            <td class="num">{pct(r.in_30d)}</td>
            <td class=if soon { "bad" } else { "" } title=r.eta_80.as_ref().map(fmt_time).unwrap_or_default()>
                {soon.then_some("⚠ ")}{eta}
            </td>
            <td>{r.model.clone().unwrap_or_else(|| "–".into())}</td>
        </tr>
    }
}

#[component]
pub fn CapacityPage() -> impl IntoView {
    let win = WindowQuery::new(super::CAPACITY_RANGE);
    let data = Resource::new(move || win.args(), |(r, f, t)| get_capacity_page(r, f, t));
    let current = move || win.current();
    view! {
        <PageHeader title="Capacity" subtitle="When CPU, memory or a disk will cross 80 %: a straight line or a daily-cycle model per series (whichever forecast the last day better), with a 90 % interval."/>
        <RangeNav base=Signal::derive(|| "/capacity".to_string()) current=Signal::derive(current)/>
        <Loaded data=data loading="Computing forecasts…" ok=move |d| {
            let now = d.now;
            let shown = if d.label == "custom" {
                format!("History from {} to {}; forecasts made at its end from the {} days before it.", fmt_time(&d.from), fmt_time(&d.now), super::FIT_DAYS)
            } else {
                format!("History of the last {}; forecasts made now from the last {} days.", d.label, super::FIT_DAYS)
            };
            let shown_window = (d.from.unix_timestamp(), d.now.unix_timestamp());
            let range = view! {
                <p class="muted small" data-testid="capacity-range">
                    {shown}
                    {zoom_out_link("/capacity", &d.label, Some(shown_window))}
                </p>
            };
            if d.items.is_empty() {
                return view! {
                    {range}
                    <EmptyState title="No forecasts yet">"Forecasts need the hourly history of a host: they appear once the collector or an agent has reported."</EmptyState>
                }.into_any();
            }
            let above = d.items.iter().filter(|(r, _)| r.is_above()).count();
            let soon = d.items.iter().filter(|(r, _)| !r.is_above() && r.eta_80.is_some_and(|t| t - now <= time::Duration::days(7))).count();
            view! {
                {range}
                {super::capacity_warning(above, soon).map(|text| view! {
                    <p class="notice warn" data-testid="capacity-warning">{text}</p>
                })}
                <div class="table-wrap"><table class="table" data-testid="forecasts">
                    <thead><tr><th>"Host"</th><th>"Resource"</th><th class="num">"Now"</th><th class="num">"In 7 days"</th><th class="num">"In 30 days"</th><th>"Reaches 80 % (90 % interval)"</th><th>"Model"</th></tr></thead>
                    <tbody>{d.items.iter().map(|(r, _)| row_view(r, *now)).collect_view()}</tbody>
                </table></div>
                <section class="charts">
                    {d.items.into_iter().filter_map(|(_, c)| c).map(|c| view! { <ChartView chart=c/> }).collect_view()}
                </section>
            }.into_any()
        }/>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_named_as_on_the_hosts_page_and_never_alike() {
        let labels = |pairs: &[(&str, &str)]| -> crate::metrics::Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let cases = [
            ("cpu_usage_percent", labels(&[]), "CPU"),
            ("memory_used_percent", labels(&[]), "Memory"),
            (
                "disk_used_percent",
                labels(&[("mount", "/data")]),
                "Disk /data",
            ),
            (
                "tcp_connections",
                labels(&[("state", "established")]),
                "TCP connections",
            ),
            (
                "cpu_usage_percent",
                labels(&[("target", "self")]),
                "CPU {target=self}",
            ),
            (
                "disk_used_percent",
                labels(&[("mount", "/"), ("target", "node")]),
                "Disk / {target=node}",
            ),
            ("queue_depth_percent", labels(&[]), "queue depth percent"),
        ];
        for (metric, labels, want) in cases {
            assert_eq!(resource_name(metric, &labels), want, "{metric} {labels:?}");
        }
    }
}
