//! Sign-in providers: Google (the contract's ID-token flow, plus the authorization-code flow
//! when a client secret is set), GitHub, and any OpenID Connect issuer by name.
//!
//! `AUTHARA_OAUTH_PROVIDERS` lists them (trimmed, lowercased, each at most once). `google` and
//! `github` have fixed variables; any other name `NAME` (lowercase letters and digits, starting
//! with a letter) is a generic OpenID provider read from `AUTHARA_OAUTH_<NAME>_*`, whose names
//! are built at run time from the patterns declared below.

use super::declare_vars;
use super::reader::{Reader, validate_http_url};
use super::secret::SecretString;

declare_vars! {
    /// Comma-separated sign-in providers: `google`, `github`, or any other lowercase name for an OpenID Connect provider configured by the `AUTHARA_OAUTH_<NAME>_*` variables below.
    PROVIDERS = contract("AUTHARA_OAUTH_PROVIDERS", "");
    /// Google OAuth client id (required when `AUTHARA_OAUTH_PROVIDERS` contains `google`).
    GOOGLE_CLIENT_ID = contract("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "");
    /// Google client secret (or `_FILE`); when set, Google also gets the authorization-code flow (`/auth/oauth/google/start`).
    GOOGLE_CLIENT_SECRET = extra("AUTHARA_OAUTH_GOOGLE_CLIENT_SECRET", "");
    /// Google's issuer; its discovery document gives the signing keys (tests point it at a local issuer).
    GOOGLE_ISSUER = extra("AUTHARA_OAUTH_GOOGLE_ISSUER", "https://accounts.google.com");
    /// GitHub OAuth app client id (required when `AUTHARA_OAUTH_PROVIDERS` contains `github`).
    GITHUB_CLIENT_ID = extra("AUTHARA_OAUTH_GITHUB_CLIENT_ID", "");
    /// GitHub OAuth app client secret (or `_FILE`; required with `github`).
    GITHUB_CLIENT_SECRET = extra("AUTHARA_OAUTH_GITHUB_CLIENT_SECRET", "");
    /// GitHub's web address (GitHub Enterprise: your server).
    GITHUB_URL = extra("AUTHARA_OAUTH_GITHUB_URL", "https://github.com");
    /// GitHub's API address (GitHub Enterprise: `https://<host>/api/v3`).
    GITHUB_API_URL = extra("AUTHARA_OAUTH_GITHUB_API_URL", "https://api.github.com");
    /// Pattern: the issuer of the OpenID provider `NAME` (discovery at `<issuer>/.well-known/openid-configuration`); required for each generic provider; https in prod (so are the Google and GitHub addresses).
    OIDC_ISSUER = extra("AUTHARA_OAUTH_<NAME>_ISSUER", "");
    /// Pattern: the client id registered at provider `NAME` (required).
    OIDC_CLIENT_ID = extra("AUTHARA_OAUTH_<NAME>_CLIENT_ID", "");
    /// Pattern: the client secret of provider `NAME` (or `AUTHARA_OAUTH_<NAME>_CLIENT_SECRET_FILE`); unset for a public client (PKCE only).
    OIDC_CLIENT_SECRET = extra("AUTHARA_OAUTH_<NAME>_CLIENT_SECRET", "");
    /// Pattern: space-separated scopes requested from provider `NAME` (must include `openid`).
    OIDC_SCOPES = extra("AUTHARA_OAUTH_<NAME>_SCOPES", "openid email profile");
    /// Pattern: the name on the "Continue with …" button of provider `NAME` (default: the name, capitalized).
    OIDC_DISPLAY_NAME = extra("AUTHARA_OAUTH_<NAME>_DISPLAY_NAME", "");
}

/// The suffixes of the per-provider variables of a generic provider.
pub const PROVIDER_SUFFIXES: &[&str] = &["ISSUER", "CLIENT_ID", "CLIENT_SECRET", "SCOPES", "DISPLAY_NAME"];

/// Names that cannot be a generic provider (`password` is the password credential's row).
const RESERVED: &[&str] = &["password"];

/// How a provider signs people in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Google: ID tokens from Google Identity Services; the code flow too with a secret.
    Google,
    /// GitHub: OAuth 2 without OpenID (`/user` and `/user/emails`).
    GitHub,
    /// Any OpenID Connect issuer, by discovery.
    Oidc,
}

/// One configured provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The name in URLs and in `auth_providers.provider` (`google`, `github`, `gitlab`, …).
    pub name: String,
    pub kind: ProviderKind,
    /// The brand name on buttons.
    pub display_name: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// The OpenID issuer (Google, generic); GitHub's web address for GitHub.
    pub issuer: String,
    /// GitHub's API address (GitHub only).
    pub api_url: String,
    /// Scopes requested in the code flow.
    pub scopes: Vec<String>,
}

impl ProviderConfig {
    /// Whether `/auth/oauth/{name}/start` (the authorization-code flow) works for this provider.
    pub fn code_flow(&self) -> bool {
        match self.kind {
            ProviderKind::Google => self.client_secret.is_some(),
            ProviderKind::GitHub | ProviderKind::Oidc => true,
        }
    }
}

/// `AUTHARA_OAUTH_*`: the configured providers, in the listed order.
#[derive(Debug, Clone, Default)]
pub struct OAuthConfig {
    pub providers: Vec<ProviderConfig>,
}

impl OAuthConfig {
    /// The provider called `name`, if configured.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Google, if configured.
    pub fn google(&self) -> Option<&ProviderConfig> {
        self.provider("google")
    }
}

/// Whether `name` is a valid generic provider name: a lowercase letter, then letters and digits.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 32
}

/// The variable `AUTHARA_OAUTH_<NAME>_<suffix>` of a generic provider.
pub fn provider_var(name: &str, suffix: &str) -> String {
    format!("AUTHARA_OAUTH_{}_{suffix}", name.to_ascii_uppercase())
}

/// Whether `var` (or its `_FILE` form) is a per-provider variable of a provider listed in
/// `providers` (the unknown-variable warning skips those).
pub fn is_provider_var(var: &str, providers: &[ProviderConfig]) -> bool {
    let base = var.strip_suffix("_FILE").unwrap_or(var);
    providers.iter().any(|p| PROVIDER_SUFFIXES.iter().any(|s| provider_var(&p.name, s) == base))
}

/// An issuer without its trailing slash; `https` in prod (codes, secrets and tokens travel there).
fn issuer_url(r: &mut Reader<'_>, prod: bool, var_name: &str, value: String) -> String {
    if let Err(e) = validate_http_url(&value) {
        r.error(format!("{var_name}: {e}"));
    } else if prod && !value.starts_with("https://") {
        r.error(format!("{var_name}: must use https when APP_ENV=prod"));
    }
    value.trim_end_matches('/').to_owned()
}

fn capitalized(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Reads this area: every listed provider with its settings.
pub(super) fn build(r: &mut Reader<'_>, prod: bool) -> OAuthConfig {
    let mut providers = Vec::new();
    let Some(list) = r.raw(&PROVIDERS) else { return OAuthConfig::default() };
    let mut seen: Vec<String> = Vec::new();
    for name in list.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()) {
        if seen.contains(&name) {
            r.invalid(&PROVIDERS, format!("{name:?} is listed twice"));
            continue;
        }
        seen.push(name.clone());
        let provider = match name.as_str() {
            "google" => google(r, prod),
            "github" => github(r, prod),
            other if valid_name(other) && !RESERVED.contains(&other) => oidc(r, prod, other),
            other => {
                r.invalid(
                    &PROVIDERS,
                    format!(
                        "{other:?} is not a provider name (google, github, or lowercase letters and digits for an \
                         OpenID provider)"
                    ),
                );
                continue;
            }
        };
        providers.push(provider);
    }
    OAuthConfig { providers }
}

fn google(r: &mut Reader<'_>, prod: bool) -> ProviderConfig {
    let client_id = r.required(&GOOGLE_CLIENT_ID, &format!(" when {} contains google", PROVIDERS.name));
    let issuer = r.string(&GOOGLE_ISSUER);
    let issuer = issuer_url(r, prod, GOOGLE_ISSUER.name, issuer);
    ProviderConfig {
        name: "google".to_owned(),
        kind: ProviderKind::Google,
        display_name: "Google".to_owned(),
        client_id,
        client_secret: r.secret(&GOOGLE_CLIENT_SECRET),
        issuer,
        api_url: String::new(),
        scopes: vec!["openid".to_owned(), "email".to_owned(), "profile".to_owned()],
    }
}

fn github(r: &mut Reader<'_>, prod: bool) -> ProviderConfig {
    let why = format!(" when {} contains github", PROVIDERS.name);
    let client_id = r.required(&GITHUB_CLIENT_ID, &why);
    let client_secret = r.secret(&GITHUB_CLIENT_SECRET);
    if client_secret.is_none() {
        r.error(format!("{} is required{why}", GITHUB_CLIENT_SECRET.name));
    }
    let url = r.string(&GITHUB_URL);
    let api = r.string(&GITHUB_API_URL);
    ProviderConfig {
        name: "github".to_owned(),
        kind: ProviderKind::GitHub,
        display_name: "GitHub".to_owned(),
        client_id,
        client_secret,
        issuer: issuer_url(r, prod, GITHUB_URL.name, url),
        api_url: issuer_url(r, prod, GITHUB_API_URL.name, api),
        scopes: vec!["read:user".to_owned(), "user:email".to_owned()],
    }
}

fn oidc(r: &mut Reader<'_>, prod: bool, name: &str) -> ProviderConfig {
    let var = |suffix| provider_var(name, suffix);
    let why = format!(" for the OpenID provider {name:?} listed in {}", PROVIDERS.name);
    let issuer = match r.raw_named(&var("ISSUER")) {
        Some(v) => issuer_url(r, prod, &var("ISSUER"), v),
        None => {
            r.error(format!("{} is required{why}", var("ISSUER")));
            String::new()
        }
    };
    let client_id = r.raw_named(&var("CLIENT_ID")).unwrap_or_else(|| {
        r.error(format!("{} is required{why}", var("CLIENT_ID")));
        String::new()
    });
    let client_secret = r.secret_named(&var("CLIENT_SECRET"));
    let scopes: Vec<String> = r
        .raw_named(&var("SCOPES"))
        .unwrap_or_else(|| OIDC_SCOPES.default.to_owned())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        r.error(format!("{}: must include openid", var("SCOPES")));
    }
    let display_name = r.raw_named(&var("DISPLAY_NAME")).unwrap_or_else(|| capitalized(name));
    ProviderConfig {
        name: name.to_owned(),
        kind: ProviderKind::Oidc,
        display_name,
        client_id,
        client_secret,
        issuer,
        api_url: String::new(),
        scopes,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (OAuthConfig, Vec<String>) {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut r = Reader::new(&vars);
        let c = build(&mut r, false);
        (c, r.errors)
    }

    #[test]
    fn providers_are_trimmed_lowercased_and_validated() {
        let (c, errors) = read(&[
            ("AUTHARA_OAUTH_PROVIDERS", " Google , gitlab "),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "g-id"),
            ("AUTHARA_OAUTH_GITLAB_ISSUER", "https://gitlab.example.com/"),
            ("AUTHARA_OAUTH_GITLAB_CLIENT_ID", "gl-id"),
            ("AUTHARA_OAUTH_GITLAB_CLIENT_SECRET", "gl-secret"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = c.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["google", "gitlab"]);
        let google = c.google().unwrap();
        assert_eq!(google.issuer, "https://accounts.google.com");
        assert!(!google.code_flow(), "Google without a secret is the ID-token flow only");
        let gitlab = c.provider("gitlab").unwrap();
        assert_eq!(gitlab.issuer, "https://gitlab.example.com");
        assert_eq!(gitlab.display_name, "Gitlab");
        assert_eq!(gitlab.scopes, ["openid", "email", "profile"]);
        assert!(is_provider_var("AUTHARA_OAUTH_GITLAB_CLIENT_SECRET_FILE", &c.providers));
        assert!(!is_provider_var("AUTHARA_OAUTH_OKTA_ISSUER", &c.providers));
    }

    #[test]
    fn problems_are_reported() {
        let (_, errors) = read(&[("AUTHARA_OAUTH_PROVIDERS", "google,google,github,My-IdP,password,okta")]);
        let text = errors.join("\n");
        assert!(text.contains("AUTHARA_OAUTH_GOOGLE_CLIENT_ID is required"), "{text}");
        assert!(text.contains("listed twice"), "{text}");
        assert!(text.contains("AUTHARA_OAUTH_GITHUB_CLIENT_SECRET is required"), "{text}");
        assert!(text.contains("\"my-idp\" is not a provider name"), "{text}");
        assert!(text.contains("\"password\" is not a provider name"), "{text}");
        assert!(text.contains("AUTHARA_OAUTH_OKTA_ISSUER is required"), "{text}");
        let (_, errors) = read(&[
            ("AUTHARA_OAUTH_PROVIDERS", "okta"),
            ("AUTHARA_OAUTH_OKTA_ISSUER", "ftp://x"),
            ("AUTHARA_OAUTH_OKTA_CLIENT_ID", "x"),
            ("AUTHARA_OAUTH_OKTA_SCOPES", "email"),
        ]);
        let text = errors.join("\n");
        assert!(text.contains("AUTHARA_OAUTH_OKTA_ISSUER") && text.contains("must include openid"), "{text}");
        let vars: HashMap<String, String> = [
            ("AUTHARA_OAUTH_PROVIDERS", "okta"),
            ("AUTHARA_OAUTH_OKTA_ISSUER", "http://okta.example.com"),
            ("AUTHARA_OAUTH_OKTA_CLIENT_ID", "x"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut r = Reader::new(&vars);
        build(&mut r, true);
        assert!(r.errors.join("\n").contains("must use https when APP_ENV=prod"), "{:?}", r.errors);
    }
}
