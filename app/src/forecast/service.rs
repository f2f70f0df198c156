//! Forecasts from the hourly rollups: every host's CPU, memory and disks (and the established
//! connections, which have no 100 %), over the last `WINDOW_DAYS`.

use super::model::{choose, crossing, regular_hours, Fitted};
use super::{ForecastRow, ForecastsPageData};
use crate::error::AppResult;
use crate::metrics::charts::{self, LineInput};
use crate::metrics::{Labels, SeriesPoint, Unit};
use crate::timestamp::Timestamp;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

pub const WINDOW_DAYS: i64 = super::FIT_DAYS;
/// Crossings further away than this are not reported.
const HORIZON_HOURS: usize = 24 * 365;

/// The resources forecast, with their unit: percentages cross 80 % and 100 %.
const RESOURCES: [(&str, Option<&str>); 4] = [
    ("cpu_usage_percent", None),
    ("memory_used_percent", None),
    ("disk_used_percent", None),
    ("tcp_connections", Some("established")),
];

/// Hourly values: (unix hour, value).
type Hourly = Vec<(i64, f64)>;
/// One series' hourly history: (host, metric, labels, its hours).
type History = (String, String, Labels, Hourly);
/// A row as read: host, metric, labels, hours, values.
type HistoryRow = (
    String,
    String,
    sqlx::types::Json<Labels>,
    Vec<OffsetDateTime>,
    Vec<f64>,
);
/// A forecast with its model and history, for sorting and charts.
type Item = (ForecastRow, Option<Fitted>, Vec<(i64, f64)>);

/// Each series' hourly history over `[from, to]`.
async fn histories(
    pool: &PgPool,
    host: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<History>> {
    let rows: Vec<HistoryRow> =
        sqlx::query_as(
            "SELECT s.host, s.metric, s.labels, array_agg(r.bucket ORDER BY r.bucket), array_agg(r.sum / r.count ORDER BY r.bucket)
             FROM metric_series s JOIN metric_rollup_1h r ON r.series_id = s.id
             WHERE s.metric = ANY($1) AND ($2::text IS NULL OR s.host = $2) AND r.bucket >= $3 AND r.bucket <= $4
               AND (s.metric <> 'tcp_connections' OR s.labels->>'state' = 'established')
             GROUP BY s.id, s.host, s.metric, s.labels ORDER BY s.host, s.metric, s.labels::text",
        )
        .bind(RESOURCES.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(host)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(h, m, l, ts, vs)| {
            let pts = ts
                .iter()
                .zip(vs)
                .map(|(t, v)| (t.unix_timestamp() / 3600, v))
                .collect();
            (h, m, l.0, pts)
        })
        .collect())
}

fn at_hours(last_hour: i64, h: Option<f64>) -> Option<OffsetDateTime> {
    let secs = (last_hour as f64 * 3600.0 + h? * 3600.0).round() as i64;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// The forecast of one series' history.
pub fn forecast_one(history: &History) -> (ForecastRow, Option<Fitted>) {
    let (host, metric, labels, points) = history;
    let percent = metric.ends_with("_percent");
    let mut row = ForecastRow {
        host: host.clone(),
        metric: metric.clone(),
        labels: labels.clone(),
        model: None,
        current: points.last().map(|p| p.1),
        moving_average_24h: None,
        in_7d: None,
        in_30d: None,
        eta_80: None,
        eta_80_low: None,
        eta_80_high: None,
        eta_100: None,
        reason: None,
    };
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0,
    };
    let last = points.last().map(|p| p.0).unwrap_or(0);
    let above = percent && row.current.is_some_and(|c| c >= 80.0);
    if above {
        // Whatever the history, the runbook's question has its answer.
        row.eta_80 = (at_hours(last, Some(0.0))).map(Timestamp);
        row.eta_80_low = row.eta_80;
        row.eta_80_high = row.eta_80;
        row.reason = Some(super::ALREADY_ABOVE.into());
    }
    if span < 24 {
        let why = format!("not enough data for a forecast: {span} h of history, 24 h needed");
        row.reason = Some(match row.reason.take() {
            Some(r) => format!("{r}; {why}"),
            None => why,
        });
        return (row, None);
    }
    let ys = regular_hours(points);
    let day = &ys[ys.len().saturating_sub(24)..];
    row.moving_average_24h = Some(day.iter().sum::<f64>() / day.len() as f64);
    let Some(f) = choose(&ys) else {
        row.reason = Some("not enough data".into());
        return (row, None);
    };
    row.model = Some(f.kind().as_str().to_string());
    row.in_7d = Some(f.at(24.0 * 7.0).0);
    row.in_30d = Some(f.at(24.0 * 30.0).0);
    if percent {
        if !above {
            let (mean, early, late) = crossing(&f, 80.0, HORIZON_HOURS);
            row.eta_80 = (at_hours(last, mean)).map(Timestamp);
            row.eta_80_low = (at_hours(last, early)).map(Timestamp);
            row.eta_80_high = (at_hours(last, late)).map(Timestamp);
            if mean.is_none() {
                row.reason = Some("not expected to reach 80 % within a year".into());
            }
        }
        row.eta_100 = (at_hours(last, crossing(&f, 100.0, HORIZON_HOURS).0)).map(Timestamp);
    } else {
        row.reason = Some("no fixed limit: trend only".into());
    }
    (row, Some(f))
}

fn soonest_first(rows: &mut [Item]) {
    rows.sort_by(|a, b| match (a.0.eta_80, b.0.eta_80) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => (&a.0.host, &a.0.metric).cmp(&(&b.0.host, &b.0.metric)),
    });
}

pub async fn forecasts(
    pool: &PgPool,
    host: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<Vec<ForecastRow>> {
    let mut rows: Vec<_> = histories(pool, host, now - Duration::days(WINDOW_DAYS), now)
        .await?
        .iter()
        .map(|h| {
            let (r, f) = forecast_one(h);
            (r, f, vec![])
        })
        .collect();
    soonest_first(&mut rows);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The Capacity page for the window `[from, to]` of the time picker: every resource, soonest
/// crossing first, each with a chart of its history over the window and the forecast for the 7
/// days after it, with its 90 % interval as a band. The forecast is the one made at `to` from the
/// `WINDOW_DAYS` before it, as the API and the alerts make it: the window changes what is drawn,
/// and a window in the past shows the forecast as it stood then.
pub async fn page_data(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
    label: String,
) -> AppResult<ForecastsPageData> {
    let fit_from = to - Duration::days(WINDOW_DAYS);
    let mut rows: Vec<_> = histories(pool, None, from.min(fit_from), to)
        .await?
        .into_iter()
        .map(|(host, metric, labels, points)| {
            let (shown, fit) = split_history(&points, from, fit_from);
            let (r, f) = forecast_one(&(host, metric, labels, fit));
            (r, f, shown)
        })
        .collect();
    soonest_first(&mut rows);
    let to_point = |h: i64, avg: f64, min: f64, max: f64| {
        OffsetDateTime::from_unix_timestamp(h * 3600)
            .ok()
            .map(|ts| SeriesPoint {
                ts: Timestamp(ts),
                avg,
                min,
                max,
            })
    };
    let mut items = vec![];
    for (row, fitted, history) in rows {
        // Without a forecast the table row says why; a chart would be a lone dot.
        if fitted.is_none() {
            items.push((row, None));
            continue;
        }
        let past: Vec<SeriesPoint> = history
            .iter()
            .filter_map(|(h, v)| to_point(*h, *v, *v, *v))
            .collect();
        let last = history
            .last()
            .map(|p| p.0)
            .unwrap_or(to.unix_timestamp() / 3600);
        let ahead: Vec<SeriesPoint> = fitted
            .as_ref()
            .map(|f| {
                (1..=24 * 7)
                    .filter_map(|k| {
                        let (v, w) = f.at(k as f64);
                        to_point(last + k, v, v - w, v + w)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let unit = if row.metric.ends_with("_percent") {
            Unit::Percent
        } else {
            Unit::Count
        };
        let what = super::pages::resource_name(&row.metric, &row.labels);
        let title = format!("{} · {what}", row.host);
        let chart = charts::render(
            &format!(
                "forecast:{}:{}:{}",
                row.host,
                row.metric,
                row.labels.get("mount").cloned().unwrap_or_default()
            ),
            &title,
            unit,
            from.unix_timestamp(),
            (last + 24 * 7) * 3600,
            3600,
            &[
                LineInput {
                    label: "history".into(),
                    points: &past,
                    band: false,
                },
                LineInput {
                    label: "forecast (90 % interval)".into(),
                    points: &ahead,
                    band: true,
                },
            ],
        );
        items.push((row, Some(chart)));
    }
    Ok(ForecastsPageData {
        items,
        now: Timestamp(to),
        from: Timestamp(from),
        label,
    })
}

/// A series' hourly points split into those drawn (from `shown_from`) and those fitted (from
/// `fit_from`); both end at the window's end. Pure.
fn split_history(
    points: &[(i64, f64)],
    shown_from: OffsetDateTime,
    fit_from: OffsetDateTime,
) -> (Hourly, Hourly) {
    let hour_of = |t: OffsetDateTime| t.unix_timestamp().div_euclid(3600);
    let since = |h: i64| points.iter().filter(|p| p.0 >= h).copied().collect();
    (since(hour_of(shown_from)), since(hour_of(fit_from)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_window_draws_its_history_and_the_fit_takes_the_last_days_before_its_end() {
        let h = |t: OffsetDateTime| t.unix_timestamp() / 3600;
        let end = datetime!(2026-11-30 12:00 UTC);
        let points: Vec<(i64, f64)> = (0..24 * 30).map(|k| (h(end) - k, k as f64)).rev().collect();
        let fit_from = end - Duration::days(WINDOW_DAYS);
        // (window start, hours drawn, hours fitted)
        let table = [
            // A day drawn, two weeks fitted: the forecast does not depend on the window.
            (end - Duration::days(1), 25, 24 * 14 + 1),
            // 30 days drawn (all there is), still two weeks fitted.
            (end - Duration::days(90), 24 * 30, 24 * 14 + 1),
            // 10:30 draws from the hour that holds it: 10:00, 11:00 and 12:00.
            (end - Duration::minutes(90), 3, 24 * 14 + 1),
        ];
        for (from, shown, fitted) in table {
            let (s, f) = split_history(&points, from, fit_from);
            assert_eq!((s.len(), f.len()), (shown, fitted), "from {from}");
            assert_eq!(s.last(), points.last());
            assert_eq!(f.last(), points.last());
        }
    }
}
