//! `PATCH` bodies: a JSON object holding only the fields to change (and `paused` to pause or
//! resume), laid over the current declaration and read back through the declaration's own type.
//! So an edit is checked exactly like a new item: an unknown field, a wrong type or a missing
//! value is refused with the field's name, and the area's validation runs on the result.
//! `null` clears an optional field. Pure: no I/O.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The fields to change, e.g. `{"interval_seconds": 60}` or `{"paused": true}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct Change(pub Map<String, Value>);

impl Change {
    /// `{"paused": true}` or `{"paused": false}`: a page's Pause or Resume button.
    pub fn paused(paused: bool) -> Self {
        let mut m = Map::new();
        m.insert("paused".into(), Value::Bool(paused));
        Change(m)
    }
}

/// A declaration with a change applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched<T> {
    pub spec: T,
    /// `Some` when the change pauses (`true`) or resumes (`false`).
    pub paused: Option<bool>,
    /// The names of the fields changed (for the audit log; never their values).
    pub fields: Vec<String>,
}

/// Applies `change` to `current`. The error names the field at fault.
pub fn apply<T: Serialize + DeserializeOwned>(
    current: &T,
    change: Change,
) -> Result<Patched<T>, String> {
    let mut change = change.0;
    let paused = match change.remove("paused") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(other) => return Err(format!("paused: expected true or false, found {other}")),
    };
    let mut doc = serde_json::to_value(current).map_err(|e| e.to_string())?;
    let Value::Object(fields) = &mut doc else {
        return Err("this item cannot be changed field by field".into());
    };
    let mut names: Vec<String> = change.keys().cloned().collect();
    names.sort();
    for (k, v) in change {
        fields.insert(k, v);
    }
    let spec = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })?;
    if paused.is_some() {
        names.push("paused".into());
    }
    Ok(Patched {
        spec,
        paused,
        fields: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Check {
        name: String,
        interval_seconds: i32,
        #[serde(default)]
        expected_body: Option<String>,
    }

    fn current() -> Check {
        Check {
            name: "api".into(),
            interval_seconds: 30,
            expected_body: Some("ok".into()),
        }
    }

    fn change(v: Value) -> Change {
        match v {
            Value::Object(m) => Change(m),
            _ => unreachable!("tests give objects"),
        }
    }

    #[test]
    fn changes_are_laid_over_the_current_declaration() {
        type Want = Result<(Check, Option<bool>), &'static str>;
        let table: Vec<(Value, Want)> = vec![
            (serde_json::json!({}), Ok((current(), None))),
            (
                serde_json::json!({"interval_seconds": 60}),
                Ok((
                    Check {
                        interval_seconds: 60,
                        ..current()
                    },
                    None,
                )),
            ),
            (
                serde_json::json!({"expected_body": null}),
                Ok((
                    Check {
                        expected_body: None,
                        ..current()
                    },
                    None,
                )),
            ),
            (
                serde_json::json!({"paused": true}),
                Ok((current(), Some(true))),
            ),
            (
                serde_json::json!({"paused": false, "name": "web"}),
                Ok((
                    Check {
                        name: "web".into(),
                        ..current()
                    },
                    Some(false),
                )),
            ),
            (
                serde_json::json!({"paused": "yes"}),
                Err("paused: expected true or false"),
            ),
            (
                serde_json::json!({"interval_seconds": "often"}),
                Err("interval_seconds: invalid type"),
            ),
            (
                serde_json::json!({"name": null}),
                Err("name: invalid type: null"),
            ),
            (serde_json::json!({"id": 4}), Err("id: unknown field `id`")),
        ];
        for (body, want) in table {
            let got = apply(&current(), change(body.clone()));
            match (got, want) {
                (Ok(p), Ok((spec, paused))) => {
                    assert_eq!(p.spec, spec, "{body}");
                    assert_eq!(p.paused, paused, "{body}");
                }
                (Err(e), Err(start)) => assert!(e.starts_with(start), "{body}: {e}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn changed_fields_are_named_for_the_audit_log() {
        let p = apply(
            &current(),
            change(serde_json::json!({"paused": true, "interval_seconds": 10, "name": "x"})),
        )
        .unwrap();
        assert_eq!(p.fields, ["interval_seconds", "name", "paused"]);
    }
}
