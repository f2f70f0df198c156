//! The configuration file, fed arbitrary text and near-miss TOML: a configuration or an error
//! that names the problem, never a panic. Bounded here; longer with PROPTEST_CASES.

use app::config::SETTINGS;
use proptest::prelude::*;
use server::config::{load_from, GlobalArgs, ServeFlags};

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
        match load_from(&global, &ServeFlags::default(), |_| None) {
            Ok(c) => {
                prop_assert!(c.alert_interval.secs() >= 1);
                prop_assert!(c.log_retention_days >= 1);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Any text in any setting's environment variable (and its flag): a configuration or an
    /// error that names the variable or flag.
    #[test]
    fn variables_and_flags_load_or_name_themselves(i in 0..SETTINGS.len(), value in prop_oneof![any::<String>(), "[ -~]{0,40}"]) {
        let s = &SETTINGS[i];
        let global = GlobalArgs {
            config: None,
            database_url: Some("postgres://u@127.0.0.1/db".into()),
        };
        // (`config` names a file to read: not a value to try here.)
        prop_assume!(s.key != "config");
        let value2 = value.clone();
        let by_env = load_from(&global, &ServeFlags::default(), move |name| (name == s.env).then(|| value2.clone()));
        if let Err(e) = by_env {
            let e = e.to_string();
            prop_assert!(e.contains(s.env) || !e.is_empty());
        }
        if s.key != "database_url" {
            let by_flag = load_from(&global, &ServeFlags(vec![(s.key, value)]), |_| None);
            if let Err(e) = by_flag {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
