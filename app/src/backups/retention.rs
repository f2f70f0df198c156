//! Which backups to expire, free of I/O. Kept: every successful run younger than the retention
//! period, the newest `keep_min` successful runs whatever their age, and the newest run whose test
//! restore passed. Everything else that succeeded and is not expired yet expires (its file is
//! deleted; the run stays in the history, marked expired). Failed runs have no file to keep.

use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    pub id: i64,
    pub finished_at: OffsetDateTime,
    pub succeeded: bool,
    /// The run's test restore passed.
    pub verified: bool,
    pub expired: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub keep_days: i64,
    pub keep_min: usize,
}

/// The ids of the runs to expire now, oldest first.
pub fn to_expire(runs: &[RunFacts], policy: Policy, now: OffsetDateTime) -> Vec<i64> {
    let mut live: Vec<&RunFacts> = runs.iter().filter(|r| r.succeeded && !r.expired).collect();
    // Newest first; ids break ties so the answer never depends on input order.
    live.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.id.cmp(&a.id)));
    let newest_verified = live.iter().find(|r| r.verified).map(|r| r.id);
    let cutoff = now - Duration::days(policy.keep_days);
    let mut out: Vec<&RunFacts> = live
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            *i >= policy.keep_min && r.finished_at < cutoff && Some(r.id) != newest_verified
        })
        .map(|(_, r)| *r)
        .collect();
    out.reverse();
    out.into_iter().map(|r| r.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn run(id: i64, days_ago: i64, succeeded: bool, verified: bool) -> RunFacts {
        RunFacts {
            id,
            finished_at: NOW - Duration::days(days_ago),
            succeeded,
            verified,
            expired: false,
        }
    }

    #[test]
    fn table() {
        let p = Policy {
            keep_days: 30,
            keep_min: 3,
        };
        let cases: Vec<(&str, Vec<RunFacts>, Policy, Vec<i64>)> = vec![
            ("nothing to do", vec![], p, vec![]),
            (
                "young runs stay",
                (1..=10).map(|i| run(i, i, true, false)).collect(),
                p,
                vec![],
            ),
            (
                "old runs go, oldest first",
                (1..=40).map(|i| run(i, i, true, false)).collect(),
                p,
                vec![40, 39, 38, 37, 36, 35, 34, 33, 32, 31],
            ),
            (
                "the newest three stay however old",
                vec![
                    run(1, 100, true, false),
                    run(2, 90, true, false),
                    run(3, 80, true, false),
                    run(4, 70, true, false),
                ],
                p,
                vec![1],
            ),
            (
                "failed runs do not count towards the minimum",
                vec![
                    run(1, 100, true, false),
                    run(2, 90, true, false),
                    run(3, 80, true, false),
                    run(4, 1, false, false),
                    run(5, 2, false, false),
                ],
                p,
                vec![],
            ),
            (
                "the newest verified run stays",
                vec![
                    run(1, 100, true, true),
                    run(2, 60, true, false),
                    run(3, 50, true, false),
                    run(4, 40, true, false),
                    run(5, 35, true, false),
                ],
                p,
                vec![2],
            ),
            (
                "only the newest verified run is protected",
                vec![
                    run(1, 100, true, true),
                    run(2, 90, true, true),
                    run(3, 3, true, false),
                    run(4, 2, true, false),
                    run(5, 1, true, false),
                ],
                p,
                vec![1],
            ),
            (
                "keep_min 0 and keep_days 0 still keep the newest verified",
                vec![run(1, 5, true, true), run(2, 1, true, false)],
                Policy {
                    keep_days: 0,
                    keep_min: 0,
                },
                vec![2],
            ),
            (
                "already expired runs are not expired again",
                vec![
                    RunFacts {
                        expired: true,
                        ..run(1, 100, true, false)
                    },
                    run(2, 1, true, false),
                ],
                Policy {
                    keep_days: 30,
                    keep_min: 0,
                },
                vec![],
            ),
        ];
        for (name, runs, policy, want) in cases {
            assert_eq!(to_expire(&runs, policy, NOW), want, "{name}");
            let mut shuffled = runs.clone();
            shuffled.reverse();
            assert_eq!(
                to_expire(&shuffled, policy, NOW),
                want,
                "{name} (any input order)"
            );
        }
    }
}
