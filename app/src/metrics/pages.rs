//! Hosts pages and the host cards of the Overview.

use super::{get_host_cards, get_host_charts, level, Chart, HostCard, RANGES};
use crate::components::{fmt_duration, fmt_time, param, ErrorNotice, PageHeader};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

/// A 100×24 sparkline of percentages.
pub(crate) fn sparkline(values: &[f64]) -> impl IntoView {
    let n = values.len();
    let path = if n < 2 {
        String::new()
    } else {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = i as f64 * 100.0 / (n - 1) as f64;
                let y = 24.0 - v.clamp(0.0, 100.0) / 100.0 * 22.0 - 1.0;
                format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" })
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    view! {
        <svg class="spark" viewBox="0 0 100 24" preserveAspectRatio="none" aria-hidden="true">
            <path d=path/>
        </svg>
    }
}

fn stat_row(label: String, value: Option<f64>, spark: Vec<f64>) -> impl IntoView {
    let (text, class) = match value {
        Some(v) => (format!("{v:.0}%"), level(v)),
        None => ("—".to_string(), "none"),
    };
    view! {
        <div class=format!("stat-row {class}")>
            <span class="stat-label">{label}</span>
            {sparkline(&spark)}
            <span class="stat-value">{text}</span>
        </div>
    }
}

fn host_card(card: HostCard) -> impl IntoView {
    let href = format!("/hosts/{}", card.name);
    let disk_label = card
        .disk
        .as_ref()
        .map(|(m, _)| format!("Disk {m}"))
        .unwrap_or_else(|| "Disk".into());
    let silent = card.silent_for_secs;
    let (name, testid) = (card.name.clone(), format!("host-card-{}", card.name));
    view! {
        <article class=if silent.is_some() { "card host-card silent" } else { "card host-card" } data-testid=testid>
            <header class="host-card-head">
                <A href=href>
                    <strong>{name}</strong>
                </A>
                {match silent {
                    Some(s) => view! { <span class="badge bad" title="No data recently">{format!("silent {}", fmt_duration(s as u64))}</span> }.into_any(),
                    None => view! { <span class="badge ok">{card.source.clone()}</span> }.into_any(),
                }}
            </header>
            {stat_row("CPU".into(), card.cpu, card.cpu_spark.clone())}
            {stat_row("Memory".into(), card.memory, card.memory_spark.clone())}
            {stat_row(disk_label, card.disk.as_ref().map(|d| d.1), card.disk_spark.clone())}
            <p class="muted small">"Last seen " {fmt_time(&card.last_seen)}</p>
        </article>
    }
}

/// One card per host, for the Overview and the Hosts list.
#[component]
pub fn HostCards() -> impl IntoView {
    let cards = Resource::new(|| (), |_| get_host_cards());
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading hosts…"</p> }>
            {move || Suspend::new(async move {
                match cards.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <div class="card empty" data-testid="empty-state">
                            <h2>"No hosts reporting yet"</h2>
                            <p class="muted">
                                "Opsdeck records its own host a few seconds after it starts. To add other hosts, create an "
                                <code>"ingest"</code>" token (Admin › Tokens, or "<code>"opsdeck token add NAME --scope ingest"</code>
                                ") and run "<code>"opsdeck agent --server URL --token-file FILE"</code>" on each host."
                            </p>
                        </div>
                    }.into_any(),
                    Ok(list) => view! {
                        <section class="cards hosts-grid" data-testid="host-cards">
                            {list.into_iter().map(host_card).collect_view()}
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn HostsPage() -> impl IntoView {
    view! {
        <PageHeader title="Hosts" subtitle="CPU, memory, disk, I/O, network and connections per host."/>
        <HostCards/>
    }
}

/// The nearest point at or around `t` in a time-sorted list.
fn nearest(points: &[(i64, f64)], t: i64) -> Option<(i64, f64)> {
    if points.is_empty() {
        return None;
    }
    let i = points.partition_point(|p| p.0 < t);
    let candidates = [i.checked_sub(1), (i < points.len()).then_some(i)];
    candidates
        .into_iter()
        .flatten()
        .map(|j| points[j])
        .min_by_key(|p| (p.0 - t).abs())
}

/// The event by which the charts of a page share the time under the pointer (one crosshair).
#[cfg(feature = "hydrate")]
const HOVER_EVENT: &str = "opsdeck-chart-hover";

/// A chart with the value under the pointer, on every chart of the page at once (a shared
/// crosshair). With `zoom`, dragging across it shows that window (`?from=…&to=…`, in Unix
/// seconds) on the same page.
#[island]
pub fn ChartView(chart: Chart, #[prop(optional)] zoom: Option<bool>) -> impl IntoView {
    let zoom = zoom.unwrap_or(false);
    // The time under the pointer, on whichever chart of the page it is.
    let (cursor, set_cursor) = signal(None::<i64>);
    // A drag in progress: where it started and where it is, as fractions of the width.
    let (drag, set_drag) = signal(None::<(f64, f64)>);
    let [left, right, width, _height] = chart.plot;
    let (from, to, unit) = (chart.from, chart.to, chart.unit);
    let axis = PlotAxis {
        left: left / width,
        right: right / width,
        from,
        to,
    };
    let lines = chart.lines.clone();
    let empty = lines.iter().all(|l| l.points.is_empty());
    let marks: Vec<_> = chart
        .marks
        .iter()
        .filter_map(|m| axis.frac_of(m.at).map(|f| (f, m.label.clone())))
        .collect();
    #[cfg(not(feature = "hydrate"))]
    let _ = set_cursor;
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use leptos::wasm_bindgen::JsCast;
        let handle = window_event_listener_untyped(HOVER_EVENT, move |ev| {
            let t = ev
                .dyn_into::<web_sys::CustomEvent>()
                .ok()
                .and_then(|e| e.detail().as_f64());
            set_cursor.set(t.map(|t| t as i64));
        });
        on_cleanup(move || handle.remove());
    });
    let frac = |ev: &leptos::ev::MouseEvent| {
        let target = event_target::<leptos::web_sys::HtmlElement>(ev);
        let w = target.client_width() as f64;
        (w > 0.0).then(|| ev.offset_x() as f64 / w)
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        let Some(f) = frac(&ev) else { return };
        if let Some((start, _)) = drag.get_untracked() {
            set_drag.set(Some((start, f)));
        }
        share_hover(axis.time_at(f));
    };
    let on_down = move |ev: leptos::ev::MouseEvent| {
        if let (true, Some(f)) = (zoom, frac(&ev)) {
            ev.prevent_default();
            set_drag.set(Some((f, f)));
        }
    };
    let on_up = move |_: leptos::ev::MouseEvent| {
        if let Some(window) = drag.get_untracked().and_then(|(a, b)| axis.window(a, b)) {
            show_window(window);
        }
        set_drag.set(None);
    };
    let on_leave = move |_| {
        set_drag.set(None);
        share_hover(None);
    };
    let selection = move || {
        let (a, b) = drag.get()?;
        ((a - b).abs() > 0.002).then(|| {
            let style = format!(
                "left: {:.2}%; width: {:.2}%",
                a.min(b) * 100.0,
                (a - b).abs() * 100.0
            );
            view! { <div class="zoom-select" style=style data-testid="zoom-select"></div> }
        })
    };
    let tooltip = move || {
        let t = cursor.get()?;
        let frac = axis.frac_of(t)?;
        let rows: Vec<_> = lines
            .iter()
            .filter_map(|l| nearest(&l.points, t).map(|p| (l.label.clone(), l.color.clone(), p)))
            .collect();
        let shown = rows.first().map(|r| r.2 .0).unwrap_or(t);
        let when = time::OffsetDateTime::from_unix_timestamp(shown)
            .map(|t| fmt_time(&t))
            .unwrap_or_default();
        let pos = format!("left: {:.2}%", frac * 100.0);
        let side = if frac > 0.6 {
            "tooltip left-side"
        } else {
            "tooltip"
        };
        Some(view! {
            <div class="cursor" style=pos.clone()></div>
            <div class=side style=pos data-testid="chart-tooltip">
                <div class="muted">{when}</div>
                {rows.into_iter().map(|(label, color, p)| view! {
                    <div><span class="swatch" style=format!("background:{color}")></span>{label}": "<strong>{unit.format(p.1)}</strong></div>
                }).collect_view()}
            </div>
        })
    };
    view! {
        <article class="card chart" data-testid=format!("chart-{}", chart.key)>
            <header class="chart-head">
                <h2>{chart.title.clone()}</h2>
                <div class="legend">
                    {chart.lines.iter().map(|l| view! {
                        <span><span class="swatch" style=format!("background:{}", l.color)></span>{l.label.clone()}</span>
                    }).collect_view()}
                </div>
            </header>
            {if empty {
                view! { <p class="muted chart-empty">"No data in this range."</p> }.into_any()
            } else {
                view! {
                    <div class="chart-plot" title=zoom.then_some("Drag across the chart to zoom in")>
                        <div class="chart-svg" inner_html=chart.svg.clone()></div>
                        {marks.into_iter().map(|(f, label)| {
                            let title = label.clone();
                            // Past the middle the label sits left of its line, inside the chart.
                            let class = if f > 0.6 { "chart-mark left-side" } else { "chart-mark" };
                            view! {
                                <div class=class style=format!("left: {:.2}%", f * 100.0) title=title data-testid="chart-mark">
                                    <span>{label}</span>
                                </div>
                            }
                        }).collect_view()}
                        <div class="chart-overlay" on:mousemove=on_move on:mousedown=on_down on:mouseup=on_up on:mouseleave=on_leave></div>
                        {selection}
                        {tooltip}
                    </div>
                }.into_any()
            }}
        </article>
    }
}

/// Where a chart's plot lies across its width (fractions) and the times at its two ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotAxis {
    pub left: f64,
    pub right: f64,
    pub from: i64,
    pub to: i64,
}

impl PlotAxis {
    /// The time at a fraction of the width, if it falls on the plot.
    pub fn time_at(self, frac: f64) -> Option<i64> {
        if frac < self.left || frac > self.right || self.right <= self.left {
            return None;
        }
        let share = (frac - self.left) / (self.right - self.left);
        Some(self.from + (share * (self.to - self.from) as f64).round() as i64)
    }

    /// Where a time falls across the width, if on the plot.
    pub fn frac_of(self, t: i64) -> Option<f64> {
        if t < self.from || t > self.to || self.to <= self.from {
            return None;
        }
        let share = (t - self.from) as f64 / (self.to - self.from) as f64;
        Some(self.left + share * (self.right - self.left))
    }

    /// The window a drag from `a` to `b` (fractions, either way) selects, clamped to the plot;
    /// `None` for a click or a drag shorter than a minute.
    pub fn window(self, a: f64, b: f64) -> Option<(i64, i64)> {
        let clamp = |f: f64| f.clamp(self.left, self.right);
        let (lo, hi) = (clamp(a.min(b)), clamp(a.max(b)));
        let (t0, t1) = (self.time_at(lo)?, self.time_at(hi)?);
        (t1 - t0 >= 60).then_some((t0, t1))
    }
}

/// The window "Zoom out" shows: twice as wide, around the same middle.
pub fn zoomed_out((from, to): (i64, i64)) -> (i64, i64) {
    let span = (to - from).max(60);
    let before = span / 2;
    (from - before, to + (span - before))
}

/// " · Zoom out" after a custom window (a drag or from–to): the window twice as wide.
/// `shown`: the window the page's charts show (any chart's `from`, `to`).
pub fn zoom_out_link(
    base: &str,
    range_label: &str,
    shown: Option<(i64, i64)>,
) -> Option<impl IntoView> {
    let shown = shown.filter(|_| range_label == "custom")?;
    let (from, to) = zoomed_out(shown);
    let href = format!("{base}?from={from}&to={to}");
    Some(view! { " · "<a href=href data-testid="zoom-out">"Zoom out"</a> })
}

/// Tells every chart of the page the time under the pointer (`None`: it left).
fn share_hover(t: Option<i64>) {
    #[cfg(feature = "hydrate")]
    {
        let init = web_sys::CustomEventInit::new();
        init.set_detail(&t.map_or(leptos::wasm_bindgen::JsValue::NULL, |t| (t as f64).into()));
        if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict(HOVER_EVENT, &init) {
            let _ = window().dispatch_event(&ev);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = t;
}

/// Shows `from`–`to` on the same page: the address keeps its other parameters.
fn show_window((from, to): (i64, i64)) {
    #[cfg(feature = "hydrate")]
    {
        let location = window().location();
        let (Ok(path), Ok(search)) = (location.pathname(), location.search()) else {
            return;
        };
        let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else {
            return;
        };
        params.delete("range");
        params.set("from", &from.to_string());
        params.set("to", &to.to_string());
        let _ = location.set_href(&format!("{path}?{}", String::from(params.to_string())));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (from, to);
}

/// A page's time window as its address gives it (`?range=`, or `?from=&to=`), and the range
/// shown when it gives none: the one time model of every page that charts.
#[derive(Clone, Copy)]
pub struct WindowQuery {
    query: Memo<leptos_router::params::ParamsMap>,
    default: &'static str,
}

impl WindowQuery {
    pub fn new(default: &'static str) -> Self {
        Self {
            query: use_query_map(),
            default,
        }
    }

    pub fn range(self) -> Option<String> {
        param(self.query, "range")
    }

    pub fn from(self) -> Option<String> {
        param(self.query, "from")
    }

    /// `range`, `from` and `to`, as the page's server function takes them.
    pub fn args(self) -> (Option<String>, Option<String>, Option<String>) {
        (self.range(), self.from(), param(self.query, "to"))
    }

    /// What the range picker marks: `custom` for a from–to window, else the range.
    pub fn current(self) -> String {
        if self.from().is_some() {
            "custom".to_string()
        } else {
            self.range().unwrap_or_else(|| self.default.into())
        }
    }
}

/// The time picker of every charting page: the last 1 h … 30 d, or a custom from–to, kept in
/// the page's address (`?range=6h`, `?from=…&to=…`) so a link or a reload shows the same window.
/// `base` is the page's path; `current` the range shown (`custom` for from–to).
#[component]
pub fn RangeNav(base: Signal<String>, current: Signal<String>) -> impl IntoView {
    view! {
        <nav class="ranges" aria-label="Time range">
            {RANGES.iter().map(|(label, _)| {
                let label = *label;
                view! {
                    <A href=move || format!("{}?range={label}", base.get()) attr:class=move || if current.get() == label { "btn small active" } else { "btn small" }>
                        {label}
                    </A>
                }
            }).collect_view()}
            <details class="custom-range">
                <summary class=move || if current.get() == "custom" { "btn small active" } else { "btn small" }>"Custom"</summary>
                <form method="get" class="inline">
                    <label>"From" <input type="datetime-local" name="from" required/></label>
                    <label>"To (empty: now)" <input type="datetime-local" name="to"/></label>
                    <button type="submit" class="btn small primary">"Show"</button>
                </form>
            </details>
        </nav>
    }
}

#[component]
pub fn HostPage() -> impl IntoView {
    let params = use_params_map();
    let win = WindowQuery::new(super::DEFAULT_RANGE);
    let host = move || param(params, "name").unwrap_or_default();
    let live = move || {
        win.from().is_none() && matches!(win.range().as_deref(), None | Some("1h" | "6h" | "24h"))
    };
    let charts = Resource::new(
        move || (host(), win.args()),
        |(h, (r, f, t))| get_host_charts(h, r, f, t),
    );
    let current = move || win.current();
    view! {
        <leptos_meta::Title text=move || format!("Host {}", host())/>
        <div class="page-header row">
            <div>
                <p class="muted"><A href="/hosts">"Hosts"</A>" ›"</p>
                <h1>{host}</h1>
                <p class="muted small"><A href=move || format!("/services?host={}", host())>"Services on this host"</A></p>
            </div>
            <RangeNav base=Signal::derive(move || format!("/hosts/{}", host())) current=Signal::derive(current)/>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading charts…"</p> }>
            {move || {
                // Read before the await: the route's signals may be gone once the data is in
                // (a panic seen under load when they were read after it).
                let live = live();
                Suspend::new(async move {
                match charts.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(data) => view! {
                        <p class="muted small" data-testid="host-status">
                            {if data.silent { view! { <span class="badge bad">"silent"</span>" " }.into_any() } else { ().into_any() }}
                            "Last seen "{data.last_seen.as_ref().map(fmt_time).unwrap_or_default()}
                            " · showing "{data.range_label.clone()}" from the "{data.tier.clone()}" tier"
                            {if live { " · refreshes every 30 s" } else { "" }}
                            {zoom_out_link(&format!("/hosts/{}", data.host), &data.range_label, data.charts.first().map(|c| (c.from, c.to)))}
                        </p>
                        {live.then(|| view! { <AutoRefresh seconds=30/> })}
                        <section class="charts">
                            {data.charts.into_iter().map(|c| view! { <ChartView chart=c zoom=true/> }).collect_view()}
                        </section>
                    }.into_any(),
                }
            })}}
        </Transition>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drag_selects_the_times_under_it() {
        // The plot spans 10 %–90 % of the width, 1000 s to 1800 s.
        let axis = PlotAxis {
            left: 0.1,
            right: 0.9,
            from: 1000,
            to: 1800,
        };
        assert_eq!(axis.time_at(0.1), Some(1000));
        assert_eq!(axis.time_at(0.5), Some(1400));
        assert_eq!(axis.time_at(0.05), None);
        assert_eq!(axis.frac_of(1400), Some(0.5));
        assert_eq!(axis.frac_of(2000), None);
        for (a, b, want) in [
            (0.3, 0.7, Some((1200, 1600))),
            (0.7, 0.3, Some((1200, 1600))),
            (0.0, 0.5, Some((1000, 1400))),
            (0.5, 1.0, Some((1400, 1800))),
            (0.5, 0.52, None),
            (0.5, 0.5, None),
        ] {
            assert_eq!(axis.window(a, b), want, "{a}..{b}");
        }
        assert_eq!(zoomed_out((1000, 1800)), (600, 2200));
        assert_eq!(zoomed_out((1000, 1000)), (970, 1030));
        // An odd span doubles exactly too.
        assert_eq!(zoomed_out((1000, 1801)), (600, 2202));
    }

    #[test]
    fn nearest_point_under_the_pointer() {
        let pts = [(10, 1.0), (20, 2.0), (30, 3.0)];
        let cases = [(0, 10), (14, 10), (16, 20), (25, 20), (29, 30), (99, 30)];
        for (t, want) in cases {
            assert_eq!(nearest(&pts, t).map(|p| p.0), Some(want), "t={t}");
        }
        assert_eq!(nearest(&[], 5), None);
    }
}

/// Reloads the page every `seconds` while it is visible, so live ranges stay current.
#[island]
pub fn AutoRefresh(seconds: u32) -> impl IntoView {
    Effect::new(move |_| {
        let reload = || {
            let Some(window) = leptos::web_sys::window() else {
                return;
            };
            let hidden = window.document().map(|d| d.hidden()).unwrap_or(false);
            if !hidden {
                let _ = window.location().reload();
            }
        };
        if let Ok(handle) =
            set_interval_with_handle(reload, std::time::Duration::from_secs(seconds.into()))
        {
            on_cleanup(move || handle.clear());
        }
    });
}
