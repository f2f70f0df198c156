//! Host metrics: samples, series selectors, storage tiers and the queries the pages and the
//! JSON API share. Pure rules (validation, selector parsing, tier choice) live here with their
//! tests; the database side is in `service` (server only).

#[cfg(feature = "ssr")]
pub mod charts;
#[cfg(feature = "ssr")]
pub mod chunk;
pub(crate) mod pages;
pub mod rollup;
#[cfg(feature = "ssr")]
pub mod service;

pub use pages::{AutoRefresh, ChartView, HostCards, HostPage, HostsPage};

use crate::error::AppError;
use crate::timestamp::Timestamp;
use leptos::prelude::*;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub type Labels = BTreeMap<String, String>;

/// One measurement: what, with which labels, when, how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Sample {
    pub metric: String,
    #[serde(default)]
    pub labels: Labels,
    pub ts: Timestamp,
    pub value: f64,
}

/// The body of `POST /api/v1/ingest/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    pub host: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IngestOutcome {
    /// Samples stored by this request.
    pub accepted: usize,
    /// Samples already stored before (a re-send): ignored, never doubled.
    pub duplicates: usize,
}

/// A host that has reported, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct HostInfo {
    pub name: String,
    /// `local` (Opsdeck's own collector) or `agent`.
    pub source: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// The newest value of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LatestValue {
    pub host: String,
    pub metric: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub labels: Labels,
    pub ts: Timestamp,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    pub ts: Timestamp,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SeriesData {
    pub host: String,
    pub metric: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub labels: Labels,
    /// The storage tier read: `raw`, `1m`, `5m` or `1h`.
    pub tier: String,
    /// Width of each point's bucket.
    pub step_seconds: i64,
    pub points: Vec<SeriesPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SeriesResponse {
    pub series: Vec<SeriesData>,
}

// ---- what the pages show ----

/// How a chart's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    Percent,
    BytesPerSecond,
    Bytes,
    Count,
    Plain,
    /// 1 up, 0 down; between, the share of the time it was up.
    Up,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Up if v >= 0.9995 => "up".into(),
            Unit::Up if v <= 0.0005 => "down".into(),
            Unit::Up => format!("up {:.0}% of the time", v * 100.0),
            Unit::Percent => format!("{v:.0}%"),
            Unit::Count => format!("{v:.0}"),
            Unit::Plain => format!("{v:.2}"),
            Unit::BytesPerSecond => {
                let (n, u) = scale_bytes(v);
                format!("{n:.1} {u}/s")
            }
            Unit::Bytes => {
                let (n, u) = scale_bytes(v);
                format!("{n:.1} {u}")
            }
        }
    }
}

/// 1536 → (1.5, "KiB").
pub fn scale_bytes(v: f64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut n = v;
    let mut i = 0;
    while n.abs() >= 1024.0 && i < UNITS.len() - 1 {
        n /= 1024.0;
        i += 1;
    }
    (n, UNITS[i])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartLine {
    pub label: String,
    pub color: String,
    /// (Unix seconds, average), for the value under the pointer.
    pub points: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub key: String,
    pub title: String,
    pub unit: Unit,
    /// Rendered on the server by plotters.
    pub svg: String,
    pub from: i64,
    pub to: i64,
    /// Plot area left and right edge, and the SVG's width and height, in SVG units.
    pub plot: [f64; 4],
    pub lines: Vec<ChartLine>,
    /// Moments marked across the plot: annotations (deploys …), an incident's start.
    #[serde(default)]
    pub marks: Vec<ChartMark>,
}

/// A moment marked on a chart, with what it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartMark {
    /// Unix seconds.
    pub at: i64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCharts {
    pub host: String,
    pub range_label: String,
    pub last_seen: Option<Timestamp>,
    pub silent: bool,
    pub tier: String,
    pub charts: Vec<Chart>,
}

/// A host on the Overview: current CPU, memory and fullest disk with a sparkline each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCard {
    pub name: String,
    pub source: String,
    pub last_seen: Timestamp,
    pub silent_for_secs: Option<i64>,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub disk: Option<(String, f64)>,
    pub cpu_spark: Vec<f64>,
    pub memory_spark: Vec<f64>,
    pub disk_spark: Vec<f64>,
}

/// Colour class of a percentage: warning from 80 %, critical from 90 %.
pub fn level(percent: f64) -> &'static str {
    if percent >= 90.0 {
        "crit"
    } else if percent >= 80.0 {
        "warn"
    } else {
        "ok"
    }
}

/// The range a host page opens on: short, so a new installation shows its first minutes of
/// data at once rather than a nearly empty day.
pub const DEFAULT_RANGE: &str = "1h";

/// The relative ranges every page with a time picker offers (hosts, services, logs): one time
/// model, so a range chosen on one page means the same on the next.
pub const RANGES: [(&str, i64); 7] = [
    ("15m", 900),
    ("1h", 3600),
    ("6h", 6 * 3600),
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
    ("90d", 90 * 86_400),
];

/// [`window`] as of now, in the viewer's zone: what a page's server function asks with its
/// `range`, `from` and `to` arguments.
#[cfg(feature = "ssr")]
pub fn window_now(
    range: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    default: &str,
) -> Result<(time::OffsetDateTime, time::OffsetDateTime, String), AppError> {
    window(
        range,
        from,
        to,
        default,
        time::OffsetDateTime::now_utc(),
        crate::zone::current(),
    )
}

/// The time window a page shows: `from`/`to` (RFC 3339, Unix seconds, `now-6h`, or the
/// browser's `2026-11-25T10:00`, read in the viewer's `zone`) when given, else the last `range`
/// (one of [`RANGES`], `default` when none), with the label the page shows for it. One time
/// model for every page that charts. Pure.
#[cfg(feature = "ssr")]
pub fn window(
    range: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    default: &str,
    now: time::OffsetDateTime,
    zone: chrono_tz::Tz,
) -> Result<(time::OffsetDateTime, time::OffsetDateTime, String), AppError> {
    // A `datetime-local` field's value: a wall-clock time in the viewer's zone.
    let parse = |s: &str| {
        if s.len() == 16 && s.as_bytes().get(10) == Some(&b'T') {
            let wall = parse_time_param(&format!("{s}:00Z"), now)?;
            let guess = wall.unix_timestamp() - crate::zone::offset_in(zone, wall.unix_timestamp());
            Ok(wall - time::Duration::seconds(crate::zone::offset_in(zone, guess)))
        } else {
            parse_time_param(s, now)
        }
    };
    fn given(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    match (given(from), given(to)) {
        (Some(f), t) => {
            let from = parse(f).map_err(|e| AppError::bad_request(format!("from: {e}")))?;
            let to = match t {
                Some(t) => parse(t).map_err(|e| AppError::bad_request(format!("to: {e}")))?,
                None => now,
            };
            if to <= from {
                return Err(AppError::bad_request(
                    "the end of the range must be after its start",
                ));
            }
            Ok((from, to, "custom".to_string()))
        }
        _ => {
            let label = range.filter(|r| !r.is_empty()).unwrap_or(default);
            let secs = RANGES
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    let names: Vec<&str> = RANGES.iter().map(|(l, _)| *l).collect();
                    AppError::bad_request(format!("range `{label}`: choose {}", names.join(", ")))
                })?;
            Ok((now - time::Duration::seconds(secs), now, label.to_string()))
        }
    }
}

#[server(prefix = "/sfn", endpoint = "metrics/host_cards")]
pub async fn get_host_cards() -> Result<Vec<HostCard>, AppError> {
    use crate::auth::Role;
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(Role::Viewer).await?;
        service::host_cards(&ctx.state).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "metrics/host_charts")]
pub async fn get_host_charts(
    host: String,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<HostCharts, AppError> {
    use crate::auth::Role;
    crate::auth::service::in_request(|ctx| async move {
        ctx.require(Role::Viewer).await?;
        service::host_charts(
            &ctx.state,
            &host,
            range.as_deref(),
            from.as_deref(),
            to.as_deref(),
        )
        .await
    })
    .await
}

// ---- validation ----

pub const MAX_SAMPLES_PER_BATCH: usize = 50_000;
pub const MAX_LABELS: usize = 16;
/// Samples may be this far in the future (clock skew between hosts).
pub const MAX_FUTURE_SECS: i64 = 300;

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

pub fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() || host.len() > 253 {
        return Err("host: must be 1 to 253 characters".into());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        let what = if c.is_whitespace() {
            "a space".to_string()
        } else {
            format!("`{c}`")
        };
        return Err(format!(
            "host: {what} is not allowed (letters, digits, `.`, `-`, `_`)"
        ));
    }
    Ok(())
}

pub fn validate_sample(s: &Sample) -> Result<(), String> {
    if s.metric.len() > 200 || !is_metric_name(&s.metric) {
        return Err(format!(
            "metric: `{}` is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
            truncate(&s.metric)
        ));
    }
    if s.labels.len() > MAX_LABELS {
        return Err(format!(
            "labels: {} labels, at most {MAX_LABELS}",
            s.labels.len()
        ));
    }
    for (k, v) in &s.labels {
        if k.len() > 100 || !is_label_name(k) {
            return Err(format!("labels: `{}` is not a label name", truncate(k)));
        }
        if v.len() > 256 {
            return Err(format!("labels.{k}: value longer than 256 bytes"));
        }
    }
    if !s.value.is_finite() {
        return Err("value: not a finite number".into());
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Checks a batch; the error names the first problem, e.g. `samples[3].ts: ...`.
pub fn validate_batch(
    batch: &IngestBatch,
    now: OffsetDateTime,
    max_age_secs: i64,
) -> Result<(), String> {
    validate_host(&batch.host)?;
    if batch.samples.is_empty() {
        return Err("samples: empty".into());
    }
    if batch.samples.len() > MAX_SAMPLES_PER_BATCH {
        return Err(format!(
            "samples: {} samples, at most {MAX_SAMPLES_PER_BATCH} per request",
            batch.samples.len()
        ));
    }
    for (i, s) in batch.samples.iter().enumerate() {
        validate_sample(s).map_err(|e| format!("samples[{i}].{e}"))?;
        let age = (now - s.ts).whole_seconds();
        if age > max_age_secs {
            return Err(format!(
                "samples[{i}].ts: older than the raw retention ({} days)",
                max_age_secs / 86_400
            ));
        }
        if age < -MAX_FUTURE_SECS {
            return Err(format!("samples[{i}].ts: more than {MAX_FUTURE_SECS} s in the future (check the host's clock)"));
        }
    }
    Ok(())
}

// ---- time parameters ----

/// `now`, `now-6h` (units s, m, h, d, w), an RFC 3339 time, or Unix seconds.
pub fn parse_time_param(input: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = input.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(rel) = s.strip_prefix("now-") {
        let secs = parse_duration_secs(rel)?;
        return now
            .checked_sub(time::Duration::seconds(secs))
            .ok_or_else(|| format!("`{s}` is too far back"));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().map_err(|_| format!("`{s}` is not a time"))?;
        return OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| format!("`{s}` is out of range"));
    }
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
        format!(
            "`{}` is not a time: use RFC 3339, Unix seconds, `now` or `now-6h`",
            truncate(s)
        )
    })
}

/// `90s`, `15m`, `6h`, `7d`, `2w` in seconds.
/// A collected value at the precision it is recorded with: percentages to 0.01, rates to whole
/// units a second; byte counts and counts are whole already. Finer digits are noise, and cost
/// a compressed chunk about 6 bytes a sample.
pub fn recorded_value(metric: &str, v: f64) -> f64 {
    let places = if metric.ends_with("_percent") {
        100.0
    } else if metric.ends_with("_per_second") {
        1.0
    } else {
        return v;
    };
    let r = (v * places).round() / places;
    // `-0.0` from a tiny negative noise is recorded as 0.
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// A collection time to whole milliseconds, as Prometheus keeps them.
pub fn recorded_time(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

pub fn parse_duration_secs(input: &str) -> Result<i64, String> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{}` is not a duration like 30s, 15m, 6h, 7d", truncate(s)))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "`{}` is not a duration like 30s, 15m, 6h, 7d",
                truncate(s)
            ))
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("`{s}` is too long"))
}

// ---- selectors ----

/// `disk_used_percent{mount="/"}`: a metric name and label equalities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub labels: Labels,
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.metric)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(
                    f,
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n")
                )?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

pub fn parse_selector(input: &str) -> Result<Selector, String> {
    let input = input.trim();
    let (name, rest) = match input.find('{') {
        Some(i) => (&input[..i], Some(&input[i + 1..])),
        None => (input, None),
    };
    let name = name.trim();
    if !is_metric_name(name) {
        return Err(format!("`{}` is not a metric name", truncate(name)));
    }
    let mut labels = Labels::new();
    if let Some(rest) = rest {
        let body = rest.strip_suffix('}').ok_or("missing closing `}`")?;
        let mut chars = body.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let key: String =
                std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_'))
                    .collect();
            if !is_label_name(&key) {
                return Err(format!("`{}` is not a label name", truncate(&key)));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match (chars.next(), chars.peek()) {
                (Some('='), Some('~')) | (Some('!'), _) => {
                    return Err(format!("label `{key}`: only `=` matchers are supported"));
                }
                (Some('='), _) => {}
                _ => return Err(format!("label `{key}`: expected `=\"value\"`")),
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('"') {
                return Err(format!("label `{key}`: expected `=\"value\"`"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        _ => return Err(format!("label `{key}`: bad escape in value")),
                    },
                    Some(c) => value.push(c),
                    None => return Err(format!("label `{key}`: unterminated value")),
                }
            }
            if labels.insert(key.clone(), value).is_some() {
                return Err(format!("label `{key}` given twice"));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                Some(',') | None => {}
                Some(c) => return Err(format!("unexpected `{c}` after label `{key}`")),
            }
        }
    }
    Ok(Selector {
        metric: name.to_string(),
        labels,
    })
}

// ---- tiers ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Raw,
    Minute,
    /// 5 minutes, kept as long as the minute tier.
    FiveMinutes,
    Hour,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "1m",
            Tier::FiveMinutes => "5m",
            Tier::Hour => "1h",
        }
    }

    /// The natural spacing of points in this tier (raw assumes the default 5 s interval).
    pub fn step_secs(self) -> i64 {
        match self {
            Tier::Raw => 5,
            Tier::Minute => 60,
            Tier::FiveMinutes => 300,
            Tier::Hour => 3600,
        }
    }
}

/// How long each tier keeps data, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw_secs: i64,
    pub minute_secs: i64,
    pub hour_secs: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_secs: 14 * 86_400,
            minute_secs: 90 * 86_400,
            hour_secs: 730 * 86_400,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<&crate::config::Config> for Retention {
    fn from(c: &crate::config::Config) -> Self {
        Self {
            raw_secs: c.retention_raw_days * 86_400,
            minute_secs: c.retention_1m_days * 86_400,
            hour_secs: c.retention_1h_days * 86_400,
        }
    }
}

/// The coarsest tier that still gives `points` points over the range and still holds data for
/// the whole range; the raw tier when none does.
pub fn choose_tier(from_age_secs: i64, range_secs: i64, points: i64, retention: Retention) -> Tier {
    for (tier, kept) in [
        (Tier::Hour, retention.hour_secs),
        (Tier::FiveMinutes, retention.minute_secs),
        (Tier::Minute, retention.minute_secs),
    ] {
        if range_secs / tier.step_secs() >= points && from_age_secs <= kept {
            return tier;
        }
    }
    if from_age_secs > retention.raw_secs {
        // Raw data is gone that far back: the minute tier is the finest that covers it.
        return if from_age_secs <= retention.minute_secs {
            Tier::Minute
        } else {
            Tier::Hour
        };
    }
    Tier::Raw
}

/// Width of an output bucket: at least the tier's step, wide enough for at most `points` points,
/// a whole multiple of the step.
pub fn bucket_secs(tier: Tier, range_secs: i64, points: i64) -> i64 {
    let step = tier.step_secs();
    let want = (range_secs + points - 1) / points.max(1);
    let multiple = (want + step - 1) / step;
    multiple.max(1) * step
}

#[cfg(test)]
mod tests {
    #[test]
    fn collected_values_are_recorded_at_their_precision() {
        use super::recorded_value;
        for (metric, v, want) in [
            ("cpu_usage_percent", 37.123_456_7, 37.12f64),
            ("disk_used_percent", 99.996, 100.0),
            ("cpu_core_usage_percent", -0.000_1, 0.0),
            ("network_receive_bytes_per_second", 1234.56, 1235.0),
            ("disk_read_bytes_per_second", 0.4, 0.0),
            ("memory_used_bytes", 8_123_456_789.0, 8_123_456_789.0),
            ("tcp_connections", 12.0, 12.0),
            ("custom_gauge", 0.123_456_789, 0.123_456_789),
        ] {
            let got = recorded_value(metric, v);
            assert_eq!(got.to_bits(), want.to_bits(), "{metric} {v}: {got}");
        }
        let t = time::macros::datetime!(2026-12-01 10:00:05.123_456_789 UTC);
        assert_eq!(
            super::recorded_time(t),
            time::macros::datetime!(2026-12-01 10:00:05.123 UTC)
        );
    }

    use super::*;
    use time::macros::datetime;

    #[test]
    fn host_names_are_checked_and_the_fault_named() {
        for (host, want) in [
            ("web-1.prod_2", Ok(())),
            (
                "web 1",
                Err("host: a space is not allowed (letters, digits, `.`, `-`, `_`)"),
            ),
            (
                "web/1",
                Err("host: `/` is not allowed (letters, digits, `.`, `-`, `_`)"),
            ),
            ("", Err("host: must be 1 to 253 characters")),
        ] {
            assert_eq!(
                validate_host(host),
                want.map_err(str::to_string),
                "{host:?}"
            );
        }
    }

    fn sample(metric: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            metric: metric.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ts: Timestamp(datetime!(2026-11-24 10:00 UTC)),
            value,
        }
    }

    #[test]
    fn batches_are_validated_with_the_first_problem_named() {
        let now = datetime!(2026-11-24 10:01 UTC);
        let ok = IngestBatch {
            host: "web-1".into(),
            samples: vec![sample("disk_used_percent", &[("mount", "/")], 41.5)],
        };
        assert_eq!(validate_batch(&ok, now, 14 * 86_400), Ok(()));
        let mut too_old = ok.clone();
        too_old.samples[0].ts = Timestamp(datetime!(2026-11-01 00:00 UTC));
        let mut future = ok.clone();
        future.samples[0].ts = Timestamp(datetime!(2026-11-24 11:00 UTC));
        let cases: Vec<(IngestBatch, &str)> = vec![
            (
                IngestBatch {
                    host: "".into(),
                    ..ok.clone()
                },
                "host",
            ),
            (
                IngestBatch {
                    host: "web 1".into(),
                    ..ok.clone()
                },
                "host: a space is not allowed",
            ),
            (
                IngestBatch {
                    samples: vec![],
                    ..ok.clone()
                },
                "samples: empty",
            ),
            (
                IngestBatch {
                    samples: vec![ok.samples[0].clone(), sample("9lives", &[], 1.0)],
                    ..ok.clone()
                },
                "samples[1].metric",
            ),
            (
                IngestBatch {
                    samples: vec![sample("x", &[("__name__", "y")], 1.0)],
                    ..ok.clone()
                },
                "samples[0].labels",
            ),
            (
                IngestBatch {
                    samples: vec![sample("x", &[], f64::NAN)],
                    ..ok.clone()
                },
                "samples[0].value",
            ),
            (
                IngestBatch {
                    samples: vec![sample("x", &[], f64::INFINITY)],
                    ..ok.clone()
                },
                "finite",
            ),
            (
                too_old,
                "samples[0].ts: older than the raw retention (14 days)",
            ),
            (future, "samples[0].ts: more than 300 s in the future"),
        ];
        for (batch, want) in cases {
            let err = validate_batch(&batch, now, 14 * 86_400).unwrap_err();
            assert!(err.contains(want), "want {want:?}, got {err:?}");
        }
    }

    #[test]
    fn a_window_reads_a_browser_time_in_the_viewers_zone() {
        let now = datetime!(2026-11-24 10:00 UTC);
        let kolkata = chrono_tz::Asia::Kolkata;
        let paris = chrono_tz::Europe::Paris;
        // (from, to, zone, want from, want to, label)
        let table = [
            (
                Some("2026-11-24T08:00"),
                None,
                chrono_tz::UTC,
                datetime!(2026-11-24 08:00 UTC),
                now,
                "custom",
            ),
            (
                Some("2026-11-24T08:00"),
                None,
                kolkata,
                datetime!(2026-11-24 02:30 UTC),
                now,
                "custom",
            ),
            // Summer time in Paris: UTC+2.
            (
                Some("2026-07-01T12:00"),
                Some("2026-07-01T14:00"),
                paris,
                datetime!(2026-07-01 10:00 UTC),
                datetime!(2026-07-01 12:00 UTC),
                "custom",
            ),
            // RFC 3339 and Unix seconds name their instant, whatever the zone.
            (
                Some("2026-11-24T08:00:00Z"),
                None,
                kolkata,
                datetime!(2026-11-24 08:00 UTC),
                now,
                "custom",
            ),
            (
                None,
                None,
                kolkata,
                datetime!(2026-11-24 09:00 UTC),
                now,
                "1h",
            ),
        ];
        for (from, to, zone, want_from, want_to, label) in table {
            let got = window(None, from, to, "1h", now, zone).unwrap();
            assert_eq!(
                got,
                (want_from, want_to, label.to_string()),
                "{from:?} {zone}"
            );
        }
        let err = window(Some("2y"), None, None, "1h", now, paris).unwrap_err();
        assert!(err.to_string().contains("range `2y`"), "{err}");
        let err = window(
            None,
            Some("2026-11-24T09:00"),
            Some("2026-11-24T08:00"),
            "1h",
            now,
            paris,
        )
        .unwrap_err();
        assert!(err.to_string().contains("after its start"), "{err}");
    }

    #[test]
    fn time_parameters() {
        let now = datetime!(2026-11-24 10:00 UTC);
        let ok = [
            ("now", now),
            ("now-6h", datetime!(2026-11-24 04:00 UTC)),
            ("now-90s", datetime!(2026-11-24 09:58:30 UTC)),
            ("now-2w", datetime!(2026-11-10 10:00 UTC)),
            ("2026-11-24T08:00:00Z", datetime!(2026-11-24 08:00 UTC)),
            ("2026-11-24T09:00:00+01:00", datetime!(2026-11-24 08:00 UTC)),
            ("1764000000", datetime!(2025-11-24 16:00 UTC)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_time_param(input, now), Ok(want), "{input}");
        }
        for bad in [
            "",
            "yesterday",
            "now-6",
            "now-6y",
            "now+1h",
            "2026-13-01T00:00:00Z",
            "99999999999999999999",
            "now-99999999999w",
        ] {
            assert!(parse_time_param(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_parse() {
        type Expected = Result<(&'static str, Vec<(&'static str, &'static str)>), &'static str>;
        let cases: Vec<(&str, Expected)> = vec![
            ("cpu_usage_percent", Ok(("cpu_usage_percent", vec![]))),
            (
                "disk_used_percent{mount=\"/\"}",
                Ok(("disk_used_percent", vec![("mount", "/")])),
            ),
            (
                " net{interface=\"eth0\", dir = \"rx\"} ",
                Ok(("net", vec![("interface", "eth0"), ("dir", "rx")])),
            ),
            ("m{a=\"x\\\"y\\\\z\"}", Ok(("m", vec![("a", "x\"y\\z")]))),
            ("m{}", Ok(("m", vec![]))),
            ("m{a=\"1\",}", Ok(("m", vec![("a", "1")]))),
            ("", Err("not a metric name")),
            ("1m", Err("not a metric name")),
            ("m{a=\"1\"", Err("missing closing")),
            ("m{a=~\"1\"}", Err("only `=`")),
            ("m{a!=\"1\"}", Err("only `=`")),
            ("m{a=1}", Err("expected `=\"value\"`")),
            ("m{a=\"1}", Err("unterminated")),
            ("m{a=\"1\",a=\"2\"}", Err("twice")),
            ("m{a=\"1\" b=\"2\"}", Err("unexpected `b`")),
            ("m{__x=\"1\"}", Err("not a label name")),
        ];
        for (input, want) in cases {
            let got = parse_selector(input);
            match want {
                Ok((metric, labels)) => {
                    let sel = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                    assert_eq!(sel.metric, metric);
                    let want: Labels = labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(sel.labels, want, "{input:?}");
                    assert_eq!(
                        parse_selector(&sel.to_string()).unwrap(),
                        sel,
                        "round trip of {input:?}"
                    );
                }
                Err(msg) => {
                    let err = got.unwrap_err();
                    assert!(err.contains(msg), "{input:?}: {err}");
                }
            }
        }
    }

    #[test]
    fn the_coarsest_sufficient_tier_is_read() {
        let r = Retention::default();
        let h = 3600;
        let d = 86_400;
        let cases = [
            // (from age, range, points, tier)
            (h, h, 1000, Tier::Raw),           // 1 h: 720 raw points at most
            (6 * h, 6 * h, 300, Tier::Minute), // 360 minute points are enough, 72 of 5 minutes not
            (6 * h, 6 * h, 72, Tier::FiveMinutes),
            (d, d, 1000, Tier::Minute),              // 1440 >= 1000 > 288
            (d, d, 200, Tier::FiveMinutes),          // a fleet overview: 288 >= 200
            (7 * d, 7 * d, 1000, Tier::FiveMinutes), // 2016 >= 1000
            (7 * d, 7 * d, 2500, Tier::Minute),
            (30 * d, 30 * d, 1000, Tier::FiveMinutes), // 720 hour points are too few
            (30 * d, 30 * d, 500, Tier::Hour),
            (365 * d, 365 * d, 1000, Tier::Hour),
            (20 * d, h, 1000, Tier::Minute), // raw is gone 20 days back
            (100 * d, h, 1000, Tier::Hour),  // and minutes 100 days back
        ];
        for (age, range, points, want) in cases {
            assert_eq!(
                choose_tier(age, range, points, r),
                want,
                "age {age} range {range} points {points}"
            );
        }
    }

    #[test]
    fn buckets_fit_the_requested_points() {
        assert_eq!(bucket_secs(Tier::Raw, 3600, 1000), 5);
        assert_eq!(bucket_secs(Tier::Raw, 3600, 100), 40);
        assert_eq!(bucket_secs(Tier::Minute, 30 * 86_400, 1000), 2640);
        assert_eq!(bucket_secs(Tier::FiveMinutes, 86_400, 200), 600);
        assert_eq!(bucket_secs(Tier::Hour, 365 * 86_400, 1000), 32_400);
        for (tier, range, points) in [
            (Tier::Raw, 86_400, 1000),
            (Tier::Minute, 7 * 86_400, 11_000),
            (Tier::FiveMinutes, 30 * 86_400, 1000),
            (Tier::Hour, 9_999_999, 7),
        ] {
            let b = bucket_secs(tier, range, points);
            assert!(range / b <= points, "{tier:?} {range} {points}: {b}");
            assert_eq!(b % tier.step_secs(), 0);
        }
    }
}
