//! Capacity forecasting on hourly values: a least-squares line (like Prometheus
//! `predict_linear`) and additive Holt-Winters with a daily season, picked per series by
//! backtest error; when the series will cross a threshold, with a prediction interval. Pure.

/// z for a two-sided 90 % prediction interval.
const Z: f64 = 1.645;
/// Hours in the daily season.
pub const SEASON: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Linear,
    HoltWinters,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Linear => "linear",
            Kind::HoltWinters => "holt_winters",
        }
    }
}

/// A fitted model: the expected value `h` hours after the last point, and the half-width of its
/// prediction interval.
#[derive(Debug, Clone, PartialEq)]
pub enum Fitted {
    Linear {
        slope: f64,
        intercept: f64,
        sigma: f64,
        n: f64,
        x_mean: f64,
        sxx: f64,
        last_x: f64,
    },
    HoltWinters {
        level: f64,
        trend: f64,
        season: Vec<f64>,
        sigma: f64,
        alpha: f64,
    },
}

impl Fitted {
    pub fn kind(&self) -> Kind {
        match self {
            Fitted::Linear { .. } => Kind::Linear,
            Fitted::HoltWinters { .. } => Kind::HoltWinters,
        }
    }

    /// (expected value, interval half-width) `h` ≥ 1 hours after the last point.
    pub fn at(&self, h: f64) -> (f64, f64) {
        match self {
            Fitted::Linear {
                slope,
                intercept,
                sigma,
                n,
                x_mean,
                sxx,
                last_x,
            } => {
                let x = last_x + h;
                let se = sigma * (1.0 + 1.0 / n + (x - x_mean).powi(2) / sxx).sqrt();
                (intercept + slope * x, Z * se)
            }
            Fitted::HoltWinters {
                level,
                trend,
                season,
                sigma,
                alpha,
            } => {
                let k = (h.ceil().max(1.0)) as usize;
                let s = season[(k - 1) % season.len()];
                // The error of an h-step forecast grows with h (the level's random walk).
                let var = 1.0 + (k as f64 - 1.0) * alpha * alpha;
                (level + trend * h + s, Z * sigma * var.sqrt())
            }
        }
    }
}

/// Least squares through (x, y) points: (slope, intercept, mean of x, Σ(x − mean)²); None for
/// fewer than two distinct x.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64, f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let x_mean = points.iter().map(|p| p.0).sum::<f64>() / n;
    let y_mean = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - x_mean).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - x_mean) * (p.1 - y_mean)).sum();
    let slope = sxy / sxx;
    Some((slope, y_mean - slope * x_mean, x_mean, sxx))
}

/// The line through hourly values (x counted in hours), with its residual spread.
pub fn fit_linear(ys: &[f64]) -> Option<Fitted> {
    let n = ys.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let points: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect();
    let (slope, intercept, x_mean, sxx) = least_squares(&points)?;
    let sse: f64 = ys
        .iter()
        .enumerate()
        .map(|(i, y)| (y - intercept - slope * i as f64).powi(2))
        .sum();
    Some(Fitted::Linear {
        slope,
        intercept,
        sigma: (sse / (nf - 2.0)).sqrt(),
        n: nf,
        x_mean,
        sxx,
        last_x: nf - 1.0,
    })
}

/// Additive Holt-Winters with given smoothing; None below two seasons of data. Also returns
/// the sum of squared one-step errors.
fn holt_winters(ys: &[f64], alpha: f64, beta: f64, gamma: f64) -> Option<(Fitted, f64)> {
    let m = SEASON;
    if ys.len() < 2 * m {
        return None;
    }
    let first: f64 = ys[..m].iter().sum::<f64>() / m as f64;
    let second: f64 = ys[m..2 * m].iter().sum::<f64>() / m as f64;
    let mut level = first;
    let mut trend = (second - first) / m as f64;
    let mut season: Vec<f64> = ys[..m].iter().map(|y| y - first).collect();
    let (mut sse, mut n) = (0.0, 0usize);
    for (i, y) in ys.iter().enumerate().skip(m) {
        let s = season[i % m];
        let predicted = level + trend + s;
        sse += (y - predicted).powi(2);
        n += 1;
        let last_level = level;
        level = alpha * (y - s) + (1.0 - alpha) * (level + trend);
        trend = beta * (level - last_level) + (1.0 - beta) * trend;
        season[i % m] = gamma * (y - level) + (1.0 - gamma) * s;
    }
    // Seasons in the order of the hours that follow the last point.
    let next = ys.len() % m;
    let season: Vec<f64> = (0..m).map(|k| season[(next + k) % m]).collect();
    let sigma = (sse / n.max(1) as f64).sqrt();
    Some((
        Fitted::HoltWinters {
            level,
            trend,
            season,
            sigma,
            alpha,
        },
        sse,
    ))
}

/// Holt-Winters with the smoothing that fits best (one-step error), from a small grid.
pub fn fit_holt_winters(ys: &[f64]) -> Option<Fitted> {
    let mut best: Option<(Fitted, f64)> = None;
    for alpha in [0.05, 0.2, 0.5] {
        for beta in [0.0, 0.01, 0.05] {
            for gamma in [0.05, 0.2, 0.5] {
                if let Some((f, sse)) = holt_winters(ys, alpha, beta, gamma) {
                    if best.as_ref().is_none_or(|b| sse < b.1) {
                        best = Some((f, sse));
                    }
                }
            }
        }
    }
    best.map(|b| b.0)
}

/// Mean absolute error of a model fitted on all but the last `holdout` points, on those points.
fn backtest(ys: &[f64], holdout: usize, fit: fn(&[f64]) -> Option<Fitted>) -> Option<f64> {
    if ys.len() <= holdout {
        return None;
    }
    let (train, test) = ys.split_at(ys.len() - holdout);
    let f = fit(train)?;
    Some(
        test.iter()
            .enumerate()
            .map(|(i, y)| (f.at(i as f64 + 1.0).0 - y).abs())
            .sum::<f64>()
            / holdout as f64,
    )
}

/// The model for a series: Holt-Winters when it backtests better over the last day and there
/// are at least three days (two to fit, one to test), else the line.
pub fn choose(ys: &[f64]) -> Option<Fitted> {
    let linear = fit_linear(ys)?;
    if ys.len() >= 3 * SEASON {
        let hw_err = backtest(ys, SEASON, fit_holt_winters);
        let lin_err = backtest(ys, SEASON, fit_linear);
        if let (Some(h), Some(l)) = (hw_err, lin_err) {
            if h < l {
                if let Some(hw) = fit_holt_winters(ys) {
                    return Some(hw);
                }
            }
        }
    }
    Some(linear)
}

/// The first time (hours after the last point, to a millisecond's precision) where `reached`
/// holds, scanning hour by hour up to `horizon` and then bisecting inside the hour.
fn first_hour(horizon: usize, reached: impl Fn(f64) -> bool) -> Option<f64> {
    let h = (1..=horizon).find(|h| reached(*h as f64))? as f64;
    let (mut lo, mut hi) = (h - 1.0, h);
    if lo > 0.0 && reached(lo) {
        return Some(lo);
    }
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if reached(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Hours until the forecast reaches `threshold` within `horizon` hours: (expected, earliest,
/// latest) by the mean, the interval's upper and its lower edge. None where it does not cross.
pub fn crossing(
    f: &Fitted,
    threshold: f64,
    horizon: usize,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    (
        first_hour(horizon, |h| f.at(h).0 >= threshold),
        first_hour(horizon, |h| {
            let (v, w) = f.at(h);
            v + w >= threshold
        }),
        first_hour(horizon, |h| {
            let (v, w) = f.at(h);
            v - w >= threshold
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise in [-1, 1].
    fn noise(i: usize) -> f64 {
        let x = (i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) % 2001) as f64 / 1000.0 - 1.0
    }

    #[test]
    fn least_squares_fits_exactly_and_refuses_degenerate_input() {
        let (s, i, _, _) = least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((s - 2.0).abs() < 1e-12 && (i - 1.0).abs() < 1e-12);
        assert_eq!(least_squares(&[(1.0, 1.0)]), None);
        assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn an_exact_line_crosses_exactly_when_it_should() {
        // 30 % growing 0.5 points an hour: 80 % is 100 hours after the 0th hour.
        let ys: Vec<f64> = (0..48).map(|i| 30.0 + 0.5 * i as f64).collect();
        let f = choose(&ys).unwrap();
        assert_eq!(f.kind(), Kind::Linear);
        let (mean, early, late) = crossing(&f, 80.0, 24 * 365);
        // The last point is hour 47: 53 hours to go, and no uncertainty on an exact line.
        for got in [mean, early, late] {
            assert!(got.is_some_and(|h| (h - 53.0).abs() < 1e-6), "{got:?}");
        }
        let flat: Vec<f64> = vec![40.0; 48];
        assert_eq!(crossing(&choose(&flat).unwrap(), 80.0, 24 * 365).0, None);
        assert!(choose(&[1.0, 2.0]).is_none(), "too little data");
    }

    #[test]
    fn with_noise_the_interval_covers_the_truth() {
        let truth = |i: usize| 20.0 + 0.1 * i as f64;
        let ys: Vec<f64> = (0..14 * 24).map(|i| truth(i) + 3.0 * noise(i)).collect();
        let f = fit_linear(&ys).unwrap();
        // Where the truth crosses 80 %: hour 600, i.e. 265 hours after the last point (335).
        let (mean, early, late) = crossing(&f, 80.0, 24 * 365);
        let (early, late) = (early.unwrap(), late.unwrap());
        assert!(early <= 265.0 && 265.0 <= late, "{early}..{late}");
        assert!((mean.unwrap() - 265.0).abs() < 15.0, "{mean:?}");
        // And the interval at a week ahead holds the true value.
        let (v, w) = f.at(168.0);
        assert!((v - truth(335 + 168)).abs() <= w, "{v} ± {w}");
    }

    #[test]
    fn a_daily_cycle_is_found_by_the_seasonal_model() {
        let ys: Vec<f64> = (0..14 * 24)
            .map(|i| 50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin() + noise(i))
            .collect();
        let f = choose(&ys).unwrap();
        assert_eq!(f.kind(), Kind::HoltWinters);
        // The next day's peak (70 %) is forecast within a few points.
        let peak = (1..=24).map(|h| f.at(h as f64).0).fold(f64::MIN, f64::max);
        assert!((peak - 70.0).abs() < 4.0, "{peak}");
        // It crosses 65 % at the next peak, not never (a line through the mean would not).
        let (mean, _, _) = crossing(&f, 65.0, 24 * 7);
        assert!(mean.is_some_and(|h| h <= 24.0), "{mean:?}");
        assert!(crossing(&fit_linear(&ys).unwrap(), 65.0, 24 * 7)
            .0
            .is_none());
    }
}

/// Hourly values from (hour index, value) points that may have gaps: gaps are filled by a
/// straight line between their neighbours. Points must be sorted by hour.
pub fn regular_hours(points: &[(i64, f64)]) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::with_capacity(points.len());
    for w in points.windows(2) {
        let ((h0, v0), (h1, v1)) = (w[0], w[1]);
        let span = (h1 - h0).max(1);
        for k in 0..span {
            out.push(v0 + (v1 - v0) * k as f64 / span as f64);
        }
    }
    if let Some(last) = points.last() {
        out.push(last.1);
    }
    out
}

#[cfg(test)]
mod regular_tests {
    use super::regular_hours;

    #[test]
    fn gaps_are_filled_in_a_straight_line() {
        assert_eq!(
            regular_hours(&[(0, 1.0), (1, 2.0), (4, 5.0)]),
            [1.0, 2.0, 3.0, 4.0, 5.0]
        );
        assert_eq!(regular_hours(&[(7, 3.0)]), [3.0]);
        assert!(regular_hours(&[]).is_empty());
    }
}
