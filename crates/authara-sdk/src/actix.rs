//! actix-web integration (feature `actix`), with the axum integration's behaviour.
//!
//! - `App::app_data(authara.clone())` makes the handle available to the extractors;
//! - [`AuthUser`] in a handler refuses anonymous requests with the configured answer, and
//!   `Option<AuthUser>` lets them through as `None`;
//! - [`Require`] is a middleware that guards an `App`, a scope or a resource with a
//!   [`Requirement`];
//! - [`Webhook`] verifies and parses a delivery, with a [`WebhookVerifier`] in `app_data`.
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, web};
//! use authara_sdk::actix::Require;
//! use authara_sdk::{AuthUser, Authara, PlatformRole, Requirement};
//!
//! # fn configure(authara: Authara) {
//! let app = App::new()
//!     .app_data(authara.clone())
//!     .route("/me", web::get().to(|user: AuthUser| async move { HttpResponse::Ok().json(user.user_id()) }))
//!     .service(
//!         web::scope("/admin")
//!             .wrap(Require::new(&authara, Requirement::PlatformRole(PlatformRole::Admin)))
//!             .route("", web::get().to(|| async { "hello, admin" })),
//!     );
//! # }
//! ```

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError, web};

use crate::guard::{AuthUser, Authara, Denied, Refusal, Requirement, access_token};
use crate::webhooks::{DELIVERY_HEADER, Webhook, WebhookError, WebhookHeaders, WebhookRejection, WebhookVerifier};

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// `app_data` holds the value either as is or in `web::Data`.
fn app_data<T: Clone + 'static>(req: &HttpRequest) -> Option<T> {
    req.app_data::<T>().cloned().or_else(|| req.app_data::<web::Data<T>>().map(|d| d.get_ref().clone()))
}

fn token(req: &HttpRequest) -> Option<&str> {
    let headers = req.headers();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    access_token(authorization, headers.get_all(header::COOKIE).filter_map(|v| v.to_str().ok()))
}

fn anonymous(authara: &Authara, req: &HttpRequest) -> Refusal {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    authara.answers().refusal(header("hx-request"), header("accept"), path)
}

async fn admit(req: &HttpRequest, authara: &Authara, requirement: &Requirement) -> Result<AuthUser, Refusal> {
    match authara.admit(token(req), requirement).await {
        Ok(user) => Ok(user),
        Err(Denied::Forbidden) => Err(Refusal::Forbidden),
        Err(Denied::Anonymous) => Err(anonymous(authara, req)),
    }
}

impl FromRequest for AuthUser {
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self, Self::Error>>;

    /// `Option<AuthUser>` (actix's own) is `None` for any failure, a missing handle included.
    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(user) = req.extensions().get::<AuthUser>().cloned() {
                return Ok(user);
            }
            let authara = app_data::<Authara>(&req).ok_or(Refusal::NotConfigured)?;
            Ok(admit(&req, &authara, &Requirement::SignedIn).await?)
        })
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.answer().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let answer = self.answer();
        let mut res = HttpResponse::build(self.status_code());
        for (name, value) in answer.headers {
            match HeaderValue::try_from(value) {
                Ok(v) => {
                    res.insert_header((name, v));
                }
                // Only a login URL configured with characters a header cannot carry gets here.
                Err(_) => return Refusal::NotConfigured.error_response(),
            }
        }
        match answer.body {
            Some(body) => res.body(body),
            None => res.finish(),
        }
    }
}

/// Middleware that refuses requests that do not meet a [`Requirement`] and hands the
/// [`AuthUser`] to the handlers of those that do.
#[derive(Debug, Clone)]
pub struct Require {
    authara: Authara,
    requirement: Arc<Requirement>,
}

impl Require {
    /// Guards with `requirement`, answering as `authara` says.
    pub fn new(authara: &Authara, requirement: Requirement) -> Self {
        Self { authara: authara.clone(), requirement: Arc::new(requirement) }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Require
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireMiddleware {
            service: Rc::new(service),
            authara: self.authara.clone(),
            requirement: self.requirement.clone(),
        }))
    }
}

/// The service of [`Require`].
pub struct RequireMiddleware<S> {
    service: Rc<S>,
    authara: Authara,
    requirement: Arc<Requirement>,
}

impl<S, B> Service<ServiceRequest> for RequireMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let authara = self.authara.clone();
        let requirement = self.requirement.clone();
        Box::pin(async move {
            let outcome = admit(req.request(), &authara, &requirement).await;
            match outcome {
                Ok(user) => {
                    req.extensions_mut().insert(user);
                    service.call(req).await.map(ServiceResponse::map_into_left_body)
                }
                Err(refusal) => Ok(req.into_response(refusal.error_response()).map_into_right_body()),
            }
        })
    }
}

impl ResponseError for WebhookRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.answer().0).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).content_type("application/json").body(self.body())
    }
}

impl FromRequest for Webhook {
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self, Self::Error>>;

    /// Reads the body within actix's `PayloadConfig` limit and the verifier's.
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let verifier = app_data::<WebhookVerifier>(&req).ok_or(WebhookRejection::NotConfigured)?;
            let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > verifier.body_limit() as u64) {
                return Err(WebhookRejection::Invalid(WebhookError::TooLarge).into());
            }
            let bytes = body.await.map_err(|_| WebhookRejection::Body)?;
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
            let event =
                verifier.verify_event(WebhookHeaders::from_fn(header), &bytes).map_err(WebhookRejection::Invalid)?;
            Ok(Webhook { event, delivery_id: header(DELIVERY_HEADER).map(str::to_owned) })
        })
    }
}
