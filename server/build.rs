//! Embeds the browser assets (WASM, JS, CSS, icon) into the `opsdeck` binary, each with
//! precompressed brotli and gzip copies, so one file serves working, hydrating pages.
//!
//! The WASM and JS come from `OPSDECK_SITE_DIR/pkg` (default `<target>/site/pkg`), written by
//! `scripts/build.sh`. When they are absent (a plain `cargo test`), pages still render on the
//! server; they just do not hydrate.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("wasm") => "application/wasm",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn compress(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).expect("gzip into memory");
    let gz = gz.finish().expect("gzip into memory");
    let mut br = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut br, &params).expect("brotli into memory");
    (gz, br)
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=OPSDECK_SITE_DIR");
    let site = std::env::var_os("OPSDECK_SITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            target.join("site")
        });

    // (URL path, file on disk)
    let mut files: Vec<(String, PathBuf)> = vec![
        ("/pkg/opsdeck.css".into(), root.join("style/main.css")),
        ("/favicon.svg".into(), root.join("style/favicon.svg")),
    ];
    for name in ["opsdeck.js", "opsdeck.wasm"] {
        files.push((format!("/pkg/{name}"), site.join("pkg").join(name)));
    }
    println!("cargo:rerun-if-changed={}", site.join("pkg").display());

    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, (url, file)) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", file.display());
        let Ok(data) = std::fs::read(file) else {
            println!(
                "cargo:warning=asset {} not found at {}: pages will not hydrate",
                url,
                file.display()
            );
            continue;
        };
        let (gz, br) = compress(&data);
        let mut h = DefaultHasher::new();
        data.hash(&mut h);
        let etag = format!("\"{:016x}\"", h.finish());
        let write = |suffix: &str, bytes: &[u8]| -> PathBuf {
            let p = out.join(format!("asset{i}.{suffix}"));
            std::fs::write(&p, bytes).expect("write asset copy");
            p
        };
        let raw = write("raw", &data);
        let gzp = write("gz", &gz);
        let brp = write("br", &br);
        let lit = |p: &Path| format!("{:?}", p.display().to_string());
        writeln!(
            table,
            "    Asset {{ path: {url:?}, mime: {:?}, etag: {etag:?}, raw: include_bytes!({}), gzip: include_bytes!({}), brotli: include_bytes!({}) }},",
            mime(url),
            lit(&raw),
            lit(&gzp),
            lit(&brp)
        )
        .unwrap();
    }
    table.push_str("];\n");
    std::fs::write(out.join("assets.rs"), table).expect("write assets.rs");
}
