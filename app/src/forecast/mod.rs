//! Capacity forecasts: when CPU, memory or a disk will cross 80 % (and 100 %), with a 90 %
//! prediction interval, from the hourly rollups of the last two weeks. `model` holds the maths
//! (pure): a least-squares line and Holt-Winters with a daily season, chosen per series by
//! backtest; `service` reads the history (server only).

pub mod model;
mod pages;
#[cfg(feature = "ssr")]
pub mod service;

pub use pages::CapacityPage;

use crate::error::AppError;
use crate::metrics::{Chart, Labels};
use crate::timestamp::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One resource's forecast, as `GET /api/v1/forecasts` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ForecastRow {
    pub host: String,
    pub metric: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub labels: Labels,
    /// `linear` or `holt_winters` (null without enough data).
    pub model: Option<String>,
    pub current: Option<f64>,
    pub moving_average_24h: Option<f64>,
    pub in_7d: Option<f64>,
    pub in_30d: Option<f64>,
    pub eta_80: Option<Timestamp>,
    pub eta_80_low: Option<Timestamp>,
    pub eta_80_high: Option<Timestamp>,
    pub eta_100: Option<Timestamp>,
    /// Why a figure is null (not enough data, not crossing within a year, no fixed limit).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastsPageData {
    /// Each resource, with its chart when there is a forecast to draw.
    pub items: Vec<(ForecastRow, Option<Chart>)>,
    /// The window's end: the moment the forecasts are made at (now, unless a past window).
    pub now: Timestamp,
    /// The window's start (the history drawn begins here).
    pub from: Timestamp,
    /// The range shown (`7d`, …, or `custom`).
    pub label: String,
}

#[server(prefix = "/sfn", endpoint = "capacity/page")]
pub async fn get_capacity_page(
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<ForecastsPageData, AppError> {
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(crate::auth::Role::Viewer).await?;
        let (from, to, label) = crate::metrics::window_now(
            range.as_deref(),
            from.as_deref(),
            to.as_deref(),
            CAPACITY_RANGE,
        )?;
        service::page_data(&ctx.state.pool, from, to, label).await
    })
    .await
}

/// The days of hourly history a forecast is fitted on (`service::WINDOW_DAYS`, named for the page).
pub const FIT_DAYS: i64 = 14;

/// The history the Capacity page opens on: a week drawn before the week forecast.
pub const CAPACITY_RANGE: &str = "7d";

/// The reason a resource's crossing is "now": it is over 80 % already.
pub const ALREADY_ABOVE: &str = "already above 80 %";

impl ForecastRow {
    /// Over 80 % already (its crossing is its last sample), not a forecast one.
    pub fn is_above(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| r.starts_with(ALREADY_ABOVE))
    }
}

/// The Capacity page's warning for `above` resources over 80 % now and `soon` more forecast to
/// cross it within 7 days; none when both are 0.
pub fn capacity_warning(above: usize, soon: usize) -> Option<String> {
    match (above, soon) {
        (0, 0) => None,
        (0, s) => Some(format!("{s} resource(s) may exceed 80 % within 7 days.")),
        (a, 0) => Some(format!("{a} resource(s) above 80 % now.")),
        (a, s) => Some(format!(
            "{a} resource(s) above 80 % now, and {s} more may exceed it within 7 days."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::capacity_warning;

    #[test]
    fn the_warning_counts_resources_above_apart_from_forecast_ones() {
        for (above, soon, want) in [
            (0, 0, None),
            (0, 1, Some("1 resource(s) may exceed 80 % within 7 days.")),
            (2, 0, Some("2 resource(s) above 80 % now.")),
            (
                1,
                3,
                Some("1 resource(s) above 80 % now, and 3 more may exceed it within 7 days."),
            ),
        ] {
            assert_eq!(
                capacity_warning(above, soon).as_deref(),
                want,
                "{above} {soon}"
            );
        }
    }
}
