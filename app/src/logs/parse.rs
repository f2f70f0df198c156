//! Log line parsers, free of I/O: JSON lines from structured loggers, nginx/Apache combined
//! format (with the request time when it is appended), and plain text with heuristic timestamps
//! and levels whose continuation lines (stack traces) join their entry. A line that cannot be
//! parsed becomes a record with the raw text and a parse-error mark: never dropped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The most a stored line keeps (longer lines are cut and marked).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// The usual spellings: `ERROR`, `err`, `warning`, `CRITICAL`, `Information`, syslog numbers.
    pub fn parse(s: &str) -> Option<Level> {
        let l = s.trim().to_ascii_lowercase();
        Some(match l.as_str() {
            "trace" | "trc" | "verbose" | "7" => Level::Trace,
            "debug" | "dbg" | "debu" => Level::Debug,
            "info" | "inf" | "information" | "informational" | "notice" | "6" | "5" => Level::Info,
            "warn" | "warning" | "wrn" | "4" => Level::Warn,
            "error" | "err" | "eror" | "3" => Level::Error,
            "fatal" | "critical" | "crit" | "alert" | "emerg" | "emergency" | "panic" | "0"
            | "1" | "2" => Level::Fatal,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Nginx,
    Text,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "nginx" | "apache" | "combined" => Ok(Format::Nginx),
            "text" | "plain" => Ok(Format::Text),
            other => Err(format!("format `{other}`: use json, nginx or text")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Nginx => "nginx",
            Format::Text => "text",
        }
    }
}

/// One log entry, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// None when the line carried no time we could read (the caller uses the time it was read).
    pub ts: Option<OffsetDateTime>,
    pub level: Option<Level>,
    pub message: String,
    /// Every other field, queryable (`status`, `path`, `ip`, `duration`, `context.url`, …).
    pub fields: Map<String, Value>,
    /// Why the line could not be parsed; the raw line is then the message.
    pub parse_error: Option<String>,
}

impl Record {
    fn unparsed(line: &str, why: impl Into<String>) -> Record {
        Record {
            ts: None,
            level: None,
            message: line.to_string(),
            fields: Map::new(),
            parse_error: Some(why.into()),
        }
    }
}

/// Cuts a line to `MAX_LINE_BYTES` on a character boundary.
pub fn clip(line: &str) -> (&str, bool) {
    if line.len() <= MAX_LINE_BYTES {
        return (line, false);
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    (&line[..end], true)
}

/// Timestamps as loggers write them: RFC 3339, `2026-11-24 10:15:02,123` (Python), with `T` or a
/// space, with or without fraction and offset (no offset = UTC), and Unix seconds or milliseconds.
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let v: f64 = s.parse().ok()?;
        let secs = if v > 1e11 { v / 1000.0 } else { v };
        return OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok();
    }
    // Normalise: `T` → space, `,` → `.`, a trailing `Z` or offset split off.
    let mut norm = s.replacen('T', " ", 1).replace(',', ".");
    let mut offset = UtcOffset::UTC;
    if let Some(stripped) = norm.strip_suffix('Z') {
        norm = stripped.to_string();
    } else if norm.len() > 19 {
        let tail_start = norm.len().saturating_sub(6);
        if let Some(tail) = norm.get(tail_start..) {
            let b = tail.as_bytes();
            if (b[0] == b'+' || b[0] == b'-') && b[3] == b':' {
                let h: i8 = tail[1..3].parse().ok()?;
                let m: i8 = tail[4..6].parse().ok()?;
                let sign = if b[0] == b'-' { -1 } else { 1 };
                offset = UtcOffset::from_hms(sign * h, sign * m, 0).ok()?;
                norm.truncate(tail_start);
            }
        }
    }
    let fmt_frac = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = PrimitiveDateTime::parse(norm.trim(), &fmt_frac)
        .or_else(|_| PrimitiveDateTime::parse(norm.trim(), &fmt))
        .ok()?;
    Some(t.assume_offset(offset))
}

const TS_KEYS: [&str; 5] = ["timestamp", "time", "ts", "@timestamp", "datetime"];
const LEVEL_KEYS: [&str; 5] = ["level", "levelname", "severity", "log.level", "lvl"];
const MESSAGE_KEYS: [&str; 4] = ["message", "msg", "event", "@message"];

/// Flattens nested objects into dotted keys: `{"context":{"url":"/x"}}` → `context.url`.
fn flatten(prefix: &str, v: Value, out: &mut Map<String, Value>, depth: usize) {
    match v {
        Value::Object(m) if depth < 6 => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out, depth + 1);
            }
        }
        other => {
            out.insert(prefix.to_string(), other);
        }
    }
}

/// A JSON line from a structured logger.
pub fn parse_json(line: &str) -> Record {
    let (line, clipped) = clip(line);
    let obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Record::unparsed(line, "a JSON value but not an object"),
        Err(e) => return Record::unparsed(line, format!("not JSON: {e}")),
    };
    let mut fields = Map::new();
    flatten("", Value::Object(obj), &mut fields, 0);
    let take = |fields: &mut Map<String, Value>, keys: &[&str]| -> Option<Value> {
        keys.iter().find_map(|k| fields.remove(*k))
    };
    let ts = take(&mut fields, &TS_KEYS).and_then(|v| match v {
        Value::String(s) => parse_timestamp(&s),
        Value::Number(n) => n.as_f64().and_then(|f| parse_timestamp(&format!("{f}"))),
        _ => None,
    });
    let level = take(&mut fields, &LEVEL_KEYS).and_then(|v| match v {
        Value::String(s) => Level::parse(&s),
        Value::Number(n) => Level::parse(&n.to_string()),
        _ => None,
    });
    let message = match take(&mut fields, &MESSAGE_KEYS) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    // The response time, wherever the logger put it, under one name: `duration` in seconds.
    if !fields.contains_key("duration") {
        let d = [
            "context.execution_time",
            "execution_time",
            "duration_seconds",
            "elapsed",
            "response_time",
        ]
        .iter()
        .find_map(|k| fields.get(*k).and_then(Value::as_f64));
        if let Some(d) = d {
            fields.insert("duration".into(), Value::from(d));
        }
    }
    for (from, to) in [
        ("context.status", "status"),
        ("context.url", "path"),
        ("context.method", "method"),
    ] {
        if !fields.contains_key(to) {
            if let Some(v) = fields.get(from).cloned() {
                fields.insert(to.into(), v);
            }
        }
    }
    if clipped {
        fields.insert("truncated".into(), Value::Bool(true));
    }
    Record {
        ts,
        level,
        message,
        fields,
        parse_error: None,
    }
}

/// Splits the next token of a combined-format line: a bare word, a "quoted string" (with `\"`
/// escapes) or a [bracketed time].
fn next_token(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let b = s.as_bytes();
    match *b.first()? {
        b'"' => {
            let mut out = String::new();
            let mut chars = s[1..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => return Some((out, &s[i + 2..])),
                    c => out.push(c),
                }
            }
            None
        }
        b'[' => {
            let end = s.find(']')?;
            Some((s[1..end].to_string(), &s[end + 1..]))
        }
        _ => {
            let end = s.find(' ').unwrap_or(s.len());
            Some((s[..end].to_string(), &s[end..]))
        }
    }
}

/// `10/Oct/2026:13:55:36 +0000`.
fn parse_clf_time(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(s, &fmt).ok()
}

/// nginx/Apache combined format, optionally followed by the request time in seconds:
/// `ip - user [time] "GET /path HTTP/1.1" status bytes "referer" "agent" [request_time]`.
pub fn parse_nginx(line: &str) -> Record {
    let (line, _) = clip(line);
    let fail = |why: &str| Record::unparsed(line, format!("not the combined log format: {why}"));
    let Some((ip, rest)) = next_token(line) else {
        return fail("empty line");
    };
    let Some((_ident, rest)) = next_token(rest) else {
        return fail("no identity field");
    };
    let Some((user, rest)) = next_token(rest) else {
        return fail("no user field");
    };
    let Some((time, rest)) = next_token(rest) else {
        return fail("no [time]");
    };
    let Some(ts) = parse_clf_time(&time) else {
        return fail("the time is not like 10/Oct/2026:13:55:36 +0000");
    };
    let Some((request, rest)) = next_token(rest) else {
        return fail("no \"request\"");
    };
    let Some((status, rest)) = next_token(rest) else {
        return fail("no status");
    };
    let Ok(status) = status.parse::<u16>() else {
        return fail("the status is not a number");
    };
    let (bytes, rest) = next_token(rest).unwrap_or_default();
    let (referer, rest) = next_token(rest).unwrap_or_default();
    let (agent, rest) = next_token(rest).unwrap_or_default();
    let mut fields = Map::new();
    fields.insert("ip".into(), Value::from(ip));
    if user != "-" {
        fields.insert("user".into(), Value::from(user));
    }
    let mut parts = request.splitn(3, ' ');
    let (method, target, proto) = (parts.next(), parts.next(), parts.next());
    if let (Some(m), Some(t)) = (method, target) {
        fields.insert("method".into(), Value::from(m));
        let path = t.split('?').next().unwrap_or(t);
        fields.insert("path".into(), Value::from(path));
        if t.len() > path.len() {
            fields.insert("query".into(), Value::from(&t[path.len() + 1..]));
        }
        if let Some(p) = proto {
            fields.insert("protocol".into(), Value::from(p));
        }
    } else {
        fields.insert("request".into(), Value::from(request.clone()));
    }
    fields.insert("status".into(), Value::from(status));
    if let Ok(b) = bytes.parse::<u64>() {
        fields.insert("bytes".into(), Value::from(b));
    }
    if !referer.is_empty() && referer != "-" {
        fields.insert("referer".into(), Value::from(referer));
    }
    if !agent.is_empty() && agent != "-" {
        fields.insert("user_agent".into(), Value::from(agent));
    }
    // `$request_time` (and sometimes `$upstream_response_time`) appended: the first number.
    if let Some(d) = rest
        .split_whitespace()
        .map(|t| t.trim_matches('"'))
        .find_map(|t| t.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0))
    {
        fields.insert("duration".into(), Value::from(d));
    }
    let level = Some(match status {
        500..=599 => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    });
    Record {
        ts: Some(ts),
        level,
        message: request,
        fields,
        parse_error: None,
    }
}

/// A plain-text line that starts an entry (a timestamp at its start), with the time and level
/// found by heuristics; None for a continuation line (indented, `at …`, `Caused by`, `Traceback`
/// follow-ups, or any line without a leading timestamp).
pub fn parse_text_start(line: &str) -> Option<Record> {
    let (line, _) = clip(line);
    let trimmed = line.trim_start_matches('[');
    // Try the first 19–35 characters as a timestamp, longest first.
    let mut ts = None;
    let mut rest = line;
    for len in [35, 32, 29, 26, 25, 24, 23, 20, 19] {
        if let Some(head) = trimmed.get(..len) {
            if let Some(t) = parse_timestamp(head.trim_end_matches(']')) {
                ts = Some(t);
                rest = trimmed[len..].trim_start_matches(']');
                break;
            }
        }
    }
    let ts = ts?;
    let mut level = None;
    let mut message_start = rest;
    for tok in rest.split_whitespace().take(4) {
        let clean = tok.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if let Some(l) = Level::parse(clean).filter(|_| clean.len() >= 3) {
            level = Some(l);
            if let Some(pos) = rest.find(tok) {
                message_start = &rest[pos + tok.len()..];
            }
            break;
        }
    }
    let message = message_start
        .trim_start_matches([' ', ':', '-', '|', ']'])
        .trim_end()
        .to_string();
    Some(Record {
        ts: Some(ts),
        level,
        message,
        fields: Map::new(),
        parse_error: None,
    })
}

/// Joins plain-text lines into entries: a line with a leading timestamp starts one; the lines
/// after it (a stack trace) are appended to its message. Lines before any start stand alone,
/// marked as unparsed.
#[derive(Debug, Default)]
pub struct TextJoiner {
    current: Option<Record>,
    lines_in_current: usize,
    /// Lines fed so far, and the number (1-based) of the line that opened `current`.
    fed: u64,
    current_from: u64,
}

impl TextJoiner {
    /// Feeds a line; returns the entry it completed, if any.
    pub fn push(&mut self, line: &str) -> Option<Record> {
        self.fed += 1;
        if let Some(start) = parse_text_start(line) {
            self.lines_in_current = 1;
            self.current_from = self.fed;
            return self.current.replace(start);
        }
        match &mut self.current {
            Some(cur) if self.lines_in_current < 500 && cur.message.len() < MAX_LINE_BYTES => {
                cur.message.push('\n');
                cur.message.push_str(line.trim_end());
                self.lines_in_current += 1;
                None
            }
            _ => {
                let (l, _) = clip(line);
                Some(Record::unparsed(l, "no timestamp at the start of the line"))
            }
        }
    }

    /// The number (1-based, among the lines fed) of the first line of the entry still open:
    /// every line before it is in an entry already returned.
    pub fn open_from(&self) -> Option<u64> {
        self.current.as_ref().map(|_| self.current_from)
    }

    /// The entry still open (at the end of a file or batch).
    pub fn finish(&mut self) -> Option<Record> {
        self.lines_in_current = 0;
        self.current.take()
    }
}

/// Parses one line of a single-line format (JSON or nginx).
pub fn parse_line(format: Format, line: &str) -> Record {
    match format {
        Format::Json => parse_json(line),
        Format::Nginx => parse_nginx(line),
        Format::Text => parse_text_start(line).unwrap_or_else(|| {
            Record::unparsed(clip(line).0, "no timestamp at the start of the line")
        }),
    }
}

/// Lines in, entries out, for every way lines arrive (the HTTP ingest, `opsdeck logs import`,
/// the tailer): one entry per line, except in `text`, where continuation lines (a stack
/// trace) join the entry they follow.
#[derive(Debug)]
pub struct Records {
    format: Format,
    joiner: TextJoiner,
}

impl Records {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            joiner: TextJoiner::default(),
        }
    }

    /// Feeds one line (without its line ending); a finished entry, if any, goes to `out`.
    pub fn push(&mut self, line: &str, out: &mut Vec<Record>) {
        match self.format {
            Format::Text => out.extend(self.joiner.push(line)),
            f => out.push(parse_line(f, line)),
        }
    }

    /// The entry still open, at the end of the lines.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        out.extend(self.joiner.finish());
    }

    /// The number (1-based, counted from the first line fed) of the line that opened the entry
    /// still open: a text entry is only whole once the next one starts.
    pub fn open_from(&self) -> Option<u64> {
        self.joiner.open_from()
    }

    /// Forgets what was fed (the file was truncated and is read again from its start).
    pub fn reset(&mut self) {
        self.joiner = TextJoiner::default();
    }
}

/// Every entry of `lines` (blank lines skipped).
pub fn records<'a>(format: Format, lines: impl IntoIterator<Item = &'a str>) -> Vec<Record> {
    let mut r = Records::new(format);
    let mut out = vec![];
    for line in lines {
        if !line.trim().is_empty() {
            r.push(line, &mut out);
        }
    }
    r.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps() {
        let cases = [
            (
                "2026-11-24T10:15:02.123Z",
                Some(datetime!(2026-11-24 10:15:02.123 UTC)),
            ),
            (
                "2026-11-24T10:15:02+02:00",
                Some(datetime!(2026-11-24 08:15:02 UTC)),
            ),
            (
                "2026-11-24 10:15:02,123",
                Some(datetime!(2026-11-24 10:15:02.123 UTC)),
            ),
            (
                "2026-11-24 10:15:02",
                Some(datetime!(2026-11-24 10:15:02 UTC)),
            ),
            (
                "2026-11-24 10:15:02.5-05:00",
                Some(datetime!(2026-11-24 15:15:02.5 UTC)),
            ),
            ("1764000000", Some(datetime!(2025-11-24 16:00:00 UTC))),
            ("1764000000500", Some(datetime!(2025-11-24 16:00:00.5 UTC))),
            ("yesterday", None),
            ("", None),
            ("2026-13-40 99:99:99", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_timestamp(s), want, "{s:?}");
        }
    }

    #[test]
    fn json_lines() {
        let r = parse_json(
            r#"{"timestamp":"2026-11-24T10:15:02.123Z","level":"ERROR","message":"Model API error","logger":"api","context":{"execution_time":6.2,"url":"/api/v1/chat","method":"POST","status":502}}"#,
        );
        assert_eq!(r.ts, Some(datetime!(2026-11-24 10:15:02.123 UTC)));
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.message, "Model API error");
        assert_eq!(r.fields["logger"], "api");
        assert_eq!(r.fields["context.url"], "/api/v1/chat");
        assert_eq!(r.fields["duration"], 6.2);
        assert_eq!(r.fields["status"], 502);
        assert_eq!(r.fields["path"], "/api/v1/chat");
        assert!(r.parse_error.is_none());

        let cases = [
            (
                r#"{"time":"2026-11-24 10:15:02,5","levelname":"WARNING","msg":"slow"}"#,
                Some(Level::Warn),
                "slow",
            ),
            (
                r#"{"ts":1764000000,"severity":"critical","event":"boom"}"#,
                Some(Level::Fatal),
                "boom",
            ),
            (
                r#"{"@timestamp":"2026-11-24T10:15:02Z","log.level":"info","message":"ok"}"#,
                Some(Level::Info),
                "ok",
            ),
            (
                r#"{"level":30,"msg":"pino numbers are not levels we know"}"#,
                None,
                "pino numbers are not levels we know",
            ),
        ];
        for (line, level, msg) in cases {
            let r = parse_json(line);
            assert_eq!((r.level, r.message.as_str()), (level, msg), "{line}");
            assert!(r.ts.is_some() || line.contains("pino"), "{line}");
        }
        for bad in ["not json", "[1,2]", "{\"a\":", ""] {
            let r = parse_json(bad);
            assert!(r.parse_error.is_some(), "{bad}");
            assert_eq!(r.message, bad);
        }
    }

    #[test]
    fn nginx_lines() {
        let r = parse_nginx(
            r#"10.0.0.7 - alice [24/Nov/2026:10:15:02 +0100] "POST /api/v1/chat?x=1 HTTP/1.1" 502 173 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 6.204"#,
        );
        assert_eq!(r.ts, Some(datetime!(2026-11-24 09:15:02 UTC)));
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.message, "POST /api/v1/chat?x=1 HTTP/1.1");
        assert_eq!(r.fields["ip"], "10.0.0.7");
        assert_eq!(r.fields["user"], "alice");
        assert_eq!(r.fields["method"], "POST");
        assert_eq!(r.fields["path"], "/api/v1/chat");
        assert_eq!(r.fields["query"], "x=1");
        assert_eq!(r.fields["status"], 502);
        assert_eq!(r.fields["bytes"], 173);
        assert_eq!(r.fields["user_agent"], "Mozilla/5.0 (X11; Linux x86_64)");
        assert_eq!(r.fields["duration"], 6.204);

        let r = parse_nginx(
            r#"::1 - - [24/Nov/2026:10:15:02 +0000] "GET / HTTP/2.0" 200 0 "-" "curl/8.0 \"quoted\"""#,
        );
        assert_eq!(r.level, Some(Level::Info));
        assert_eq!(r.fields["user_agent"], "curl/8.0 \"quoted\"");
        assert!(!r.fields.contains_key("duration") && !r.fields.contains_key("referer"));

        let r = parse_nginx(
            r#"1.2.3.4 - - [24/Nov/2026:10:15:02 +0000] "\x16\x03\x01" 400 157 "-" "-""#,
        );
        assert_eq!(r.fields["status"], 400);
        assert_eq!(r.level, Some(Level::Warn));
        assert!(
            r.fields.contains_key("request"),
            "garbage requests are kept as such"
        );

        for (bad, why) in [
            ("", "empty"),
            ("1.2.3.4 - - [yesterday] \"GET / HTTP/1.1\" 200 1", "time"),
            (
                "1.2.3.4 - - [24/Nov/2026:10:15:02 +0000] \"GET / HTTP/1.1\" ok 1",
                "status",
            ),
            (
                "1.2.3.4 - - [24/Nov/2026:10:15:02 +0000] \"GET / HTTP/1.1",
                "request",
            ),
        ] {
            let r = parse_nginx(bad);
            let err = r.parse_error.unwrap_or_default();
            assert!(
                err.contains(why) || (why == "request" && err.contains("status")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn text_entries_join_their_stack_traces() {
        let lines = [
            "garbage before anything",
            "2026-11-24 10:15:02,123 ERROR [api] Workflow execution failed",
            "Traceback (most recent call last):",
            "  File \"app.py\", line 3, in <module>",
            "ValueError: boom",
            "2026-11-24 10:15:03 INFO started",
            "[2026-11-24T10:15:04Z] [warn] disk almost full",
        ];
        let mut j = TextJoiner::default();
        let mut out = vec![];
        // Where the entry still open began (what a resumed import must read again), line by line.
        let mut open_from = vec![];
        for l in lines {
            out.extend(j.push(l));
            open_from.push(j.open_from());
        }
        assert_eq!(
            open_from,
            [None, Some(2), Some(2), Some(2), Some(2), Some(6), Some(7)]
        );
        out.extend(j.finish());
        assert_eq!(j.open_from(), None);
        assert_eq!(out.len(), 4);
        assert!(out[0].parse_error.is_some());
        assert_eq!(out[1].level, Some(Level::Error));
        assert_eq!(out[1].ts, Some(datetime!(2026-11-24 10:15:02.123 UTC)));
        assert!(
            out[1]
                .message
                .starts_with("[api] Workflow execution failed\nTraceback"),
            "{}",
            out[1].message
        );
        assert!(out[1].message.ends_with("ValueError: boom"));
        assert_eq!(
            (out[2].level, out[2].message.as_str()),
            (Some(Level::Info), "started")
        );
        assert_eq!(
            (out[3].level, out[3].message.as_str()),
            (Some(Level::Warn), "disk almost full")
        );
    }

    /// The same lines give the same entries whichever way they arrive: all at once, or fed
    /// one by one as the tailer does.
    #[test]
    fn records_in_one_go_or_line_by_line() {
        let text = "2026-11-24 10:15:02 ERROR boom\n  at x\n\n2026-11-24 10:15:03 INFO ok";
        for (format, want) in [(Format::Text, 2), (Format::Json, 3), (Format::Nginx, 3)] {
            let all = records(format, text.lines());
            let mut r = Records::new(format);
            let mut fed = vec![];
            for l in text.lines().filter(|l| !l.trim().is_empty()) {
                r.push(l, &mut fed);
            }
            r.finish(&mut fed);
            assert_eq!(all.len(), want, "{format:?}");
            assert_eq!(all, fed, "{format:?}");
        }
    }

    #[test]
    fn levels_and_formats() {
        for (s, l) in [
            ("ERROR", Some(Level::Error)),
            ("Warning", Some(Level::Warn)),
            ("CRITICAL", Some(Level::Fatal)),
            ("x", None),
        ] {
            assert_eq!(Level::parse(s), l, "{s}");
        }
        assert_eq!(Format::parse("NGINX"), Ok(Format::Nginx));
        assert!(Format::parse("xml")
            .unwrap_err()
            .contains("json, nginx or text"));
    }

    #[test]
    fn long_lines_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let (c, cut) = clip(&long);
        assert!(cut && c.len() <= MAX_LINE_BYTES && c.is_char_boundary(c.len()));
    }
}
