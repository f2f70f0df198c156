//! The log query language, free of I/O. What a user would guess:
//!
//! - `timeout` — the message contains the word (case-insensitive), `"connection refused"` — the
//!   phrase; several terms must all match;
//! - `level:error`, `level:>=warn`; `service:api`; `status:502`, `status:>=500`, `status:5xx`;
//!   `path:/api/*` (`*` is a wildcard); `ip:10.0.0.7`; `duration:>5`; any other field by its name
//!   (`logger:api`, `context.url:/x`); `field:*` — the field is present;
//! - `-term` or `-field:value` — must not match.

use super::parse::Level;

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The message contains this text (case-insensitive).
    Text(String),
    /// `level:` with a comparison on severity.
    Level(Op, Level),
    /// `service:` (exact, or with `*` wildcards).
    Service(String),
    /// A number comparison on a field: `status:>=500`, `duration:>5`.
    Number { field: String, op: Op, value: f64 },
    /// `status:5xx`: the status class.
    StatusClass(u16),
    /// The field's text equals, or matches with `*` wildcards.
    Match { field: String, pattern: String },
    /// The field is present.
    Exists(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub negated: bool,
    pub cond: Cond,
}

/// Splits the query into terms, keeping quoted phrases together; the error says where.
fn tokens(q: &str) -> Result<Vec<(usize, String, bool)>, String> {
    let mut out = vec![];
    let chars: Vec<(usize, char)> = q.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let mut tok = String::new();
        // `"…"` or `-"…"`: a phrase, never a field.
        let phrase = c == '"' || (c == '-' && chars.get(i + 1).is_some_and(|n| n.1 == '"'));
        while i < chars.len() && !chars[i].1.is_whitespace() {
            if chars[i].1 == '"' {
                let open = chars[i].0;
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    if chars[i].1 == '"' {
                        closed = true;
                        i += 1;
                        break;
                    }
                    tok.push(chars[i].1);
                    i += 1;
                }
                if !closed {
                    return Err(format!(
                        "unclosed quote at character {}",
                        q[..open].chars().count() + 1
                    ));
                }
            } else {
                tok.push(chars[i].1);
                i += 1;
            }
        }
        out.push((start, tok, phrase));
    }
    Ok(out)
}

fn split_op(v: &str) -> (Op, &str) {
    for (p, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ] {
        if let Some(rest) = v.strip_prefix(p) {
            return (op, rest);
        }
    }
    (Op::Eq, v)
}

fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '@')
}

/// Parses a query; an empty query matches everything.
pub fn parse(q: &str) -> Result<Vec<Clause>, String> {
    if q.len() > 2000 {
        return Err("the query is longer than 2,000 characters".into());
    }
    let mut out = vec![];
    for (_, tok, phrase) in tokens(q)? {
        let (negated, body) = match tok.strip_prefix('-') {
            Some(rest) if !rest.is_empty() => (true, rest.to_string()),
            _ => (false, tok.clone()),
        };
        // A quoted phrase is text, even with a colon in it.
        let field_split = if phrase {
            None
        } else {
            body.split_once(':').filter(|(f, _)| valid_field(f))
        };
        let cond = match field_split {
            None => {
                if body.is_empty() {
                    continue;
                }
                Cond::Text(body)
            }
            Some((field, value)) => {
                let field = field.to_ascii_lowercase();
                if value.is_empty() {
                    return Err(format!("`{field}:` needs a value, e.g. {field}:something"));
                }
                if value == "*" {
                    Cond::Exists(field)
                } else {
                    match field.as_str() {
                        "level" => {
                            let (op, v) = split_op(value);
                            let level = Level::parse(v).ok_or_else(|| {
                                format!("level `{v}`: use trace, debug, info, warn, error or fatal")
                            })?;
                            Cond::Level(op, level)
                        }
                        "service" => Cond::Service(value.to_string()),
                        "message" | "msg" => Cond::Text(value.to_string()),
                        _ => {
                            let lower = value.to_ascii_lowercase();
                            if field == "status" && lower.len() == 3 && lower.ends_with("xx") {
                                let class = lower[..1]
                                    .parse::<u16>()
                                    .ok()
                                    .filter(|c| (1..=5).contains(c))
                                    .ok_or_else(|| {
                                        format!("status class `{value}`: use 1xx to 5xx")
                                    })?;
                                Cond::StatusClass(class)
                            } else {
                                let (op, v) = split_op(value);
                                if op != Op::Eq || value.starts_with('=') {
                                    let n: f64 = v
                                        .parse()
                                        .ok()
                                        .filter(|n: &f64| n.is_finite())
                                        .ok_or_else(|| format!("`{field}:{value}`: a comparison needs a number after it"))?;
                                    Cond::Number {
                                        field,
                                        op,
                                        value: n,
                                    }
                                } else if let Some(n) = v
                                    .parse::<f64>()
                                    .ok()
                                    .filter(|n| n.is_finite() && !v.contains('*'))
                                {
                                    // `status:502` compares numbers, so 502 and 502.0 both match.
                                    Cond::Number {
                                        field,
                                        op: Op::Eq,
                                        value: n,
                                    }
                                } else {
                                    Cond::Match {
                                        field,
                                        pattern: v.to_string(),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
        out.push(Clause { negated, cond });
    }
    if out.len() > 32 {
        return Err("at most 32 terms in a query".into());
    }
    Ok(out)
}

/// A `*` wildcard pattern as a SQL LIKE pattern (other LIKE characters escaped).
pub fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 2);
    for c in glob.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(negated: bool, cond: Cond) -> Clause {
        Clause { negated, cond }
    }

    #[test]
    fn queries() {
        use Cond::*;
        let cases: Vec<(&str, Vec<Clause>)> = vec![
            ("", vec![]),
            ("timeout", vec![c(false, Text("timeout".into()))]),
            (
                "\"connection refused\" -retry",
                vec![
                    c(false, Text("connection refused".into())),
                    c(true, Text("retry".into())),
                ],
            ),
            (
                "level:error",
                vec![c(false, Level(Op::Eq, super::Level::Error))],
            ),
            (
                "level:>=WARN",
                vec![c(false, Level(Op::Ge, super::Level::Warn))],
            ),
            (
                "status:>=500",
                vec![c(
                    false,
                    Number {
                        field: "status".into(),
                        op: Op::Ge,
                        value: 500.0,
                    },
                )],
            ),
            (
                "status:502",
                vec![c(
                    false,
                    Number {
                        field: "status".into(),
                        op: Op::Eq,
                        value: 502.0,
                    },
                )],
            ),
            ("status:5xx", vec![c(false, StatusClass(5))]),
            (
                "path:/api/*",
                vec![c(
                    false,
                    Match {
                        field: "path".into(),
                        pattern: "/api/*".into(),
                    },
                )],
            ),
            (
                "ip:10.0.0.7",
                vec![c(
                    false,
                    Match {
                        field: "ip".into(),
                        pattern: "10.0.0.7".into(),
                    },
                )],
            ),
            (
                "service:api -level:debug",
                vec![
                    c(false, Service("api".into())),
                    c(true, Level(Op::Eq, super::Level::Debug)),
                ],
            ),
            (
                "duration:>5.5",
                vec![c(
                    false,
                    Number {
                        field: "duration".into(),
                        op: Op::Gt,
                        value: 5.5,
                    },
                )],
            ),
            (
                "context.url:/x user_agent:*",
                vec![
                    c(
                        false,
                        Match {
                            field: "context.url".into(),
                            pattern: "/x".into(),
                        },
                    ),
                    c(false, Exists("user_agent".into())),
                ],
            ),
            (
                "logger:\"api worker\"",
                vec![c(
                    false,
                    Match {
                        field: "logger".into(),
                        pattern: "api worker".into(),
                    },
                )],
            ),
            ("\"a:b\"", vec![c(false, Text("a:b".into()))]),
            (
                "http://x",
                vec![c(
                    false,
                    Match {
                        field: "http".into(),
                        pattern: "//x".into(),
                    },
                )],
            ),
            ("-", vec![c(false, Text("-".into()))]),
        ];
        for (q, want) in cases {
            assert_eq!(parse(q), Ok(want), "{q:?}");
        }
    }

    #[test]
    fn bad_queries_point_at_the_problem() {
        let cases = [
            ("\"unclosed", "unclosed quote at character 1"),
            ("ok \"x", "unclosed quote at character 4"),
            ("status:", "`status:` needs a value"),
            ("level:loud", "level `loud`"),
            ("status:>=abc", "a comparison needs a number"),
            ("status:9xx", "status class `9xx`"),
        ];
        for (q, want) in cases {
            let err = parse(q).expect_err(q);
            assert!(err.contains(want), "{q:?}: {err:?}");
        }
        assert!(parse(&"a ".repeat(40)).unwrap_err().contains("at most 32"));
    }

    #[test]
    fn like_patterns() {
        assert_eq!(like_pattern("/api/*"), "/api/%");
        assert_eq!(like_pattern("100%_x\\"), "100\\%\\_x\\\\");
    }
}
