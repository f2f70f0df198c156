//! One rule for every URL Opsdeck shows or sends on (check, scrape-target and backup-target
//! URLs, webhook addresses, alert summaries, errors): the user name and password are masked, and
//! so is every query value (`?token=***`). Webhook addresses keep only scheme and host: their
//! path is the secret (Slack's and Discord's are). Pure, and compiled for the browser too.

/// What stands in for a secret.
pub const MASK: &str = "***";

/// The parts of a URL: `scheme://[userinfo@]authority[path][?query][#fragment]`.
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

fn split(u: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = u.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    let (userinfo, authority) = match auth.rsplit_once('@') {
        Some((u, a)) => (Some(u), a),
        None => (None, auth),
    };
    let tail = tail.split('#').next().unwrap_or("");
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    Some(Parts {
        scheme,
        userinfo,
        authority,
        path,
        query,
    })
}

/// A URL as it may be shown: `https://user:pw@h/p?token=abc&x=1#f` → `https://***@h/p?token=***&x=***`.
/// Text that is not a URL is masked whole.
pub fn url(u: &str) -> String {
    let Some(p) = split(u.trim()) else {
        return if u.is_empty() {
            String::new()
        } else {
            MASK.to_string()
        };
    };
    let mut out = format!("{}://", p.scheme);
    if p.userinfo.is_some() {
        out.push_str(MASK);
        out.push('@');
    }
    out.push_str(p.authority);
    out.push_str(p.path);
    if let Some(q) = p.query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let key = kv.split('=').next().unwrap_or("");
                format!("{key}={MASK}")
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// A webhook address as shown back: scheme and host only.
pub fn webhook(u: &str) -> String {
    match split(u.trim()) {
        Some(p) if p.path.len() > 1 || p.query.is_some() => {
            format!("{}://{}/…", p.scheme, p.authority)
        }
        Some(p) => format!("{}://{}", p.scheme, p.authority),
        None => MASK.to_string(),
    }
}

/// At most `max` characters of `s`, with `…` when cut: a value quoted back in an error message
/// without echoing a whole hostile input.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Free text (a summary, an error) with every URL in it redacted by [`url`].
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = find_url_start(rest) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .unwrap_or(tail.len());
        out.push_str(&url(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Where the next `scheme://` starts (the scheme's first letter), if any.
fn find_url_start(s: &str) -> Option<usize> {
    let at = s.find("://")?;
    // After the last character that cannot be in a scheme (which may be several bytes long).
    let start = s[..at]
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
        .map_or(0, |(i, c)| i + c.len_utf8());
    if start == at {
        // "://" with no scheme before it: skip past it.
        let next = find_url_start(&s[at + 3..])?;
        return Some(at + 3 + next);
    }
    Some(start)
}

/// Whether `u` is a URL as [`url`] shows it (an edit that sends it back unchanged keeps the
/// stored one rather than the mask).
pub fn is_masked(u: &str) -> bool {
    u.contains(MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        let cases = [
            (
                "https://ops.example.com/health",
                "https://ops.example.com/health",
            ),
            (
                "https://user:pw@ops.example.com:8443/health?token=abc&verbose=1#top",
                "https://***@ops.example.com:8443/health?token=***&verbose=***",
            ),
            ("http://u@h/", "http://***@h/"),
            ("http://h/p?flag", "http://h/p?flag=***"),
            (
                "postgresql://app@db/shop?sslmode=require&sslpassword=x",
                "postgresql://***@db/shop?sslmode=***&sslpassword=***",
            ),
            ("http://h?a=b", "http://h?a=***"),
            ("not a url", "***"),
            ("", ""),
        ];
        for (input, shown) in cases {
            assert_eq!(url(input), shown, "{input}");
            assert!(!url(input).contains("pw") && !url(input).contains("abc"));
        }
    }

    #[test]
    fn webhooks_keep_scheme_and_host() {
        let cases = [
            (
                "https://hooks.slack.com/services/T0/B0/secret",
                "https://hooks.slack.com/…",
            ),
            (
                "https://user:pw@example.com/hook?k=1",
                "https://example.com/…",
            ),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
            ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ];
        for (input, shown) in cases {
            assert_eq!(webhook(input), shown, "{input}");
        }
    }

    #[test]
    fn text_has_every_url_redacted() {
        assert_eq!(
            text("api (https://a:b@h/health?token=s3cret) is down: GET http://h/x?k=v failed"),
            "api (https://***@h/health?token=***) is down: GET http://h/x?k=*** failed"
        );
        assert_eq!(text("no urls here"), "no urls here");
        assert_eq!(
            text("odd ://thing and http://h/?a=1"),
            "odd ://thing and http://h/?a=***"
        );
        assert!(is_masked(&url("http://u:p@h/")));
        assert!(!is_masked("http://h/"));
    }

    /// A number as PostgreSQL writes it back from jsonb (every digit) reads as the f64 it was,
    /// even next to f64::MAX (found by the API fuzzer: a log line's field broke every search).
    #[test]
    fn jsonb_numbers_read_back_whole() {
        let max_as_written = format!("17976931348623157{}", "0".repeat(292));
        for (digits, v) in [
            (max_as_written.clone(), f64::MAX),
            (format!("-{max_as_written}"), -f64::MAX),
            (format!("{:.0}", f64::MAX), f64::MAX),
            (format!("1{}", "0".repeat(308)), 1.0e308),
            ("123.5".to_string(), 123.5),
        ] {
            let back: serde_json::Value = serde_json::from_str(&digits).unwrap();
            assert_eq!(back.as_f64(), Some(v), "{digits}");
        }
    }

    /// A multi-byte character right before `://` (found by the parsers' property test: it
    /// panicked slicing inside the character).
    #[test]
    fn text_takes_characters_before_a_scheme_whole() {
        for (input, want) in [
            ("𑌹://", "𑌹://"),
            ("%𑌹://x", "%𑌹://x"),
            ("é://h/?a=1", "é://h/?a=1"),
            ("éhttp://h/?a=1", "éhttp://h/?a=***"),
            ("日本 https://h/?t=1 done", "日本 https://h/?t=*** done"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
    }
}
