//! PostgreSQL connection URLs, free of I/O: split off the password, point a URL at another
//! database, and write every parameter of a URL as a libpq service (`service_file`), which is how
//! child processes get them: by a file of mode 0600, never on a command line.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParts {
    /// The URL without any password: safe for argv and for display.
    pub public_url: String,
    pub password: Option<String>,
    pub database: String,
}

fn parse(url: &str) -> Result<Url, String> {
    let u = Url::parse(url.trim()).map_err(|e| format!("database URL: {e}"))?;
    if u.scheme() != "postgres" && u.scheme() != "postgresql" {
        return Err(format!(
            "database URL: scheme `{}` is not postgres:// or postgresql://",
            u.scheme()
        ));
    }
    if u.host_str().unwrap_or("").is_empty() {
        return Err("database URL: no host".into());
    }
    Ok(u)
}

/// Splits a URL into what may be shown and the password.
pub fn split(url: &str) -> Result<ConnParts, String> {
    let mut u = parse(url)?;
    let mut password = u.password().map(percent_decode).filter(|p| !p.is_empty());
    u.set_password(None)
        .map_err(|_| "database URL: cannot remove the password".to_string())?;
    // `?password=` works with libpq too: take it out of the visible URL as well.
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    if pairs.iter().any(|(k, _)| k == "password") {
        let kept: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, v)| {
                if k == "password" {
                    password = Some(v.clone());
                    false
                } else {
                    true
                }
            })
            .collect();
        if kept.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    let database = percent_decode(u.path().trim_start_matches('/'));
    if database.is_empty() {
        return Err("database URL: no database name (postgres://user@host/DBNAME)".into());
    }
    Ok(ConnParts {
        public_url: u.to_string(),
        password,
        database,
    })
}

/// The same server and credentials, another database.
pub fn with_database(url: &str, database: &str) -> Result<String, String> {
    let mut u = parse(url)?;
    u.set_path(&format!("/{database}"));
    Ok(u.to_string())
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The name of the service `service_file` writes: a child process connects with
/// `--dbname=service=opsdeck` and `PGSERVICEFILE` pointing at the file.
pub const SERVICE: &str = "opsdeck";

/// Every connection parameter of `url` (host, port, database, user, password and each query
/// parameter: `sslmode`, `sslpassword`, `sslkey`, …) as a libpq service file, so that none of
/// them ever reaches a command line. A value with a line break cannot be written: an error.
pub fn service_file(url: &str) -> Result<String, String> {
    let u = parse(url)?;
    let mut params: Vec<(String, String)> = vec![];
    let host = u.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    params.push(("host".into(), percent_decode(host)));
    if let Some(port) = u.port() {
        params.push(("port".into(), port.to_string()));
    }
    let database = percent_decode(u.path().trim_start_matches('/'));
    if !database.is_empty() {
        params.push(("dbname".into(), database));
    }
    if !u.username().is_empty() {
        params.push(("user".into(), percent_decode(u.username())));
    }
    if let Some(pw) = u.password() {
        params.push(("password".into(), percent_decode(pw)));
    }
    for (k, v) in u.query_pairs() {
        // A parameter given in the query wins, as libpq has it.
        params.retain(|(key, _)| key != k.as_ref());
        params.push((k.into_owned(), v.into_owned()));
    }
    let mut out = format!("[{SERVICE}]\n");
    for (k, v) in params {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("database URL: `{k}` is not a connection parameter"));
        }
        if v.contains(['\n', '\r']) {
            return Err(format!("database URL: the value of `{k}` has a line break"));
        }
        out.push_str(&format!("{k}={v}\n"));
    }
    Ok(out)
}

/// A database or role name Opsdeck will create or type into SQL: plain identifiers only.
pub fn valid_database_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a usable database name: lower-case letters, digits and _, starting with a letter or _, at most 63"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        let cases = [
            (
                "postgres://app:s3cret@db.internal:5432/shop",
                "postgres://app@db.internal:5432/shop",
                Some("s3cret"),
                "shop",
            ),
            (
                "postgresql://app:p%40ss%2Fword@127.0.0.1/shop?sslmode=require",
                "postgresql://app@127.0.0.1/shop?sslmode=require",
                Some("p@ss/word"),
                "shop",
            ),
            (
                "postgres://app@localhost/shop?password=hunter2&sslmode=disable",
                "postgres://app@localhost/shop?sslmode=disable",
                Some("hunter2"),
                "shop",
            ),
            (
                "postgres://app@localhost/shop?password=x",
                "postgres://app@localhost/shop",
                Some("x"),
                "shop",
            ),
            (
                "postgres://localhost/shop",
                "postgres://localhost/shop",
                None,
                "shop",
            ),
        ];
        for (url, public, pw, db) in cases {
            let p = split(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(p.public_url, public, "{url}");
            assert_eq!(p.password.as_deref(), pw, "{url}");
            assert_eq!(p.database, db, "{url}");
            assert!(!p.public_url.contains("s3cret") && !p.public_url.contains("hunter2"));
        }
    }

    #[test]
    fn bad_urls_say_why() {
        let cases = [
            ("", "database URL"),
            ("mysql://a@b/c", "is not postgres"),
            ("postgres://app@host/", "no database name"),
            ("postgres:///shop", "no host"),
            ("not a url", "database URL"),
        ];
        for (url, want) in cases {
            let err = split(url).expect_err(url);
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn other_database() {
        assert_eq!(
            with_database("postgres://app:pw@h:5/shop?sslmode=disable", "scratch_1").unwrap(),
            "postgres://app:pw@h:5/scratch_1?sslmode=disable"
        );
    }

    #[test]
    fn service_files_hold_every_parameter() {
        let text = service_file(
            "postgresql://app:p%40ss%3Dw@db.internal:6543/shop?sslmode=verify-full&sslpassword=k3y&sslkey=/etc/k.pem",
        )
        .unwrap();
        assert_eq!(
            text,
            "[opsdeck]\nhost=db.internal\nport=6543\ndbname=shop\nuser=app\npassword=p@ss=w\n\
             sslmode=verify-full\nsslpassword=k3y\nsslkey=/etc/k.pem\n"
        );
        assert_eq!(
            service_file("postgres://[::1]/x?password=q").unwrap(),
            "[opsdeck]\nhost=::1\ndbname=x\npassword=q\n"
        );
        for (bad, why) in [
            ("postgres://h/x?password=a%0Ab", "line break"),
            ("postgres://h/x?%20=1", "not a connection parameter"),
            ("mysql://h/x", "postgres"),
        ] {
            let e = service_file(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn database_names() {
        for ok in ["shop", "shop_restored_20261125", "_x"] {
            assert!(valid_database_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Shop", "1shop", "shop-x", "a\"; DROP", &"a".repeat(64)] {
            assert!(valid_database_name(bad).is_err(), "{bad}");
        }
    }
}
