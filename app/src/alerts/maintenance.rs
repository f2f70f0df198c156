//! Maintenance windows: one-off (`start`, `end`) or recurring (a cron schedule and a duration,
//! in an IANA time zone), over a host pattern, checks and/or rules. While one is active, the
//! alerts it covers are still evaluated and shown, marked "in maintenance", but notify no one.
//! The rules here are pure.

use crate::backups::cron;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// A window as stored and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MaintenanceWindow {
    pub id: i64,
    pub name: String,
    /// A host pattern (`web-*`); null: any host.
    pub host: Option<String>,
    /// Health checks it covers, by name.
    pub checks: Vec<String>,
    /// Rules it covers, by name (on the hosts `host` allows).
    pub rules: Vec<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Recurring: when each window starts (cron, five fields) and how long it lasts.
    pub schedule: Option<String>,
    pub duration_minutes: Option<i64>,
    pub timezone: Option<String>,
    pub created_by: String,
    /// Whether it is in force now.
    #[serde(default)]
    pub active: bool,
}

/// A new window: `{"name","host"?,"checks"?,"rules"?,"start","end"}` or
/// `{"name",…,"schedule","duration_minutes","timezone"?}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    pub name: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub start: Option<Timestamp>,
    #[serde(default)]
    pub end: Option<Timestamp>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub duration_minutes: Option<i64>,
    #[serde(default)]
    pub timezone: Option<String>,
}

fn plain(field: &str, s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(format!("{field}: 1 to {max} characters of text"));
    }
    Ok(())
}

/// Checks a new window; the error names the field. Pure.
pub fn check(w: &NewWindow, now: OffsetDateTime) -> Result<(), String> {
    plain("name", &w.name, 100)?;
    if let Some(h) = &w.host {
        plain("host", h, 255)?;
    }
    for (field, list) in [("checks", &w.checks), ("rules", &w.rules)] {
        if list.len() > 50 {
            return Err(format!("{field}: at most 50"));
        }
        for n in list {
            plain(field, n, 100)?;
        }
    }
    match (w.start, w.end, &w.schedule, w.duration_minutes) {
        (Some(s), Some(e), None, None) => {
            if e <= s {
                return Err("end: must be after start".into());
            }
            if *e <= now {
                return Err("end: already past".into());
            }
            if *e - *s > Duration::days(31) {
                return Err("end: a window lasts at most 31 days".into());
            }
            if w.timezone.is_some() {
                return Err("timezone: only for a recurring window (schedule)".into());
            }
            Ok(())
        }
        (None, None, Some(expr), Some(d)) => {
            cron::parse(expr).map_err(|e| format!("schedule: {e}"))?;
            if !(1..=7 * 24 * 60).contains(&d) {
                return Err("duration_minutes: 1 to 10080 (a week)".into());
            }
            if let Some(tz) = &w.timezone {
                cron::parse_timezone(tz).map_err(|e| format!("timezone: {e}"))?;
            }
            Ok(())
        }
        _ => Err(
            "start: give start and end (one-off), or schedule and duration_minutes (recurring)"
                .into(),
        ),
    }
}

/// When a window is, in words: `12:00 – 13:00` (in the viewer's zone) or `` `0 2 * * *` for 60
/// min (Europe/Paris) ``.
pub fn when(w: &MaintenanceWindow) -> String {
    match (w.start, w.end, &w.schedule, w.duration_minutes) {
        (Some(s), Some(e), _, _) => format!(
            "{} – {}",
            crate::components::fmt_time(&s),
            crate::components::fmt_time(&e)
        ),
        (_, _, Some(c), Some(d)) => format!(
            "`{c}` for {d} min ({})",
            w.timezone.as_deref().unwrap_or("UTC")
        ),
        _ => String::new(),
    }
}

/// Whether the window is in force at `now`: a one-off one between its start and end; a
/// recurring one within `duration_minutes` of a start of its schedule. Pure.
pub fn active_at(w: &MaintenanceWindow, now: OffsetDateTime) -> bool {
    match (w.start, w.end, &w.schedule, w.duration_minutes) {
        (Some(s), Some(e), _, _) => *s <= now && now < *e,
        (_, _, Some(expr), Some(d)) => {
            let (Ok(schedule), Ok(tz)) = (
                cron::parse(expr),
                cron::parse_timezone(w.timezone.as_deref().unwrap_or("UTC")),
            ) else {
                return false;
            };
            let since = now - Duration::minutes(d);
            let Some(after) = chrono::DateTime::from_timestamp(since.unix_timestamp(), 0) else {
                return false;
            };
            // The first start after `now - duration`: active when it has come.
            schedule
                .next_after(after, tz)
                .is_some_and(|t| t.timestamp() <= now.unix_timestamp())
        }
        _ => false,
    }
}

/// The spans of `[from, to)` the window is in force, clipped to it (at most 5,000). Pure.
pub fn spans(
    w: &MaintenanceWindow,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    match (w.start, w.end, &w.schedule, w.duration_minutes) {
        (Some(s), Some(e), _, _) => {
            let (a, b) = ((*s).max(from), (*e).min(to));
            if a < b {
                vec![(a, b)]
            } else {
                vec![]
            }
        }
        (_, _, Some(expr), Some(d)) => {
            let (Ok(schedule), Ok(tz)) = (
                cron::parse(expr),
                cron::parse_timezone(w.timezone.as_deref().unwrap_or("UTC")),
            ) else {
                return vec![];
            };
            let length = Duration::minutes(d);
            let mut out = vec![];
            let mut after = chrono::DateTime::from_timestamp((from - length).unix_timestamp(), 0);
            while let Some(t) = after.and_then(|a| schedule.next_after(a, tz)) {
                let Ok(start) = OffsetDateTime::from_unix_timestamp(t.timestamp()) else {
                    break;
                };
                if start >= to || out.len() >= 5000 {
                    break;
                }
                out.push((start.max(from), (start + length).min(to)));
                after = Some(t);
            }
            out
        }
        _ => vec![],
    }
}

/// Whether the window covers an alert of `rule` on `host` (`check`: the health check a health
/// rule's alert is about). Its checks are covered wherever they run; its rules on the hosts
/// its pattern allows; with neither, every alert on those hosts (every alert, without a
/// host pattern). Pure.
pub fn covers(w: &MaintenanceWindow, rule: &str, host: Option<&str>, check: Option<&str>) -> bool {
    if check.is_some_and(|c| w.checks.iter().any(|x| x == c)) {
        return true;
    }
    let host_ok = match (&w.host, host) {
        (None, _) => true,
        (Some(p), Some(h)) => super::rules::glob(p, h),
        (Some(p), None) => p == "*",
    };
    let scoped = w.rules.is_empty() && w.checks.is_empty();
    host_ok && (scoped || w.rules.iter().any(|r| r == rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 02:30 UTC);

    fn window(host: Option<&str>, checks: &[&str], rules: &[&str]) -> MaintenanceWindow {
        MaintenanceWindow {
            id: 1,
            name: "w".into(),
            host: host.map(str::to_string),
            checks: checks.iter().map(|s| s.to_string()).collect(),
            rules: rules.iter().map(|s| s.to_string()).collect(),
            start: Some(Timestamp(NOW - Duration::hours(1))),
            end: Some(Timestamp(NOW + Duration::hours(1))),
            schedule: None,
            duration_minutes: None,
            timezone: None,
            created_by: "t".into(),
            active: true,
        }
    }

    #[test]
    fn a_window_covers_its_hosts_checks_and_rules() {
        // (window, rule, host, check, covered)
        let table = [
            (window(None, &[], &[]), "hot", Some("web-1"), None, true),
            (
                window(Some("web-*"), &[], &[]),
                "hot",
                Some("web-1"),
                None,
                true,
            ),
            (
                window(Some("web-*"), &[], &[]),
                "hot",
                Some("db-1"),
                None,
                false,
            ),
            (
                window(Some("web-*"), &[], &[]),
                "api down",
                None,
                Some("api"),
                false,
            ),
            (
                window(None, &["api"], &[]),
                "api down",
                None,
                Some("api"),
                true,
            ),
            (
                window(None, &["api"], &[]),
                "api down",
                None,
                Some("shop"),
                false,
            ),
            (
                window(None, &["api"], &[]),
                "hot",
                Some("web-1"),
                None,
                false,
            ),
            (
                window(Some("web-1"), &[], &["hot"]),
                "hot",
                Some("web-1"),
                None,
                true,
            ),
            (
                window(Some("web-1"), &[], &["hot"]),
                "full",
                Some("web-1"),
                None,
                false,
            ),
            (
                window(Some("web-1"), &[], &["hot"]),
                "hot",
                Some("web-2"),
                None,
                false,
            ),
            (
                window(Some("web-1"), &["api"], &[]),
                "api down",
                None,
                Some("api"),
                true,
            ),
        ];
        for (w, rule, host, check, want) in table {
            assert_eq!(
                covers(&w, rule, host, check),
                want,
                "{w:?} {rule} {host:?} {check:?}"
            );
        }
    }

    #[test]
    fn windows_are_in_force_between_their_ends_or_after_each_scheduled_start() {
        let mut one_off = window(None, &[], &[]);
        assert!(active_at(&one_off, NOW));
        one_off.end = Some(Timestamp(NOW));
        assert!(!active_at(&one_off, NOW), "the end is not in it");
        let recurring = |schedule: &str, minutes: i64, tz: Option<&str>| MaintenanceWindow {
            start: None,
            end: None,
            schedule: Some(schedule.into()),
            duration_minutes: Some(minutes),
            timezone: tz.map(str::to_string),
            ..window(None, &[], &[])
        };
        // Nightly at 02:00 for an hour: 02:30 is in it, for 20 minutes it is not.
        assert!(active_at(&recurring("0 2 * * *", 60, None), NOW));
        assert!(!active_at(&recurring("0 2 * * *", 20, None), NOW));
        assert!(!active_at(&recurring("0 3 * * *", 60, None), NOW));
        // 03:00 in Paris is 02:00 UTC in winter.
        assert!(active_at(
            &recurring("0 3 * * *", 60, Some("Europe/Paris")),
            NOW
        ));
        assert!(!active_at(
            &recurring("0 2 * * *", 60, Some("Europe/Paris")),
            NOW
        ));
    }

    #[test]
    fn spans_are_clipped_to_the_range_asked() {
        let one_off = window(None, &[], &[]);
        let (from, to) = (NOW - Duration::hours(24), NOW);
        assert_eq!(spans(&one_off, from, to), [(NOW - Duration::hours(1), NOW)]);
        assert_eq!(
            spans(&one_off, NOW + Duration::hours(2), NOW + Duration::hours(3)),
            []
        );
        let nightly = MaintenanceWindow {
            start: None,
            end: None,
            schedule: Some("0 2 * * *".into()),
            duration_minutes: Some(60),
            ..window(None, &[], &[])
        };
        // Two days back from 02:30: the nights before, and tonight's first half hour.
        let got = spans(&nightly, NOW - Duration::hours(48), NOW);
        let d = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        assert_eq!(
            got,
            [
                (NOW - Duration::hours(48), d("2026-11-29T03:00:00Z")),
                (d("2026-11-30T02:00:00Z"), d("2026-11-30T03:00:00Z")),
                (d("2026-12-01T02:00:00Z"), NOW),
            ]
        );
    }

    #[test]
    fn new_windows_are_checked_field_by_field() {
        let base = NewWindow {
            name: "deploy".into(),
            host: Some("web-1".into()),
            checks: vec![],
            rules: vec![],
            start: Some(Timestamp(NOW)),
            end: Some(Timestamp(NOW + Duration::minutes(30))),
            schedule: None,
            duration_minutes: None,
            timezone: None,
        };
        let recurring = NewWindow {
            start: None,
            end: None,
            schedule: Some("0 2 * * *".into()),
            duration_minutes: Some(60),
            timezone: Some("Europe/Paris".into()),
            ..base.clone()
        };
        assert_eq!(check(&base, NOW), Ok(()));
        assert_eq!(check(&recurring, NOW), Ok(()));
        let bad: Vec<(NewWindow, &str)> = vec![
            (
                NewWindow {
                    name: " ".into(),
                    ..base.clone()
                },
                "name",
            ),
            (
                NewWindow {
                    end: Some(Timestamp(NOW - Duration::minutes(1))),
                    ..base.clone()
                },
                "end",
            ),
            (
                NewWindow {
                    start: Some(Timestamp(NOW - Duration::hours(2))),
                    end: Some(Timestamp(NOW - Duration::hours(1))),
                    ..base.clone()
                },
                "end",
            ),
            (
                NewWindow {
                    end: Some(Timestamp(NOW + Duration::days(40))),
                    ..base.clone()
                },
                "end",
            ),
            (
                NewWindow {
                    end: None,
                    ..base.clone()
                },
                "start",
            ),
            (
                NewWindow {
                    schedule: Some("61 * * * *".into()),
                    ..recurring.clone()
                },
                "schedule",
            ),
            (
                NewWindow {
                    duration_minutes: Some(0),
                    ..recurring.clone()
                },
                "duration_minutes",
            ),
            (
                NewWindow {
                    timezone: Some("Mars/Base".into()),
                    ..recurring.clone()
                },
                "timezone",
            ),
            (
                NewWindow {
                    checks: vec!["a\u{0}".into()],
                    ..base.clone()
                },
                "checks",
            ),
            (
                NewWindow {
                    timezone: Some("UTC".into()),
                    ..base.clone()
                },
                "timezone",
            ),
        ];
        for (w, field) in bad {
            let got = check(&w, NOW);
            assert!(
                got.as_ref().is_err_and(|e| e.starts_with(field)),
                "{w:?}: {got:?}"
            );
        }
    }
}
