//! Cron schedules, free of I/O: the five classic fields (minute, hour, day of month, month, day
//! of week) with lists, ranges, steps, month and day names and the `@daily`-style shorthands,
//! evaluated in a time zone (so `0 2 * * *` in Europe/Paris is 02:00 there, summer and winter).
//!
//! As in Vixie cron, when both the day of month and the day of week are restricted, a day
//! matching either runs. A local time skipped by a daylight-saving jump does not run that day; a
//! local time that happens twice runs once, the first time.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    any_day: bool,
    any_weekday: bool,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    // 7 is Sunday too
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &WEEKDAYS,
    },
];

fn value(field: &Field, s: &str) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + field.min);
    }
    let v: u32 = s.parse().map_err(|_| {
        format!(
            "{}: `{s}` is not a number{}",
            field.name,
            if field.names.is_empty() {
                ""
            } else {
                " or a name"
            }
        )
    })?;
    if v < field.min || v > field.max {
        return Err(format!(
            "{}: {v} is out of range {}–{}",
            field.name, field.min, field.max
        ));
    }
    Ok(v)
}

/// One field into a bit set, and whether it was `*`.
fn field_bits(field: &Field, text: &str) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(format!("{}: empty list item in `{text}`", field.name));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("{}: step `{s}` is not a number", field.name))?;
                if step == 0 || step > field.max {
                    return Err(format!(
                        "{}: step {step} is out of range 1–{}",
                        field.name, field.max
                    ));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (lo, hi) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(field, a)?, value(field, b)?);
            if a > b {
                return Err(format!("{}: range {a}-{b} runs backwards", field.name));
            }
            (a, b)
        } else {
            let a = value(field, range)?;
            // `5/15` means from 5 to the end, every 15
            (a, if step.is_some() { field.max } else { a })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok((bits, text == "*"))
}

/// Parses a cron expression; the error names the field and the problem.
pub fn parse(expr: &str) -> Result<Schedule, String> {
    let expr = expr.trim();
    let expanded = match expr.to_ascii_lowercase().as_str() {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        s if s.starts_with('@') => {
            return Err(format!(
                "unknown shorthand `{expr}`; use @hourly, @daily, @weekly, @monthly or @yearly"
            ))
        }
        _ => expr,
    };
    let parts: Vec<&str> = expanded.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(format!(
            "a schedule has 5 fields (minute hour day-of-month month day-of-week), `{expr}` has {}",
            parts.len()
        ));
    }
    let mut bits = [0u64; 5];
    let mut star = [false; 5];
    for (i, (field, text)) in FIELDS.iter().zip(&parts).enumerate() {
        (bits[i], star[i]) = field_bits(field, text)?;
    }
    let mut weekdays = bits[4] as u8;
    if bits[4] & (1 << 7) != 0 {
        weekdays |= 1;
    }
    let schedule = Schedule {
        minutes: bits[0],
        hours: bits[1] as u32,
        days: bits[2] as u32,
        months: bits[3] as u16,
        weekdays: weekdays & 0x7f,
        any_day: star[2],
        any_weekday: star[4],
    };
    // February 30th and the like: refuse what would never run.
    let probe = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single();
    if probe
        .and_then(|p| schedule.next_after(p, Tz::UTC))
        .is_none()
    {
        return Err(format!("`{expr}` never matches a real date"));
    }
    Ok(schedule)
}

/// A time zone by its IANA name (`UTC`, `Europe/Paris`).
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("unknown time zone `{name}`; use an IANA name such as UTC or Europe/Paris")
    })
}

impl Schedule {
    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// The first run strictly after `after`, or None if there is none within five years.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz).naive_local();
        let mut t: NaiveDateTime =
            local.date().and_hms_opt(local.hour(), local.minute(), 0)? + Duration::minutes(1);
        let limit = t + Duration::days(5 * 366);
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.date().and_hms_opt(t.hour(), 0, 0)? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            match tz.from_local_datetime(&t) {
                chrono::LocalResult::Single(d) if d.with_timezone(&Utc) > after => {
                    return Some(d.with_timezone(&Utc))
                }
                // Twice in a fall-back night: only the first counts.
                chrono::LocalResult::Ambiguous(first, _) if first.with_timezone(&Utc) > after => {
                    return Some(first.with_timezone(&Utc))
                }
                _ => {}
            }
            t += Duration::minutes(1);
        }
        None
    }

    /// The longest gap between consecutive runs over the next few: what "overdue" is measured by.
    pub fn longest_gap_secs(&self, from: DateTime<Utc>, tz: Tz) -> Option<i64> {
        let mut t = self.next_after(from, tz)?;
        let mut longest = 0;
        for _ in 0..8 {
            let n = self.next_after(t, tz)?;
            longest = longest.max((n - t).num_seconds());
            t = n;
        }
        Some(longest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_runs() {
        let cases = [
            (
                "0 2 * * *",
                "UTC",
                "2026-11-24T10:00:00Z",
                "2026-11-25T02:00:00Z",
            ),
            (
                "0 2 * * *",
                "UTC",
                "2026-11-24T01:59:59Z",
                "2026-11-24T02:00:00Z",
            ),
            (
                "0 2 * * *",
                "UTC",
                "2026-11-24T02:00:00Z",
                "2026-11-25T02:00:00Z",
            ),
            (
                "@hourly",
                "UTC",
                "2026-11-24T10:00:00Z",
                "2026-11-24T11:00:00Z",
            ),
            (
                "*/15 * * * *",
                "UTC",
                "2026-11-24T10:07:00Z",
                "2026-11-24T10:15:00Z",
            ),
            (
                "5/20 * * * *",
                "UTC",
                "2026-11-24T10:26:00Z",
                "2026-11-24T10:45:00Z",
            ),
            (
                "0 9-17/4 * * mon-fri",
                "UTC",
                "2026-11-27T18:00:00Z",
                "2026-11-30T09:00:00Z",
            ),
            (
                "0 0 1 * *",
                "UTC",
                "2026-11-24T10:00:00Z",
                "2026-12-01T00:00:00Z",
            ),
            (
                "30 4 1,15 * 5",
                "UTC",
                "2026-11-24T10:00:00Z",
                "2026-11-27T04:30:00Z",
            ),
            (
                "0 0 29 feb *",
                "UTC",
                "2026-11-24T10:00:00Z",
                "2028-02-29T00:00:00Z",
            ),
            (
                "0 0 * * 7",
                "UTC",
                "2026-11-24T10:00:00Z",
                "2026-11-29T00:00:00Z",
            ),
            (
                "0 2 * * *",
                "Europe/Paris",
                "2026-11-24T10:00:00Z",
                "2026-11-25T01:00:00Z",
            ),
            (
                "0 2 * * *",
                "Europe/Paris",
                "2026-07-01T10:00:00Z",
                "2026-07-02T00:00:00Z",
            ),
            // 02:30 does not exist in Paris on 2026-03-29: the next run is the day after.
            (
                "30 2 * * *",
                "Europe/Paris",
                "2026-03-28T12:00:00Z",
                "2026-03-30T00:30:00Z",
            ),
            // 02:30 happens twice on 2026-10-25: once, at the first.
            (
                "30 2 * * *",
                "Europe/Paris",
                "2026-10-24T12:00:00Z",
                "2026-10-25T00:30:00Z",
            ),
            (
                "30 2 * * *",
                "Europe/Paris",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z",
            ),
        ];
        for (expr, tz, after, want) in cases {
            let s = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let tz = parse_timezone(tz).unwrap();
            assert_eq!(
                s.next_after(utc(after), tz),
                Some(utc(want)),
                "{expr} after {after} in {tz}"
            );
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        let cases = [
            ("", "5 fields"),
            ("0 2 * *", "has 4"),
            ("0 2 * * * *", "has 6"),
            ("60 * * * *", "minute: 60 is out of range 0–59"),
            ("0 24 * * *", "hour: 24 is out of range 0–23"),
            ("0 0 0 * *", "day of month: 0 is out of range 1–31"),
            ("0 0 * 13 *", "month: 13 is out of range 1–12"),
            ("0 0 * * 8", "day of week: 8 is out of range 0–7"),
            ("0 0 * foo *", "month: `foo` is not a number or a name"),
            ("x * * * *", "minute: `x` is not a number"),
            ("*/0 * * * *", "step 0"),
            ("10-5 * * * *", "runs backwards"),
            ("1,,2 * * * *", "empty list item"),
            ("0 0 30 2 *", "never matches"),
            ("@sometimes", "unknown shorthand"),
        ];
        for (expr, want) in cases {
            let err = parse(expr).expect_err(expr);
            assert!(err.contains(want), "{expr:?}: {err:?} lacks {want:?}");
        }
        assert!(parse_timezone("Mars/Olympus")
            .unwrap_err()
            .contains("unknown time zone"));
    }

    #[test]
    fn gaps() {
        let from = utc("2026-11-24T10:00:00Z");
        let cases = [
            ("0 2 * * *", 86_400),
            ("@hourly", 3_600),
            ("0 3 * * mon-fri", 3 * 86_400),
        ];
        for (expr, want) in cases {
            assert_eq!(
                parse(expr).unwrap().longest_gap_secs(from, Tz::UTC),
                Some(want),
                "{expr}"
            );
        }
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // A cheap sweep over awkward inputs; the proptest/fuzz harness goes further.
        let atoms = [
            "*",
            "-",
            "/",
            ",",
            "0",
            "59",
            "60",
            "99999999999",
            "jan",
            "SUN",
            "@",
            " ",
            "\u{00e9}",
            "7",
        ];
        for a in atoms {
            for b in atoms {
                for c in atoms {
                    let s = format!("{a}{b} {c} * {b} {a}{c}");
                    let _ = parse(&s);
                }
            }
        }
    }
}
