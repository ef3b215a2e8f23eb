//! Security headers on every response (behavior.md §5.1), with a stricter CSP than the
//! reference: no `unsafe-eval`, no `unsafe-inline`.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::middleware::Next;
use axum::response::Response;

pub const CSP: &str = "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; \
form-action 'self'; font-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'none'; \
script-src 'self'; style-src 'self'";

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    res
}
