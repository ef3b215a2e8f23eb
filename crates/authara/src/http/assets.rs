//! Static assets under `/auth/static/`, compiled into the binary. Names carry a content hash
//! (`style.<hash>.css`) so they are served with a one-year immutable cache lifetime.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use crate::http::state::AppState;

/// The stylesheet with the configured accent color, and its hashed file name.
#[derive(Debug, Clone)]
pub struct Assets {
    pub css: String,
    pub css_name: String,
}

impl Assets {
    pub fn new(ui: &crate::config::UiConfig) -> Self {
        let css = include_str!("pages/style.css").replace("__ACCENT__", &ui.primary_color);
        let digest = Sha256::digest(css.as_bytes());
        let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
        Assets { css_name: format!("style.{hash}.css"), css }
    }

    pub fn css_url(&self) -> String {
        format!("/auth/static/{}", self.css_name)
    }
}

pub async fn serve(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    if name == state.assets.css_name {
        return (
            [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=31536000, immutable")],
            state.assets.css.clone(),
        )
            .into_response();
    }
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}
