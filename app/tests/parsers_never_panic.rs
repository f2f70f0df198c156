//! Every parser, fed arbitrary text: no panic, and nothing silently lost. Bounded here (256 cases
//! each); run longer with `PROPTEST_CASES=100000 cargo test -p app --features ssr --test parsers_never_panic`.

use app::logs::parse::{self, Format, TextJoiner};
use app::logs::query;
use proptest::prelude::*;

/// 256 cases per property, or `PROPTEST_CASES` (an explicit `cases` would override it).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        // Near misses of the real formats are where parsers break.
        "[ -~]{0,200}",
        r#"\{"(timestamp|level|message|msg|context)":("[^"]{0,20}"|[0-9.e+-]{1,12}|\{"execution_time":[0-9.]{1,6}\}),?\}"#,
        r#"[0-9.:a-f]{1,20} - [a-z-]{1,5} \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}\] "[A-Z]{0,6} [/a-z?=&]{0,20} HTTP/1.[01]" [0-9]{1,4} [0-9-]{1,5} "[^"]{0,10}" "[^"]{0,10}"( [0-9.]{1,6})?"#,
        r#"\[?[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:]{8}([.,][0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?\]? [A-Za-z]{0,8} .{0,40}"#,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn log_parsers_keep_every_line(line in text()) {
        for format in [Format::Json, Format::Nginx, Format::Text] {
            let r = parse::parse_line(format, &line);
            // Unparsed lines keep their text (clipped to the maximum line length).
            if r.parse_error.is_some() {
                prop_assert_eq!(&r.message, parse::clip(&line).0);
            }
        }
        let _ = parse::parse_timestamp(&line);
        let _ = parse::parse_text_start(&line);
    }

    #[test]
    fn the_text_joiner_accounts_for_every_line(lines in proptest::collection::vec(text(), 0..20)) {
        let mut j = TextJoiner::default();
        let mut out = vec![];
        for l in &lines {
            out.extend(j.push(l));
        }
        out.extend(j.finish());
        // Each entry holds at least one line; none vanish (entries ≤ lines, and > 0 when any line).
        prop_assert!(out.len() <= lines.len());
        prop_assert_eq!(out.is_empty(), lines.is_empty());
    }

    #[test]
    fn the_query_language_answers_or_explains(q in text()) {
        match query::parse(&q) {
            Ok(clauses) => prop_assert!(clauses.len() <= 32),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        let _ = query::like_pattern(&q);
    }

    #[test]
    fn expositions_parse_or_name_the_line_and_convert_without_panic(
        s in text(),
        lines in proptest::collection::vec(
            "(# TYPE [a-z_]{1,6} (counter|gauge|histogram|summary)|[a-z_]{1,6}(_bucket|_sum|_count)?(\\{[a-z]{1,3}=\"[^\"]{0,5}\"(,[a-z]{1,3}=\"[a-z\\\\\"]{0,5}\")?\\})? (-?[0-9]{1,4}(\\.[0-9]{1,3})?|NaN|\\+Inf))",
            0..30,
        ),
    ) {
        let body = lines.join("\n");
        for text in [s.as_str(), body.as_str()] {
            match app::services::expfmt::parse(text) {
                Ok(families) => {
                    let t = time::OffsetDateTime::now_utc();
                    let first = app::services::scrape::convert(&families, "t", t, None, 100);
                    let later = t + time::Duration::seconds(15);
                    let second = app::services::scrape::convert(&families, "t", later, Some(&first.counters), 100);
                    prop_assert!(second.samples.iter().all(|x| x.value.is_finite()));
                    prop_assert!(first.samples.len() <= 100 && second.samples.len() <= 100);
                }
                Err(e) => prop_assert!(e.starts_with("line ") || e.contains("MiB"), "{}", e),
            }
        }
        let _ = app::services::process::matches(&s, &s, &s);
        let _ = app::services::process::validate_watch(&s, &s, None);
    }

    #[test]
    fn alert_rules_channels_and_checks_answer_or_explain(
        s in text(),
        kind in "(metric|health|log|forecast|backup|[a-z]{0,6})",
        n in proptest::option::of(any::<f64>()),
        secs in any::<i64>(),
    ) {
        use app::alerts::rules::{self, NewChannel, NewCheck, RuleSpec};
        // As a JSON body: either a rule or a serde error, never a panic.
        let _ = serde_json::from_str::<RuleSpec>(&s);
        let spec = serde_json::json!({
            "name": s, "kind": kind, "metric": s, "host": s, "op": s, "threshold": n,
            "clear_threshold": n, "for_seconds": secs, "repeat_seconds": secs, "check": s,
            "condition": s, "query": s, "days": n, "hours": n, "window_seconds": secs,
        });
        if let Ok(spec) = serde_json::from_value::<RuleSpec>(spec) {
            if let Ok(rule) = rules::validate(&spec) {
                prop_assert!(rule.threshold.is_finite());
                prop_assert!(rule.for_duration >= time::Duration::ZERO);
            }
        }
        let _ = rules::glob(&s, &s);
        let _ = app::alerts::machine::Op::parse(&s);
        let _ = rules::validate_channel(&NewChannel { name: s.clone(), kind: "webhook".into(), url: Some(s.clone()), to: None, format: None, is_default: false, group_wait_seconds: Some(secs as i32), group_interval_seconds: None, max_per_hour: Some(secs as i32) });
        let _ = rules::validate_channel(&NewChannel { name: s.clone(), kind: "email".into(), url: None, to: Some(s.clone()), format: None, is_default: false, group_wait_seconds: Some(secs as i32), group_interval_seconds: None, max_per_hour: Some(secs as i32) });
        let _ = rules::validate_check(&NewCheck { name: s.clone(), url: s.clone(), interval_seconds: secs as i32, timeout_seconds: 5, expected_status: None, expected_body: Some(s.clone()), host: Some(s.clone()), public: true, public_name: Some(s.clone()) });
        // Redaction never panics and never lets a password or query value through.
        let _ = app::redact::url(&s);
        let _ = app::redact::webhook(&s);
        let _ = app::redact::text(&s);
        let secret = format!("http://u:hunter2@{}/p?k=hunter2 {s}", s.len());
        prop_assert!(!app::redact::text(&secret).contains("hunter2") || s.contains("hunter2"));
        let _ = rules::human_secs(secs);
        let _ = rules::backoff(secs as i32);
    }

    #[test]
    fn metric_selectors_and_times_never_panic(s in text()) {
        let now = time::OffsetDateTime::now_utc();
        let _ = app::metrics::parse_selector(&s);
        let _ = app::metrics::parse_time_param(&s, now);
        let _ = app::metrics::parse_duration_secs(&s);
    }
}

#[cfg(feature = "ssr")]
mod server_side {
    use super::text;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: super::cases(), ..ProptestConfig::default() })]

        #[test]
        fn cron_and_urls_answer_or_explain(s in text(), fields in "([0-9*/,a-z-]{1,8} ){4}[0-9*/,a-z-]{1,8}") {
            for expr in [s.as_str(), fields.as_str()] {
                if let Ok(schedule) = app::backups::cron::parse(expr) {
                    let now = chrono::Utc::now();
                    prop_assert!(schedule.next_after(now, chrono_tz::Tz::UTC).is_some_and(|n| n > now));
                }
            }
            let _ = app::backups::cron::parse_timezone(&s);
            let _ = app::backups::conn::split(&s);
        }
    }
}
