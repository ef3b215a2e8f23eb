//! `/auth/verify`: forward-auth for nginx (`auth_request`), Traefik (ForwardAuth) and Caddy
//! (`forward_auth`), so that an app with no login code of its own sits behind the session
//! (docs/forward-auth.md).
//!
//! The success path reads no database once warm and hashes nothing: the access token (cookie,
//! or `Authorization: Bearer`) is checked by [`crate::services::auth::Authenticator`], the
//! email and username come from the per-user profile cache. The answer always carries every
//! `Remote-*` header (empty when unknown), so a proxy that copies them overwrites whatever the
//! client sent under those names.

mod request;
mod rules;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

pub use request::{ForwardError, Original, is_navigation};
pub use rules::{RuleError, Rules};

use crate::domain::{OrgRole, PlatformRole};
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::auth::{AuthError, Principal};
use crate::services::return_to;

/// The identity headers of a `200`, in this order.
pub const REMOTE_HEADERS: [&str; 6] =
    ["remote-user", "remote-email", "remote-name", "remote-groups", "remote-org", "remote-org-role"];

/// Where the login URL goes in `mode=nginx` (for its `error_page 401` mapping).
const NGINX_REDIRECT: &str = "x-authara-redirect";

/// `/auth/verify` (any method): `200` with the `Remote-*` headers for a signed-in caller the
/// rules allow; `302`/`303` to the login (or refresh) page for a browser navigation without a
/// session; `401` with the login URL in `Location` for anything else; `403` when the rules
/// refuse; `400` when the proxy's forwarded headers are missing, malformed or not a trusted
/// proxy's. `mode=nginx` never redirects.
pub async fn verify(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers();
    let navigation = is_navigation(headers);
    let hx = crate::http::pages::is_hx(headers);
    let rules = match Rules::parse(req.uri().query()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(parameter = %e.parameter, reason = e.reason, "forward-auth: rule parameter refused");
            return with_no_store(refused(&state, navigation, hx));
        }
    };
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let original = match request::original(headers, peer, &state.config.http.trusted_proxies, rules.nginx) {
        Ok(o) => o,
        Err(ForwardError::Untrusted) => {
            tracing::warn!("forward-auth: asked by a peer that is not a trusted proxy");
            return with_no_store(
                ApiError::invalid_request("forwarded headers are accepted from trusted proxies only").into_response(),
            );
        }
        Err(ForwardError::Bad(name)) => {
            return with_no_store(ApiError::invalid_request(format!("{name} is missing or malformed")).into_response());
        }
    };
    let bearer =
        headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let token = bearer.or_else(|| cookies::get(headers, cookies::ACCESS)).filter(|t| !t.is_empty());
    let principal = match token {
        Some(t) => match state.services.auth().authenticate(t, None).await {
            Ok(p) => Some(p),
            Err(AuthError::Store(e)) => return with_no_store(ApiError::from(e).into_response()),
            Err(_) => None,
        },
        None => None,
    };
    let answer = match principal {
        Some(p) => match state.services.profiles().current(&p).await {
            Ok(Some(profile)) if rules.allow(&p) => signed_in(&p, &profile.user.email, &profile.user.username),
            Ok(Some(_)) => refused(&state, navigation, hx),
            Ok(None) => not_signed_in(&state, &original, &rules, navigation, hx, false),
            Err(e) => ApiError::from(e).into_response(),
        },
        None => {
            let refreshable =
                bearer.is_none() && cookies::get(headers, cookies::REFRESH).is_some_and(|t| !t.is_empty());
            not_signed_in(&state, &original, &rules, navigation, hx, refreshable)
        }
    };
    with_no_store(answer)
}

/// A forward-auth answer is about one request: no cache may keep it.
fn with_no_store(mut res: Response) -> Response {
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_bytes(s.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A UUID as a header value, without an intermediate string.
fn uuid_value(id: uuid::Uuid) -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    header_value(id.hyphenated().encode_lower(&mut buf))
}

/// `200` with every identity header (empty when unknown). The forward-auth hot path: each value
/// is written once, straight into the answer's header map.
fn signed_in(who: &Principal, email: &str, username: &str) -> Response {
    // Empty for most users, and an empty `String` does not allocate.
    let mut groups = String::new();
    for role in who.role_claims().iter().filter_map(|c| PlatformRole::from_claim(c)) {
        if !groups.is_empty() {
            groups.push(',');
        }
        groups.push_str(role.as_str());
    }
    let org_role = match OrgRole::parse(&who.claims().org_role) {
        Ok(role) => HeaderValue::from_static(role.as_str()),
        Err(_) => header_value(&who.claims().org_role),
    };
    let values = [
        uuid_value(who.user_id().0),
        header_value(email),
        header_value(username),
        header_value(&groups),
        uuid_value(who.org_id().0),
        org_role,
    ];
    let mut res = Response::new(axum::body::Body::empty());
    let headers = res.headers_mut();
    headers.reserve(REMOTE_HEADERS.len() + 1);
    for (name, value) in REMOTE_HEADERS.iter().zip(values) {
        headers.insert(HeaderName::from_static(name), value);
    }
    res
}

/// Signed in, refused by the route's rules: a page for a browser, the envelope otherwise.
fn refused(state: &AppState, navigation: bool, hx: bool) -> Response {
    if !navigation {
        return ApiError::forbidden("Your account may not open this application").into_response();
    }
    let body = html! {
        div.card {
            p.code aria-hidden="true" { "403" }
            h1 { "Not allowed" }
            p.lead { "You are signed in, but this application needs access your account does not have." }
            a.button href="/auth/account" { "Your account" }
        }
    };
    let markup = crate::http::pages::layout::page(state, hx, "Not allowed", body);
    (StatusCode::FORBIDDEN, axum::response::Html(markup.into_string())).into_response()
}

/// Where the flow should come back to: the original URL on an allowed host, its path when it
/// is on this server's own host, else nothing (the login's default).
fn come_back_to(state: &AppState, original: &Original<'_>) -> Option<String> {
    let public_authority = state.config.public_url.split_once("://").map(|(_, a)| a.to_ascii_lowercase());
    let url = original.url();
    if state.config.sites.return_hosts.allows_absolute(&url) {
        Some(url)
    } else if public_authority.as_deref() == Some(&*original.authority) && return_to::is_safe(original.uri) {
        Some(original.uri.to_owned())
    } else {
        None
    }
}

/// No session: a redirect through the login page (or, with a refresh cookie, the refresh page)
/// for a browser navigation; `401` with the login URL for the rest.
fn not_signed_in(
    state: &AppState,
    original: &Original<'_>,
    rules: &Rules,
    navigation: bool,
    hx: bool,
    refreshable: bool,
) -> Response {
    let back = come_back_to(state, original);
    let query = back.map(|b| format!("?return_to={}", return_to::encode(&b))).unwrap_or_default();
    let login = format!("{}/auth/login{query}", state.config.public_url);
    let next =
        if refreshable { format!("{}/auth/sessions/refresh{query}", state.config.public_url) } else { login.clone() };
    if navigation && !rules.nginx {
        let status = if original.is_safe_method() { StatusCode::FOUND } else { StatusCode::SEE_OTHER };
        return (status, [(LOCATION, header_value(&next))]).into_response();
    }
    let mut res = ApiError::unauthorized().into_response();
    res.headers_mut().insert(LOCATION, header_value(&login));
    if navigation {
        res.headers_mut().insert(NGINX_REDIRECT, header_value(&next));
    }
    if hx {
        res.headers_mut().insert("hx-redirect", header_value(&login));
    }
    res
}
