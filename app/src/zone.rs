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

/// Whole minutes from Unix time `now` until the next `hour`:00 in `tz` (tomorrow's when today's
/// has passed; across a daylight-saving change, the wall-clock hour). Pure.
#[cfg(feature = "ssr")]
pub fn minutes_until(tz: chrono_tz::Tz, now: i64, hour: u32) -> i64 {
    use chrono::{Days, TimeZone};
    let Some(at) = chrono::DateTime::from_timestamp(now, 0) else {
        return 60;
    };
    let local = at.with_timezone(&tz).date_naive();
    let next = [local, local + Days::new(1), local + Days::new(2)]
        .into_iter()
        .filter_map(|d| d.and_hms_opt(hour, 0, 0))
        .filter_map(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp())
        .find(|t| *t > now)
        .unwrap_or(now + 86_400);
    (next - now + 59) / 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ssr")]
    #[test]
    fn minutes_until_the_next_hour_in_a_zone() {
        use time::macros::datetime;
        let t = |d: time::OffsetDateTime| d.unix_timestamp();
        for (tz, now, want) in [
            // 07:30 UTC is 08:30 in Paris in winter: 30 minutes to 09:00.
            (
                chrono_tz::Europe::Paris,
                t(datetime!(2026-12-01 07:30 UTC)),
                30,
            ),
            // 09:00 exactly: tomorrow's.
            (
                chrono_tz::Europe::Paris,
                t(datetime!(2026-12-01 08:00 UTC)),
                24 * 60,
            ),
            // 22:00 in Kolkata (16:30 UTC): 11 hours.
            (
                chrono_tz::Asia::Kolkata,
                t(datetime!(2026-12-01 16:30 UTC)),
                11 * 60,
            ),
            // The night the clocks go forward in Paris (29 March 2026): 23:00 to 09:00 is 9 h.
            (
                chrono_tz::Europe::Paris,
                t(datetime!(2026-03-28 22:00 UTC)),
                9 * 60,
            ),
            (chrono_tz::UTC, t(datetime!(2026-12-01 08:59:30 UTC)), 1),
        ] {
            assert_eq!(minutes_until(tz, now, 9), want, "{tz} {now}");
        }
    }

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
