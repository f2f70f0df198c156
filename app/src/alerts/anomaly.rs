//! The `log_anomaly` judgement: a window's errors against the same hour of the 7 days before.
//! Pure.

use super::rules::human_secs;

/// A `log_anomaly` judgement: a window's errors against the same hour of the 7 days before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    /// Errors in the window, or the error rate in %.
    pub value: f64,
    /// What is normal for the window: the same hour's errors a day (scaled to the window),
    /// or its error rate.
    pub normal: f64,
    pub errors: i64,
    pub breach: bool,
}

impl Anomaly {
    pub fn describe(&self, service: &str, window_secs: i64, rate: bool) -> String {
        let (now, normal) = if rate {
            (
                format!("{:.1} % errors", self.value),
                format!("{:.1} %", self.normal),
            )
        } else {
            (
                format!("{} errors", self.errors),
                format!("{:.1}", self.normal),
            )
        };
        let times = if self.normal > 0.0 {
            format!("{:.1}× normal", self.value / self.normal)
        } else {
            "none usually".to_string()
        };
        format!(
            "{service}: {now} in {} ({times}; normal at this hour: {normal})",
            human_secs(window_secs)
        )
    }
}

/// Judges a service's `(errors, lines)` in a window of `window_secs` against the sum of the same
/// hour over the 7 days before (days without lines count as quiet ones): it breaches at
/// `factor` times normal with at least `min_errors` errors. Pure.
pub fn judge_anomaly(
    (errors, lines): (i64, i64),
    (base_errors, base_lines): (i64, i64),
    window_secs: i64,
    (factor, min_errors, rate): (f64, i64, bool),
) -> Anomaly {
    let (value, normal) = if rate {
        let pct = |e: i64, l: i64| {
            if l > 0 {
                100.0 * e as f64 / l as f64
            } else {
                0.0
            }
        };
        (pct(errors, lines), pct(base_errors, base_lines))
    } else {
        (
            errors as f64,
            base_errors as f64 / 7.0 * window_secs as f64 / 3600.0,
        )
    };
    Anomaly {
        value,
        normal,
        errors,
        breach: errors >= min_errors && value > 0.0 && value >= factor * normal,
    }
}
