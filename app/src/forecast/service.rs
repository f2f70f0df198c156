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

pub const WINDOW_DAYS: i64 = 14;
/// Crossings further away than this are not reported.
const HORIZON_HOURS: usize = 24 * 365;

/// The resources forecast, with their unit: percentages cross 80 % and 100 %.
const RESOURCES: [(&str, Option<&str>); 4] = [
    ("cpu_usage_percent", None),
    ("memory_used_percent", None),
    ("disk_used_percent", None),
    ("tcp_connections", Some("established")),
];

/// One series' hourly history: (host, metric, labels, [(unix hour, value)]).
type History = (String, String, Labels, Vec<(i64, f64)>);
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

async fn histories(
    pool: &PgPool,
    host: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<Vec<History>> {
    let rows: Vec<HistoryRow> =
        sqlx::query_as(
            "SELECT s.host, s.metric, s.labels, array_agg(r.bucket ORDER BY r.bucket), array_agg(r.sum / r.count ORDER BY r.bucket)
             FROM metric_series s JOIN metric_rollup_1h r ON r.series_id = s.id
             WHERE s.metric = ANY($1) AND ($2::text IS NULL OR s.host = $2) AND r.bucket >= $3
               AND (s.metric <> 'tcp_connections' OR s.labels->>'state' = 'established')
             GROUP BY s.id, s.host, s.metric, s.labels ORDER BY s.host, s.metric, s.labels::text",
        )
        .bind(RESOURCES.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(host)
        .bind(now - Duration::days(WINDOW_DAYS))
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
        row.reason = Some("already above 80 %".into());
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
    let mut rows: Vec<_> = histories(pool, host, now)
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

/// The Capacity page: every resource, soonest crossing first, each with a chart of its history,
/// the forecast for the next 7 days and its 90 % interval as a band.
pub async fn page_data(pool: &PgPool, now: OffsetDateTime) -> AppResult<ForecastsPageData> {
    let mut rows: Vec<_> = histories(pool, None, now)
        .await?
        .into_iter()
        .map(|h| {
            let (r, f) = forecast_one(&h);
            (r, f, h.3)
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
        let last = history.last().map(|p| p.0).unwrap_or(0);
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
        let first = history.first().map(|p| p.0).unwrap_or(last);
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
            first * 3600,
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
        now: Timestamp(now),
    })
}
