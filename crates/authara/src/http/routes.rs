//! THE route table, in contract order. No route is registered anywhere else.

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::SharedState;
use crate::http::api::health;
use crate::http::error::ApiError;

pub fn routes(state: SharedState) -> Router {
    Router::new()
        // Meta routes (behavior.md §1.1)
        .route("/auth/health", get(health::health))
        .route("/auth/version", get(health::version))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

fn is_api(uri: &Uri) -> bool {
    let p = uri.path();
    p.starts_with("/auth/api/") || p.starts_with("/auth/internal/")
}

/// Unknown API routes answer the envelope; other paths the plain-text 404 (behavior.md §0.2).
async fn not_found(uri: Uri) -> Response {
    if is_api(&uri) {
        ApiError::not_found().into_response()
    } else {
        (StatusCode::NOT_FOUND, "404 page not found").into_response()
    }
}

async fn method_not_allowed(uri: Uri) -> Response {
    if is_api(&uri) {
        ApiError::method_not_allowed().into_response()
    } else {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}
