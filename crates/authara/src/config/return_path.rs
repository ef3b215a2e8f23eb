//! The safety rule for return paths (`return_to`, `AUTHARA_DEFAULT_RETURN_TO`): a path on this
//! site that no browser resolves to another origin.

/// A decoded `return_to` value is safe when it is a path on this site: one leading `/`, no `//`
/// anywhere in the path part (before any `?` or `#`), not even after resolving `.` and `..`
/// segments the way browsers do (`/a/..//evil.com` is `//evil.com`), no backslash, whitespace or
/// control character anywhere, no encoded slash, backslash, tab or line break that a later
/// decoding could turn into one, and at most 2048 bytes.
pub fn is_safe_return_path(p: &str) -> bool {
    let lower = p.to_ascii_lowercase();
    let path = p.split(['?', '#']).next().unwrap_or_default();
    !p.is_empty()
        && p.len() <= 2048
        && p.starts_with('/')
        && !path.contains("//")
        && !remove_dot_segments(path).contains("//")
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
        && !["%2f", "%5c", "%09", "%0a", "%0d"].iter().any(|e| lower.contains(e))
}

/// Resolves the `.` and `..` segments of an absolute path (RFC 3986 §5.2.4), counting `%2e` as a
/// dot as browsers do.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            "." | "%2e" => {}
            ".." | ".%2e" | "%2e." | "%2e%2e" => {
                out.pop();
            }
            _ => {
                out.push(segment);
                continue;
            }
        }
        // A dot segment at the end leaves the path ending with `/`.
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_resolved_like_a_browser() {
        assert_eq!(remove_dot_segments("/a/b/../c"), "/a/c");
        assert_eq!(remove_dot_segments("/a/./b"), "/a/b");
        assert_eq!(remove_dot_segments("/../x"), "/x");
        assert_eq!(remove_dot_segments("/a/b/.."), "/a/");
        assert_eq!(remove_dot_segments("/a/%2E%2e/b"), "/b");
        assert_eq!(remove_dot_segments("/"), "/");
    }

    #[test]
    fn paths_on_this_site_are_safe() {
        for ok in ["/", "/after", "/a/b/../c", "/a/./b", "/cb?next=https://x.example/y", "/p#frag//x", "/..", "/a/"] {
            assert!(is_safe_return_path(ok), "{ok:?}");
        }
    }

    #[test]
    fn paths_that_resolve_to_another_origin_are_not() {
        for bad in ["/.//evil.com", "/a/..//evil.com", "/a//b", "//evil.com", "/x/%2e%2e//evil.com", "/a/b//"] {
            assert!(!is_safe_return_path(bad), "{bad:?}");
        }
        assert!(!is_safe_return_path(&format!("/{}", "a".repeat(2048))));
    }
}
