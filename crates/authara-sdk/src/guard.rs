//! What the web integrations share: the [`Authara`] handle, the signed-in [`AuthUser`], the
//! [`Requirement`]s of guards, and the answers to requests that do not meet them.

use std::sync::Arc;

use uuid::Uuid;

use crate::claims::{Claims, OrgRole, PlatformRole};
use crate::verifier::{Verifier, VerifyError};

/// The access-token cookie the server sets.
pub const ACCESS_COOKIE: &str = "authara_access";

/// The server's login page, where unauthenticated browsers are sent by default.
pub const LOGIN_PATH: &str = "/auth/login";

/// A signed-in user: the verified claims of the request's access token.
///
/// Extract it in handlers (axum, or actix-web with the `actix` feature); `Option<AuthUser>`
/// is `None` for anonymous requests instead of refusing them. Dereferences to [`Claims`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    claims: Arc<Claims>,
}

impl AuthUser {
    /// Wraps verified claims.
    pub fn new(claims: Arc<Claims>) -> Self {
        Self { claims }
    }

    /// The user's id (`sub`).
    pub fn user_id(&self) -> Uuid {
        self.claims.sub
    }

    /// The session's id (`sid`).
    pub fn session_id(&self) -> Uuid {
        self.claims.sid
    }

    /// The active organization (`org_id`).
    pub fn org_id(&self) -> Uuid {
        self.claims.org_id
    }

    /// The role in the active organization (`org_role`).
    pub fn org_role(&self) -> OrgRole {
        self.claims.org_role
    }

    /// Every claim.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Checks a requirement for this user: `Ok` or a [`Refusal::Forbidden`].
    ///
    /// ```
    /// # use authara_sdk::{AuthUser, PlatformRole, Refusal, Requirement};
    /// fn admin_only(user: &AuthUser) -> Result<(), Refusal> {
    ///     user.require(&Requirement::PlatformRole(PlatformRole::Admin))
    /// }
    /// ```
    pub fn require(&self, requirement: &Requirement) -> Result<(), Refusal> {
        if requirement.is_met_by(&self.claims) { Ok(()) } else { Err(Refusal::Forbidden) }
    }
}

impl std::ops::Deref for AuthUser {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.claims
    }
}

/// What a guard asks of a request beyond a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// Any signed-in user.
    SignedIn,
    /// A platform role (for example [`PlatformRole::Admin`]).
    PlatformRole(PlatformRole),
    /// At least this role in the token's active organization (`Admin` admits owners too).
    OrgRole(OrgRole),
    /// The token's active organization is this one.
    Organization(Uuid),
    /// Every one of these.
    All(Vec<Requirement>),
}

impl Requirement {
    /// Whether the claims meet it.
    pub fn is_met_by(&self, claims: &Claims) -> bool {
        match self {
            Requirement::SignedIn => true,
            Requirement::PlatformRole(role) => claims.has_role(*role),
            Requirement::OrgRole(min) => claims.org_role >= *min,
            Requirement::Organization(id) => claims.org_id == *id,
            Requirement::All(all) => all.iter().all(|r| r.is_met_by(claims)),
        }
    }
}

/// Why a request was refused, and how to answer it. The integrations render it:
///
/// | variant | answer |
/// |---|---|
/// | `Redirect` | `302 Found`, `Location: <login>?return_to=<path and query>` |
/// | `HxRedirect` | `200 OK`, `HX-Redirect: <same URL>`, empty body |
/// | `Unauthorized` | `401`, `{"error":{"code":"unauthorized",…}}`, `WWW-Authenticate: Bearer` |
/// | `Forbidden` | `403`, `{"error":{"code":"forbidden",…}}` |
/// | `NotConfigured` | `500`, `{"error":{"code":"internal_error",…}}` |
///
/// The first three carry `Vary: Accept, HX-Request`; all carry `Cache-Control: no-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A browser navigation without a valid session: send it to the login page.
    Redirect {
        /// The login URL with `return_to`.
        location: String,
    },
    /// An HTMX request without a valid session: HTMX navigates to the login page.
    HxRedirect {
        /// The login URL with `return_to`.
        location: String,
    },
    /// Any other request without a valid session.
    Unauthorized,
    /// Signed in, but a requirement is not met.
    Forbidden,
    /// A handler asked for the user, but no [`Authara`] handle was installed (a programming
    /// error in the application): `500`.
    NotConfigured,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Redirect { .. } | Refusal::HxRedirect { .. } | Refusal::Unauthorized => "not signed in",
            Refusal::Forbidden => "forbidden",
            Refusal::NotConfigured => "no Authara handle installed",
        })
    }
}

impl std::error::Error for Refusal {}

/// A [`Refusal`] as HTTP: what the axum and actix-web integrations send, for applications on
/// other frameworks to send the same.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Headers to set, lowercase names.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, if any (`content-type: application/json` is among the headers then).
    pub body: Option<String>,
}

impl Refusal {
    /// The HTTP answer (see the table above).
    pub fn answer(&self) -> Answer {
        let mut headers = Vec::new();
        let status = match self {
            Refusal::Redirect { location } => {
                headers.push(("location", location.clone()));
                302
            }
            Refusal::HxRedirect { location } => {
                headers.push(("hx-redirect", location.clone()));
                200
            }
            Refusal::Unauthorized => {
                headers.push(("www-authenticate", "Bearer".to_owned()));
                401
            }
            Refusal::Forbidden => 403,
            Refusal::NotConfigured => 500,
        };
        if matches!(self, Refusal::Redirect { .. } | Refusal::HxRedirect { .. } | Refusal::Unauthorized) {
            // The answer depends on these request headers; caches must not mix them up.
            headers.push(("vary", "Accept, HX-Request".to_owned()));
        }
        headers.push(("cache-control", "no-store".to_owned()));
        let body = error_body(self);
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        Answer { status, headers, body }
    }
}

/// The contract's error envelope for a refusal without a redirect.
fn error_body(refusal: &Refusal) -> Option<String> {
    let (code, message) = match refusal {
        Refusal::Unauthorized => ("unauthorized", "Authentication required."),
        Refusal::Forbidden => ("forbidden", "You do not have access to this resource."),
        Refusal::NotConfigured => ("internal_error", "Internal server error."),
        Refusal::Redirect { .. } | Refusal::HxRedirect { .. } => return None,
    };
    Some(serde_json::json!({ "error": { "code": code, "message": message } }).to_string())
}

/// How anonymous requests are answered.
///
/// By default as the Go SDK does: an HTMX request (`HX-Request: true`) gets `HX-Redirect` to the
/// login page, a request whose `Accept` names `text/html` gets a `302` there, everything else
/// (APIs, `fetch`, no `Accept`) a `401` JSON error. The login page gets `return_to` set to the
/// request's path and query, so the user comes back after signing in.
#[derive(Debug, Clone)]
pub struct Unauthenticated {
    login_url: String,
    redirect: bool,
}

impl Default for Unauthenticated {
    fn default() -> Self {
        Self { login_url: LOGIN_PATH.to_owned(), redirect: true }
    }
}

impl Unauthenticated {
    /// The default answers, with the login page at [`LOGIN_PATH`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Where to send browsers (default `/auth/login`, the server behind the same gateway).
    pub fn login_url(mut self, url: impl Into<String>) -> Self {
        self.login_url = url.into();
        self
    }

    /// Whether browsers and HTMX are redirected (default `true`); `false` answers `401` to all.
    pub fn redirect(mut self, redirect: bool) -> Self {
        self.redirect = redirect;
        self
    }

    /// The answer to an anonymous request, from its `HX-Request` and `Accept` headers and its
    /// path and query.
    pub fn refusal(&self, hx_request: Option<&str>, accept: Option<&str>, path_and_query: &str) -> Refusal {
        if !self.redirect {
            return Refusal::Unauthorized;
        }
        let htmx = hx_request.is_some_and(|v| v.trim() == "true");
        let browser = accept.is_some_and(|a| a.contains("text/html"));
        if !htmx && !browser {
            return Refusal::Unauthorized;
        }
        let sep = if self.login_url.contains('?') { '&' } else { '?' };
        let location = format!("{}{sep}return_to={}", self.login_url, query_escape(path_and_query));
        if htmx { Refusal::HxRedirect { location } } else { Refusal::Redirect { location } }
    }
}

/// Percent-encodes a query value (as Go's `url.QueryEscape`: letters, digits and `-_.~` stay).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The access token of a request: the `Authorization: Bearer` header first, then the
/// `authara_access` cookie (from any `Cookie` header).
pub fn access_token<'a>(
    authorization: Option<&'a str>,
    cookie_headers: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if let Some(auth) = authorization {
        let (scheme, rest) = auth.trim().split_once(' ').unwrap_or((auth, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim();
            if !token.is_empty() {
                return Some(token);
            }
        }
    }
    cookie_headers.into_iter().flat_map(|h| h.split(';')).find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == ACCESS_COOKIE && !value.trim().is_empty()).then(|| value.trim())
    })
}

/// A verifier with the answers to give: what the web integrations need. Cheap to clone.
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use authara_sdk::{Authara, Unauthenticated, Verifier};
/// let verifier = Verifier::builder("authara").hs256_keys(std::env::var("AUTHARA_JWT_KEYS")?.parse()?).build()?;
/// let authara = Authara::new(verifier).unauthenticated(Unauthenticated::new().login_url("/auth/login"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Authara {
    inner: Arc<AutharaInner>,
}

#[derive(Debug)]
struct AutharaInner {
    verifier: Verifier,
    unauthenticated: Unauthenticated,
}

impl Authara {
    /// The default answers ([`Unauthenticated::new`]) around `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { inner: Arc::new(AutharaInner { verifier, unauthenticated: Unauthenticated::default() }) }
    }

    /// Replaces the answers to anonymous requests.
    #[must_use]
    pub fn unauthenticated(self, unauthenticated: Unauthenticated) -> Self {
        let verifier = self.inner.verifier.clone();
        Self { inner: Arc::new(AutharaInner { verifier, unauthenticated }) }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The answers to anonymous requests.
    pub fn answers(&self) -> &Unauthenticated {
        &self.inner.unauthenticated
    }

    /// Verifies a request's token (see [`access_token`]).
    pub async fn authenticate(&self, token: Option<&str>) -> Result<AuthUser, VerifyError> {
        let token = token.ok_or(VerifyError::Missing)?;
        self.inner.verifier.verify(token).await.map(AuthUser::new)
    }

    /// Verifies the token and checks the requirement.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) async fn admit(&self, token: Option<&str>, requirement: &Requirement) -> Result<AuthUser, Denied> {
        let user = self.authenticate(token).await.map_err(|_| Denied::Anonymous)?;
        if requirement.is_met_by(&user) { Ok(user) } else { Err(Denied::Forbidden) }
    }
}

/// Why [`Authara::admit`] refused: the integrations turn `Anonymous` into the configured answer.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) enum Denied {
    Anonymous,
    Forbidden,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_bearer_header_then_the_cookie() {
        assert_eq!(access_token(Some("Bearer abc"), ["authara_access=zzz"]), Some("abc"));
        assert_eq!(access_token(Some("bearer   abc  "), []), Some("abc"));
        assert_eq!(access_token(Some("Basic abc"), ["a=1; authara_access=zzz; b=2"]), Some("zzz"));
        assert_eq!(access_token(Some("Bearer "), ["x=1", "authara_access=second-header"]), Some("second-header"));
        assert_eq!(access_token(None, ["authara_access_old=no; authara_access="]), None);
        assert_eq!(access_token(None, []), None);
    }

    #[test]
    fn anonymous_requests_are_answered_as_the_go_sdk_does() {
        let u = Unauthenticated::new();
        let login = "/auth/login?return_to=%2Fme%3Fa%3D1%26b%3Dx%20y";
        assert_eq!(
            u.refusal(None, Some("text/html,application/xhtml+xml"), "/me?a=1&b=x y"),
            Refusal::Redirect { location: login.into() }
        );
        assert_eq!(
            u.refusal(Some("true"), Some("text/html"), "/me?a=1&b=x y"),
            Refusal::HxRedirect { location: login.into() }
        );
        assert_eq!(u.refusal(None, Some("application/json"), "/me"), Refusal::Unauthorized);
        assert_eq!(u.refusal(None, None, "/me"), Refusal::Unauthorized);
        assert_eq!(u.refusal(Some("false"), Some("*/*"), "/me"), Refusal::Unauthorized);
        let api_only = Unauthenticated::new().redirect(false);
        assert_eq!(api_only.refusal(Some("true"), Some("text/html"), "/me"), Refusal::Unauthorized);
        let elsewhere = Unauthenticated::new().login_url("https://id.example.com/auth/login?x=1");
        assert_eq!(
            elsewhere.refusal(None, Some("text/html"), "/"),
            Refusal::Redirect { location: "https://id.example.com/auth/login?x=1&return_to=%2F".into() }
        );
    }

    #[test]
    fn error_bodies_use_the_contracts_envelope() {
        let body: serde_json::Value = serde_json::from_str(&error_body(&Refusal::Unauthorized).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let body: serde_json::Value = serde_json::from_str(&error_body(&Refusal::Forbidden).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert!(error_body(&Refusal::Redirect { location: "/".into() }).is_none());
    }
}
