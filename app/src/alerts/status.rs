//! The public status page (`status_page = true`): the checks marked public under their public
//! names, a 90-day uptime bar of daily cells (maintenance excluded), and the open incidents an
//! operator gave a public title. Nothing else: no host names, no URLs, no internal titles.
//! The page is plain HTML rendered here, pure, so that what it can show is all in one place.

use crate::services::Liveness;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// Days the uptime bar covers.
pub const DAYS: usize = 90;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatusPage {
    pub title: String,
    /// `operational`, `degraded` (some checks down) or `down` (all down).
    pub overall: String,
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub updated_at: Timestamp,
    pub checks: Vec<StatusCheck>,
    pub incidents: Vec<StatusIncident>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatusCheck {
    /// The public name.
    pub name: String,
    /// `up`, `down` or `unknown`.
    pub state: Liveness,
    /// Over the 90 days, maintenance excluded; null without results.
    pub uptime_90d: Option<f64>,
    /// Oldest first, one per UTC day.
    pub days: Vec<StatusDay>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatusDay {
    /// `2026-12-01`.
    pub day: String,
    /// Percent up that day; null without results.
    pub uptime: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatusIncident {
    pub title: String,
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub started_at: Timestamp,
    /// Someone is on it.
    pub acknowledged: bool,
    /// Its alerts resolved (it stays until closed).
    pub resolved: bool,
}

/// The overall state from the checks' states.
pub fn overall(states: &[Liveness]) -> &'static str {
    let down = states.iter().filter(|s| **s == Liveness::Down).count();
    match down {
        0 => "operational",
        d if d == states.len() => "down",
        _ => "degraded",
    }
}

/// The daily cells of `days` (oldest first) from (day, up, total) counts, and the uptime over
/// all of them.
pub fn cells(
    days: &[time::Date],
    counts: &[(time::Date, i64, i64)],
) -> (Vec<StatusDay>, Option<f64>) {
    let (mut up_all, mut total_all) = (0, 0);
    let cells = days
        .iter()
        .map(|d| {
            let (up, total) = counts
                .iter()
                .filter(|c| c.0 == *d)
                .fold((0, 0), |(u, t), c| (u + c.1, t + c.2));
            up_all += up;
            total_all += total;
            StatusDay {
                day: d.to_string(),
                uptime: super::rules::uptime(up, total),
            }
        })
        .collect();
    (cells, super::rules::uptime(up_all, total_all))
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-12-01 14:34 UTC`.
fn minute(t: &Timestamp) -> String {
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 99.995 => "100 %".into(),
        Some(v) => format!("{v:.2} %"),
        None => "no data".into(),
    }
}

/// A day's cell colour: full, a little down, much down, or no data.
pub fn tone(uptime: Option<f64>) -> &'static str {
    match uptime {
        None => "none",
        Some(u) if u >= 99.9 => "ok",
        Some(u) if u >= 95.0 => "warn",
        Some(_) => "bad",
    }
}

/// The page as HTML: self-contained (its own small stylesheet, no script), readable on a phone.
pub fn html(p: &StatusPage) -> String {
    let (headline, tone_class) = match p.overall.as_str() {
        "operational" => ("All systems operational", "ok"),
        "down" => ("Major outage", "bad"),
        _ => ("Partial outage", "warn"),
    };
    let mut body = String::new();
    if !p.incidents.is_empty() {
        body.push_str("<section class=\"incidents\"><h2>Current incidents</h2>");
        for i in &p.incidents {
            body.push_str(&format!(
                "<article class=\"incident\" data-testid=\"status-incident\"><strong>{}</strong><div class=\"muted\">Since {} · {}</div></article>",
                esc(&i.title),
                esc(&minute(&i.started_at)),
                match (i.resolved, i.acknowledged) {
                    (true, _) => "resolved",
                    (false, true) => "being worked on",
                    (false, false) => "investigating",
                }
            ));
        }
        body.push_str("</section>");
    }
    body.push_str("<section class=\"checks\">");
    if p.checks.is_empty() {
        body.push_str("<p class=\"muted\">No services are shown here yet.</p>");
    }
    for c in &p.checks {
        let state = match c.state {
            Liveness::Up => ("Operational", "ok"),
            Liveness::Down => ("Down", "bad"),
            Liveness::Unknown => ("Unknown", "none"),
        };
        body.push_str(&format!(
            "<article class=\"check\" data-testid=\"status-check\"><div class=\"row\"><strong>{}</strong><span class=\"state {}\">{}</span></div><div class=\"bar\" role=\"img\" aria-label=\"{} uptime over {DAYS} days\">",
            esc(&c.name),
            state.1,
            state.0,
            esc(&pct(c.uptime_90d))
        ));
        for d in &c.days {
            body.push_str(&format!(
                "<i class=\"{}\" title=\"{}: {}\"></i>",
                tone(d.uptime),
                esc(&d.day),
                esc(&pct(d.uptime))
            ));
        }
        body.push_str(&format!(
            "</div><div class=\"row muted small\"><span>{DAYS} days ago</span><span>{} uptime</span><span>today</span></div></article>",
            esc(&pct(c.uptime_90d))
        ));
    }
    body.push_str("</section>");
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>{CSS}</style></head><body><main><h1>{title}</h1><p class=\"overall {tone_class}\" data-testid=\"status-overall\">{headline}</p>{body}<footer class=\"muted small\">Updated {updated}. Days are UTC days; maintenance is left out.</footer></main></body></html>",
        title = esc(&p.title),
        updated = esc(&minute(&p.updated_at)),
    )
}

const CSS: &str = "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f6f7f9;color:#1d2330}main{max-width:860px;margin:0 auto;padding:24px 16px}h1{font-size:24px;margin:0 0 12px}h2{font-size:17px}.overall{padding:14px 16px;border-radius:8px;color:#fff;font-weight:600}.overall.ok{background:#1f8a4c}.overall.warn{background:#c27c0e}.overall.bad{background:#c0392b}article{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:14px 16px;margin:12px 0}.row{display:flex;justify-content:space-between;gap:8px}.state.ok{color:#1f8a4c}.state.bad{color:#c0392b}.state.none{color:#6b7280}.bar{display:flex;gap:2px;margin:10px 0 6px;height:30px}.bar i{flex:1;border-radius:2px;background:#d1d5db}.bar i.ok{background:#2fb464}.bar i.warn{background:#e0a526}.bar i.bad{background:#d64541}.muted{color:#6b7280}.small{font-size:12px}footer{margin-top:20px}@media (max-width:480px){.bar{gap:1px}}";

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn overall_states() {
        use Liveness::*;
        for (states, want) in [
            (vec![], "operational"),
            (vec![Up, Up], "operational"),
            (vec![Up, Down], "degraded"),
            (vec![Down, Down], "down"),
            (vec![Unknown, Up], "operational"),
        ] {
            assert_eq!(overall(&states), want, "{states:?}");
        }
    }

    #[test]
    fn cells_and_tones() {
        let days = [
            date!(2026 - 11 - 29),
            date!(2026 - 11 - 30),
            date!(2026 - 12 - 01),
        ];
        let (c, all) = cells(
            &days,
            &[
                (date!(2026 - 11 - 30), 90, 100),
                // A day counted in two parts (rolled up, then still in the results) adds up.
                (date!(2026 - 12 - 01), 50, 50),
                (date!(2026 - 12 - 01), 50, 50),
            ],
        );
        let got: Vec<(String, Option<f64>, &str)> = c
            .iter()
            .map(|d| (d.day.clone(), d.uptime, tone(d.uptime)))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-11-29".into(), None, "none"),
                ("2026-11-30".into(), Some(90.0), "bad"),
                ("2026-12-01".into(), Some(100.0), "ok"),
            ]
        );
        assert_eq!(all, Some(95.0));
        assert_eq!(tone(Some(99.0)), "warn");
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let p = StatusPage {
            title: "Acme <status>".into(),
            overall: "degraded".into(),
            updated_at: Timestamp(datetime!(2026-12-01 10:00 UTC)),
            checks: vec![StatusCheck {
                name: "API \"v2\"".into(),
                state: Liveness::Down,
                uptime_90d: Some(99.5),
                days: vec![StatusDay {
                    day: "2026-12-01".into(),
                    uptime: Some(99.5),
                }],
            }],
            incidents: vec![StatusIncident {
                title: "Payments <slow>".into(),
                started_at: Timestamp(datetime!(2026-12-01 09:00 UTC)),
                acknowledged: true,
                resolved: false,
            }],
        };
        let h = html(&p);
        assert!(h.contains("<h1>Acme &lt;status&gt;</h1>"), "{h}");
        assert!(h.contains("API &quot;v2&quot;"));
        assert!(h.contains("Payments &lt;slow&gt;"));
        assert!(h.contains("Partial outage"));
        assert!(h.contains("title=\"2026-12-01: 99.50 %\""));
        assert!(!h.contains("<script"));
    }
}
