//! The rule form as the Alerts page sends it (the add form and each rule's Edit), and the
//! rule it describes. Pure.

use super::RuleSpec;
use serde::{Deserialize, Serialize};

/// The rule form's fields, as the Alerts page sends them (the add form and each rule's Edit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleForm {
    pub name: String,
    pub kind: String,
    /// The host, check, service or backup target, by kind.
    pub target: String,
    /// The metric, or a log rule's condition.
    pub metric: String,
    pub op: String,
    /// The threshold, or a forecast's days, or a backup rule's hours.
    pub threshold: String,
    pub clear_threshold: String,
    pub for_seconds: String,
    /// Channel names, separated by commas.
    pub notify: String,
}

/// The fields of a rule the form sets; an Edit changes these and keeps the rest (severity,
/// repeat, a log rule's window and query…).
pub const RULE_FORM_FIELDS: [&str; 14] = [
    "factor",
    "host",
    "metric",
    "op",
    "threshold",
    "clear_threshold",
    "check",
    "service",
    "condition",
    "days",
    "target",
    "hours",
    "for_seconds",
    "notify",
];

impl RuleForm {
    /// The form of a stored rule, for its Edit.
    pub fn of(spec: &RuleSpec) -> Self {
        let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let (target, metric, threshold) = match spec.kind.as_str() {
            "health" => (text(&spec.check), String::new(), String::new()),
            "log" => (
                text(&spec.service),
                text(&spec.condition),
                num(spec.threshold),
            ),
            "forecast" => (text(&spec.host), text(&spec.metric), num(spec.days)),
            "backup" => (text(&spec.target), String::new(), num(spec.hours)),
            "log_anomaly" => (text(&spec.service), text(&spec.condition), num(spec.factor)),
            _ => (text(&spec.host), text(&spec.metric), num(spec.threshold)),
        };
        RuleForm {
            name: spec.name.clone(),
            kind: spec.kind.clone(),
            target,
            metric,
            op: text(&spec.op),
            threshold,
            clear_threshold: num(spec.clear_threshold),
            for_seconds: spec.for_seconds.to_string(),
            notify: spec.notify.join(", "),
        }
    }

    /// The rule the form describes; a number that is not one is refused naming its field.
    pub fn spec(&self) -> Result<RuleSpec, String> {
        let num = |field: &str, s: &str| -> Result<Option<f64>, String> {
            match s.trim() {
                "" => Ok(None),
                v => v
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| format!("{field}: `{v}` is not a number")),
            }
        };
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let mut spec: RuleSpec = serde_json::from_value(serde_json::json!({
            "name": self.name.trim(), "kind": self.kind.trim(),
        }))
        .map_err(|e| e.to_string())?;
        let threshold = num("threshold", &self.threshold)?;
        match self.kind.as_str() {
            "metric" => {
                spec.host = opt(&self.target);
                spec.metric = opt(&self.metric);
                spec.op = opt(&self.op);
                spec.threshold = threshold;
                spec.clear_threshold = num("clear_threshold", &self.clear_threshold)?;
            }
            "health" => spec.check = opt(&self.target).or(Some("*".into())),
            "log" => {
                spec.service = opt(&self.target);
                spec.condition = opt(&self.metric);
                spec.threshold = threshold;
            }
            "forecast" => {
                spec.host = opt(&self.target);
                spec.metric = opt(&self.metric);
                spec.days = threshold;
            }
            "backup" => {
                spec.target = opt(&self.target);
                spec.hours = threshold;
            }
            "log_anomaly" => {
                spec.service = opt(&self.target);
                spec.condition = opt(&self.metric);
                spec.factor = threshold;
            }
            "host" => {
                spec.host = opt(&self.target);
                spec.threshold = threshold;
            }
            _ => {}
        }
        spec.for_seconds = num("for_seconds", &self.for_seconds)?.unwrap_or(0.0) as i64;
        spec.notify = self
            .notify
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Ok(spec)
    }
}
