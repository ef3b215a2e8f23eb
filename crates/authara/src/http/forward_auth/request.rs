//! The request a proxy asks about: read from its forwarded headers, only when the proxy is a
//! trusted one, and never guessed. Traefik's ForwardAuth and Caddy's `forward_auth` send
//! `X-Forwarded-Method`, `-Proto`, `-Host` and `-Uri`; the documented nginx configuration sets
//! `X-Original-URL` and `X-Original-Method` (read in `mode=nginx` only, where nginx would pass a
//! client's own `X-Forwarded-*` through untouched).

use std::borrow::Cow;
use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::IpNet;
use crate::config::sites::is_host_name;

/// The original request: its method and URL, read in place from the proxy's headers (the
/// success path copies nothing; the URL is written out only for a redirect to the login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original<'a> {
    /// An HTTP method token, as sent (compare without regard to case).
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host[:port]`, lowercase.
    pub authority: Cow<'a, str>,
    /// The path and query as the client sent them.
    pub uri: &'a str,
}

impl Original<'_> {
    /// GET or HEAD: a redirect may repeat it (302); other methods get a 303.
    pub fn is_safe_method(&self) -> bool {
        self.method.eq_ignore_ascii_case("GET") || self.method.eq_ignore_ascii_case("HEAD")
    }

    /// The full URL: `scheme://host[:port]/path?query`.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.uri)
    }
}

/// Why the original request is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// The peer is not one of `AUTHARA_TRUSTED_PROXIES` (loopback when unset).
    Untrusted,
    /// A header is missing, repeated or malformed (its name).
    Bad(&'static str),
}

/// Whether `peer` may tell us about the original request.
pub fn trusted(peer: Option<IpAddr>, proxies: &[IpNet]) -> bool {
    match peer {
        None => false,
        Some(ip) if proxies.is_empty() => ip.is_loopback() || ip.to_canonical().is_loopback(),
        Some(ip) => proxies.iter().any(|n| n.contains(ip)),
    }
}

/// The one value of header `name`: present once, valid text, not blank.
fn single<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ForwardError> {
    let mut all = headers.get_all(name).iter();
    let (Some(v), None) = (all.next(), all.next()) else { return Err(ForwardError::Bad(name)) };
    v.to_str().ok().map(str::trim).filter(|s| !s.is_empty()).ok_or(ForwardError::Bad(name))
}

/// An HTTP method token as proxies forward it: letters only.
fn method<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ForwardError> {
    let m = single(headers, name)?;
    let ok = m.len() <= 16 && m.bytes().all(|b| b.is_ascii_alphabetic());
    if ok { Ok(m) } else { Err(ForwardError::Bad(name)) }
}

/// `http` or `https`, whatever the case.
fn scheme(raw: &str) -> Option<&'static str> {
    if raw.eq_ignore_ascii_case("https") {
        Some("https")
    } else if raw.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// A request target as sent: `/`, then visible ASCII only, at most 4096 bytes.
fn is_request_uri(uri: &str) -> bool {
    uri.starts_with('/') && uri.len() <= 4096 && uri.bytes().all(|b| b.is_ascii_graphic())
}

/// `host[:port]`: a host name and an optional port, lowercased (copied only if it was not).
fn authority(raw: &str) -> Option<Cow<'_, str>> {
    let lower = if raw.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(raw.to_ascii_lowercase())
    } else {
        Cow::Borrowed(raw)
    };
    let host = match lower.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok_and(|n| n > 0) && !port.starts_with(['0', '+']) => h,
        Some(_) => return None,
        None => &lower,
    };
    is_host_name(host).then_some(lower)
}

/// The original request of a trusted proxy's ask.
pub fn original<'a>(
    headers: &'a HeaderMap,
    peer: Option<IpAddr>,
    proxies: &[IpNet],
    nginx: bool,
) -> Result<Original<'a>, ForwardError> {
    if !trusted(peer, proxies) {
        return Err(ForwardError::Untrusted);
    }
    if nginx {
        let method = method(headers, "x-original-method")?;
        let url = single(headers, "x-original-url")?;
        let bad = ForwardError::Bad("x-original-url");
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => (scheme(s).ok_or(bad)?, rest),
            None => return Err(bad),
        };
        let (auth, uri) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let uri = if uri.is_empty() { "/" } else { uri };
        let authority = authority(auth).ok_or(bad)?;
        if !is_request_uri(uri) {
            return Err(bad);
        }
        return Ok(Original { method, scheme, authority, uri });
    }
    let method = method(headers, "x-forwarded-method")?;
    let scheme = scheme(single(headers, "x-forwarded-proto")?).ok_or(ForwardError::Bad("x-forwarded-proto"))?;
    let authority = authority(single(headers, "x-forwarded-host")?).ok_or(ForwardError::Bad("x-forwarded-host"))?;
    let uri = single(headers, "x-forwarded-uri")?;
    if !is_request_uri(uri) {
        return Err(ForwardError::Bad("x-forwarded-uri"));
    }
    Ok(Original { method, scheme, authority, uri })
}

/// A browser navigation (an address typed, a link, a form), as opposed to a script's `fetch`,
/// XHR or HTMX request, or an API client: `Sec-Fetch-Mode: navigate`, or an `Accept` naming
/// `text/html` without `X-Requested-With`; never an HTMX request.
pub fn is_navigation(headers: &HeaderMap) -> bool {
    if headers.get("hx-request").is_some_and(|v| v == "true") {
        return false;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode == "navigate";
    }
    let html = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    html && headers.get("x-requested-with").is_none()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const LOOPBACK: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    fn traefik(host: &str, uri: &str) -> HeaderMap {
        headers(&[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", host),
            ("x-forwarded-uri", uri),
        ])
    }

    #[test]
    fn forwarded_headers_give_the_original_url() {
        let h = traefik("App.Example.com:8443", "/d/x?y=1");
        let o = original(&h, LOOPBACK, &[], false).unwrap();
        assert_eq!(o.url(), "https://app.example.com:8443/d/x?y=1");
        assert_eq!((o.method, &*o.authority, o.is_safe_method()), ("GET", "app.example.com:8443", true));
        let n = headers(&[("x-original-method", "post"), ("x-original-url", "HTTP://app.example.com/p?q")]);
        let o = original(&n, LOOPBACK, &[], true).unwrap();
        assert_eq!((o.url().as_str(), o.method, o.is_safe_method()), ("http://app.example.com/p?q", "post", false));
        let head = headers(&[("x-original-method", "head"), ("x-original-url", "https://a.example")]);
        let o = original(&head, LOOPBACK, &[], true).unwrap();
        assert_eq!((o.url().as_str(), o.is_safe_method()), ("https://a.example/", true));
    }

    #[test]
    fn only_trusted_peers_are_heard() {
        let elsewhere = Some("192.0.2.1".parse().unwrap());
        assert_eq!(original(&traefik("a.example", "/"), elsewhere, &[], false), Err(ForwardError::Untrusted));
        assert_eq!(original(&traefik("a.example", "/"), None, &[], false), Err(ForwardError::Untrusted));
        let nets = [IpNet::parse("192.0.2.0/24").unwrap()];
        assert!(original(&traefik("a.example", "/"), elsewhere, &nets, false).is_ok());
        assert_eq!(original(&traefik("a.example", "/"), LOOPBACK, &nets, false), Err(ForwardError::Untrusted));
    }

    #[test]
    fn missing_repeated_or_malformed_headers_are_refused() {
        let bad = |h: HeaderMap, nginx| original(&h, LOOPBACK, &[], nginx).unwrap_err();
        assert_eq!(bad(traefik("a.example", "no-slash"), false), ForwardError::Bad("x-forwarded-uri"));
        assert_eq!(bad(traefik("a.example", "/a b"), false), ForwardError::Bad("x-forwarded-uri"));
        assert_eq!(bad(traefik("a.example, b.example", "/"), false), ForwardError::Bad("x-forwarded-host"));
        assert_eq!(bad(traefik("user@a.example", "/"), false), ForwardError::Bad("x-forwarded-host"));
        for host in ["a.example:0", "a.example:080", "a.example:+80", "a.example:65536", "a.example:"] {
            assert_eq!(bad(traefik(host, "/"), false), ForwardError::Bad("x-forwarded-host"), "{host}");
        }
        let mut twice = traefik("a.example", "/");
        twice.append("x-forwarded-uri", HeaderValue::from_static("/admin"));
        assert_eq!(bad(twice, false), ForwardError::Bad("x-forwarded-uri"));
        let mut no_method = traefik("a.example", "/");
        no_method.remove("x-forwarded-method");
        assert_eq!(bad(no_method, false), ForwardError::Bad("x-forwarded-method"));
        let mut proto = traefik("a.example", "/");
        proto.insert("x-forwarded-proto", HeaderValue::from_static("gopher"));
        assert_eq!(bad(proto, false), ForwardError::Bad("x-forwarded-proto"));
        // nginx mode reads only its own headers, and wants an absolute URL.
        assert_eq!(bad(traefik("a.example", "/"), true), ForwardError::Bad("x-original-method"));
        for url in ["/relative", "ftp://a.example/", "http://a.example\\@evil/", "http://a.example/%0a x", "http:///x"]
        {
            let h = headers(&[("x-original-method", "GET"), ("x-original-url", url)]);
            assert_eq!(bad(h, true), ForwardError::Bad("x-original-url"), "{url}");
        }
    }

    #[test]
    fn navigations_are_told_from_scripts() {
        assert!(is_navigation(&headers(&[("sec-fetch-mode", "navigate")])));
        assert!(is_navigation(&headers(&[("accept", "text/html,application/xhtml+xml")])));
        assert!(!is_navigation(&headers(&[("sec-fetch-mode", "cors"), ("accept", "text/html")])));
        assert!(!is_navigation(&headers(&[("accept", "text/html"), ("x-requested-with", "XMLHttpRequest")])));
        assert!(!is_navigation(&headers(&[("accept", "text/html"), ("hx-request", "true")])));
        assert!(!is_navigation(&headers(&[("accept", "application/json")])));
        assert!(!is_navigation(&HeaderMap::new()));
    }
}
