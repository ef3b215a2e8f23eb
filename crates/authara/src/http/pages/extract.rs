//! Page extractors: the request's page context (CSRF token, HTMX flag, `return_to`, cookies to
//! set), the signed-in user with transparent refresh, CSRF-checked forms and typed queries.

use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::services::accounts::Completion;
use crate::services::auth::{AuthError, Principal};
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
    /// The `authara_link` cookie: which pending link or signup this browser made.
    link: Option<String>,
    /// The `authara_mfa` cookie: the sign-in this browser has waiting for its second step.
    mfa: Option<String>,
    /// The `authara_invitation` cookie: the token of the invitation page a provider sign-in
    /// started from.
    invitation: Option<String>,
    cookies: PendingCookies,
    /// Google's button is on the page being rendered (its CSP allows Google's origins).
    google_button: Arc<AtomicBool>,
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
        let return_to_param = return_to::from_query_within(parts.uri.query(), &state.config.sites.return_hosts);
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
            link: read(cookies::LINK).filter(|l| l.len() <= 128),
            mfa: read(cookies::MFA).filter(|l| l.len() <= 128),
            invitation: read(cookies::INVITATION).filter(|t| t.len() <= 128),
            cookies,
            google_button: Arc::default(),
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

    /// Sets the cookies of refreshed or switched tokens (the same session).
    pub fn set_session(&self, issued: &Issued) {
        self.cookies.push(self.state.session_cookies(issued));
    }

    /// Finishes a sign-in on this browser: the one way a page does (password, code, passkey,
    /// provider, recovery link, invitation, second step); where to go next comes back. Signed
    /// in: whoever was signed in on this browser before is logged out first (their session
    /// revoked, not just its cookies replaced), then the new session's cookies, the device
    /// cookie of a password login and the remembered-browser cookie are set; the flow goes on to
    /// `to`. Waiting for a second step: the `authara_mfa` cookie binds it to this browser, and
    /// the flow goes to the second step's page, which goes on to `to`.
    pub async fn finish(&self, completion: Completion, to: &str) -> String {
        match completion {
            Completion::SignedIn(signed) => {
                if self.access.is_some() || self.refresh.is_some() {
                    self.state.services.sessions().logout(self.refresh.as_deref(), self.access.as_deref()).await;
                    self.clear_session();
                }
                self.cookies.push(self.state.signed_in_cookies(&signed));
                if self.mfa.is_some() {
                    self.push_cookie(cookies::clear_mfa(self.state.config.secure_cookies()));
                }
                to.to_owned()
            }
            Completion::SecondFactor(step) => {
                self.push_cookie(self.state.mfa_cookie(&step));
                let page = if step.enrol { "/auth/login/mfa/enroll" } else { "/auth/login/mfa" };
                format!("{page}?return_to={}", return_to::encode(to))
            }
        }
    }

    /// The sign-in this browser has waiting for its second step (the `authara_mfa` cookie):
    /// its id and this browser's binding.
    pub fn waiting_sign_in(&self) -> Option<(uuid::Uuid, &str)> {
        let (id, binding) = self.mfa.as_deref()?.split_once('.')?;
        Some((uuid::Uuid::parse_str(id).ok()?, binding))
    }

    /// Where a new account goes first: the passkey setup page (behavior.md §1.4) when passkeys
    /// are available, which goes on to `return_to`.
    pub fn after_signup(&self) -> String {
        if self.state.services.passkeys().available() {
            format!("/auth/passkeys/setup?return_to={}", return_to::encode(&self.return_to))
        } else {
            self.return_to.clone()
        }
    }

    /// Keeps `binding` in this browser's `authara_link` cookie (a pending link or signup it made).
    pub fn bind_link(&self, binding: &str) {
        self.push_cookie(self.state.link_cookie(binding));
    }

    /// The `authara_link` cookie as it came.
    pub fn link_binding(&self) -> Option<&str> {
        self.link.as_deref()
    }

    /// A provider sign-in starts from this request's `return_to`: when it is an invitation page,
    /// its token goes into the `authara_invitation` cookie, for the way back (the flow stores
    /// only the token's hash).
    pub fn remember_invitation(&self) {
        if let Some(token) = crate::services::oauth::invitation_token_of(&self.return_to) {
            self.remember_invitation_token(&token);
        }
    }

    /// Keeps an invitation token in this browser's `authara_invitation` cookie (a recovery link
    /// made on the way to an invitation stores only its hash).
    pub fn remember_invitation_token(&self, token: &str) {
        if token.len() <= 128 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            let s = &self.state;
            self.push_cookie(cookies::invitation(token, s.services.now_ms(), s.config.secure_cookies()));
        }
    }

    /// A `return_to` that a provider flow or a recovery link stored, whole again: an invitation
    /// page's token, stored as its hash, is taken back from this browser (the `authara_invitation`
    /// cookie, or this request's own `return_to`). `None` when the browser does not hold it.
    pub fn restore_return_to(&self, stored: &str) -> Option<String> {
        let own = crate::services::oauth::invitation_token_of(&self.return_to);
        let held: Vec<&str> = own.as_deref().into_iter().chain(self.invitation.as_deref()).collect();
        crate::services::oauth::restore_return_to(stored, &held)
    }

    /// Notes that the page shows Google's button (its CSP must allow Google's origins).
    pub fn uses_google_button(&self) {
        self.google_button.store(true, Ordering::Relaxed);
    }

    /// The Content-Security-Policy of the page being rendered.
    pub fn csp(&self) -> HeaderValue {
        let csp = &self.state.page_csp;
        if self.google_button.load(Ordering::Relaxed) { csp.with_google.clone() } else { csp.default.clone() }
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

    /// Leaves a message for the next page that shows messages (login, account, invitation
    /// pages): `success` or `error`. The one channel from an action to the page it returns to.
    /// The cookie is sealed (see `Services::seal_message`): nobody else can put words on our
    /// pages.
    pub fn flash(&self, kind: Flash, message: &str) {
        let json = serde_json::json!({ "kind": kind.as_str(), "message": message }).to_string();
        let value = self.state.services.seal_message(&json);
        self.push_cookie(cookies::flash(&value, self.state.services.now_ms()));
    }

    /// The message left by an earlier response, read and cleared: (success, error).
    pub fn take_flash(&self) -> (Option<String>, Option<String>) {
        let Some(raw) = self.flash.as_deref() else { return (None, None) };
        self.push_cookie(cookies::clear_flash());
        let opened = self.state.services.open_message(raw);
        let v: serde_json::Value = opened.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let message = v["message"].as_str().map(str::to_owned);
        match v["kind"].as_str() {
            Some("success") => (message, None),
            Some("error") => (None, message),
            _ => (None, None),
        }
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
        if let Some(token) = &self.access {
            match s.auth().authenticate(token, Some(audience)).await {
                Ok(p) => return Ok(p),
                // A refresh would mint the same: the session needs its second factor first.
                Err(e @ AuthError::SecondFactorRequired) => return Err(e.into()),
                Err(_) => {}
            }
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

/// What a flash message says: it went well, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    Success,
    Error,
}

impl Flash {
    fn as_str(self) -> &'static str {
        match self {
            Flash::Success => "success",
            Flash::Error => "error",
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

/// Reads an urlencoded form and checks its CSRF token before anything else (no session is
/// refreshed, nothing is written, for a request that fails it). The page context comes back too.
async fn checked_form<T: DeserializeOwned + Default>(
    req: Request,
    state: &AppState,
) -> Result<(PageCtx, T), PageError> {
    let (mut parts, body) = req.into_parts();
    // The page context first, so the CSRF cookie exists for the page a refusal renders.
    let ctx = PageCtx::from_request_parts(&mut parts, state).await?;
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
    Ok((ctx, form))
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(CsrfForm(checked_form(req, state).await?.1))
    }
}

/// A signed-in app user's form: the CSRF check first, then the user (with transparent
/// refresh, which rotates the refresh token: never for a request that fails the check). Every
/// page post that acts for a signed-in user takes this.
pub struct UserForm<T>(pub Principal, pub T);

impl<T: DeserializeOwned + Default + Send> FromRequest<AppState> for UserForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (ctx, form) = checked_form(req, state).await?;
        Ok(UserForm(ctx.user().await?, form))
    }
}

/// Typed path parameters; one that does not parse (`/auth/admin/users/search`) is the 404
/// page, not the framework's plain-text rejection.
pub struct PagePath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PagePath<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PagePath(v)),
            Err(_) => Err(PageError::NotFound),
        }
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
