//! Apps on other hosts (forward-auth, docs/forward-auth.md): the hosts an absolute `return_to`
//! may name, and the session cookies' domain.

use super::reader::Reader;
use super::server::PUBLIC_URL;
use super::{declare_vars, is_safe_return_path};

declare_vars! {
    /// Hosts an absolute `return_to` may name (comma-separated: `app.example.com` exactly, or
    /// `.example.com` for every subdomain of it), https only in prod; empty: paths on this site only.
    ALLOWED_RETURN_HOSTS = extra("AUTHARA_ALLOWED_RETURN_HOSTS", "");
    /// `Domain` of the session cookies (e.g. `.example.com`, which must contain `PUBLIC_URL`'s
    /// host): apps on its subdomains see the session (forward-auth). Empty: host-only cookies.
    COOKIE_DOMAIN = extra("AUTHARA_COOKIE_DOMAIN", "");
}

/// One entry of `AUTHARA_ALLOWED_RETURN_HOSTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `app.example.com`: that host.
    Exact(String),
    /// `.example.com` (kept with its dot): any host below it, not `example.com` itself.
    Suffix(String),
}

/// Where flows may return to besides paths on this site: absolute URLs on the listed hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnHosts {
    patterns: Vec<HostPattern>,
    /// Prod: `https://` only.
    https_only: bool,
}

impl ReturnHosts {
    /// A `return_to` value (decoded) that flows may go to: a safe path on this site, or an
    /// absolute URL on an allowed host.
    pub fn allows(&self, target: &str) -> bool {
        is_safe_return_path(target) || self.allows_absolute(target)
    }

    /// `scheme://host[:port][/path][?query]` with an allowed scheme and host: no user info, no
    /// backslash, whitespace or control character, a port of digits, and a path part that is
    /// safe as a path on this site would be (at most 2048 bytes in all).
    pub fn allows_absolute(&self, url: &str) -> bool {
        let Some((host, _port, _rest)) = split_absolute(url, self.https_only) else { return false };
        self.patterns.iter().any(|p| match p {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        })
    }

    /// The listed hosts as Content-Security-Policy sources (`app.example.com:*`,
    /// `*.example.com:*`, with `https://` in prod): a login form's redirect back to an app is a
    /// form action the pages' `form-action` must allow.
    pub fn csp_sources(&self) -> Vec<String> {
        let scheme = if self.https_only { "https://" } else { "" };
        self.patterns
            .iter()
            .map(|p| match p {
                HostPattern::Exact(h) => format!("{scheme}{h}:*"),
                HostPattern::Suffix(s) => format!("{scheme}*{s}:*"),
            })
            .collect()
    }

    /// No host is listed.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// `(host, port, path and query)` of an absolute http(s) URL that no browser reads another way;
/// `None` for anything else.
pub fn split_absolute(url: &str, https_only: bool) -> Option<(&str, Option<u16>, &str)> {
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return None;
    }
    let rest = match url.strip_prefix("https://") {
        Some(r) => r,
        None if !https_only => url.strip_prefix("http://")?,
        None => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, digits)) => {
            let port = digits.parse::<u16>().ok().filter(|n| *n > 0 && n.to_string().len() == digits.len())?;
            (h, Some(port))
        }
        None => (authority, None),
    };
    if !is_host_name(host) {
        return None;
    }
    let path_ok = tail.is_empty() || {
        let as_path = if tail.starts_with('/') { tail.to_owned() } else { format!("/{tail}") };
        is_safe_return_path(&as_path)
    };
    path_ok.then_some((host, port, tail))
}

/// A lowercase DNS name (or `localhost`): labels of `a-z`, `0-9` and inner `-`, at most 253
/// bytes. IP literals and anything with user info are not host names here.
pub fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// This area's part of [`super::Config`].
#[derive(Debug, Clone, Default)]
pub struct SitesConfig {
    /// `AUTHARA_ALLOWED_RETURN_HOSTS`.
    pub return_hosts: ReturnHosts,
    /// `AUTHARA_COOKIE_DOMAIN`, as given (`.example.com` or `example.com`).
    pub cookie_domain: Option<String>,
}

/// Reads this area; the cookie domain must contain `PUBLIC_URL`'s host, or browsers would drop
/// the cookies.
pub(super) fn build(r: &mut Reader<'_>, prod: bool, public_url: &str) -> SitesConfig {
    let mut patterns = Vec::new();
    for item in r.string(&ALLOWED_RETURN_HOSTS).split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let lower = item.to_ascii_lowercase();
        match lower.strip_prefix('.') {
            Some(base) if is_host_name(base) && base.contains('.') => patterns.push(HostPattern::Suffix(lower)),
            None if is_host_name(&lower) => patterns.push(HostPattern::Exact(lower)),
            _ => r.invalid(
                &ALLOWED_RETURN_HOSTS,
                format!("{item:?} is not a host name or a `.example.com` suffix (no scheme, port or path)"),
            ),
        }
    }
    let cookie_domain = r.raw(&COOKIE_DOMAIN).map(|d| d.to_ascii_lowercase());
    if let Some(domain) = &cookie_domain {
        let base = domain.strip_prefix('.').unwrap_or(domain);
        let public_host = split_absolute(public_url, false).map(|(h, _, _)| h);
        if !is_host_name(base) || !base.contains('.') {
            r.invalid(&COOKIE_DOMAIN, format!("{domain:?} is not a domain name with a dot, such as .example.com"));
        } else if let Some(host) = public_host
            && host != base
            && !host.ends_with(&format!(".{base}"))
        {
            r.invalid(&COOKIE_DOMAIN, format!("must contain the host of {} ({host})", PUBLIC_URL.name));
        }
    }
    SitesConfig { return_hosts: ReturnHosts { patterns, https_only: prod }, cookie_domain }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str], https_only: bool) -> ReturnHosts {
        let patterns = list
            .iter()
            .map(|h| match h.strip_prefix('.') {
                Some(_) => HostPattern::Suffix((*h).to_owned()),
                None => HostPattern::Exact((*h).to_owned()),
            })
            .collect();
        ReturnHosts { patterns, https_only }
    }

    #[test]
    fn listed_hosts_and_subdomains_of_suffixes_are_allowed() {
        let h = hosts(&["app.example.com", ".apps.example.com"], false);
        for ok in [
            "https://app.example.com",
            "https://app.example.com/",
            "http://app.example.com:8443/a/b?c=d#e",
            "https://grafana.apps.example.com/d/x?from=now-1h",
            "https://a.b.apps.example.com/?q=https://other.example/",
            "/relative/path",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let h = hosts(&["app.example.com", ".apps.example.com"], true);
        for bad in [
            "http://app.example.com/",
            "https://apps.example.com/",
            "https://evilapps.example.com/",
            "https://app.example.com.evil.com/",
            "https://evil.com/?https://app.example.com",
            "https://user@app.example.com/",
            "https://app.example.com@evil.com/",
            "https://app.example.com:99999/",
            "https://app.example.com:/",
            "https://APP.EXAMPLE.COM/",
            "https://app.example.com//evil.com",
            "https://app.example.com/%2f%2fevil.com",
            "https://app.example.com\\@evil.com",
            "https://app.example.com/\r\nx",
            "https://app.example.com /",
            "javascript://app.example.com/%0aalert(1)",
            "//app.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        assert!(!ReturnHosts::default().allows("https://app.example.com/"), "nothing listed, nothing allowed");
    }
}
