//! The Prometheus text exposition format (version 0.0.4), parsed into families of samples.
//! Pure and strict the way Prometheus is: a malformed line fails the scrape, with its number.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// The sample's own name (`http_requests_total`, `latency_seconds_bucket`, …).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Samples that belong together: one metric family, with its declared type.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub samples: Vec<PromSample>,
}

/// Exposition bodies larger than this are refused rather than parsed.
pub const MAX_BODY: usize = 32 << 20;

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The family a sample name belongs to, given the declared types: `x_bucket`, `x_sum` and
/// `x_count` belong to histogram or summary `x`.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, Kind>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if matches!(types.get(base), Some(Kind::Histogram | Kind::Summary)) {
                return base;
            }
        }
    }
    name
}

/// Parses `name{labels} value [timestamp]` (after the name has been checked to start well).
fn parse_sample(line: &str) -> Result<PromSample, String> {
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = line[name_end..].trim_start();
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // Skip blanks and a separating comma.
            while let Some((_, c)) = chars.peek() {
                if *c == ' ' || *c == '\t' || *c == ',' {
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(&(start, c)) = chars.peek() else {
                return Err("labels are not closed with `}`".into());
            };
            if c == '}' {
                chars.next();
                rest = &after[start + 1..];
                break;
            }
            if !is_name_start(c) || c == ':' {
                return Err("a label name must start with a letter or `_`".into());
            }
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if is_name_char(c) && c != ':' {
                    end = i + c.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let key = after[start..end].to_string();
            while matches!(chars.peek(), Some((_, ' ' | '\t'))) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('=') {
                return Err(format!("label `{key}` has no `=`"));
            }
            while matches!(chars.peek(), Some((_, ' ' | '\t'))) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label `{key}`: the value must be in double quotes"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("label `{key}`: the value is not closed")),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err(format!("label `{key}`: the value is not closed")),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.insert(key.clone(), value).is_some() {
                return Err(format!("label `{key}` appears twice"));
            }
        }
    }
    let mut parts = rest.split_ascii_whitespace();
    let value = parts
        .next()
        .ok_or_else(|| format!("`{name}` has no value"))?;
    let value =
        parse_value(value).ok_or_else(|| format!("the value of `{name}` is not a number"))?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| "the timestamp is not a number of milliseconds".to_string())?;
    }
    if parts.next().is_some() {
        return Err("unexpected text after the value".into());
    }
    Ok(PromSample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses a whole exposition. Families come in the order they first appear.
pub fn parse(text: &str) -> Result<Vec<Family>, String> {
    if text.len() > MAX_BODY {
        return Err(format!("the body is larger than {} MiB", MAX_BODY >> 20));
    }
    let mut types: BTreeMap<String, Kind> = BTreeMap::new();
    let mut families: Vec<Family> = vec![];
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = |e: String| format!("line {}: {e}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_ascii_whitespace();
            if words.next() == Some("TYPE") {
                let name = words
                    .next()
                    .ok_or_else(|| at("# TYPE without a metric name".into()))?;
                let kind = match words.next() {
                    Some("counter") => Kind::Counter,
                    Some("gauge") => Kind::Gauge,
                    Some("histogram") => Kind::Histogram,
                    Some("summary") => Kind::Summary,
                    Some("untyped") => Kind::Untyped,
                    // (What the body says is not echoed: a scrape's error is shown to
                    // viewers, and the body may be anything.)
                    _ => {
                        return Err(at(
                            "# TYPE with an unknown type (counter, gauge, histogram, summary or untyped)".into(),
                        ))
                    }
                };
                types.insert(name.to_string(), kind);
            }
            continue;
        }
        if !line.starts_with(is_name_start) {
            return Err(at("not a sample (name{labels} value)".into()));
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&sample.name, &types).to_string();
        let i = *index.entry(family.clone()).or_insert_with(|| {
            families.push(Family {
                kind: types.get(&family).copied().unwrap_or(Kind::Untyped),
                name: family.clone(),
                samples: vec![],
            });
            families.len() - 1
        });
        families[i].samples.push(sample);
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_kind() {
        let text = "# HELP http_requests_total The total.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3\n\
\n\
# TYPE temp gauge\n\
temp -3.5e1\n\
# A comment that is not HELP or TYPE\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
# TYPE latency_seconds histogram\n\
latency_seconds_bucket{le=\"0.1\"} 5\n\
latency_seconds_bucket{le=\"+Inf\"} 9\n\
latency_seconds_sum 3.5\n\
latency_seconds_count 9\n\
# TYPE rpc summary\n\
rpc{quantile=\"0.5\"} NaN\n\
rpc_sum 1\n\
rpc_count 2\n";
        let f = parse(text).unwrap();
        let names: Vec<_> = f.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("http_requests_total", Kind::Counter),
                ("temp", Kind::Gauge),
                ("msdos_file_access_time_seconds", Kind::Untyped),
                ("latency_seconds", Kind::Histogram),
                ("rpc", Kind::Summary),
            ]
        );
        assert_eq!(
            f[0].samples[0].labels,
            labels(&[("method", "post"), ("code", "200")])
        );
        assert_eq!(f[0].samples[1].value, 3.0);
        assert_eq!(f[1].samples[0].value, -35.0);
        assert_eq!(
            f[2].samples[0].labels,
            labels(&[
                ("path", "C:\\DIR\\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\"")
            ])
        );
        assert_eq!(f[3].samples.len(), 4);
        assert_eq!(f[3].samples[1].value, 9.0);
        assert_eq!(f[3].samples[1].labels, labels(&[("le", "+Inf")]));
        assert!(f[4].samples[0].value.is_nan());
        assert_eq!(f[4].samples.len(), 3);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        for (text, expected) in [
            ("<html>oops</html>", "line 1: not a sample"),
            (
                "ok 1\nbad{a=\"x} 1",
                "line 2: label `a`: the value is not closed",
            ),
            (
                "x{a=1} 1",
                "line 1: label `a`: the value must be in double quotes",
            ),
            ("x{a} 1", "line 1: label `a` has no `=`"),
            ("x{a=\"1\",a=\"2\"} 1", "line 1: label `a` appears twice"),
            ("x{a=\"1\"", "line 1: labels are not closed"),
            ("x", "line 1: `x` has no value"),
            ("x one", "line 1: the value of `x` is not a number"),
            ("x 1 yesterday", "line 1: the timestamp is not a number"),
            ("x 1 2 3", "line 1: unexpected text after the value"),
            ("# TYPE x gauges", "line 1: # TYPE with an unknown type"),
            (
                "x{1a=\"\"} 1",
                "line 1: a label name must start with a letter",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(expected), "{text:?}: {err}");
            // Nothing of the body beyond names is echoed: errors are shown to viewers.
            for secret in ["oops", "one", "yesterday", "gauges", "3"] {
                assert!(
                    !err.contains(secret) || text == "x{a=\"1\",a=\"2\"} 1",
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn trailing_commas_blanks_and_crlf_are_fine() {
        let f = parse("x{a=\"1\",} 2\r\n  y { b = \"2\" } 3 \r\n").unwrap();
        assert_eq!(f[0].samples[0].labels, labels(&[("a", "1")]));
        assert_eq!(f[1].samples[0].labels, labels(&[("b", "2")]));
        assert_eq!(f[1].samples[0].value, 3.0);
        assert!(parse("").unwrap().is_empty());
    }
}
