//! HTTP: routing, extractors, middleware, JSON envelopes, pages. Knows nothing about SQL: it
//! talks to `services` only.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

pub mod admission;
pub mod api;
pub mod assets;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod forward_auth;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod routes;
pub mod server;
pub mod state;

/// The full router with every middleware, outermost first: the edge (request id, access log,
/// timeout, security headers), panic recovery, body limit.
pub fn router(state: state::AppState) -> Router {
    let config = Arc::clone(&state.config);
    let edge_state = (config.http.request_timeout, state.services.metrics().clone());
    routes::routes(state).layer(DefaultBodyLimit::max(config.http.max_body_bytes)).layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(edge_state, middleware::edge::edge))
            .layer(CatchPanicLayer::custom(on_panic)),
    )
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error").into_response()
}
