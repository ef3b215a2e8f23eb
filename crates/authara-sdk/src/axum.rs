//! axum integration (feature `axum`, on by default).
//!
//! - [`Authara::layer`] makes the handle available to the extractors;
//! - [`AuthUser`] in a handler refuses anonymous requests with the configured answer, and
//!   `Option<AuthUser>` lets them through as `None`;
//! - [`Authara::require`] is a tower layer that guards a whole router (or, with
//!   `route_layer`, its routes) with a [`Requirement`];
//! - [`Webhook`] verifies and parses a delivery, with a [`WebhookVerifier`] installed by
//!   [`WebhookVerifier::layer`].
//!
//! ```no_run
//! use axum::{Json, Router, routing::get};
//! use authara_sdk::{AuthUser, Authara, PlatformRole, Requirement, Verifier};
//!
//! # fn app(verifier: Verifier) -> Router {
//! let authara = Authara::new(verifier);
//! let admin = Router::new()
//!     .route("/admin", get(|| async { "hello, admin" }))
//!     .route_layer(authara.require(Requirement::PlatformRole(PlatformRole::Admin)));
//! Router::new()
//!     .route("/me", get(|user: AuthUser| async move { Json(user.user_id()) }))
//!     .merge(admin)
//!     .layer(authara.layer())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::Extension;
use ::axum::body::Body;
use ::axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, OriginalUri, Request};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use ::axum::response::{IntoResponse, Response};

use crate::guard::{AuthUser, Authara, Denied, Refusal, Requirement, access_token};
use crate::webhooks::{DELIVERY_HEADER, Webhook, WebhookError, WebhookHeaders, WebhookRejection, WebhookVerifier};

impl Authara {
    /// The layer that makes this handle available to [`AuthUser`] extractors (lets every
    /// request through).
    pub fn layer(&self) -> Extension<Authara> {
        Extension(self.clone())
    }

    /// A layer that refuses requests that do not meet `requirement` before they reach the
    /// handlers, and hands the [`AuthUser`] to those that do.
    pub fn require(&self, requirement: Requirement) -> RequireLayer {
        RequireLayer { authara: self.clone(), requirement: Arc::new(requirement) }
    }
}

fn token(headers: &HeaderMap) -> Option<&str> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    access_token(authorization, headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()))
}

/// The answer to an anonymous request, from its headers and (original) path and query.
fn anonymous(authara: &Authara, parts: &Parts) -> Refusal {
    let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |o| &o.0);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    authara.answers().refusal(header("hx-request"), header("accept"), path)
}

async fn admit(parts: &Parts, authara: &Authara, requirement: &Requirement) -> Result<AuthUser, Refusal> {
    match authara.admit(token(&parts.headers), requirement).await {
        Ok(user) => Ok(user),
        Err(Denied::Forbidden) => Err(Refusal::Forbidden),
        Err(Denied::Anonymous) => Err(anonymous(authara, parts)),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Refusal> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let authara = parts.extensions.get::<Authara>().cloned().ok_or(Refusal::NotConfigured)?;
        admit(parts, &authara, &Requirement::SignedIn).await
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthUser {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Refusal> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(Some(user.clone()));
        }
        let authara = parts.extensions.get::<Authara>().cloned().ok_or(Refusal::NotConfigured)?;
        Ok(authara.authenticate(token(&parts.headers)).await.ok())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let answer = self.answer();
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = Response::new(answer.body.map_or_else(Body::empty, Body::from));
        *res.status_mut() = status;
        for (name, value) in answer.headers {
            match HeaderValue::try_from(value) {
                Ok(v) => {
                    res.headers_mut().insert(name, v);
                }
                // Only a login URL configured with characters a header cannot carry gets here.
                Err(_) => return Refusal::NotConfigured.into_response(),
            }
        }
        res
    }
}

/// The tower layer of [`Authara::require`].
#[derive(Debug, Clone)]
pub struct RequireLayer {
    authara: Authara,
    requirement: Arc<Requirement>,
}

impl<S> tower::Layer<S> for RequireLayer {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService { inner, authara: self.authara.clone(), requirement: self.requirement.clone() }
    }
}

/// The service of [`RequireLayer`].
#[derive(Debug, Clone)]
pub struct RequireService<S> {
    inner: S,
    authara: Authara,
    requirement: Arc<Requirement>,
}

impl<S> tower::Service<Request> for RequireService<S>
where
    S: tower::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authara = self.authara.clone();
        let requirement = self.requirement.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match admit(&parts, &authara, &requirement).await {
                Ok(user) => {
                    parts.extensions.insert(user);
                    parts.extensions.insert(authara);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(refusal) => Ok(refusal.into_response()),
            }
        })
    }
}

impl WebhookVerifier {
    /// The layer that makes this verifier available to the [`Webhook`] extractor.
    pub fn layer(&self) -> Extension<WebhookVerifier> {
        Extension(self.clone())
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let (status, _, _) = self.answer();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, [(header::CONTENT_TYPE, "application/json")], self.body()).into_response()
    }
}

impl<S: Send + Sync> FromRequest<S> for Webhook {
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, WebhookRejection> {
        let verifier = req.extensions().get::<WebhookVerifier>().cloned().ok_or(WebhookRejection::NotConfigured)?;
        let (parts, body) = req.into_parts();
        let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > verifier.body_limit() as u64) {
            return Err(WebhookRejection::Invalid(WebhookError::TooLarge));
        }
        let bytes = ::axum::body::to_bytes(body, verifier.body_limit()).await.map_err(|_| WebhookRejection::Body)?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let event =
            verifier.verify_event(WebhookHeaders::from_fn(header), &bytes).map_err(WebhookRejection::Invalid)?;
        Ok(Webhook { event, delivery_id: header(DELIVERY_HEADER).map(str::to_owned) })
    }
}
