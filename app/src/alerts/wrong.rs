//! "Is anything wrong?" on the Overview: one row per problem, however many rules fire on it, and
//! a headline that never says "All clear" while something is pending.

use super::{ActiveAlert, Severity, Wrong};
use crate::timestamp::Timestamp;
use std::collections::HashMap;

/// One problem: a health check that is down (with every rule firing on it), or one firing alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The check's name, or the rule's.
    pub title: String,
    pub severity: Severity,
    /// The first alert's summary, or that the check is down.
    pub detail: String,
    /// Since when the earliest of its alerts fires.
    pub since: Option<Timestamp>,
    /// The rules firing on it (empty for a down check no rule watches).
    pub rules: Vec<String>,
    /// A check (true) or an alert of another kind.
    pub check: bool,
}

/// The problems in `w`, most severe first (in the order they came otherwise).
pub fn problems(w: &Wrong) -> Vec<Problem> {
    let mut out: Vec<Problem> = vec![];
    let mut by_check: HashMap<&str, usize> = HashMap::new();
    let alert = |a: &ActiveAlert, title: &str, check: bool| Problem {
        title: title.to_string(),
        severity: a.severity,
        detail: a.summary.clone(),
        since: Some(a.since),
        rules: vec![a.rule.clone()],
        check,
    };
    for a in &w.firing {
        if a.kind != "health" {
            out.push(alert(a, &a.rule, false));
            continue;
        }
        // A health rule's instance is the check's name.
        match by_check.get(a.instance.as_str()) {
            Some(&i) => {
                let p = &mut out[i];
                p.rules.push(a.rule.clone());
                p.severity = p.severity.max(a.severity);
                p.since = Some(p.since.map_or(a.since, |s| s.min(a.since)));
            }
            None => {
                by_check.insert(&a.instance, out.len());
                out.push(alert(a, &a.instance, true));
            }
        }
    }
    for c in &w.checks_down {
        if !by_check.contains_key(c.as_str()) {
            out.push(Problem {
                title: c.clone(),
                severity: Severity::Critical,
                detail: "health check down".into(),
                since: None,
                rules: vec![],
                check: true,
            });
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.severity));
    out
}

/// How the panel reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Bad,
    Pending,
    Clear,
}

/// The panel's headline for `problems` problems and `pending` pending alerts.
pub fn headline(problems: usize, pending: usize) -> (Tone, String) {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (problems, pending) {
        (0, 0) => (Tone::Clear, "All clear".into()),
        (0, p) => (Tone::Pending, format!("{p} pending")),
        (n, 0) => (Tone::Bad, plural(n, "problem")),
        (n, p) => (Tone::Bad, format!("{}, {p} pending", plural(n, "problem"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertStatus;

    fn firing(
        rule: &str,
        kind: &str,
        instance: &str,
        severity: Severity,
        minute: i64,
    ) -> ActiveAlert {
        ActiveAlert {
            rule_id: 1,
            rule: rule.into(),
            kind: kind.into(),
            severity,
            instance: instance.into(),
            host: None,
            status: AlertStatus::Firing,
            since: Timestamp(
                time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + minute * 60).unwrap(),
            ),
            value: Some(1.0),
            summary: format!("{instance} is bad"),
            acked_by: None,
            silenced: false,
            maintenance: None,
        }
    }

    fn wrong(firing: Vec<ActiveAlert>, checks_down: &[&str]) -> Wrong {
        Wrong {
            firing,
            pending: 0,
            checks_down: checks_down.iter().map(|c| c.to_string()).collect(),
            checks_total: 3,
            rules: 5,
        }
    }

    #[test]
    fn one_problem_is_listed_once() {
        use Severity::*;
        // (firing alerts, checks down, expected rows as (title, severity, rules))
        type Row = (&'static str, Severity, Vec<&'static str>);
        let cases: Vec<(Vec<ActiveAlert>, Vec<&str>, Vec<Row>)> = vec![
            (vec![], vec![], vec![]),
            // A dead check and the two rules that watch it: one row.
            (
                vec![
                    firing("Health check down", "health", "api", Warning, 3),
                    firing("API paging", "health", "api", Critical, 1),
                ],
                vec!["api"],
                vec![("api", Critical, vec!["Health check down", "API paging"])],
            ),
            // A down check no rule watches still shows.
            (vec![], vec!["db"], vec![("db", Critical, vec![])]),
            // Other kinds stay one row per alert; the most severe first.
            (
                vec![
                    firing("CPU high", "metric", "web-1 cpu", Warning, 0),
                    firing("Disk full", "metric", "web-1 /", Critical, 0),
                    firing("Health check down", "health", "api", Warning, 0),
                ],
                vec!["api", "db"],
                vec![
                    ("Disk full", Critical, vec!["Disk full"]),
                    ("db", Critical, vec![]),
                    ("CPU high", Warning, vec!["CPU high"]),
                    ("api", Warning, vec!["Health check down"]),
                ],
            ),
        ];
        for (alerts, down, want) in cases {
            let got: Vec<(String, Severity, Vec<String>)> = problems(&wrong(alerts, &down))
                .into_iter()
                .map(|p| (p.title, p.severity, p.rules))
                .collect();
            let want: Vec<(String, Severity, Vec<String>)> = want
                .into_iter()
                .map(|(t, s, r)| (t.to_string(), s, r.into_iter().map(String::from).collect()))
                .collect();
            assert_eq!(got, want);
        }
        // The merged row fires since the earliest of its alerts.
        let merged = problems(&wrong(
            vec![
                firing("a", "health", "api", Warning, 3),
                firing("b", "health", "api", Warning, 1),
            ],
            &[],
        ));
        assert_eq!(
            merged[0].since,
            Some(firing("x", "health", "api", Warning, 1).since)
        );
    }

    #[test]
    fn the_headline_never_says_all_clear_while_something_is_pending() {
        let cases = [
            ((0, 0), (Tone::Clear, "All clear")),
            ((0, 1), (Tone::Pending, "1 pending")),
            ((1, 0), (Tone::Bad, "1 problem")),
            ((3, 2), (Tone::Bad, "3 problems, 2 pending")),
        ];
        for ((problems, pending), (tone, text)) in cases {
            assert_eq!(headline(problems, pending), (tone, text.to_string()));
        }
    }
}
