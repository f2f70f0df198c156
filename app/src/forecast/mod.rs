//! Capacity forecasts. `model` holds the maths (pure): a least-squares line and Holt-Winters
//! with a daily season, chosen per series by backtest, and threshold crossings with a
//! prediction interval. The Capacity page and API that use it are not built yet.

pub mod model;
