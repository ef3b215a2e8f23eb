//! Request ids and the access log: every log line of a request carries its id.
//!
//! An incoming `X-Request-Id` is kept when it is short and plain (so a gateway's id flows
//! through), otherwise a new one is generated. The id is echoed in the response. The access log
//! records method, path (never the query string, which may carry tokens), status and latency:
//! failures at `info` (server errors at `warn`), successes at `debug`, so that a busy
//! production instance does not spend its time writing a line per session check.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_owned())
}

pub async fn request_id(req: Request, next: Next) -> Response {
    let id = req.headers().get(&X_REQUEST_ID).and_then(acceptable).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    if !path.starts_with("/auth/static/") {
        let _enter = span.enter();
        let status = res.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match status {
            500.. => tracing::warn!(status, latency_ms, "request"),
            400.. => tracing::info!(status, latency_ms, "request"),
            _ => tracing::debug!(status, latency_ms, "request"),
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    res
}
