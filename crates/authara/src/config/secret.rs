//! Secret values: never printed by `Debug`, compared in constant time.

use subtle::ConstantTimeEq;

/// A secret string (passwords, API tokens). `Debug` prints `[redacted]`; there is no `Display`.
#[derive(Clone, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, at the one place that needs it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality (length is not hidden).
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secret bytes (signing keys). `Debug` prints only the length.
#[derive(Clone)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// The bytes, at the one place that needs them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[redacted {} bytes]", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let s = SecretString::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let b = SecretBytes::new(b"key-material".to_vec());
        assert!(!format!("{b:?}").contains("key"));
        assert!(s.ct_eq("hunter2-very-secret"));
        assert!(!s.ct_eq("hunter2"));
    }
}
