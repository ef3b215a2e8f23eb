//! Organizations: the boot-time mode and the management and invitation settings.
//!
//! The mode is read at boot (pinned in the store) and by accounts, organizations and the user
//! API; `public_management_enabled` opens the public organization routes; the invitation
//! settings are read by invitations and their email.

use std::time::Duration;

use super::declare_vars;
use super::reader::Reader;

declare_vars! {
    /// `personal`, `single` or `multi`: the organization behavior profile, pinned at first boot (changing it
    /// once users or organizations exist is unsupported).
    ORG_MODE = contract("AUTHARA_ORG_MODE", "single");
    /// Lets authenticated clients manage non-capacity organization data directly (creating organizations
    /// and invitations stays internal-only).
    PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED = contract("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED", "false");
    /// Invitation lifetime.
    ORGANIZATION_INVITATION_TTL = contract("AUTHARA_ORGANIZATION_INVITATION_TTL", "168h");
    /// Include the raw invitation code in the built-in invitation emails (for custom signup screens).
    INVITATION_EMAIL_INCLUDE_CODE = contract("AUTHARA_INVITATION_EMAIL_INCLUDE_CODE", "false");
}

/// `AUTHARA_ORG_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgMode {
    /// `personal`: organizations stay hidden and there are no invitations.
    Personal,
    /// `single`: each account works in one organization.
    Single,
    /// `multi`: users may belong to several organizations.
    Multi,
}

impl OrgMode {
    /// The configuration value naming this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgMode::Personal => "personal",
            OrgMode::Single => "single",
            OrgMode::Multi => "multi",
        }
    }
}

/// Organization management and invitations.
#[derive(Debug, Clone)]
pub struct OrganizationConfig {
    /// `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED`.
    pub public_management_enabled: bool,
    /// `AUTHARA_ORGANIZATION_INVITATION_TTL`.
    pub invitation_ttl: Duration,
    /// `AUTHARA_INVITATION_EMAIL_INCLUDE_CODE`.
    pub invitation_email_include_code: bool,
}

/// Reads this area: the mode and the organization settings.
pub(super) fn build(r: &mut Reader<'_>) -> (OrgMode, OrganizationConfig) {
    let org_mode = match r.string(&ORG_MODE).to_ascii_lowercase().as_str() {
        "personal" => OrgMode::Personal,
        "single" => OrgMode::Single,
        "multi" => OrgMode::Multi,
        other => {
            r.invalid(&ORG_MODE, format!("expected personal, single or multi, got {other:?}"));
            OrgMode::Single
        }
    };
    let organizations = OrganizationConfig {
        public_management_enabled: r.bool(&PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED),
        invitation_ttl: r.duration(&ORGANIZATION_INVITATION_TTL),
        invitation_email_include_code: r.bool(&INVITATION_EMAIL_INCLUDE_CODE),
    };
    (org_mode, organizations)
}
