//! Static assets under `/auth/static/`, compiled into the binary. Names carry a content hash
//! (`style.<hash>.css`) so they are served with a one-year immutable cache lifetime.

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

/// The page script's sources, concatenated in this order into one asset. Each feature owns one
/// file; `core.js` holds what they share.
const SCRIPT_SOURCES: &[&str] = &[
    include_str!("pages/js/core.js"),
    include_str!("pages/js/passkeys.js"),
    include_str!("pages/js/google.js"),
    include_str!("pages/js/mfa.js"),
];

/// The stylesheet with the configured accent color, the page script, and their hashed names.
#[derive(Debug, Clone)]
pub struct Assets {
    pub css: String,
    pub css_name: String,
    pub js: String,
    pub js_name: String,
}

/// `stem.<first 10 hex digits of the SHA-256 of content>.ext`.
fn hashed_name(stem: &str, ext: &str, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stem}.{hash}.{ext}")
}

impl Assets {
    pub fn new(ui: &crate::config::UiConfig) -> Self {
        let css = include_str!("pages/style.css").replace("__ACCENT__", &ui.primary_color);
        let js = SCRIPT_SOURCES.join("\n");
        Assets { css_name: hashed_name("style", "css", &css), css, js_name: hashed_name("authara", "js", &js), js }
    }

    pub fn css_url(&self) -> String {
        format!("/auth/static/{}", self.css_name)
    }

    pub fn js_url(&self) -> String {
        format!("/auth/static/{}", self.js_name)
    }
}

impl Assets {
    /// The asset named `name` (with its content hash), immutable-cached; 404 otherwise.
    pub fn response(&self, name: &str) -> Response {
        let cached = |ct: &'static str, body: &str| {
            ([(CONTENT_TYPE, ct), (CACHE_CONTROL, "public, max-age=31536000, immutable")], body.to_owned())
                .into_response()
        };
        if name == self.css_name {
            return cached("text/css; charset=utf-8", &self.css);
        }
        if name == self.js_name {
            return cached("text/javascript; charset=utf-8", &self.js);
        }
        (StatusCode::NOT_FOUND, "404 page not found").into_response()
    }
}
