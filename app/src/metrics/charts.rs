//! Server-side SVG charts with plotters: lines with a shaded min–max band, gaps where data is
//! missing, and the geometry the browser needs to show the value under the pointer.

use super::{Chart, ChartLine, SeriesPoint, Unit};
use plotters::prelude::*;

pub const WIDTH: u32 = 860;
pub const HEIGHT: u32 = 220;
const LEFT: u32 = 86;
const RIGHT: u32 = 14;
const TOP: u32 = 10;
const BOTTOM: u32 = 34;

pub const PALETTE: [(u8, u8, u8); 6] = [
    (31, 111, 235),
    (219, 109, 40),
    (26, 127, 55),
    (137, 87, 229),
    (207, 34, 46),
    (154, 103, 0),
];

/// One line to draw: its label, its points and whether to shade its min–max band.
pub struct LineInput<'a> {
    pub label: String,
    pub points: &'a [SeriesPoint],
    pub band: bool,
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Splits points where the gap is more than three steps, so an outage shows as a gap.
fn segments(points: &[(i64, f64)], step: i64) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = vec![];
    for p in points {
        match out.last_mut() {
            Some(seg) if seg.last().is_some_and(|l| p.0 - l.0 <= 3 * step.max(1)) => seg.push(*p),
            _ => out.push(vec![*p]),
        }
    }
    out
}

/// A value on the y axis: up/down charts label only 0 ("down") and 1 ("up").
fn y_label(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Up if v.abs() < 1e-9 => "down".into(),
        Unit::Up if (v - 1.0).abs() < 1e-9 => "up".into(),
        Unit::Up => String::new(),
        _ => unit.format(v),
    }
}

/// The y range: fixed 0–100 for percentages, 0–1 for up/down, else from zero (or the minimum) to a bit above the maximum.
fn y_range(unit: Unit, lines: &[LineInput]) -> (f64, f64) {
    match unit {
        Unit::Percent => return (0.0, 100.0),
        Unit::Up => return (0.0, 1.0),
        _ => {}
    }
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.max))
        .fold(f64::MIN, f64::max);
    let min = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.min))
        .fold(f64::MAX, f64::min);
    if max == f64::MIN {
        return (0.0, 1.0);
    }
    let lo = if min >= 0.0 { 0.0 } else { min * 1.1 };
    let hi = if max <= lo { lo + 1.0 } else { max * 1.1 };
    (lo, hi)
}

pub fn render(
    key: &str,
    title: &str,
    unit: Unit,
    from: i64,
    to: i64,
    step: i64,
    lines: &[LineInput],
) -> Chart {
    let (y0, y1) = y_range(unit, lines);
    let mut svg = String::new();
    let drawn = draw(
        &mut svg,
        unit,
        from,
        to.max(from + 1),
        step,
        (y0, y1),
        lines,
    );
    if let Err(e) = drawn {
        tracing::warn!(chart = key, error = %e, "chart drawing failed");
        svg.clear();
    }
    let chart_lines = lines
        .iter()
        .enumerate()
        .map(|(i, l)| ChartLine {
            label: l.label.clone(),
            color: hex(PALETTE[i % PALETTE.len()]),
            points: l
                .points
                .iter()
                .map(|p| (p.ts.unix_timestamp(), (p.avg * 1000.0).round() / 1000.0))
                .collect(),
        })
        .collect();
    Chart {
        key: key.to_string(),
        title: title.to_string(),
        unit,
        svg,
        from,
        to,
        plot: [
            LEFT as f64,
            (WIDTH - RIGHT) as f64,
            WIDTH as f64,
            HEIGHT as f64,
        ],
        lines: chart_lines,
        marks: vec![],
    }
}

fn draw(
    svg: &mut String,
    unit: Unit,
    from: i64,
    to: i64,
    step: i64,
    (y0, y1): (f64, f64),
    lines: &[LineInput],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    let grey = RGBColor(139, 148, 158);
    // Round times on the time axis (00:00, 06:00 …) in the viewer's zone, as the logs
    // timeline has them.
    let ticks = crate::logs::timeline::ticks(from, to, crate::zone::offset_at(from));
    let keys: Vec<i64> = ticks.iter().map(|(t, _)| *t).collect();
    let mut chart = ChartBuilder::on(&root)
        .margin_top(TOP)
        .margin_right(RIGHT)
        .x_label_area_size(BOTTOM)
        .y_label_area_size(LEFT)
        .build_cartesian_2d((from..to).with_key_points(keys), y0..y1)?;
    let tick_label = |t: &i64| {
        ticks
            .iter()
            .find(|(k, _)| k == t)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_labels(ticks.len().max(1))
        .y_labels(if unit == Unit::Up { 2 } else { 5 })
        .x_label_formatter(&tick_label)
        .y_label_formatter(&|v| y_label(unit, *v))
        .label_style(("sans-serif", 17).into_font().color(&grey))
        .axis_style(grey.mix(0.6))
        .bold_line_style(grey.mix(0.18))
        .light_line_style(TRANSPARENT)
        .draw()?;
    for (i, line) in lines.iter().enumerate() {
        let (r, g, b) = PALETTE[i % PALETTE.len()];
        let color = RGBColor(r, g, b);
        let avg: Vec<(i64, f64)> = line
            .points
            .iter()
            .map(|p| (p.ts.unix_timestamp(), p.avg))
            .collect();
        if line.band {
            let lows: Vec<(i64, f64)> = line
                .points
                .iter()
                .map(|p| (p.ts.unix_timestamp(), p.min))
                .collect();
            let highs: Vec<(i64, f64)> = line
                .points
                .iter()
                .map(|p| (p.ts.unix_timestamp(), p.max))
                .collect();
            for (hi, lo) in segments(&highs, step)
                .into_iter()
                .zip(segments(&lows, step))
            {
                let mut poly = hi.clone();
                poly.extend(lo.into_iter().rev());
                chart.draw_series(std::iter::once(Polygon::new(
                    poly,
                    color.mix(0.16).filled(),
                )))?;
            }
        }
        for seg in segments(&avg, step) {
            chart.draw_series(LineSeries::new(seg, color.stroke_width(2)))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;
    use time::OffsetDateTime;

    fn pts(values: &[(i64, f64)]) -> Vec<SeriesPoint> {
        values
            .iter()
            .map(|(t, v)| SeriesPoint {
                ts: Timestamp(OffsetDateTime::from_unix_timestamp(*t).unwrap()),
                avg: *v,
                min: v - 1.0,
                max: v + 1.0,
            })
            .collect()
    }

    #[test]
    fn the_time_axis_has_round_times_and_up_charts_say_up_and_down() {
        // 2026-11-30 00:00 UTC, six hours: a tick each hour, midnight by its date.
        let from = 1_795_996_800;
        let p = pts(&[(from + 600, 1.0), (from + 3600, 0.0), (from + 7200, 1.0)]);
        let line = [LineInput {
            label: "up".into(),
            points: &p,
            band: false,
        }];
        let c = render("up", "Up", Unit::Up, from, from + 6 * 3600, 60, &line);
        let texts: Vec<&str> = c
            .svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').map(|(_, rest)| rest))
            .map(|rest| rest.split('<').next().unwrap_or("").trim())
            .collect();
        for label in ["Nov 30", "01:00", "03:00", "06:00", "up", "down"] {
            assert!(texts.contains(&label), "{label} in {texts:?}");
        }
        // Round hours, not the odd times of a plain number axis, and no fractional up/down.
        assert!(texts.iter().all(|t| !t.contains('.')), "{texts:?}");
        for (v, want) in [(1.0, "up"), (0.0, "down"), (0.25, "up 25% of the time")] {
            assert_eq!(Unit::Up.format(v), want);
        }
        assert_eq!(y_label(Unit::Up, 0.5), "");
        assert_eq!(y_label(Unit::Count, 3.0), "3");
    }

    #[test]
    fn gaps_split_lines() {
        let s = segments(&[(0, 1.0), (5, 1.0), (10, 1.0), (100, 1.0), (105, 1.0)], 5);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].len(), 3);
        assert!(segments(&[], 5).is_empty());
    }

    #[test]
    fn charts_are_svg_with_their_data() {
        let p = pts(&[
            (1_700_000_000, 40.0),
            (1_700_000_060, 42.5),
            (1_700_000_120, 41.0),
        ]);
        let c = render(
            "cpu",
            "CPU",
            Unit::Percent,
            1_700_000_000,
            1_700_000_180,
            60,
            &[LineInput {
                label: "cpu".into(),
                points: &p,
                band: true,
            }],
        );
        assert!(
            c.svg.starts_with("<svg") && c.svg.contains("</svg>"),
            "{}",
            &c.svg[..80.min(c.svg.len())]
        );
        assert!(
            c.svg.contains("<polygon") || c.svg.contains("<path"),
            "band drawn"
        );
        assert!(c.svg.contains("100%"), "percent axis labels");
        assert_eq!(
            c.lines[0].points,
            vec![
                (1_700_000_000, 40.0),
                (1_700_000_060, 42.5),
                (1_700_000_120, 41.0)
            ]
        );
        let empty = render("x", "X", Unit::Count, 0, 100, 5, &[]);
        assert!(empty.svg.contains("</svg>"));
    }

    #[test]
    fn y_ranges() {
        let p = pts(&[(0, 5.0), (1, 9.0)]);
        assert_eq!(y_range(Unit::Percent, &[]), (0.0, 100.0));
        let (lo, hi) = y_range(
            Unit::Count,
            &[LineInput {
                label: String::new(),
                points: &p,
                band: false,
            }],
        );
        assert_eq!(lo, 0.0);
        assert!((hi - 11.0).abs() < 1e-9);
        assert_eq!(y_range(Unit::Count, &[]), (0.0, 1.0));
    }
}
