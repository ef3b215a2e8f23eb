//! Page extractors: the request's page context (CSRF token, HTMX flag, `return_to`, cookies to
//! set), the signed-in user with transparent refresh, CSRF-checked forms and typed queries.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::PageError;
use crate::domain::Audience;
use crate::http::cookies;
use crate::http::state::AppState;
use crate::services::auth::Principal;
use crate::services::return_to;
use crate::services::sessions::{Issued, RefreshError};

/// `Set-Cookie` values a page request has produced so far. The page layer puts one in every
/// request and appends whatever it holds to the response, whatever the response is (a page, a
/// redirect, an error page), so a rotated session is never lost.
#[derive(Debug, Clone, Default)]
pub struct PendingCookies(Arc<Mutex<Vec<HeaderValue>>>);

impl PendingCookies {
    pub fn push(&self, cookies: impl IntoIterator<Item = HeaderValue>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend(cookies);
    }

    pub(super) fn take(&self) -> Vec<HeaderValue> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What every page handler knows about its request.
#[derive(Clone)]
pub struct PageCtx {
    state: AppState,
    /// The CSRF token the page's forms carry (the cookie is minted when absent).
    pub csrf: String,
    /// An HTMX request (`HX-Request: true`).
    pub hx: bool,
    /// Where the flow lands afterwards: the validated `return_to`, else the default.
    pub return_to: String,
    /// `return_to` as given (validated), for links that carry it on.
    pub return_to_param: Option<String>,
    access: Option<String>,
    refresh: Option<String>,
    device: Option<String>,
    /// Sign-in provider cookies as they came: Google's nonce, a code flow's `state`, a flash.
    oauth_nonce: Option<String>,
    oauth_state: Option<String>,
    flash: Option<String>,
    cookies: PendingCookies,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(ctx) = parts.extensions.get::<PageCtx>() {
            return Ok(ctx.clone());
        }
        let cookies = parts.extensions.get::<PendingCookies>().cloned().unwrap_or_default();
        let csrf = match cookies::get(&parts.headers, cookies::CSRF).filter(|c| !c.is_empty() && c.len() <= 128) {
            Some(existing) => existing.to_owned(),
            None => {
                let (token, cookie) = state.new_csrf();
                cookies.push([cookie]);
                token
            }
        };
        let return_to_param = return_to::from_query(parts.uri.query());
        let read = |name| cookies::get(&parts.headers, name).filter(|t| !t.is_empty()).map(str::to_owned);
        let ctx = PageCtx {
            state: state.clone(),
            csrf,
            hx: super::is_hx(&parts.headers),
            return_to: return_to_param.clone().unwrap_or_else(|| state.config.default_return_to.clone()),
            return_to_param,
            access: read(cookies::ACCESS),
            refresh: read(cookies::REFRESH),
            device: read(cookies::DEVICE),
            oauth_nonce: read(cookies::OAUTH_NONCE).filter(|n| n.len() <= 128),
            oauth_state: read(cookies::OAUTH_STATE),
            flash: read(cookies::FLASH),
            cookies,
        };
        parts.extensions.insert(ctx.clone());
        Ok(ctx)
    }
}

impl PageCtx {
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// `?return_to=…` to append to links and form actions, or nothing.
    pub fn rt_query(&self) -> String {
        self.return_to_param.as_ref().map(|r| format!("?return_to={}", return_to::encode(r))).unwrap_or_default()
    }

    /// The login page, carrying this request's `return_to` (behavior.md §1.8).
    pub fn login_url(&self) -> String {
        format!("/auth/login?return_to={}", return_to::encode(&self.return_to))
    }

    pub fn set_session(&self, issued: &Issued) {
        self.cookies.push(self.state.session_cookies(issued));
    }

    /// The cookies of a login (session and device).
    pub fn signed_in(&self, signed: &crate::services::accounts::SignedIn) {
        self.cookies.push(self.state.signed_in_cookies(signed));
    }

    /// Signs `signed` in on this browser in place of whoever was: the session the browser came
    /// with (if any) is logged out and its cookies cleared before the new ones are set, so the
    /// completion of an invitation never leaves the previous session alive (behavior.md §9.3).
    pub async fn replace_session(&self, signed: &crate::services::accounts::SignedIn) {
        if self.access.is_some() || self.refresh.is_some() {
            self.state.services.sessions().logout(self.refresh.as_deref(), self.access.as_deref()).await;
            self.clear_session();
        }
        self.signed_in(signed);
    }

    /// The device cookie as it came.
    pub fn device_token(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// Adds a cookie to the response.
    pub fn push_cookie(&self, cookie: HeaderValue) {
        self.cookies.push([cookie]);
    }

    /// Google's nonce (behavior.md §7.2): the cookie's value, else a new one set now.
    pub fn oauth_nonce(&self) -> String {
        if let Some(n) = &self.oauth_nonce {
            return n.clone();
        }
        let n = cookies::random_value();
        self.push_cookie(cookies::oauth_nonce(&n, self.state.services.now_ms(), self.state.config.secure_cookies()));
        n
    }

    /// Google's nonce cookie as it came.
    pub fn oauth_nonce_cookie(&self) -> Option<&str> {
        self.oauth_nonce.as_deref()
    }

    /// A code flow's `state` cookie as it came.
    pub fn oauth_state(&self) -> Option<&str> {
        self.oauth_state.as_deref()
    }

    /// Leaves a message for the next login or account page: `kind` is `error` or `success`,
    /// `code` one of the fixed messages of `copy::flash`.
    pub fn set_flash(&self, kind: &str, code: &str) {
        use base64::Engine as _;
        let json = serde_json::json!({ "kind": kind, "message": code }).to_string();
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        self.push_cookie(cookies::flash(&value, self.state.services.now_ms()));
    }

    /// The flash left by an earlier response, read and cleared: `(kind, code)`.
    pub fn take_flash(&self) -> Option<(String, String)> {
        use base64::Engine as _;
        let raw = self.flash.as_deref()?;
        self.push_cookie(cookies::clear_flash());
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some((v["kind"].as_str()?.to_owned(), v["message"].as_str()?.to_owned()))
    }

    pub fn clear_session(&self) {
        self.cookies.push(self.state.cleared_session_cookies());
    }

    /// The access cookie as it came.
    pub fn access_token(&self) -> Option<&str> {
        self.access.as_deref()
    }

    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh.as_deref()
    }

    /// The signed-in app user, refreshing transparently with the refresh cookie when the
    /// access token is missing, expired or revoked (behavior.md §1.9). A refused refresh clears
    /// the session cookies, except when only the audience is refused (then back to `/`).
    pub async fn user(&self) -> Result<Principal, PageError> {
        self.user_for(Audience::App).await
    }

    /// The same, for a token of `audience` (the admin console asks for `admin`). The rotated
    /// cookies are set as soon as the refresh succeeds: the old refresh token is spent, so the
    /// browser must get the new pair whatever happens next.
    pub async fn user_for(&self, audience: Audience) -> Result<Principal, PageError> {
        let s = &self.state.services;
        if let Some(token) = &self.access
            && let Ok(p) = s.auth().authenticate(token, Some(audience)).await
        {
            return Ok(p);
        }
        let login = PageError::Unauthenticated { login: self.login_url() };
        let Some(refresh) = &self.refresh else { return Err(login) };
        match s.sessions().refresh(refresh, audience).await {
            Ok(issued) => {
                self.set_session(&issued);
                Ok(s.auth().authenticate(&issued.access_token, Some(audience)).await?)
            }
            Err(RefreshError::Forbidden) => Err(PageError::NotAllowed),
            Err(e @ (RefreshError::Store(_) | RefreshError::Token(_))) => Err(e.into()),
            Err(RefreshError::Invalid | RefreshError::Reused | RefreshError::Disabled) => {
                self.clear_session();
                Err(login)
            }
        }
    }
}

/// The body of a form that carries nothing but its CSRF token.
#[derive(serde::Deserialize, Default)]
pub struct NoFields {}

/// The signed-in app user of a page (see [`PageCtx::user`]).
pub struct PageUser(pub Principal);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ctx = PageCtx::from_request_parts(parts, state).await?;
        Ok(PageUser(ctx.user().await?))
    }
}

#[derive(Deserialize, Default)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

/// An urlencoded form that passed the double-submit CSRF check (behavior.md §3): the
/// `authara_csrf` cookie equals the `X-CSRF-Token` header, or else the form's `csrf_token`
/// field, or else a `csrf_token` query parameter. Missing fields take their defaults.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        // The page context first, so the CSRF cookie exists for the page a refusal renders.
        PageCtx::from_request_parts(&mut parts, state).await?;
        let query_token = parts
            .uri
            .query()
            .and_then(|q| serde_urlencoded::from_str::<CsrfField>(q).ok())
            .map(|f| f.csrf_token)
            .filter(|t| !t.is_empty());
        let req = Request::from_parts(parts, body);
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state).await.map_err(|_| PageError::BadRequest("unreadable form body"))?;
        let field = serde_urlencoded::from_bytes::<CsrfField>(&bytes).unwrap_or_default().csrf_token;
        let token = Some(field).filter(|t| !t.is_empty()).or(query_token);
        if !cookies::csrf_matches(&headers, token.as_deref()) {
            return Err(PageError::Csrf);
        }
        let form = if bytes.is_empty() {
            T::default()
        } else {
            serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::BadRequest("malformed form"))?
        };
        Ok(CsrfForm(form))
    }
}

/// A typed query string; a malformed one is a 400 page.
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(PageQuery)
            .map_err(|_| PageError::BadRequest("malformed query string"))
    }
}
