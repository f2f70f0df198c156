//! Watched processes: which processes a watch matches, and how restarts are told apart from
//! scaling. Pure; the collector feeds it what sysinfo reads.

use std::collections::BTreeSet;

/// Whether a process matches a watch pattern: its name exactly, or a part of its command line
/// (`*` matches any run of characters, so `uvicorn*app:main` works).
pub fn matches(pattern: &str, name: &str, cmdline: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    if name == pattern {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return !cmdline.is_empty();
    }
    let mut rest = cmdline;
    for p in parts {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Checks a watch as given by a user: the error names the field.
pub fn validate_watch(name: &str, pattern: &str, port: Option<i64>) -> Result<(), String> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err("name: 1 to 100 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "name: `{c}` is not allowed (letters, digits, `.`, `-`, `_`)"
        ));
    }
    if pattern.trim().is_empty() || pattern.len() > 300 {
        return Err("pattern: 1 to 300 characters".into());
    }
    if pattern.chars().all(|c| c == '*') {
        return Err("pattern: would match every process".into());
    }
    if let Some(p) = port {
        if !(1..=65535).contains(&p) {
            return Err(format!("port: {p} is not between 1 and 65535"));
        }
    }
    Ok(())
}

/// A running instance: its PID and start time (a PID can be reused; the pair cannot).
pub type Instance = (u32, u64);

/// Whether the watched service restarted between two looks: its oldest instance (the main
/// process; workers come and go under it) was replaced, or it came back after being down (a
/// crash and restart between two looks). More or fewer workers is not a restart.
pub fn restarts(before: &BTreeSet<Instance>, now: &BTreeSet<Instance>, looked_before: bool) -> u64 {
    if !looked_before || now.is_empty() {
        return 0;
    }
    let oldest = |set: &BTreeSet<Instance>| {
        set.iter()
            .min_by_key(|(pid, start)| (*start, *pid))
            .copied()
    };
    match oldest(before) {
        None => 1,
        Some(main) => u64::from(!now.contains(&main)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_and_command_lines() {
        for (pattern, name, cmdline, expected) in [
            (
                "uvicorn",
                "uvicorn",
                "/usr/bin/python3 /venv/bin/uvicorn app:main",
                true,
            ),
            (
                "uvicorn",
                "python3",
                "/usr/bin/python3 /venv/bin/uvicorn app:main",
                true,
            ),
            (
                "uvicorn*app:main",
                "python3",
                "python3 uvicorn --port 8000 app:main",
                true,
            ),
            (
                "uvicorn*app:main",
                "python3",
                "python3 app:main uvicorn",
                false,
            ),
            ("gunicorn", "python3", "python3 uvicorn app:main", false),
            ("postgres", "postgres", "", true),
            ("", "x", "x", false),
            ("*", "x", "x --y", true),
        ] {
            assert_eq!(
                matches(pattern, name, cmdline),
                expected,
                "{pattern} / {cmdline}"
            );
        }
    }

    #[test]
    fn watches_are_checked() {
        assert!(validate_watch("uvicorn", "uvicorn", Some(8000)).is_ok());
        for (name, pattern, port, err) in [
            ("", "x", None, "name:"),
            ("a b", "x", None, "name: ` `"),
            ("a", "", None, "pattern:"),
            ("a", "**", None, "pattern: would match every process"),
            ("a", "x", Some(0), "port: 0"),
            ("a", "x", Some(70000), "port: 70000"),
        ] {
            let e = validate_watch(name, pattern, port).unwrap_err();
            assert!(e.starts_with(err), "{e}");
        }
    }

    #[test]
    fn restarts_are_told_from_scaling() {
        let set = |v: &[Instance]| v.iter().copied().collect::<BTreeSet<_>>();
        for (before, now, looked, expected) in [
            (set(&[]), set(&[(1, 10)]), false, 0),
            (set(&[(1, 10)]), set(&[(1, 10)]), true, 0),
            (set(&[(1, 10)]), set(&[(2, 20)]), true, 1),
            (set(&[(1, 10)]), set(&[(1, 30)]), true, 1),
            (set(&[(1, 10)]), set(&[(1, 10), (2, 20)]), true, 0),
            (set(&[(1, 10), (2, 20)]), set(&[(1, 10)]), true, 0),
            (set(&[(1, 10), (2, 20)]), set(&[(3, 30), (4, 40)]), true, 1),
            // Workers replaced under the same main process: not a restart.
            (
                set(&[(1, 10), (2, 20), (3, 30)]),
                set(&[(1, 10), (4, 40), (5, 50)]),
                true,
                0,
            ),
            // The main process replaced while a worker lives on.
            (set(&[(1, 10), (2, 20)]), set(&[(2, 20), (6, 60)]), true, 1),
            (set(&[]), set(&[(5, 50)]), true, 1),
            (set(&[(1, 10)]), set(&[]), true, 0),
        ] {
            assert_eq!(
                restarts(&before, &now, looked),
                expected,
                "{before:?} → {now:?}"
            );
        }
    }
}
