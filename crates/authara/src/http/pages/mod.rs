//! Hosted HTML pages: login, signup, logout, code verification, password reset and email change,
//! the account page, sign-in providers and passkeys, the invitation pages, and the admin
//! console. They work without JavaScript; HTMX requests (`HX-Request: true`) get `HX-Redirect`
//! instead of 303 and the page body without the layout (behavior.md §1.7).
//!
//! Every page route runs inside [`page_layer`]: extractors ([`PageCtx`], [`PageUser`],
//! [`CsrfForm`], [`UserForm`], [`PageQuery`]) and handlers only push cookies and return
//! `PageError`s; the layer renders the errors and puts the cookies on whatever response leaves.
//! Every sign-in ends in [`PageCtx::finish`]; every action reports to the page it returns to
//! through [`PageCtx::flash`]. UI copy lives in [`copy`], shared form fields in [`fields`].
//!
//! Templates are `maud` markup compiled into the binary: checked by the compiler, escaped by
//! default, nothing to embed or load at run time.

pub mod account;
pub mod admin;
pub mod auth;
pub mod challenge;
pub mod copy;
pub mod csp;
pub mod error;
mod extract;
pub mod fields;
pub mod google;
pub mod invitations;
pub mod layout;
pub mod methods;
pub mod mfa;
pub mod oauth;
pub mod passkeys;
pub mod verified;

use axum::extract::{Request, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use error::PageError;
pub use extract::{CsrfForm, Flash, NoFields, PageCtx, PagePath, PageQuery, PageUser, PendingCookies, UserForm};

use crate::domain::Audience;
use crate::http::state::AppState;

pub fn is_hx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// 303 to `location`, or 200 + `HX-Redirect` for HTMX.
pub fn redirect(hx: bool, location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    if hx {
        (StatusCode::OK, [("hx-redirect", value)]).into_response()
    } else {
        (StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response()
    }
}

/// The audience a browser flow asks for: `admin` iff it returns under `/admin` (§1.9).
pub fn audience_for(return_to: &str) -> Audience {
    if return_to.starts_with("/admin") { Audience::Admin } else { Audience::App }
}

impl PageCtx {
    /// A page in the site's frame (or its body alone for HTMX).
    pub fn html(&self, status: StatusCode, title: &str, content: maud::Markup) -> Response {
        let markup = layout::page(self.state(), self.hx, title, content);
        let csp = self.csp();
        (status, [(axum::http::header::CONTENT_SECURITY_POLICY, csp)], axum::response::Html(markup.into_string()))
            .into_response()
    }

    /// A redirect (303, or 200 + `HX-Redirect` for HTMX).
    pub fn redirect(&self, location: &str) -> Response {
        redirect(self.hx, location)
    }
}

/// The middleware around every page route: gives the request a [`PendingCookies`], renders a
/// returned [`PageError`], and appends every pending cookie to the response.
pub async fn page_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let hx = is_hx(req.headers());
    let cookies = PendingCookies::default();
    req.extensions_mut().insert(cookies.clone());
    let mut res = next.run(req).await;
    if let Some(error::Rendered(e)) = res.extensions_mut().remove::<error::Rendered>() {
        res = render(&state, hx, e);
    }
    for c in cookies.take() {
        res.headers_mut().append(SET_COOKIE, c);
    }
    res
}

fn render(state: &AppState, hx: bool, e: PageError) -> Response {
    match e {
        PageError::Csrf => layout::error_page(state, hx, StatusCode::FORBIDDEN, "csrf"),
        PageError::BadRequest(detail) => layout::error_page(state, hx, StatusCode::BAD_REQUEST, detail),
        PageError::NotFound => layout::error_page(state, hx, StatusCode::NOT_FOUND, "not found"),
        PageError::Forbidden(detail) => layout::error_page(state, hx, StatusCode::FORBIDDEN, detail),
        PageError::Unauthenticated { login } => redirect(hx, &login),
        PageError::NotAllowed => redirect(hx, "/"),
        PageError::RateLimited => layout::error_page(state, hx, StatusCode::TOO_MANY_REQUESTS, "rate limited"),
        PageError::Internal(detail) => layout::error_page(state, hx, StatusCode::INTERNAL_SERVER_ERROR, &detail),
        PageError::Unavailable(detail) => {
            let mut res = layout::error_page(state, hx, StatusCode::SERVICE_UNAVAILABLE, &detail);
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
    }
}
