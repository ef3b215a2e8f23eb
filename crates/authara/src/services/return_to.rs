//! `return_to`: where a flow lands afterwards. Only a safe same-site path is accepted
//! (behavior.md §1.8, stricter): anything else falls back to `AUTHARA_DEFAULT_RETURN_TO`.

/// Percent-decodes once; `None` on malformed escapes or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A decoded `return_to` value is safe when it is a path on this site; the rule lives in config
/// (`AUTHARA_DEFAULT_RETURN_TO` obeys it too): see [`crate::config::is_safe_return_path`].
pub use crate::config::is_safe_return_path as is_safe;

/// The `return_to` of a raw query string, if present and safe.
pub fn from_query(query: Option<&str>) -> Option<String> {
    from_query_within(query, &crate::config::ReturnHosts::default())
}

/// The `return_to` of a raw query string, if present and safe, or an absolute URL on one of the
/// `AUTHARA_ALLOWED_RETURN_HOSTS` (apps on other hosts, docs/forward-auth.md).
pub fn from_query_within(query: Option<&str>, hosts: &crate::config::ReturnHosts) -> Option<String> {
    let raw = query?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == "return_to")?.1;
    let decoded = percent_decode(raw)?;
    hosts.allows(&decoded).then_some(decoded)
}

/// Query-encodes a value for building `?return_to=` URLs.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_paths_on_this_site() {
        for ok in ["/", "/after", "/private?tab=2&x=%20y", "/auth/account", "/a/b/../c", "/cb?next=https://x.example/"]
        {
            assert_eq!(from_query(Some(&format!("return_to={}", encode(ok)))).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_that_leaves_the_site() {
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https://evil.com",
            "http:evil.com",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "evil.com",
            " /after",
            "/after\r\nSet-Cookie: x=1",
            "/\t/evil.com",
            "/%2F/evil.com",
            "/%2f/evil.com",
            "/%5Cevil.com",
            "/.//evil.com",
            "/a/..//evil.com",
            "/a//b",
            "",
        ] {
            assert_eq!(from_query(Some(&format!("return_to={}", encode(bad)))), None, "{bad:?}");
        }
        // Raw (not re-encoded) attacker queries, single and double encoded.
        for raw in [
            "return_to=%2F%2Fevil.com",
            "return_to=%2f%2fevil.com",
            "return_to=%252F%252Fevil.com",
            "return_to=/%252F/evil.com",
            "return_to=%5C%5Cevil.com",
            "return_to=/%0d%0aLocation:%20//evil.com",
            "return_to=%E0%A4%A",
            "return_to=https%3A%2F%2Fevil.com",
        ] {
            assert_eq!(from_query(Some(raw)), None, "{raw}");
        }
        assert_eq!(from_query(None), None);
    }
}
