//! Cookies with exactly the attributes of behavior.md §4: host-only, `Path=/`, `SameSite=Lax`,
//! `Secure` only in prod, `HttpOnly` except the CSRF cookie (the browser SDK reads it).

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};

use crate::clock::http_date;

pub const ACCESS: &str = "authara_access";
pub const REFRESH: &str = "authara_refresh";
pub const CSRF: &str = "authara_csrf";
/// The device cookie of clients that logged in before (our addition; `Path=/auth`).
pub const DEVICE: &str = "authara_device";
/// The nonce of Google's ID-token flow (behavior.md §4: `Path=/auth`, 10 minutes).
pub const OAUTH_NONCE: &str = "authara_oauth_nonce";
/// The `state` of an authorization-code flow, binding its callback to this browser (our
/// addition: HttpOnly, `Path=/auth/oauth`, 10 minutes).
pub const OAUTH_STATE: &str = "authara_oauth_state";
/// Binds a pending provider link or invitation signup to the browser that made it (our
/// addition: HttpOnly, `Path=/auth`, 10 minutes). A link opened elsewhere is refused.
pub const LINK: &str = "authara_link";
/// Which sign-in waiting for its second step this browser started (five minutes, `/auth`).
pub const MFA: &str = "authara_mfa";
/// "Remember this browser": a sign-in here may skip the second step (signed, HttpOnly).
pub const MFA_REMEMBER: &str = "authara_mfa_remember";
/// The invitation token of a provider sign-in started from an invitation page, for the flow's
/// way back (our addition: HttpOnly, `Path=/auth`, 10 minutes). The database keeps only the
/// token's hash in the flow's `return_to`.
pub const INVITATION: &str = "authara_invitation";
/// A one-shot message for the next login or account page (behavior.md §4: never `Secure`).
pub const FLASH: &str = "authara_flash";
/// Ten minutes.
pub const OAUTH_MAX_AGE: i64 = 600;
/// One year.
pub const DEVICE_MAX_AGE: i64 = 31_536_000;
/// 30 days.
pub const CSRF_MAX_AGE: i64 = 2_592_000;

/// The value of cookie `name` in the request, if present.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// `Set-Cookie` for a value living `max_age` seconds from `now_ms`.
pub fn set(name: &str, value: &str, max_age: i64, now_ms: i64, secure: bool, http_only: bool) -> HeaderValue {
    set_at(name, value, "/", max_age, now_ms, secure, http_only)
}

/// The device cookie: HttpOnly, `Path=/auth` (only the login routes read it), one year.
pub fn device(value: &str, now_ms: i64, secure: bool) -> HeaderValue {
    set_at(DEVICE, value, "/auth", DEVICE_MAX_AGE, now_ms, secure, true)
}

/// The Google nonce cookie.
pub fn oauth_nonce(value: &str, now_ms: i64, secure: bool) -> HeaderValue {
    set_at(OAUTH_NONCE, value, "/auth", OAUTH_MAX_AGE, now_ms, secure, true)
}

/// Clears the Google nonce cookie (`Max-Age=-1`, no `Expires`, as the reference).
pub fn clear_oauth_nonce(secure: bool) -> HeaderValue {
    build(&format!("{OAUTH_NONCE}=; Path=/auth; Max-Age=-1"), secure, true)
}

/// The `state` cookie of a code flow.
pub fn oauth_state(value: &str, now_ms: i64, secure: bool) -> HeaderValue {
    set_at(OAUTH_STATE, value, "/auth/oauth", OAUTH_MAX_AGE, now_ms, secure, true)
}

/// Clears the `state` cookie.
pub fn clear_oauth_state(secure: bool) -> HeaderValue {
    build(&format!("{OAUTH_STATE}=; Path=/auth/oauth; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), secure, true)
}

/// The link-binding cookie.
pub fn link(value: &str, now_ms: i64, secure: bool) -> HeaderValue {
    set_at(LINK, value, "/auth", OAUTH_MAX_AGE, now_ms, secure, true)
}

/// The binding of a sign-in waiting for its second step (as long as it waits).
pub fn mfa(value: &str, max_age: i64, now_ms: i64, secure: bool) -> HeaderValue {
    set_at(MFA, value, "/auth", max_age, now_ms, secure, true)
}

/// Clears the second step's binding (the sign-in finished).
pub fn clear_mfa(secure: bool) -> HeaderValue {
    build(&format!("{MFA}=; Path=/auth; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), secure, true)
}

/// The remembered-browser cookie (`days` days).
pub fn mfa_remember(value: &str, days: u32, now_ms: i64, secure: bool) -> HeaderValue {
    set_at(MFA_REMEMBER, value, "/auth", i64::from(days) * 86_400, now_ms, secure, true)
}

/// The invitation cookie.
pub fn invitation(token: &str, now_ms: i64, secure: bool) -> HeaderValue {
    set_at(INVITATION, token, "/auth", OAUTH_MAX_AGE, now_ms, secure, true)
}

/// A flash message (60 seconds, HttpOnly, never `Secure`).
pub fn flash(value: &str, now_ms: i64) -> HeaderValue {
    set_at(FLASH, value, "/", 60, now_ms, false, true)
}

/// Clears the flash cookie.
pub fn clear_flash() -> HeaderValue {
    clear(FLASH, false, true)
}

/// A new random value (32 bytes, base64url): CSRF tokens and nonces.
pub fn random_value() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn set_at(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    now_ms: i64,
    secure: bool,
    http_only: bool,
) -> HeaderValue {
    let expires = http_date(now_ms.saturating_add(max_age.saturating_mul(1000)));
    build(&format!("{name}={value}; Path={path}; Max-Age={max_age}; Expires={expires}"), secure, http_only)
}

/// `Set-Cookie` that deletes `name`.
pub fn clear(name: &str, secure: bool, http_only: bool) -> HeaderValue {
    build(&format!("{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), secure, http_only)
}

fn build(base: &str, secure: bool, http_only: bool) -> HeaderValue {
    let mut s = base.to_owned();
    if http_only {
        s.push_str("; HttpOnly");
    }
    if secure {
        s.push_str("; Secure");
    }
    s.push_str("; SameSite=Lax");
    // Values are base64url, JWTs or fixed strings: always valid header bytes.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A new CSRF token (32 random bytes, base64url) and the cookie that carries it.
pub fn new_csrf(now_ms: i64, secure: bool) -> (String, HeaderValue) {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let cookie = set(CSRF, &token, CSRF_MAX_AGE, now_ms, secure, false);
    (token, cookie)
}

/// The double-submit check (behavior.md §3): the `authara_csrf` cookie must be present and equal,
/// in constant time, to the `X-CSRF-Token` header, or else to `fallback` (a form field or query
/// parameter).
pub fn csrf_matches(headers: &HeaderMap, fallback: Option<&str>) -> bool {
    use subtle::ConstantTimeEq as _;
    let Some(cookie) = get(headers, CSRF).filter(|c| !c.is_empty()) else { return false };
    let header = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    match header.or(fallback.filter(|t| !t.is_empty())) {
        Some(token) => bool::from(token.as_bytes().ct_eq(cookie.as_bytes())),
        None => false,
    }
}

/// The same cookie with `Domain=<domain>` (`AUTHARA_COOKIE_DOMAIN`: the session shared with
/// apps on its subdomains), or unchanged without one.
pub fn scoped(cookie: HeaderValue, domain: Option<&str>) -> HeaderValue {
    let Some(domain) = domain else { return cookie };
    let mut s = cookie.to_str().unwrap_or_default().to_owned();
    s.push_str("; Domain=");
    s.push_str(domain);
    HeaderValue::from_str(&s).unwrap_or(cookie)
}

/// Appends `Set-Cookie` headers.
pub fn append(headers: &mut HeaderMap, cookies: impl IntoIterator<Item = HeaderValue>) {
    for c in cookies {
        headers.append(SET_COOKIE, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_match_the_contract() {
        let v = set(ACCESS, "tok", 600, 0, false, true);
        assert_eq!(
            v,
            "authara_access=tok; Path=/; Max-Age=600; Expires=Thu, 01 Jan 1970 00:10:00 GMT; HttpOnly; SameSite=Lax"
        );
        let v = set(CSRF, "c", CSRF_MAX_AGE, 0, true, false);
        assert!(v.to_str().unwrap().ends_with("; Secure; SameSite=Lax") && !v.to_str().unwrap().contains("HttpOnly"));
        assert_eq!(
            clear(REFRESH, false, true),
            "authara_refresh=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn reads_cookies() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; authara_csrf=xyz; b=2"));
        assert_eq!(get(&h, CSRF), Some("xyz"));
        assert_eq!(get(&h, "missing"), None);
    }
}
