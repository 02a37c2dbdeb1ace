//! The console's static assets, compiled into the binary and served under
//! `/console/assets/<version>/<name>` with a year-long, immutable cache lifetime: `<version>`
//! is a digest of every asset, so a new build changes every URL. To add an asset, add a line
//! to [`ASSETS`] (the file lives in `assets/console/`).

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

/// (name, content type, bytes).
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../assets/console/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/console/console.js")),
    ("auditor.css", "text/css; charset=utf-8", include_bytes!("../../assets/console/auditor.css")),
    ("auditor.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/console/js/auditor.js")),
    ("tlog-verify.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/console/js/tlog-verify.js")),
    ("passkey.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/console/js/passkey.js")),
];

/// The digest of all assets (16 hex digits): the URL segment that busts caches.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for (name, _, bytes) in ASSETS {
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    hex::encode(&h.finalize()[..8])
});

/// `GET /console/assets/{version}/{name}`. An old version's URL still gets the current file,
/// but only cached briefly.
pub async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (version, name) = path.into_inner();
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("no such asset");
    };
    let cache = if version == *VERSION { "public, max-age=31536000, immutable" } else { "public, max-age=60" };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *content_type))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(*bytes)
}
