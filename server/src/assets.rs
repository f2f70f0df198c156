//! Browser assets compiled into the binary (see build.rs), served with the best encoding the
//! client accepts and an ETag so unchanged files cost a 304.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

pub struct Asset {
    pub path: &'static str,
    pub mime: &'static str,
    pub etag: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
    pub brotli: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.trim().split(';');
            let name = it.next().unwrap_or("").trim();
            let q_zero = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case(coding) && !q_zero
        })
}

pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let Some(asset) = find(uri.path()) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut res_headers = HeaderMap::new();
    res_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    res_headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    // Names are fixed (/pkg/opsdeck.wasm), so clients revalidate; the ETag makes that a 304.
    res_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    if not_modified {
        return (StatusCode::NOT_MODIFIED, res_headers).into_response();
    }
    let body: &'static [u8] = if accepts(&headers, "br") {
        res_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        asset.brotli
    } else if accepts(&headers, "gzip") {
        res_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        asset.gzip
    } else {
        asset.raw
    };
    (StatusCode::OK, res_headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_negotiated() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br;q=1.0"),
        );
        assert!(accepts(&h, "br") && accepts(&h, "gzip") && !accepts(&h, "zstd"));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br;q=0, gzip"),
        );
        assert!(!accepts(&h, "br") && accepts(&h, "gzip"));
    }

    #[test]
    fn stylesheet_is_embedded_and_compressed() {
        let css = find("/pkg/opsdeck.css").expect("css embedded");
        assert!(!css.raw.is_empty());
        assert!(css.brotli.len() < css.raw.len() && css.gzip.len() < css.raw.len());
    }
}
