//! Closed sets of values, each with one string form for the database and the wire, parsed once.

/// A stored or submitted value outside its closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

closed_set!(
    /// Platform roles (`user_platform_roles.role`); tokens carry them as `authara:<role>`.
    PlatformRole, "platform role" { Admin => "admin", Auditor => "auditor", Monitor => "monitor" }
);

impl PlatformRole {
    /// The namespaced form carried in the `roles` claim.
    pub fn claim(self) -> &'static str {
        match self {
            PlatformRole::Admin => "authara:admin",
            PlatformRole::Auditor => "authara:auditor",
            PlatformRole::Monitor => "authara:monitor",
        }
    }

    /// Parses the claim form (`authara:admin`).
    pub fn from_claim(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.claim() == s)
    }
}

closed_set!(
    /// A member's role in an organization.
    OrgRole, "organization role" { Owner => "owner", Admin => "admin", Member => "member" }
);

impl OrgRole {
    /// Owners and admins manage an organization (behavior.md §9.5).
    pub fn is_manager(self) -> bool {
        matches!(self, OrgRole::Owner | OrgRole::Admin)
    }
}

closed_set!(
    /// Kinds of organization.
    OrgKind, "organization kind" { Personal => "personal", Team => "team" }
);

closed_set!(
    /// Where an invitation stands, computed when it is read: accepted, else revoked, else expired
    /// (its expiry has passed), else pending (behavior.md §9.3).
    InvitationStatus, "invitation status" {
        Pending => "pending",
        Accepted => "accepted",
        Revoked => "revoked",
        Expired => "expired",
    }
);

impl InvitationStatus {
    /// The status of an invitation with these times at `now_ms`.
    pub fn at(accepted_at_ms: Option<i64>, revoked_at_ms: Option<i64>, expires_at_ms: i64, now_ms: i64) -> Self {
        if accepted_at_ms.is_some() {
            InvitationStatus::Accepted
        } else if revoked_at_ms.is_some() {
            InvitationStatus::Revoked
        } else if expires_at_ms <= now_ms {
            InvitationStatus::Expired
        } else {
            InvitationStatus::Pending
        }
    }
}

closed_set!(
    /// Token audiences.
    Audience, "audience" { App => "app", Admin => "admin" }
);

impl Audience {
    /// Platform roles allowed to hold a session of this audience: any of the three for `admin`
    /// (behavior.md §1.9), anyone for `app`.
    pub fn permits(self, roles: &[PlatformRole]) -> bool {
        match self {
            Audience::App => true,
            Audience::Admin => !roles.is_empty(),
        }
    }
}

closed_set!(
    /// What an email challenge verifies.
    ChallengePurpose, "challenge purpose" {
        Signup => "signup",
        PasswordReset => "password_reset",
        EmailChange => "email_change",
    }
);

impl ChallengePurpose {
    /// The form used in page URLs (`/auth/verify-challenge/{slug}`).
    pub fn slug(self) -> &'static str {
        match self {
            ChallengePurpose::Signup => "signup",
            ChallengePurpose::PasswordReset => "password-reset",
            ChallengePurpose::EmailChange => "email-change",
        }
    }

    /// Parses a page slug, case-insensitively.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.slug().eq_ignore_ascii_case(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_round_trip() {
        for r in PlatformRole::ALL {
            assert_eq!(PlatformRole::parse(r.as_str()), Ok(*r));
            assert_eq!(PlatformRole::from_claim(r.claim()), Some(*r));
        }
        for p in ChallengePurpose::ALL {
            assert_eq!(ChallengePurpose::from_slug(p.slug()), Some(*p));
        }
        assert!(OrgRole::parse("superuser").is_err());
        assert_eq!(ChallengePurpose::from_slug("Password-Reset"), Some(ChallengePurpose::PasswordReset));
    }

    #[test]
    fn invitation_status_precedence() {
        use InvitationStatus::*;
        assert_eq!(InvitationStatus::at(Some(1), None, 0, 10), Accepted, "accepted wins over expiry");
        assert_eq!(InvitationStatus::at(None, Some(1), 0, 10), Revoked, "revoked wins over expiry");
        assert_eq!(InvitationStatus::at(None, None, 10, 10), Expired, "expires_at <= now is expired");
        assert_eq!(InvitationStatus::at(None, None, 11, 10), Pending);
    }

    #[test]
    fn admin_audience_needs_a_platform_role() {
        assert!(Audience::App.permits(&[]));
        assert!(!Audience::Admin.permits(&[]));
        assert!(Audience::Admin.permits(&[PlatformRole::Monitor]));
    }
}
