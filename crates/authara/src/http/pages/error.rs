//! `PageError`: how a page request fails. Handlers and extractors return it; the page layer
//! ([`super::page_layer`]) turns it into a redirect (303, or `HX-Redirect`) or a full error page
//! in the site's look, with every cookie the request set or cleared riding along.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::services::StoreError;
use crate::services::auth::AuthError;
use crate::services::password::HashError;
use crate::services::sessions::RefreshError;

#[derive(Debug, Clone)]
pub enum PageError {
    /// The CSRF check failed (403 page; no new cookies minted for it).
    Csrf,
    /// A malformed request (400 page); the detail goes to the log.
    BadRequest(&'static str),
    NotFound,
    /// Refused outright (403 page); the detail goes to the log.
    Forbidden(&'static str),
    /// Not signed in: to the login page, carrying this request's `return_to`.
    Unauthenticated {
        login: String,
    },
    /// Signed in, but not allowed here (audience not permitted): back to `/`.
    NotAllowed,
    RateLimited,
    /// A server-side failure (500 page); the cause goes to the log, never to the page.
    Internal(String),
    /// The database is unreachable or saturated (503 page).
    Unavailable(String),
}

impl PageError {
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        PageError::Internal(cause.to_string())
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy(_) => PageError::Unavailable(e.to_string()),
            StoreError::Conflict | StoreError::Other(_) | StoreError::Corrupt(_) => PageError::internal(&e),
        }
    }
}

impl From<HashError> for PageError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Failed(_) => PageError::internal(&e),
            HashError::Busy => PageError::Unavailable(e.to_string()),
        }
    }
}

impl From<AuthError> for PageError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
            AuthError::Token(_) | AuthError::Revoked | AuthError::Disabled | AuthError::Gone => {
                PageError::Unauthenticated { login: "/auth/login".to_owned() }
            }
            // Only the console's tokens are refused so (a session from before the policy).
            AuthError::SecondFactorRequired => {
                PageError::Unauthenticated { login: "/auth/mfa/verify?return_to=%2Fauth%2Fadmin".to_owned() }
            }
        }
    }
}

impl From<RefreshError> for PageError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Store(s) => s.into(),
            RefreshError::Token(t) => PageError::internal(&t),
            RefreshError::Forbidden => PageError::NotAllowed,
            RefreshError::Invalid | RefreshError::Reused | RefreshError::Disabled => {
                PageError::Unauthenticated { login: "/auth/login".to_owned() }
            }
        }
    }
}

/// Carried from a handler's response to the page layer, which renders it.
#[derive(Debug, Clone)]
pub(super) struct Rendered(pub PageError);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut res = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        res.extensions_mut().insert(Rendered(self));
        res
    }
}
