//! The time zone times are shown in: the browser's. The page tells the server its zone in the
//! `opsdeck_tz` cookie (an IANA name, set after every load); the server renders times and chart
//! axes in it, and in UTC until the browser has said (the sign-in page shows no times). Times in
//! the API, logs and notifications stay UTC (RFC 3339).

/// The cookie that carries the browser's IANA time zone.
pub const COOKIE: &str = "opsdeck_tz";

/// The zone a cookie header names, UTC when none or unknown (a hand-made cookie changes
/// nothing but the display). Pure.
#[cfg(feature = "ssr")]
pub fn from_cookie_header(header: &str) -> chrono_tz::Tz {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .and_then(|(_, v)| v.trim().replace("%2F", "/").parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// The zone of the request being answered (UTC outside a request).
#[cfg(feature = "ssr")]
pub fn current() -> chrono_tz::Tz {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(from_cookie_header)
                .find(|tz| *tz != chrono_tz::UTC)
        })
        .unwrap_or(chrono_tz::UTC)
}

/// Seconds east of UTC in `tz` at Unix time `t`. Pure.
#[cfg(feature = "ssr")]
pub fn offset_in(tz: chrono_tz::Tz, t: i64) -> i64 {
    use chrono::{Offset, TimeZone};
    chrono::DateTime::from_timestamp(t, 0)
        .map(|at| {
            i64::from(
                tz.offset_from_utc_datetime(&at.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        })
        .unwrap_or(0)
}

/// Seconds east of UTC at Unix time `t` where the times are shown: the request's zone on the
/// server, the browser's own in the browser.
pub fn offset_at(t: i64) -> i64 {
    #[cfg(feature = "ssr")]
    {
        offset_in(current(), t)
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        let at =
            web_sys::js_sys::Date::new(&leptos::wasm_bindgen::JsValue::from_f64(t as f64 * 1000.0));
        -(at.get_timezone_offset() as i64) * 60
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        let _ = t;
        0
    }
}

/// How a time's zone is written after it: `UTC`, `UTC+1`, `UTC+5:30`, `UTC-3`. Pure.
pub fn suffix(offset_secs: i64) -> String {
    let (sign, abs) = if offset_secs < 0 {
        ('-', -offset_secs)
    } else {
        ('+', offset_secs)
    };
    match (abs / 3600, abs / 60 % 60) {
        (0, 0) => "UTC".into(),
        (h, 0) => format!("UTC{sign}{h}"),
        (h, m) => format!("UTC{sign}{h}:{m:02}"),
    }
}

/// Tells the server the browser's zone for the next pages (a year-long, same-site cookie).
#[cfg(feature = "hydrate")]
pub fn tell_server() {
    use leptos::wasm_bindgen::JsCast;
    let options = web_sys::js_sys::Intl::DateTimeFormat::new(
        &web_sys::js_sys::Array::new(),
        &web_sys::js_sys::Object::new(),
    )
    .resolved_options();
    let Some(name) = web_sys::js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()
        .and_then(|v| v.as_string())
        .filter(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
        })
    else {
        return;
    };
    if let Some(doc) = leptos::prelude::document().dyn_ref::<web_sys::HtmlDocument>() {
        let _ = doc.set_cookie(&format!(
            "{COOKIE}={name}; path=/; max-age=31536000; SameSite=Lax"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_written_as_offsets() {
        for (secs, want) in [
            (0, "UTC"),
            (3600, "UTC+1"),
            (-3 * 3600, "UTC-3"),
            (5 * 3600 + 1800, "UTC+5:30"),
            (-(9 * 3600 + 1800), "UTC-9:30"),
        ] {
            assert_eq!(suffix(secs), want);
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_cookie_names_the_zone_and_anything_else_is_utc() {
        let paris = chrono_tz::Europe::Paris;
        for (header, want) in [
            ("opsdeck_tz=Europe/Paris", paris),
            ("a=1; opsdeck_tz=Europe%2FParis; b=2", paris),
            ("opsdeck_tz=Mars/Olympus", chrono_tz::UTC),
            ("opsdeck_tz=", chrono_tz::UTC),
            ("other=Europe/Paris", chrono_tz::UTC),
            ("", chrono_tz::UTC),
        ] {
            assert_eq!(from_cookie_header(header), want, "{header}");
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn offsets_follow_daylight_saving_time() {
        let paris = chrono_tz::Europe::Paris;
        // 2026-07-01 and 2026-12-01 at noon UTC.
        assert_eq!(offset_in(paris, 1_782_907_200), 7200);
        assert_eq!(offset_in(paris, 1_796_126_400), 3600);
        assert_eq!(offset_in(chrono_tz::Asia::Kolkata, 1_796_126_400), 19_800);
        assert_eq!(offset_in(chrono_tz::UTC, 1_796_126_400), 0);
    }
}
