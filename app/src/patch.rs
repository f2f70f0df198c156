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

    /// A page's `pause` or `resume` button as a change.
    pub fn pause_action(action: &str) -> Result<Self, crate::error::AppError> {
        match action {
            "pause" => Ok(Self::paused(true)),
            "resume" => Ok(Self::paused(false)),
            a => Err(crate::error::AppError::bad_request(format!(
                "action `{a}`: pause or resume"
            ))),
        }
    }
}

/// How an Edit form's text (a form sends every field as text) becomes a field's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormField {
    /// Text, trimmed.
    Text,
    /// Text that the page never shows (a secret, a URL that may hold a token): empty keeps the
    /// stored value.
    NewOnly,
    /// Text; empty clears the field.
    Optional,
    /// A whole number.
    Int,
    /// A whole number; empty clears the field.
    OptionalInt,
    /// A yes/no choice: `true`, `on` or `yes` is yes, anything else no.
    Bool,
}

/// The change an Edit form asks for: each field of `form` read as `fields` says. A form field
/// that `fields` does not name is refused by name; a field the form leaves out is kept.
pub fn from_form(
    form: &std::collections::BTreeMap<String, String>,
    fields: &[(&str, FormField)],
) -> Result<Change, String> {
    let mut change = Map::new();
    for (name, text) in form {
        let Some((_, kind)) = fields.iter().find(|(f, _)| f == name) else {
            return Err(format!("{name}: this field cannot be changed here"));
        };
        let t = text.trim();
        let int = || match t {
            "" => Err(format!("{name}: a whole number is needed")),
            t => t
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("{name}: `{t}` is not a whole number")),
        };
        let value = match kind {
            FormField::NewOnly if t.is_empty() => continue,
            FormField::Optional | FormField::OptionalInt if t.is_empty() => Value::Null,
            FormField::Text | FormField::NewOnly | FormField::Optional => Value::from(t),
            FormField::Int | FormField::OptionalInt => int()?,
            FormField::Bool => Value::Bool(matches!(t, "true" | "on" | "yes")),
        };
        change.insert(name.clone(), value);
    }
    Ok(Change(change))
}

/// An Edit form's `id`. Beside a flattened form, the form decoder hands every value over as
/// text, so the id is read here.
pub fn form_id(id: &str) -> Result<i64, crate::error::AppError> {
    id.trim().parse().map_err(|_| {
        crate::error::AppError::bad_request(format!("id: `{id}` is not an item's number"))
    })
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

    #[test]
    fn an_edit_form_becomes_a_change() {
        use FormField::*;
        let fields = [
            ("url", NewOnly),
            ("interval_seconds", Int),
            ("port", OptionalInt),
            ("schedule", Optional),
            ("pattern", Text),
            ("default", Bool),
        ];
        let form = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        for (pairs, want) in [
            (
                vec![("url", ""), ("pattern", " uvicorn ")],
                Ok(serde_json::json!({"pattern": "uvicorn"})),
            ),
            (
                vec![("url", "http://x/")],
                Ok(serde_json::json!({"url": "http://x/"})),
            ),
            (
                vec![("port", ""), ("schedule", "")],
                Ok(serde_json::json!({"port": null, "schedule": null})),
            ),
            (
                vec![("port", "8000"), ("interval_seconds", "60")],
                Ok(serde_json::json!({"port": 8000, "interval_seconds": 60})),
            ),
            (
                vec![("default", "true")],
                Ok(serde_json::json!({"default": true})),
            ),
            (
                vec![("default", "false")],
                Ok(serde_json::json!({"default": false})),
            ),
            (vec![], Ok(serde_json::json!({}))),
            (
                vec![("interval_seconds", "soon")],
                Err("interval_seconds: `soon` is not a whole number".to_string()),
            ),
            (
                vec![("interval_seconds", "")],
                Err("interval_seconds: a whole number is needed".to_string()),
            ),
            (
                vec![("name", "x")],
                Err("name: this field cannot be changed here".to_string()),
            ),
        ] {
            let got = from_form(&form(&pairs), &fields).map(|c| Value::Object(c.0));
            assert_eq!(got, want, "{pairs:?}");
        }
    }

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
