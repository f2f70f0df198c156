//! The rules of incidents, pure: which open incident a newly firing alert joins, how an incident
//! is titled, and its post-mortem in Markdown.

use super::{IncidentDetail, TimelineEvent};
use crate::alerts::Severity;
use time::{Duration, OffsetDateTime};

/// An incident not closed, as the joining rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: i64,
    pub hosts: Vec<String>,
    pub last_event_at: OffsetDateTime,
    /// When its last alert resolved (`None` while one fires).
    pub ended_at: Option<OffsetDateTime>,
}

/// The incident an alert that starts firing at `at` on `host` joins: one still going (or ended
/// less than `join` ago) on the same host, or whose last event is less than `join` old; the
/// most recently active of them. `None`: it opens a new incident.
pub fn join_target(
    open: &[Candidate],
    host: Option<&str>,
    at: OffsetDateTime,
    join: Duration,
) -> Option<i64> {
    open.iter()
        .filter(|c| c.ended_at.is_none_or(|e| e >= at - join))
        .filter(|c| {
            host.is_some_and(|h| c.hosts.iter().any(|x| x == h)) || c.last_event_at >= at - join
        })
        .max_by_key(|c| (c.last_event_at, c.id))
        .map(|c| c.id)
}

/// An incident's title from the alert that opened it: `High CPU on web-1`.
pub fn title(rule: &str, host: Option<&str>) -> String {
    match host {
        Some(h) if !h.is_empty() => format!("{rule} on {h}"),
        _ => rule.to_string(),
    }
}

/// The worse of two severities.
pub fn worst(a: Severity, b: Severity) -> Severity {
    a.max(b)
}

/// `1 h 5 min`, `3 min 20 s`: an incident's length.
pub fn length(from: OffsetDateTime, to: OffsetDateTime) -> String {
    crate::components::fmt_duration((to - from).whole_seconds().max(0) as u64)
}

fn utc(t: OffsetDateTime) -> String {
    crate::components::fmt_time_at(t, 0)
}

/// Escapes what Markdown would read as markup in a line of text (a note, a log message).
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
    out
}

/// The post-mortem of an incident in Markdown: what, when, how long, the timeline, the context
/// figures and the notes. Times are UTC (a document outlives any viewer's zone).
pub fn postmortem(d: &IncidentDetail, now: OffsetDateTime) -> String {
    let i = &d.incident;
    let end = i.ended_at.map(|t| *t);
    let mut out = format!("# Incident {}: {}\n\n", i.id, md(&i.title));
    out += &format!("- Severity: {}\n", i.severity);
    out += &format!(
        "- Hosts: {}\n",
        if i.hosts.is_empty() {
            "–".to_string()
        } else {
            md(&i.hosts.join(", "))
        }
    );
    out += &format!("- Started: {}\n", utc(*i.started_at));
    out += &match end {
        Some(e) => format!("- Ended: {} (after {})\n", utc(e), length(*i.started_at, e)),
        None => format!("- Still going ({} so far)\n", length(*i.started_at, now)),
    };
    if let (Some(by), Some(at)) = (&i.acked_by, i.acked_at) {
        out += &format!("- Acknowledged by {} at {}\n", md(by), utc(*at));
    }
    if let Some(a) = &i.assignee {
        out += &format!("- Assigned to {}\n", md(a));
    }
    if let (Some(by), Some(at)) = (&i.closed_by, i.closed_at) {
        out += &format!("- Closed by {} at {}\n", md(by), utc(*at));
    }
    out += "\n## Summary\n\n";
    out += &match i.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => format!("{}\n", s.trim()),
        None => "(not written yet)\n".to_string(),
    };
    out += "\n## Timeline (UTC)\n\n";
    if d.events.is_empty() {
        out += "(nothing recorded)\n";
    }
    for e in &d.events {
        out += &timeline_line(e);
    }
    let c = &d.context;
    if !c.logs.is_empty() {
        out += "\n## Logs in the incident's window\n\n";
        out += "| Service | Lines | Errors | Error rate | Requests | p95 | Error rate a day before | a week before |\n";
        out += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for l in &c.logs {
            let rate = |r: Option<f64>| {
                r.map(|r| format!("{:.2} %", r * 100.0))
                    .unwrap_or_else(|| "–".into())
            };
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                md(&l.service),
                l.lines,
                l.errors,
                rate(Some(l.error_rate)),
                l.requests,
                l.p95_seconds
                    .map(|p| format!("{:.0} ms", p * 1000.0))
                    .unwrap_or_else(|| "–".into()),
                rate(l.day_before_error_rate),
                rate(l.week_before_error_rate),
            );
        }
    }
    if !c.new_errors.is_empty() {
        out += "\n## New errors (not seen in the 7 days before)\n\n";
        for e in &c.new_errors {
            out += &format!("- {} × {} ({})\n", e.count, md(&e.message), md(&e.service));
        }
    }
    if !d.notes.is_empty() {
        out += "\n## Notes\n\n";
        for n in &d.notes {
            out += &format!("- {} {}: {}\n", utc(*n.at), md(&n.author), md(&n.text));
        }
    }
    out
}

fn timeline_line(e: &TimelineEvent) -> String {
    let host = e
        .host
        .as_deref()
        .map(|h| format!(" [{}]", md(h)))
        .unwrap_or_default();
    format!("- {} {}{}: {}\n", utc(*e.at), e.kind, host, md(&e.text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2026-12-01 03:00 UTC);

    fn c(id: i64, hosts: &[&str], last_min_ago: i64, ended_min_ago: Option<i64>) -> Candidate {
        Candidate {
            id,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            last_event_at: T - Duration::minutes(last_min_ago),
            ended_at: ended_min_ago.map(|m| T - Duration::minutes(m)),
        }
    }

    #[test]
    fn a_firing_alert_joins_the_incident_of_its_host_or_of_the_last_minutes() {
        let join = Duration::minutes(10);
        // (why, open incidents, the alert's host, the incident it joins)
        type Case<'a> = (&'a str, Vec<Candidate>, Option<&'a str>, Option<i64>);
        let table: Vec<Case> = vec![
            ("nothing open", vec![], Some("web-1"), None),
            (
                "same host, long running",
                vec![c(1, &["web-1"], 120, None)],
                Some("web-1"),
                Some(1),
            ),
            (
                "another host, recent",
                vec![c(1, &["db-1"], 3, None)],
                Some("web-1"),
                Some(1),
            ),
            (
                "another host, quiet for long",
                vec![c(1, &["db-1"], 30, None)],
                Some("web-1"),
                None,
            ),
            (
                "no host, recent",
                vec![c(1, &["db-1"], 9, None)],
                None,
                Some(1),
            ),
            (
                "no host, quiet for long",
                vec![c(1, &["db-1"], 11, None)],
                None,
                None,
            ),
            (
                "ended long ago, not closed",
                vec![c(1, &["web-1"], 60, Some(60))],
                Some("web-1"),
                None,
            ),
            (
                "ended a moment ago: a flap joins",
                vec![c(1, &["web-1"], 5, Some(5))],
                Some("web-1"),
                Some(1),
            ),
            (
                "the most recently active wins",
                vec![
                    c(1, &["web-1"], 50, None),
                    c(2, &["web-1", "db-1"], 2, None),
                ],
                Some("web-1"),
                Some(2),
            ),
        ];
        for (why, open, host, want) in table {
            assert_eq!(join_target(&open, host, T, join), want, "{why}");
        }
    }

    #[test]
    fn titles_name_the_rule_and_the_host() {
        assert_eq!(title("High CPU", Some("web-1")), "High CPU on web-1");
        assert_eq!(title("Error rate", None), "Error rate");
        assert_eq!(title("Error rate", Some("")), "Error rate");
        assert_eq!(
            worst(Severity::Warning, Severity::Critical),
            Severity::Critical
        );
        assert_eq!(
            worst(Severity::Warning, Severity::Warning),
            Severity::Warning
        );
    }

    #[test]
    fn markup_in_text_stays_text() {
        assert_eq!(
            md("a *b* [c](d) <x>\nnext"),
            "a \\*b\\* \\[c\\](d) \\<x\\> next"
        );
    }
}
