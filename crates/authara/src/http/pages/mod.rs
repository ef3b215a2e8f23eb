//! Hosted HTML pages: login, signup, logout, account. They work without JavaScript; HTMX
//! requests (`HX-Request: true`) get `HX-Redirect` instead of 303 and the page body without
//! the layout (behavior.md §1.7).
//!
//! Templates are `maud` markup compiled into the binary: checked by the compiler, escaped by
//! default, nothing to embed or load at run time.

pub mod account;
pub mod auth;
pub mod challenge;
pub mod layout;

use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::SharedState;
use crate::http::cookies;
use crate::services::return_to;
use crate::services::sessions::{Issued, RefreshError};
use crate::services::token::{AccessClaims, Audience};

/// What every rendered page needs: the CSRF token for its forms, cookies to set, and how the
/// request came (HTMX or not), plus the validated `return_to`.
pub struct Ctx {
    pub csrf: String,
    pub cookies: Vec<HeaderValue>,
    pub hx: bool,
    pub return_to: String,
    /// `return_to` as given (validated), for links that carry it on.
    pub return_to_param: Option<String>,
}

impl Ctx {
    /// Reads the request; mints the CSRF cookie if absent (every HTML render ensures it).
    pub fn new(state: &SharedState, headers: &HeaderMap, query: Option<&str>) -> Self {
        let (csrf, cookies) = match cookies::get(headers, cookies::CSRF).filter(|c| !c.is_empty() && c.len() <= 128) {
            Some(existing) => (existing.to_owned(), Vec::new()),
            None => {
                let (token, cookie) = state.new_csrf();
                (token, vec![cookie])
            }
        };
        let return_to_param = return_to::from_query(query);
        Ctx {
            csrf,
            cookies,
            hx: is_hx(headers),
            return_to: return_to_param.clone().unwrap_or_else(|| state.config.default_return_to.clone()),
            return_to_param,
        }
    }

    /// `?return_to=…` to append to links and form actions, or nothing.
    pub fn rt_query(&self) -> String {
        self.return_to_param.as_ref().map(|r| format!("?return_to={}", return_to::encode(r))).unwrap_or_default()
    }

    /// An HTML response with the pending cookies.
    pub fn html(self, status: StatusCode, markup: maud::Markup) -> Response {
        let mut res = (status, axum::response::Html(markup.into_string())).into_response();
        for c in self.cookies {
            res.headers_mut().append(SET_COOKIE, c);
        }
        res
    }

    /// A redirect (303, or 200 + `HX-Redirect` for HTMX) with the pending cookies.
    pub fn redirect(self, location: &str) -> Response {
        let mut res = redirect(self.hx, location);
        for c in self.cookies {
            res.headers_mut().append(SET_COOKIE, c);
        }
        res
    }

    pub fn set_session_cookies(&mut self, state: &SharedState, issued: &Issued) {
        self.cookies.extend(state.session_cookies(issued));
    }

    pub fn clear_session_cookies(&mut self, state: &SharedState) {
        self.cookies.extend(state.cleared_session_cookies());
    }

    /// The double-submit check for a form: the `csrf_token` field (or the header).
    pub fn csrf_ok(headers: &HeaderMap, form_token: Option<&str>) -> bool {
        cookies::csrf_matches(headers, form_token)
    }
}

pub fn is_hx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

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

/// The signed-in user of a page, refreshing transparently with the refresh cookie when the
/// access token is missing or expired (behavior.md §1.9). On failure, the response to send:
/// a redirect to the login page carrying this request's `return_to`.
pub async fn page_user(
    state: &SharedState,
    headers: &HeaderMap,
    ctx: &mut Ctx,
) -> Result<std::sync::Arc<AccessClaims>, Response> {
    let s = &state.services;
    if let Some(token) = cookies::get(headers, cookies::ACCESS)
        && let Ok(claims) = s.tokens.verify(token, Some(Audience::App), s.now_ms())
        && !s.revoked.is_revoked(claims.sid)
    {
        return Ok(claims);
    }
    let login = format!("/auth/login?return_to={}", return_to::encode(&ctx.return_to));
    let Some(refresh) = cookies::get(headers, cookies::REFRESH).filter(|t| !t.is_empty()) else {
        return Err(redirect(ctx.hx, &login));
    };
    match s.refresh(refresh, Audience::App).await {
        Ok(issued) => {
            let claims = s.tokens.verify(&issued.access_token, Some(Audience::App), s.now_ms()).map_err(|e| {
                layout::error_page(state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &format!("token: {e}"))
            })?;
            ctx.set_session_cookies(state, &issued);
            Ok(claims)
        }
        Err(RefreshError::Forbidden) => Err(redirect(ctx.hx, "/")),
        Err(e) => {
            if matches!(e, RefreshError::Store(_) | RefreshError::Token(_)) {
                tracing::warn!(error = %e, "page refresh failed");
            }
            let mut res = redirect(ctx.hx, &login);
            cookies::append(res.headers_mut(), state.cleared_session_cookies());
            Err(res)
        }
    }
}
