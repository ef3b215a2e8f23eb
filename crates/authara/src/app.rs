//! Application state and the assembled router, used by `serve` and by tests.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::http::assets::Assets;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::middleware::edge;
use crate::services::Services;
use crate::services::sessions::Issued;

pub struct AppState {
    pub config: Arc<Config>,
    pub services: Arc<Services>,
    pub assets: Assets,
}

impl AppState {
    pub fn new(services: Arc<Services>) -> Arc<Self> {
        Arc::new(Self { config: services.config.clone(), assets: Assets::new(&services.config.ui), services })
    }

    /// `authara_access` and `authara_refresh` for freshly issued tokens (behavior.md §4).
    pub fn session_cookies(&self, issued: &Issued) -> [HeaderValue; 2] {
        let now = self.services.now_ms();
        let secure = self.config.secure_cookies();
        let refresh_ttl = i64::try_from(self.config.session.refresh_ttl.as_secs()).unwrap_or(i64::MAX);
        [
            cookies::set(cookies::ACCESS, &issued.access_token, self.services.tokens.ttl_secs(), now, secure, true),
            cookies::set(cookies::REFRESH, &issued.refresh_token, refresh_ttl, now, secure, true),
        ]
    }

    /// Cookies that end the browser session.
    pub fn cleared_session_cookies(&self) -> [HeaderValue; 2] {
        let secure = self.config.secure_cookies();
        [cookies::clear(cookies::ACCESS, secure, true), cookies::clear(cookies::REFRESH, secure, true)]
    }

    /// A new CSRF token and its cookie.
    pub fn new_csrf(&self) -> (String, HeaderValue) {
        cookies::new_csrf(self.services.now_ms(), self.config.secure_cookies())
    }
}

pub type SharedState = Arc<AppState>;

/// The full router with every middleware, outermost first: the edge (request id, access log,
/// timeout, security headers), panic recovery, body limit.
pub fn build(state: SharedState) -> Router {
    let config = state.config.clone();
    crate::http::routes::routes(state).layer(DefaultBodyLimit::max(config.http.max_body_bytes)).layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(config.http.request_timeout, edge::edge))
            .layer(CatchPanicLayer::custom(on_panic)),
    )
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error").into_response()
}
