//! Input rules of behavior.md §5.3, as types: a value of these types passed the rules.

use std::sync::LazyLock;

use rand::Rng as _;

/// Why an input was refused. The page layer turns these into UI copy; the API into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("a valid email address is required")]
    InvalidEmail,
    #[error("password must be at least 8 bytes")]
    PasswordTooShort,
    #[error("password must be at most 128 bytes")]
    PasswordTooLong,
    #[error("this password is too common; choose a less guessable one")]
    PasswordTooCommon,
    #[error("usernames are 3 to 30 letters, digits, _ or -")]
    InvalidUsername,
}

/// A syntactically valid email address, trimmed and lowercased (how every flow stores and
/// compares emails).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Normalizes (trim, lowercase) and validates: 1-254 bytes, no whitespace or control
    /// characters, no display name, one `@`, a dot-atom local part and a domain of letters,
    /// digits, hyphens and dots.
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let email = raw.trim().to_lowercase();
        if is_valid_email(&email) { Ok(Self(email)) } else { Err(InputError::InvalidEmail) }
    }

    /// An address read back from the store (already normalized when it was written).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(self.0.as_str(), |(l, _)| l)
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_valid_email(email: &str) -> bool {
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

/// A password acceptable as a new password: 8-128 bytes, not one of the 10,000 most common.
/// Never trimmed. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        if raw.len() < 8 {
            Err(InputError::PasswordTooShort)
        } else if raw.len() > 128 {
            Err(InputError::PasswordTooLong)
        } else if is_common_password(raw) {
            Err(InputError::PasswordTooCommon)
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

/// A username: 3-30 bytes of `[A-Za-z0-9_-]` (surrounding whitespace trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let u = raw.trim();
        if (3..=30).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            Ok(Self(u.to_owned()))
        } else {
            Err(InputError::InvalidUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that change how the text around them reads without showing themselves: controls,
/// the bidirectional marks, embeddings, overrides and isolates (a name ending in U+202E prints
/// whatever follows it backwards), zero-width and other invisible format characters, line and
/// paragraph separators, fillers that render as nothing, and tag characters. Names that others
/// read (organizations, passkeys) may not hold them.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Whether `s` holds a character of [`is_hidden`], with one allowance: a zero-width joiner or
/// non-joiner (U+200D, U+200C) between two visible characters, as emoji sequences and Persian or
/// Indic words need them.
pub fn has_hidden_characters(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let visible = |i: Option<usize>| i.and_then(|i| chars.get(i)).is_some_and(|c| !is_hidden(*c) && !c.is_whitespace());
    chars.iter().enumerate().any(|(i, c)| {
        is_hidden(*c) && !(matches!(c, '\u{200C}' | '\u{200D}') && visible(i.checked_sub(1)) && visible(Some(i + 1)))
    })
}

/// `s` without the characters of [`is_hidden`] (names stored before they were refused, when
/// they go into an email).
pub fn without_hidden(s: &str) -> std::borrow::Cow<'_, str> {
    if has_hidden_characters(s) {
        std::borrow::Cow::Owned(s.chars().filter(|c| !is_hidden(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

static COMMON: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// One of the 10,000 most common passwords (case-insensitive).
pub fn is_common_password(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

/// The username generated at account creation: the email's local part reduced to
/// `[a-z0-9_-]`, at most 24 characters, then `-` and five random digits.
pub fn generate_username(email: &EmailAddress) -> String {
    let mut base = String::new();
    let mut in_run = false;
    for c in email.local_part().chars() {
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
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
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
            assert_eq!(EmailAddress::parse(bad), Err(InputError::InvalidEmail), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
        assert_eq!(EmailAddress::parse("  Jane@Example.COM ").unwrap().as_str(), "jane@example.com");
    }

    #[test]
    fn passwords() {
        assert_eq!(NewPassword::parse("short"), Err(InputError::PasswordTooShort));
        assert_eq!(NewPassword::parse(&"x".repeat(129)), Err(InputError::PasswordTooLong));
        assert_eq!(NewPassword::parse("password123"), Err(InputError::PasswordTooCommon));
        assert_eq!(NewPassword::parse("PASSWORD1"), Err(InputError::PasswordTooCommon));
        assert!(NewPassword::parse("violet-harbor-tangent").is_ok());
        assert_eq!(NewPassword::parse("  spaced out password  ").unwrap().expose(), "  spaced out password  ");
        assert!(!format!("{:?}", NewPassword::parse("violet-harbor-tangent").unwrap()).contains("violet"));
        assert_eq!(COMMON.len(), 10_000);
    }

    #[test]
    fn usernames() {
        let u = generate_username(&EmailAddress::parse("Jane.Doe+news@example.com").unwrap());
        assert!(u.starts_with("jane-doe-news-"), "{u}");
        assert_eq!(u.len(), "jane-doe-news-".len() + 5);
        assert!(generate_username(&EmailAddress::parse("x@example.com").unwrap()).starts_with("x-"));
        let long = generate_username(&EmailAddress::parse(&format!("{}@x", "a".repeat(40))).unwrap());
        assert_eq!(long.len(), 24 + 6);
        assert!(Username::parse("ada_l-1").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse(&"x".repeat(31)).is_err());
    }

    #[test]
    fn hidden_characters_are_found_and_joiners_between_letters_allowed() {
        for hidden in [
            "Acme\u{202E}gnp.exe",
            "\u{202A}Acme",
            "Acme\u{2066}x\u{2069}",
            "Ac\u{200B}me",
            "Acme\u{200F}",
            "Acme\u{FEFF}",
            "Acme\u{2028}Inc",
            "Acme\u{E0041}",
            "Acme\u{00AD}",
            "\u{200D}Acme",
            "Acme \u{200C}Inc",
            "Acme\u{7}",
        ] {
            assert!(has_hidden_characters(hidden), "{hidden:?}");
            assert!(!has_hidden_characters(&without_hidden(hidden)), "{hidden:?} stripped");
        }
        for shown in
            ["Acme Inc", "Café Ünïcode", "מכבי", "میخواهم", "می\u{200C}خواهم", "👨\u{200D}👩\u{200D}👧", "❤\u{FE0F}"]
        {
            assert!(!has_hidden_characters(shown), "{shown:?}");
            assert_eq!(without_hidden(shown), shown);
        }
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
    }
}
