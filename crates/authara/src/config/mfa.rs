//! Two-step verification: who must have a second factor, and how long a browser is remembered.

use super::declare_vars;
use super::reader::Reader;

declare_vars! {
    /// `off`: a second factor is each user's choice; `admins`: the admin audience needs one, used in the session (administrators without one enrol at their next sign-in to the console); `all`: every user enrols at their next sign-in.
    REQUIRED = extra("AUTHARA_MFA_REQUIRED", "off");
    /// Days a browser whose user ticked "remember this browser" skips the second step (a signed cookie bound to the user, their password and their factor: changing either ends it); 0 turns the choice off.
    REMEMBER_DEVICE_DAYS = extra("AUTHARA_MFA_REMEMBER_DEVICE_DAYS", "30");
}

/// `AUTHARA_MFA_REQUIRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaPolicy {
    Off,
    Admins,
    All,
}

/// `AUTHARA_MFA_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaConfig {
    pub required: MfaPolicy,
    /// `AUTHARA_MFA_REMEMBER_DEVICE_DAYS`; 0: off.
    pub remember_days: u32,
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>) -> MfaConfig {
    let raw = r.string(&REQUIRED);
    let required = match raw.to_ascii_lowercase().as_str() {
        "off" => MfaPolicy::Off,
        "admins" => MfaPolicy::Admins,
        "all" => MfaPolicy::All,
        _ => {
            r.invalid(&REQUIRED, "expected off, admins or all".to_owned());
            MfaPolicy::Off
        }
    };
    let remember_days = r.non_negative(&REMEMBER_DEVICE_DAYS);
    r.ensure(remember_days <= 365, &REMEMBER_DEVICE_DAYS, "must be at most 365");
    MfaConfig { required, remember_days }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let vars = std::collections::HashMap::new();
        let mut r = Reader::new(&vars);
        assert_eq!(build(&mut r), MfaConfig { required: MfaPolicy::Off, remember_days: 30 });
        assert!(r.errors.is_empty());
        let vars: std::collections::HashMap<String, String> =
            [("AUTHARA_MFA_REQUIRED", "ALL"), ("AUTHARA_MFA_REMEMBER_DEVICE_DAYS", "0")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let mut r = Reader::new(&vars);
        assert_eq!(build(&mut r), MfaConfig { required: MfaPolicy::All, remember_days: 0 });
        let vars: std::collections::HashMap<String, String> =
            [("AUTHARA_MFA_REQUIRED", "sometimes")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let mut r = Reader::new(&vars);
        build(&mut r);
        assert_eq!(r.errors.len(), 1);
    }
}
