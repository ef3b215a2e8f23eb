//! The rules of one protected route, written in the proxy's auth URL:
//! `/auth/verify?role=admin&org=<id>&org_role=admin&mfa=1`, plus `mode=nginx`. Anything this
//! module does not know refuses the request: a typo never opens a route.

use crate::domain::{OrgId, OrgRole, PlatformRole};
use crate::services::auth::Principal;
use crate::services::return_to::percent_decode;

/// What a protected route asks of its visitors, and how its proxy wants the answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// `role=`: a platform role (`admin`, `auditor`, `monitor`).
    pub role: Option<PlatformRole>,
    /// `org=`: the session's active organization must be this one.
    pub org: Option<OrgId>,
    /// `org_role=`: at least this role in the active organization (owner > admin > member).
    pub org_role: Option<OrgRole>,
    /// `mfa=1`: the session used a second factor.
    pub mfa: bool,
    /// `mode=nginx`: never a redirect (`auth_request` turns any other status into a 500).
    pub nginx: bool,
}

/// A rule parameter that is unknown, repeated, empty or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The parameter as written (at most 64 characters of it).
    pub parameter: String,
    pub reason: &'static str,
}

/// The longest auth URL query accepted.
const MAX_QUERY: usize = 1024;

fn rank(role: OrgRole) -> u8 {
    match role {
        OrgRole::Member => 1,
        OrgRole::Admin => 2,
        OrgRole::Owner => 3,
    }
}

impl Rules {
    /// Reads the auth URL's query (`None` or empty: no rule).
    pub fn parse(query: Option<&str>) -> Result<Rules, RuleError> {
        let query = query.unwrap_or_default();
        let err = |parameter: &str, reason| RuleError { parameter: parameter.chars().take(64).collect(), reason };
        if query.len() > MAX_QUERY {
            return Err(err("(query)", "the query is too long"));
        }
        let mut rules = Rules::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(raw_key).unwrap_or_else(|| raw_key.to_owned());
            let Some(value) = percent_decode(raw_value).filter(|v| !v.is_empty()) else {
                return Err(err(&key, "empty or undecodable value"));
            };
            if seen.contains(&key) {
                return Err(err(&key, "given twice"));
            }
            match key.as_str() {
                "role" => rules.role = Some(PlatformRole::parse(&value).map_err(|_| err(&key, "unknown role"))?),
                "org" => {
                    let id = uuid::Uuid::parse_str(&value).map_err(|_| err(&key, "not an organization id"))?;
                    rules.org = Some(OrgId(id));
                }
                "org_role" => {
                    rules.org_role = Some(OrgRole::parse(&value).map_err(|_| err(&key, "not owner, admin or member"))?);
                }
                "mfa" if value == "1" => rules.mfa = true,
                "mfa" => return Err(err(&key, "only mfa=1 is a rule")),
                "mode" if value == "nginx" => rules.nginx = true,
                "mode" => return Err(err(&key, "only mode=nginx is known")),
                _ => return Err(err(&key, "unknown parameter")),
            }
            seen.push(key);
        }
        Ok(rules)
    }

    /// The signed-in caller meets every rule.
    pub fn allow(&self, who: &Principal) -> bool {
        self.role.is_none_or(|r| who.has_role(r))
            && self.org.is_none_or(|o| who.org_id() == o)
            && self
                .org_role
                .is_none_or(|r| OrgRole::parse(&who.claims().org_role).is_ok_and(|mine| rank(mine) >= rank(r)))
            && (!self.mfa || who.claims().amr.as_deref().is_some_and(|amr| amr.iter().any(|m| m == "mfa")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_rules_parse() {
        let id = "0190a0f0-0000-7000-8000-000000000001";
        let r = Rules::parse(Some(&format!("role=admin&org={id}&org_role=owner&mfa=1&mode=nginx"))).unwrap();
        assert_eq!(r.role, Some(PlatformRole::Admin));
        assert_eq!(r.org, Some(OrgId(uuid::Uuid::parse_str(id).unwrap())));
        assert_eq!(r.org_role, Some(OrgRole::Owner));
        assert!(r.mfa && r.nginx);
        assert_eq!(Rules::parse(None).unwrap(), Rules::default());
        assert_eq!(Rules::parse(Some("")).unwrap(), Rules::default(), "Caddy's `uri /auth/verify?`");
    }

    #[test]
    fn anything_else_names_its_parameter() {
        for (query, parameter) in [
            ("roles=admin", "roles"),
            ("role=superuser", "role"),
            ("role=", "role"),
            ("role", "role"),
            ("role=admin&role=admin", "role"),
            ("org=acme", "org"),
            ("org_role=boss", "org_role"),
            ("mfa=true", "mfa"),
            ("mode=traefik", "mode"),
            ("page=2", "page"),
            ("role=%E0%A4%A", "role"),
        ] {
            assert_eq!(Rules::parse(Some(query)).unwrap_err().parameter, parameter, "{query}");
        }
        assert!(Rules::parse(Some(&"a".repeat(MAX_QUERY + 1))).is_err());
    }
}
