//! The configuration file, fed arbitrary text and near-miss TOML: a configuration or an error
//! that names the problem, never a panic. Bounded here; longer with PROPTEST_CASES.

use proptest::prelude::*;
use server::config::{load, GlobalArgs, ServeArgs};

fn toml_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~\n]{0,300}",
        // Near misses: real keys with odd values, tables and arrays of tables.
        r#"(listen|database_url|collect_interval|alert_interval|smtp_url|smtp_from|public_url|log_retention_days|max_connections|retention_raw_days) = ("[ -~]{0,30}"|-?[0-9]{1,12}|true|\[\])
(\[\[(processes|scrape_targets|log_sources)\]\]
(name|pattern|url|path|format|service|port|interval_seconds) = ("[ -~]{0,20}"|-?[0-9]{1,8})
)?(\[log_retention_services\]
[a-z]{1,8} = -?[0-9]{1,6}
)?"#,
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn config_files_load_or_explain(text in toml_text()) {
        let dir = std::env::temp_dir().join(format!("opsdeck-config-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("opsdeck.toml");
        std::fs::write(&path, &text).unwrap();
        let global = GlobalArgs {
            config: Some(path),
            database_url: Some("postgres://u@127.0.0.1/db".into()),
        };
        match load(&global, &ServeArgs::default()) {
            Ok(c) => {
                prop_assert!(c.alert_interval.as_secs() >= 1);
                prop_assert!(c.log_retention_days >= 1);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
