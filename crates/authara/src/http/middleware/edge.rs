//! The one middleware in front of every route, doing in a single pass (one future, no extra
//! boxing per layer) what the server promises on every response:
//! - a request id: an incoming `X-Request-Id` is kept when it is short and plain (so a
//!   gateway's id flows through), otherwise one is generated; it is echoed in the response and
//!   carried by every log line of the request (a tracing span);
//! - the access log: method, path (never the query string, which may carry tokens), status
//!   and latency; failures at `info` (server errors at `warn`), successes at `debug`, so a busy
//!   instance does not spend its time writing a line per session check;
//! - the per-request timeout (504 past it);
//! - the request's metrics: its route template (tagged by [`tag_route`] once routed), method,
//!   status class and latency;
//! - the security headers of behavior.md §5.1, with a stricter CSP than the reference: no
//!   `unsafe-eval`, no `unsafe-inline`; and `Cache-Control: no-store` on everything that does not
//!   set its own (tokens and account data are never cached).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use crate::http::error::ApiError;
use crate::metrics::{Metrics, UNMATCHED};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub const CSP: &str = "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; \
form-action 'self'; font-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'none'; \
script-src 'self'; style-src 'self'";

fn acceptable(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Carries the matched route template out to [`edge`] on the response (inside the router,
/// where the template is known).
pub async fn tag_route(matched: MatchedPath, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.extensions_mut().insert(matched);
    res
}

pub async fn edge(State((limit, metrics)): State<(Duration, Arc<Metrics>)>, req: Request, next: Next) -> Response {
    // The id is built once as a header value and only borrowed by the span.
    let id = match req.headers().get(&X_REQUEST_ID).filter(|v| acceptable(v)) {
        Some(v) => v.clone(),
        None => {
            let mut buf = uuid::Uuid::encode_buffer();
            HeaderValue::from_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf))
                .unwrap_or_else(|_| HeaderValue::from_static("-"))
        }
    };
    let is_static = req.uri().path().starts_with("/auth/static/");
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %req.method(),
        path = req.uri().path()
    );
    let started = Instant::now();
    let handled = async {
        match tokio::time::timeout(limit, next.run(req)).await {
            Ok(res) => res,
            Err(_) => {
                tracing::warn!(timeout_ms = limit.as_millis() as u64, "request timed out");
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "internal_error", "Request timed out").into_response()
            }
        }
    };
    let mut res = handled.instrument(span.clone()).await;
    let route = res.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str);
    metrics.http_request(route, &method, res.status().as_u16(), started.elapsed());
    if !is_static {
        let _enter = span.enter();
        let status = res.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match status {
            500.. => tracing::warn!(status, latency_ms, "request"),
            400.. => tracing::info!(status, latency_ms, "request"),
            _ => tracing::debug!(status, latency_ms, "request"),
        }
    }
    let h = res.headers_mut();
    // Tokens and account data must not rest in a browser's or proxy's cache; only the hashed
    // static assets and the JWKS (which set their own) may be cached.
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages that embed a sign-in provider set their own, wider policy (pages::oauth::page_csp).
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert(X_REQUEST_ID.clone(), id);
    res
}
