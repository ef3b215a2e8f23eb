//! The claims of an authara access token, in typed form.

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// Which kind of token a verifier accepts: the `aud` claim.
///
/// authara mints `app` tokens for applications and `admin` tokens for its admin console and
/// for applications' own `/admin…` pages. A verifier accepts one audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Audience {
    /// `app`: the audience of ordinary sign-ins.
    #[default]
    App,
    /// `admin`: tokens minted for platform administrators.
    Admin,
}

impl Audience {
    /// The claim's text (`app` or `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::App => "app",
            Audience::Admin => "admin",
        }
    }
}

/// The user's role in the token's active organization (`org_role`).
///
/// Roles are ordered: `Member < Admin < Owner`, so "at least admin" reads
/// `role >= OrgRole::Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// `member`
    Member,
    /// `admin`
    Admin,
    /// `owner`: the organization's creator.
    Owner,
}

impl OrgRole {
    /// Parses the claim's text; `None` for anything but `owner`, `admin` or `member`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(OrgRole::Owner),
            "admin" => Some(OrgRole::Admin),
            "member" => Some(OrgRole::Member),
            _ => None,
        }
    }

    /// The claim's text.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Owner => "owner",
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
        }
    }
}

/// A platform role (the `roles` claim), granted with `authara admin grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PlatformRole {
    /// `authara:admin`
    Admin,
    /// `authara:auditor`
    Auditor,
    /// `authara:monitor`
    Monitor,
}

impl PlatformRole {
    /// The claim's text, namespaced (`authara:admin`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformRole::Admin => "authara:admin",
            PlatformRole::Auditor => "authara:auditor",
            PlatformRole::Monitor => "authara:monitor",
        }
    }

    /// Parses a namespaced role; `None` for a role this version does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authara:admin" => Some(PlatformRole::Admin),
            "authara:auditor" => Some(PlatformRole::Auditor),
            "authara:monitor" => Some(PlatformRole::Monitor),
            _ => None,
        }
    }
}

/// The verified claims of an access token.
///
/// Values only come out of a [`Verifier`](crate::Verifier): holding a `Claims` means the
/// signature, issuer, audience and expiry were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// `sub`: the user's id.
    pub sub: Uuid,
    /// `sid`: the session's id (one per sign-in).
    pub sid: Uuid,
    /// `org_id`: the session's active organization.
    pub org_id: Uuid,
    /// `org_role`: the user's role in that organization when the token was minted.
    pub org_role: OrgRole,
    /// `roles`: the user's platform roles, namespaced (`authara:admin`, …); empty when none.
    /// Roles this version does not know are kept as text.
    pub roles: Vec<String>,
    /// `aud`: the audiences the token was minted for.
    pub aud: Vec<String>,
    /// `iss`: the issuer (`AUTHARA_JWT_ISSUER`).
    pub iss: String,
    /// `exp`: expiry, unix seconds.
    pub exp: i64,
    /// `iat`: issue time, unix seconds.
    pub iat: i64,
    /// `amr`: how the user authenticated (for example `pwd`, `otp`), when the server says.
    pub amr: Option<Vec<String>>,
    /// `auth_time`: when the user last authenticated, unix seconds, when the server says.
    pub auth_time: Option<i64>,
}

impl Claims {
    /// Whether the token carries the platform role.
    pub fn has_role(&self, role: PlatformRole) -> bool {
        self.roles.iter().any(|r| r == role.as_str())
    }

    /// The platform roles this version knows (unknown ones are skipped).
    pub fn platform_roles(&self) -> impl Iterator<Item = PlatformRole> + '_ {
        self.roles.iter().filter_map(|r| PlatformRole::parse(r))
    }

    /// Whether `amr` lists the method (for example `otp` after a two-step sign-in).
    pub fn authenticated_with(&self, method: &str) -> bool {
        self.amr.iter().flatten().any(|m| m == method)
    }
}

/// The claims as they arrive, before the checks that make them [`Claims`].
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    sub: Option<String>,
    sid: Option<Uuid>,
    org_id: Option<Uuid>,
    org_role: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Vec<String>,
    iss: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    #[serde(default)]
    amr: Option<Vec<String>>,
    #[serde(default)]
    auth_time: Option<i64>,
}

impl RawClaims {
    /// Checks what jsonwebtoken's `Validation` leaves to us: the ids, the organization role,
    /// the namespaced roles, and that `exp` and `iat` are there. The issuer and audience were
    /// checked by it; the expiry is checked by the verifier, against its clock, on every call.
    pub(crate) fn check(self) -> Option<Claims> {
        let iss = self.iss?;
        let sub = self.sub.as_deref().and_then(|s| Uuid::parse_str(s).ok())?;
        let (sid, org_id) = (self.sid?, self.org_id?);
        let org_role = self.org_role.as_deref().and_then(|r| OrgRole::parse(r.trim()))?;
        let roles = self.roles.unwrap_or_default();
        // As the Go SDK: every platform role is namespaced.
        if sub.is_nil() || sid.is_nil() || org_id.is_nil() || roles.iter().any(|r| !r.starts_with("authara:")) {
            return None;
        }
        Some(Claims {
            sub,
            sid,
            org_id,
            org_role,
            roles,
            aud: self.aud,
            iss,
            exp: self.exp?,
            iat: self.iat?,
            amr: self.amr,
            auth_time: self.auth_time,
        })
    }
}

/// `aud` is an array in authara's tokens; RFC 7519 also allows a single string.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(extra: serde_json::Value) -> RawClaims {
        let mut v = serde_json::json!({
            "sid": Uuid::new_v4(), "org_id": Uuid::new_v4(), "org_role": "admin", "roles": null,
            "iss": "authara", "sub": Uuid::new_v4(), "aud": ["app"], "exp": 2000, "iat": 1400
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_servers_claims_become_typed_claims() {
        let c = raw(serde_json::json!({"roles": ["authara:admin", "authara:future"]})).check().unwrap();
        assert_eq!(c.org_role, OrgRole::Admin);
        assert!(c.has_role(PlatformRole::Admin));
        assert!(!c.has_role(PlatformRole::Auditor));
        assert_eq!(c.platform_roles().collect::<Vec<_>>(), vec![PlatformRole::Admin], "unknown roles are kept as text");
        assert_eq!(c.roles.len(), 2);
        assert_eq!((c.amr, c.auth_time), (None, None));
        let c = raw(serde_json::json!({"roles": null})).check().unwrap();
        assert!(c.roles.is_empty(), "null roles read as none");
    }

    #[test]
    fn two_step_claims_are_read_when_present() {
        let c = raw(serde_json::json!({"amr": ["pwd", "otp"], "auth_time": 1399})).check().unwrap();
        assert!(c.authenticated_with("otp"));
        assert!(!c.authenticated_with("hwk"));
        assert_eq!(c.auth_time, Some(1399));
    }

    #[test]
    fn claims_that_are_not_ours_are_refused() {
        let check = |extra| raw(extra).check();
        assert_eq!(
            check(serde_json::json!({"aud": "app"})).map(|c| c.aud),
            Some(vec!["app".to_owned()]),
            "a single-string aud"
        );
        for bad in [
            serde_json::json!({"iss": null}),
            serde_json::json!({"sub": "not-a-uuid"}),
            serde_json::json!({"sub": Uuid::nil()}),
            serde_json::json!({"sid": Uuid::nil()}),
            serde_json::json!({"org_id": Uuid::nil()}),
            serde_json::json!({"org_role": " "}),
            serde_json::json!({"org_role": "root"}),
            serde_json::json!({"roles": ["admin"]}),
            serde_json::json!({"exp": null}),
            serde_json::json!({"iat": null}),
        ] {
            assert_eq!(check(bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn org_roles_are_ordered() {
        assert!(OrgRole::Owner >= OrgRole::Admin);
        assert!(OrgRole::Admin >= OrgRole::Admin);
        assert!(OrgRole::Member < OrgRole::Admin);
        for r in [OrgRole::Owner, OrgRole::Admin, OrgRole::Member] {
            assert_eq!(OrgRole::parse(r.as_str()), Some(r));
        }
    }
}
