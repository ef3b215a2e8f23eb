//! The state every handler receives: configuration, services, compiled assets.

use std::sync::Arc;

use axum::http::HeaderValue;

use crate::config::Config;
use crate::http::assets::Assets;
use crate::http::cookies;
use crate::http::pages::csp::PageCsp;
use crate::services::Services;
use crate::services::sessions::Issued;

pub struct HttpState {
    pub config: Arc<Config>,
    pub services: Services,
    pub assets: Assets,
    /// The Content-Security-Policies of the hosted pages (widened for the configured sign-in
    /// providers; Google's origins only where its button is).
    pub page_csp: PageCsp,
}

/// What handlers and extractors hold.
pub type AppState = Arc<HttpState>;

impl HttpState {
    pub fn new(services: Services) -> AppState {
        let config = services.config().clone();
        let page_csp = PageCsp::new(&config);
        Arc::new(Self { assets: Assets::new(&config.ui), page_csp, config, services })
    }

    /// `authara_access` and `authara_refresh` for freshly issued tokens (behavior.md §4).
    pub fn session_cookies(&self, issued: &Issued) -> [HeaderValue; 2] {
        let now = self.services.now_ms();
        let secure = self.config.secure_cookies();
        let refresh_ttl = i64::try_from(self.config.session.refresh_ttl.as_secs()).unwrap_or(i64::MAX);
        let domain = self.config.sites.cookie_domain.as_deref();
        [
            cookies::scoped(
                cookies::set(
                    cookies::ACCESS,
                    &issued.access_token,
                    self.services.tokens().ttl_secs(),
                    now,
                    secure,
                    true,
                ),
                domain,
            ),
            cookies::scoped(
                cookies::set(cookies::REFRESH, &issued.refresh_token, refresh_ttl, now, secure, true),
                domain,
            ),
        ]
    }

    /// The cookies of a login: the session's, and the device cookie when one was issued.
    pub fn signed_in_cookies(&self, signed: &crate::services::accounts::SignedIn) -> Vec<HeaderValue> {
        let mut out = self.session_cookies(&signed.tokens).to_vec();
        let (now, secure) = (self.services.now_ms(), self.config.secure_cookies());
        if let Some(d) = &signed.device {
            out.push(cookies::device(d, now, secure));
        }
        if let Some(r) = &signed.remember {
            out.push(cookies::mfa_remember(r, self.config.mfa.remember_days, now, secure));
        }
        out
    }

    /// The `authara_mfa` cookie binding a sign-in waiting for its second step to this browser:
    /// `<challenge id>.<binding>`.
    pub fn mfa_cookie(&self, step: &crate::services::signin::SecondStep) -> HeaderValue {
        let max_age = crate::services::signin::SecondStep::EXPIRES_IN;
        let value = format!("{}.{}", step.challenge_id, step.binding);
        cookies::mfa(&value, max_age, self.services.now_ms(), self.config.secure_cookies())
    }

    /// Cookies that end the browser session (with `AUTHARA_COOKIE_DOMAIN`, the shared ones and
    /// any host-only ones from before it was set).
    pub fn cleared_session_cookies(&self) -> Vec<HeaderValue> {
        let secure = self.config.secure_cookies();
        let mut out = Vec::with_capacity(4);
        for domain in [None, self.config.sites.cookie_domain.as_deref()] {
            if domain.is_some() || out.is_empty() {
                out.push(cookies::scoped(cookies::clear(cookies::ACCESS, secure, true), domain));
                out.push(cookies::scoped(cookies::clear(cookies::REFRESH, secure, true), domain));
            }
        }
        out
    }

    /// The `authara_link` cookie binding a pending link or signup to this browser.
    pub fn link_cookie(&self, binding: &str) -> HeaderValue {
        cookies::link(binding, self.services.now_ms(), self.config.secure_cookies())
    }

    /// A new CSRF token and its cookie.
    pub fn new_csrf(&self) -> (String, HeaderValue) {
        cookies::new_csrf(self.services.now_ms(), self.config.secure_cookies())
    }
}
