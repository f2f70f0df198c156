//! The alert state machine, pure: one step per evaluation of one rule instance (a rule × host ×
//! series). `ok → pending → firing → ok` with a for-duration against short spikes, a clear
//! threshold against flapping around the line, reminders while firing, and acknowledgement.

use crate::text_enum::text_enum;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

text_enum! {
    /// Where a rule instance is (`alert_states.phase`).
    pub enum Phase { Ok = "ok", Pending = "pending", Firing = "firing" }
}

/// Where an instance stands between two evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub phase: Phase,
    /// When the current phase began.
    pub since: OffsetDateTime,
    /// The last notification sent for this firing (the first one or a reminder).
    pub notified_at: Option<OffsetDateTime>,
    /// Acknowledged while firing: no reminders until it resolves.
    pub acked: bool,
    /// The last time the instance had data.
    pub seen_at: OffsetDateTime,
}

impl State {
    pub fn new(now: OffsetDateTime) -> State {
        State {
            phase: Phase::Ok,
            since: now,
            notified_at: None,
            acked: false,
            seen_at: now,
        }
    }
}

/// What an evaluation read, against the rule's threshold and clear threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// Beyond the threshold.
    Breach,
    /// Back within the threshold but not yet past the clear threshold: a firing alert stays.
    Held,
    /// Within the clear threshold (or the threshold when there is none).
    Clear,
    /// Nothing to compare: the series stopped, the check never ran.
    NoData,
}

/// Comparison operators of threshold rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn parse(s: &str) -> Result<Op, String> {
        Ok(match s.trim() {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" | "=" => Op::Eq,
            "!=" => Op::Ne,
            other => return Err(format!("op: `{other}` is not one of >, >=, <, <=, ==, !=")),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }
}

/// Reads a value against `op threshold`, with hysteresis: once beyond, it is `Held` until it
/// is past `clear` (on the good side of it: below it for `>`, above it for `<`).
pub fn classify(value: Option<f64>, op: Op, threshold: f64, clear: Option<f64>) -> Reading {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return Reading::NoData;
    };
    if op.holds(v, threshold) {
        return Reading::Breach;
    }
    match (op, clear) {
        (Op::Gt | Op::Ge, Some(c)) if v > c => Reading::Held,
        (Op::Lt | Op::Le, Some(c)) if v < c => Reading::Held,
        _ => Reading::Clear,
    }
}

/// A rule's timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// How long a breach must last before the alert fires.
    pub for_duration: Duration,
    /// Remind this often while firing (zero: never).
    pub repeat: Duration,
    /// A firing alert whose data stopped this long ago resolves.
    pub stale_after: Duration,
}

/// What a step changed that is worth recording or telling someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Breaching, waiting out the for-duration.
    Pending,
    Firing,
    /// Still firing: a repeat notification.
    Reminder,
    Resolved,
    /// No data for `stale_after` while firing.
    ResolvedNoData,
}

impl Event {
    /// Whether this event is sent to the rule's channels.
    pub fn notifies(self) -> bool {
        !matches!(self, Event::Pending)
    }
}

/// One evaluation of one instance.
pub fn step(
    prev: &State,
    reading: Reading,
    t: &Timing,
    now: OffsetDateTime,
) -> (State, Option<Event>) {
    let mut s = prev.clone();
    if reading != Reading::NoData {
        s.seen_at = now;
    }
    let to = |phase: Phase, s: &mut State| {
        s.phase = phase;
        s.since = now;
    };
    let event = match (prev.phase, reading) {
        (Phase::Ok, Reading::Breach) if t.for_duration <= Duration::ZERO => {
            to(Phase::Firing, &mut s);
            s.notified_at = Some(now);
            Some(Event::Firing)
        }
        (Phase::Ok, Reading::Breach) => {
            to(Phase::Pending, &mut s);
            Some(Event::Pending)
        }
        (Phase::Ok, _) => None,
        (Phase::Pending, Reading::Breach) if now - prev.since >= t.for_duration => {
            to(Phase::Firing, &mut s);
            s.notified_at = Some(now);
            Some(Event::Firing)
        }
        (Phase::Pending, Reading::Breach) => None,
        // A breach must last the whole for-duration: any other reading starts it over.
        (Phase::Pending, _) => {
            to(Phase::Ok, &mut s);
            None
        }
        (Phase::Firing, Reading::Clear) => {
            to(Phase::Ok, &mut s);
            s.acked = false;
            s.notified_at = None;
            Some(Event::Resolved)
        }
        (Phase::Firing, Reading::NoData) if now - prev.seen_at >= t.stale_after => {
            to(Phase::Ok, &mut s);
            s.acked = false;
            s.notified_at = None;
            Some(Event::ResolvedNoData)
        }
        (Phase::Firing, _) => {
            let due = prev.notified_at.is_none_or(|at| now - at >= t.repeat);
            if t.repeat > Duration::ZERO && !prev.acked && due {
                s.notified_at = Some(now);
                Some(Event::Reminder)
            } else {
                None
            }
        }
    };
    (s, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-24 10:00 UTC);

    fn at(secs: i64) -> OffsetDateTime {
        T0 + Duration::seconds(secs)
    }

    fn timing(for_s: i64, repeat_s: i64) -> Timing {
        Timing {
            for_duration: Duration::seconds(for_s),
            repeat: Duration::seconds(repeat_s),
            stale_after: Duration::minutes(10),
        }
    }

    #[test]
    fn classify_with_and_without_hysteresis() {
        use Reading::*;
        for (value, op, threshold, clear, want) in [
            (Some(81.0), Op::Gt, 80.0, Some(75.0), Breach),
            (Some(80.0), Op::Gt, 80.0, Some(75.0), Held),
            (Some(76.0), Op::Gt, 80.0, Some(75.0), Held),
            (Some(75.0), Op::Gt, 80.0, Some(75.0), Clear),
            (Some(79.0), Op::Gt, 80.0, None, Clear),
            (Some(80.0), Op::Ge, 80.0, None, Breach),
            (Some(5.0), Op::Lt, 10.0, Some(20.0), Breach),
            (Some(15.0), Op::Lt, 10.0, Some(20.0), Held),
            (Some(25.0), Op::Lt, 10.0, Some(20.0), Clear),
            (Some(1.0), Op::Eq, 1.0, None, Breach),
            (Some(0.0), Op::Ne, 1.0, None, Breach),
            (None, Op::Gt, 80.0, None, NoData),
            (Some(f64::NAN), Op::Gt, 80.0, None, NoData),
        ] {
            assert_eq!(
                classify(value, op, threshold, clear),
                want,
                "{value:?} {op:?} {threshold} clear {clear:?}"
            );
        }
    }

    #[test]
    fn operators_parse_and_print() {
        for s in [">", ">=", "<", "<=", "==", "!="] {
            assert_eq!(Op::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(Op::parse("=").unwrap(), Op::Eq);
        assert!(Op::parse("=>").unwrap_err().contains("`=>`"));
    }

    /// Runs readings (seconds after T0) through the machine; returns the phase and event after
    /// each.
    fn run(t: &Timing, readings: &[(i64, Reading)]) -> Vec<(Phase, Option<Event>)> {
        let mut s = State::new(T0);
        readings
            .iter()
            .map(|&(secs, r)| {
                let (next, e) = step(&s, r, t, at(secs));
                s = next;
                (s.phase, e)
            })
            .collect()
    }

    #[test]
    fn state_machine_table() {
        use Event::*;
        use Phase::{Firing as F, Ok as K, Pending as P};
        use Reading::*;
        type Case = (
            &'static str,
            Timing,
            Vec<(i64, Reading)>,
            Vec<(Phase, Option<Event>)>,
        );
        let cases: Vec<Case> = vec![
            (
                "no for-duration: fires at once, resolves at once",
                timing(0, 0),
                vec![(0, Breach), (15, Breach), (30, Clear), (45, Clear)],
                vec![(F, Some(Firing)), (F, None), (K, Some(Resolved)), (K, None)],
            ),
            (
                "for 5 minutes: pending until the breach has lasted 300 s",
                timing(300, 0),
                vec![
                    (0, Breach),
                    (150, Breach),
                    (299, Breach),
                    (300, Breach),
                    (315, Breach),
                ],
                vec![
                    (P, Some(Pending)),
                    (P, None),
                    (P, None),
                    (F, Some(Firing)),
                    (F, None),
                ],
            ),
            (
                "a short spike never fires",
                timing(300, 0),
                vec![
                    (0, Breach),
                    (60, Breach),
                    (75, Clear),
                    (90, Breach),
                    (300, Breach),
                ],
                vec![
                    (P, Some(Pending)),
                    (P, None),
                    (K, None),
                    (P, Some(Pending)),
                    (P, None),
                ],
            ),
            (
                "hysteresis: dipping under the threshold but not the clear line keeps it firing",
                timing(0, 0),
                vec![
                    (0, Breach),
                    (15, Held),
                    (30, Breach),
                    (45, Held),
                    (60, Clear),
                ],
                vec![
                    (F, Some(Firing)),
                    (F, None),
                    (F, None),
                    (F, None),
                    (K, Some(Resolved)),
                ],
            ),
            (
                "held while pending starts over",
                timing(60, 0),
                vec![
                    (0, Breach),
                    (30, Held),
                    (45, Breach),
                    (100, Breach),
                    (105, Breach),
                ],
                vec![
                    (P, Some(Pending)),
                    (K, None),
                    (P, Some(Pending)),
                    (P, None),
                    (F, Some(Firing)),
                ],
            ),
            (
                "reminders every 10 minutes while firing",
                timing(0, 600),
                vec![
                    (0, Breach),
                    (300, Breach),
                    (600, Breach),
                    (900, Held),
                    (1200, Breach),
                    (1210, Clear),
                ],
                vec![
                    (F, Some(Firing)),
                    (F, None),
                    (F, Some(Reminder)),
                    (F, None),
                    (F, Some(Reminder)),
                    (K, Some(Resolved)),
                ],
            ),
            (
                "no data: nothing changes until it is stale, then it resolves",
                timing(0, 0),
                vec![
                    (0, Breach),
                    (60, NoData),
                    (599, NoData),
                    (600, NoData),
                    (615, NoData),
                ],
                vec![
                    (F, Some(Firing)),
                    (F, None),
                    (F, None),
                    (K, Some(ResolvedNoData)),
                    (K, None),
                ],
            ),
            (
                "no data while pending starts over",
                timing(60, 0),
                vec![(0, Breach), (30, NoData), (61, Breach)],
                vec![(P, Some(Pending)), (K, None), (P, Some(Pending))],
            ),
            (
                "resolved then breaching again fires again",
                timing(0, 0),
                vec![(0, Breach), (15, Clear), (30, Breach)],
                vec![(F, Some(Firing)), (K, Some(Resolved)), (F, Some(Firing))],
            ),
        ];
        for (name, t, readings, want) in cases {
            assert_eq!(run(&t, &readings), want, "{name}");
        }
    }

    #[test]
    fn acknowledged_alerts_do_not_remind_and_forget_the_ack_when_resolved() {
        let t = timing(0, 600);
        let (mut s, _) = step(&State::new(T0), Reading::Breach, &t, at(0));
        s.acked = true;
        let (s, e) = step(&s, Reading::Breach, &t, at(700));
        assert_eq!((s.phase, e), (Phase::Firing, None));
        let (s, e) = step(&s, Reading::Clear, &t, at(800));
        assert_eq!(
            (s.phase, e, s.acked),
            (Phase::Ok, Some(Event::Resolved), false)
        );
        let (s, e) = step(&s, Reading::Breach, &t, at(900));
        assert_eq!(
            (s.phase, e, s.acked),
            (Phase::Firing, Some(Event::Firing), false)
        );
        assert_eq!(s.since, at(900));
    }
}
