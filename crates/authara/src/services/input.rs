//! Input rules of behavior.md §5.3: emails, passwords, generated usernames.

use rand::Rng as _;

/// Trimmed and lowercased, as every handler normalizes emails before use.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A plain `local@domain` address: 1-254 bytes, no whitespace or control characters, no display
/// name, one `@`, a dot-atom local part and a domain of letters, digits, hyphens and dots.
pub fn is_valid_email(email: &str) -> bool {
    if email.is_empty() || email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|part| !part.is_empty() && part.chars().all(atext));
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// Why a new password is refused.
pub fn password_problem(password: &str) -> Option<&'static str> {
    if password.len() < 8 {
        Some("password must be at least 8 bytes")
    } else if password.len() > 128 {
        Some("password must be at most 128 bytes")
    } else if super::password::is_common(password) {
        Some("this password is too common; choose a less guessable one")
    } else {
        None
    }
}

/// The username generated at account creation: the email's local part reduced to
/// `[a-z0-9_-]`, at most 24 characters, then `-` and five random digits.
pub fn generate_username(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    let mut base = String::new();
    let mut in_run = false;
    for c in local.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            base.push(c);
            in_run = false;
        } else if !in_run {
            base.push('-');
            in_run = true;
        }
    }
    let trim = |s: &str| s.trim_matches(|c| c == '-' || c == '_').to_owned();
    let mut base = trim(&base);
    base.truncate(24);
    let mut base = trim(&base).to_ascii_lowercase();
    if base.is_empty() {
        base = "user".to_owned();
    }
    format!("{base}-{}", rand::thread_rng().gen_range(10_000..100_000))
}

/// Free text stored in bounded columns is cut at a character boundary (design.md decision 6).
pub fn truncate(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b", "jane.doe+tag@example.co.uk", "x_y@sub-domain.example"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a b@example.com",
            "Jane <jane@example.com>",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@exa_mple.com",
            "a@b@c",
            "a\r\n@example.com",
        ] {
            assert!(!is_valid_email(bad), "{bad:?}");
        }
        assert!(!is_valid_email(&format!("{}@example.com", "a".repeat(250))));
        assert_eq!(normalize_email("  Jane@Example.COM "), "jane@example.com");
    }

    #[test]
    fn passwords() {
        assert!(password_problem("short").is_some());
        assert!(password_problem(&"x".repeat(129)).is_some());
        assert!(password_problem("password123").is_some(), "common");
        assert!(password_problem("violet-harbor-tangent").is_none());
        // Bytes, not characters: 4 two-byte characters are 8 bytes.
        assert!(password_problem("éééé").is_none() || super::super::password::is_common("éééé"));
    }

    #[test]
    fn usernames() {
        let u = generate_username("Jane.Doe+news@example.com");
        assert!(u.starts_with("jane-doe-news-"), "{u}");
        assert_eq!(u.len(), "jane-doe-news-".len() + 5);
        assert!(generate_username("...@example.com").starts_with("user-"));
        let long = generate_username(&format!("{}@x", "a".repeat(40)));
        assert_eq!(long.len(), 24 + 6);
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
    }
}
