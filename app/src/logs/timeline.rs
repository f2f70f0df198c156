//! The geometry of a bar chart over time (the Logs page's matches, errors and requests per
//! hour): every bucket of the range drawn at its true place, empty ones included, and round
//! tick times (00:00, 06:00, …) in the zone the page shows times in. Pure: no I/O.

use time::OffsetDateTime;

/// The chart's width in SVG units; `x` and `width` below are in these.
pub const WIDTH: f64 = 1000.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The bucket, Unix seconds: `[from, to)`.
    pub from: i64,
    pub to: i64,
    pub count: i64,
    pub x: f64,
    pub width: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at: i64,
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub max: i64,
}

/// At most this many buckets are drawn (a larger step is used beyond).
const MAX_BARS: i64 = 400;

/// Lays out `counts` (bucket start, count), buckets of `step` seconds, over `[from, to)`, with
/// ticks for a zone `offset` seconds east of UTC.
pub fn layout(from: i64, to: i64, step: i64, counts: &[(i64, i64)], offset: i64) -> Timeline {
    let span = (to - from).max(1);
    let step = step.max(1).max(span / MAX_BARS);
    let x_of = |t: i64| ((t.clamp(from, to) - from) as f64 / span as f64) * WIDTH;
    let mut bars = vec![];
    let mut start = from.div_euclid(step) * step;
    while start < to {
        let end = start + step;
        let count = counts
            .iter()
            .filter(|(b, _)| *b >= start && *b < end)
            .map(|(_, n)| n)
            .sum();
        let x = x_of(start);
        bars.push(Bar {
            from: start,
            to: end,
            count,
            x,
            width: (x_of(end) - x).max(0.0),
        });
        start = end;
    }
    let max = bars.iter().map(|b| b.count).max().unwrap_or(0);
    Timeline {
        bars,
        ticks: ticks(from, to, offset)
            .into_iter()
            .map(|(at, label)| Tick {
                at,
                x: x_of(at),
                label,
            })
            .collect(),
        max,
    }
}

/// Round times inside `[from, to]`, at most 8, labelled for the span: `HH:MM` within a day,
/// `Mon D` at midnights and for longer spans; round and labelled in a zone `offset` seconds
/// east of UTC (the offset at `from`: across a daylight-saving change the later ticks are an
/// hour off round, as their labels say).
pub fn ticks(from: i64, to: i64, offset: i64) -> Vec<(i64, String)> {
    const STEPS: [i64; 14] = [
        60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000,
    ];
    let span = (to - from).max(1);
    let every = STEPS.into_iter().find(|s| span / s <= 8).unwrap_or(2592000);
    let (from, to) = (from + offset, to + offset);
    let mut out = vec![];
    let mut t = (from + every - 1).div_euclid(every) * every;
    while t <= to {
        out.push((t - offset, label(t, every)));
        t += every;
    }
    out
}

/// The label of a tick at local time `t` (written as if UTC).
fn label(t: i64, every: i64) -> String {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(t) else {
        return String::new();
    };
    let midnight = at.hour() == 0 && at.minute() == 0;
    if every >= 86400 || midnight {
        format!("{} {}", &format!("{}", at.month())[..3], at.day())
    } else {
        format!("{:02}:{:02}", at.hour(), at.minute())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86400;
    /// 2026-11-30 00:00:00 UTC.
    const NOV30: i64 = 1_795_996_800;

    #[test]
    fn ticks_are_round_times_labelled_for_the_span() {
        const H: i64 = 3600;
        // (from, to, zone offset, labels)
        let table: Vec<(i64, i64, i64, Vec<&str>)> = vec![
            // An hour: every 10 minutes.
            (
                NOV30 + 3600 + 125,
                NOV30 + 7200 + 125,
                0,
                vec!["01:10", "01:20", "01:30", "01:40", "01:50", "02:00"],
            ),
            // The same hour seen from UTC+5:30: still round, in local time.
            (
                NOV30 + 3600 + 125,
                NOV30 + 7200 + 125,
                5 * H + 1800,
                vec!["06:40", "06:50", "07:00", "07:10", "07:20", "07:30"],
            ),
            // A day seen from UTC-5: the local midnight is named, not the UTC one.
            (
                NOV30,
                NOV30 + DAY,
                -5 * H,
                vec![
                    "21:00", "Nov 30", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00",
                ],
            ),
            // A day from 09:30: every 3 hours, the midnight named by its date.
            (
                NOV30 + 9 * 3600 + 1800,
                NOV30 + DAY + 9 * 3600 + 1800,
                0,
                vec![
                    "12:00", "15:00", "18:00", "21:00", "Dec 1", "03:00", "06:00", "09:00",
                ],
            ),
            // A week: every day.
            (
                NOV30 - 7 * DAY + 3600,
                NOV30 + 3600,
                0,
                vec![
                    "Nov 24", "Nov 25", "Nov 26", "Nov 27", "Nov 28", "Nov 29", "Nov 30",
                ],
            ),
        ];
        for (from, to, offset, want) in table {
            let got = ticks(from, to, offset);
            let labels: Vec<&str> = got.iter().map(|t| t.1.as_str()).collect();
            assert_eq!(labels, want, "{from}..{to} at {offset}");
            assert!(got.iter().all(|t| (from..=to).contains(&t.0)));
        }
    }

    #[test]
    fn every_bucket_is_drawn_at_its_place_empty_ones_too() {
        // Six hours in hour buckets, lines only in the second and the fifth.
        let from = NOV30;
        let to = NOV30 + 6 * 3600;
        let t = layout(from, to, 3600, &[(from + 3600, 4), (from + 4 * 3600, 9)], 0);
        let counts: Vec<i64> = t.bars.iter().map(|b| b.count).collect();
        assert_eq!(counts, [0, 4, 0, 0, 9, 0]);
        assert_eq!(t.max, 9);
        let xs: Vec<i64> = t.bars.iter().map(|b| b.x.round() as i64).collect();
        assert_eq!(xs, [0, 167, 333, 500, 667, 833]);
        assert!(t.bars.iter().all(|b| (b.width - WIDTH / 6.0).abs() < 1e-9));
    }

    #[test]
    fn a_range_not_on_bucket_edges_clips_its_first_and_last_bars() {
        let from = NOV30 + 1800;
        let to = NOV30 + 3 * 3600 + 1800;
        let t = layout(from, to, 3600, &[(NOV30, 2), (NOV30 + 3 * 3600, 1)], 0);
        assert_eq!(t.bars.len(), 4);
        assert_eq!((t.bars[0].count, t.bars[3].count), (2, 1));
        assert_eq!(t.bars[0].x, 0.0);
        assert!(
            (t.bars[0].width - WIDTH / 6.0).abs() < 1e-9,
            "half a bucket shows"
        );
        let end = t.bars[3].x + t.bars[3].width;
        assert!((end - WIDTH).abs() < 1e-9);
    }

    #[test]
    fn too_fine_a_step_is_coarsened() {
        let t = layout(NOV30, NOV30 + 90 * DAY, 60, &[], 0);
        assert!(t.bars.len() as i64 <= MAX_BARS + 1, "{}", t.bars.len());
        assert_eq!(t.max, 0);
    }
}
