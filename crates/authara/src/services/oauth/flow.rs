//! The authorization-code flow with PKCE (S256), `state` and `nonce`, for Google (with a
//! client secret), GitHub and any OpenID Connect issuer. The protocol steps (authorization URL,
//! PKCE, the code exchange and its client authentication, the token response) are the `oauth2`
//! crate's, over our [`ProviderHttp`](super::client::ProviderHttp); ID tokens are verified by our
//! [`Issuer`](super::issuer::Issuer).
//!
//! `start` stores the flow server-side (keyed by the SHA-256 of `state`, ten minutes) and
//! returns the provider's authorization URL; the browser keeps `state` in a short-lived cookie
//! too, so a callback is only accepted from the browser that started it. `finish` takes the
//! flow (deleted at once: a replayed `state` finds nothing, on any instance), exchanges the code
//! with the verifier at the token endpoint, and turns the answer into an [`Identity`]: a
//! verified ID token (OpenID) or GitHub's user and verified primary email.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::client::ProviderError;
use super::{Identity, OAuth, OAuthError, identity};
use crate::cache::{LimitKey, Scope};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::ClientInfo;
use crate::domain::{SessionId, UserId};
use crate::services::auth::Principal;
use crate::store::providers::NewFlow;

/// How long a started flow may take to come back.
pub const FLOW_TTL_MS: i64 = 10 * 60_000;

/// A started flow: where to send the browser, and the `state` its cookie keeps.
#[derive(Debug, Clone)]
pub struct Started {
    pub authorization_url: String,
    pub state: String,
}

/// What a finished flow was for.
#[derive(Debug, Clone)]
pub enum Finished {
    /// Sign in (or sign up), then go to `return_to`.
    Login { identity: Identity, return_to: String },
    /// Link the identity to the signed-in user who started the flow.
    Link { identity: Identity, user: UserId, session: SessionId, return_to: String },
}

/// The token response's field beyond OAuth's: OpenID Connect's ID token.
#[derive(Debug, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default)]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// An `oauth2` client with its authorization and token endpoints set.
type CodeClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Where a provider's endpoints are, and how it takes client credentials.
struct Endpoints {
    authorize: String,
    token: String,
    auth_type: AuthType,
}

fn code_client(p: &ProviderConfig, e: &Endpoints, redirect_uri: &str) -> Result<CodeClient, OAuthError> {
    let url = |what: &str, e: oauth2::url::ParseError| ProviderError::Malformed(format!("{what} endpoint: {e}"));
    let mut client = oauth2::Client::new(ClientId::new(p.client_id.clone()))
        .set_auth_uri(AuthUrl::new(e.authorize.clone()).map_err(|err| url("authorization", err))?)
        .set_token_uri(TokenUrl::new(e.token.clone()).map_err(|err| url("token", err))?)
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(|err| url("redirect", err))?)
        .set_auth_type(e.auth_type.clone());
    if let Some(secret) = &p.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
    }
    Ok(client)
}

/// The authorization URL with a fresh `state` and PKCE challenge (and `nonce`, for OpenID).
fn authorization_url(
    p: &ProviderConfig,
    client: &CodeClient,
    nonce: &str,
) -> (oauth2::url::Url, CsrfToken, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(random_token)
        .set_pkce_challenge(challenge)
        .add_scopes(p.scopes.iter().map(|s| oauth2::Scope::new(s.clone())));
    if p.kind != ProviderKind::GitHub {
        request = request.add_extra_param("nonce", nonce);
    }
    let (url, state) = request.url();
    (url, state, verifier)
}

/// A token endpoint's failure, as the flow reports it.
fn token_error(e: RequestTokenError<ProviderError, BasicErrorResponse>) -> OAuthError {
    let refused = |r: &BasicErrorResponse| ProviderError::Refused(r.error().to_string().chars().take(64).collect());
    OAuthError::Provider(match e {
        RequestTokenError::Request(p) => p,
        RequestTokenError::ServerResponse(r) => refused(&r),
        // GitHub answers errors with 200 and an error object.
        RequestTokenError::Parse(_, body) => match serde_json::from_slice::<BasicErrorResponse>(&body) {
            Ok(r) => refused(&r),
            Err(_) => ProviderError::Malformed("token response".to_owned()),
        },
        RequestTokenError::Other(why) => ProviderError::Malformed(why),
    })
}

#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct GitHubUser {
    id: u64,
}

#[derive(Deserialize)]
struct GitHubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

/// A `state` or `nonce`: 32 random bytes, base64url.
fn random_token() -> CsrfToken {
    CsrfToken::new_random_len(32)
}

fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

impl OAuth {
    /// The exact redirect URI registered at the provider: `PUBLIC_URL/auth/oauth/{name}/callback`.
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/auth/oauth/{provider}/callback", self.core.config.public_url.trim_end_matches('/'))
    }

    fn code_provider(&self, name: &str) -> Result<&ProviderConfig, OAuthError> {
        let p = self.provider(name)?;
        if p.code_flow() { Ok(p) } else { Err(OAuthError::Disabled) }
    }

    /// The provider's endpoints: GitHub's fixed ones, or the issuer's discovery document.
    async fn endpoints(&self, p: &ProviderConfig) -> Result<Endpoints, OAuthError> {
        Ok(match p.kind {
            ProviderKind::GitHub => Endpoints {
                authorize: format!("{}/login/oauth/authorize", p.issuer),
                token: format!("{}/login/oauth/access_token", p.issuer),
                auth_type: AuthType::RequestBody,
            },
            ProviderKind::Google | ProviderKind::Oidc => {
                let d = self.issuer(&p.name)?.discovery().await?;
                // client_secret_basic unless the provider only takes client_secret_post.
                let post_only = d.token_endpoint_auth_methods_supported.as_ref().is_some_and(|m| {
                    m.iter().any(|x| x == "client_secret_post") && !m.iter().any(|x| x == "client_secret_basic")
                });
                Endpoints {
                    authorize: d.authorization_endpoint,
                    token: d.token_endpoint,
                    auth_type: if post_only { AuthType::RequestBody } else { AuthType::BasicAuth },
                }
            }
        })
    }

    /// Starts a flow to sign in (`link: None`) or to link an identity to the signed-in user
    /// `link` (privileged session required: a recent sign-in or `current_password`).
    pub async fn start(
        &self,
        provider: &str,
        link: Option<(&Principal, Option<&str>)>,
        return_to: &str,
        client: &ClientInfo,
    ) -> Result<Started, OAuthError> {
        let p = self.code_provider(provider)?;
        if let Some((who, current_password)) = link {
            self.core.require_privileged(who, current_password).await?;
        }
        let key = LimitKey { ip: client.ip, target: None };
        self.core
            .limit(Scope::OAuthStart, &key)
            .await
            .map_err(|retry_after_secs| OAuthError::RateLimited { retry_after_secs })?;
        let endpoints = self.endpoints(p).await?;
        let client = code_client(p, &endpoints, &self.redirect_uri(provider))?;
        let nonce = random_token();
        let (url, state, verifier) = authorization_url(p, &client, nonce.secret());
        let state = state.secret().clone();
        let now = self.core.now_ms();
        let state_hash = sha256(&state);
        // An invitation page's token is kept as its hash; the callback takes it back from the
        // browser (see `invited::restore_return_to`).
        let return_to = super::invited::return_to_at_rest(return_to);
        self.core
            .store
            .insert_flow(&NewFlow {
                state_hash: &state_hash,
                provider,
                nonce: nonce.secret(),
                pkce_verifier: verifier.secret(),
                purpose: if link.is_some() { "link" } else { "login" },
                user_id: link.map(|(who, _)| who.user_id()),
                session_id: link.map(|(who, _)| who.session_id()),
                return_to: &return_to,
                expires_at_ms: now.saturating_add(FLOW_TTL_MS),
                now_ms: now,
            })
            .await?;
        Ok(Started { authorization_url: url.into(), state })
    }

    /// Finishes a flow at its callback: `state` must equal the browser's `cookie_state` and name
    /// a flow of this provider that has not expired; then the code is exchanged and the
    /// identity verified. A provider `error` ends the flow too.
    pub async fn finish(
        &self,
        provider: &str,
        code: Option<&str>,
        state: Option<&str>,
        cookie_state: Option<&str>,
        error: Option<&str>,
    ) -> Result<Finished, OAuthError> {
        let p = self.code_provider(provider)?;
        let state = state.filter(|s| !s.is_empty() && s.len() <= 128).ok_or(OAuthError::InvalidState)?;
        let cookie = cookie_state.unwrap_or_default();
        if !bool::from(state.as_bytes().ct_eq(cookie.as_bytes())) {
            return Err(OAuthError::InvalidState);
        }
        let flow = self.core.store.take_flow(&sha256(state)).await?.ok_or(OAuthError::InvalidState)?;
        if flow.provider != provider || flow.expires_at_ms <= self.core.now_ms() {
            return Err(OAuthError::InvalidState);
        }
        if let Some(e) = error.filter(|e| !e.is_empty()) {
            return Err(OAuthError::Denied(e.chars().take(64).collect()));
        }
        let code = code.filter(|c| !c.is_empty()).ok_or(OAuthError::Missing("code"))?;
        let client = code_client(p, &self.endpoints(p).await?, &self.redirect_uri(provider))?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let identity = match p.kind {
            ProviderKind::GitHub => self.github_identity(p, &tokens).await?,
            ProviderKind::Google | ProviderKind::Oidc => self.oidc_identity(p, &tokens, &flow.nonce).await?,
        };
        Ok(match (flow.purpose.as_str(), flow.user_id, flow.session_id) {
            ("link", Some(user), Some(session)) => {
                Finished::Link { identity, user, session, return_to: flow.return_to }
            }
            ("login", _, _) => Finished::Login { identity, return_to: flow.return_to },
            _ => return Err(OAuthError::InvalidState),
        })
    }

    async fn oidc_identity(&self, p: &ProviderConfig, tokens: &Tokens, nonce: &str) -> Result<Identity, OAuthError> {
        let issuer = self.issuer(&p.name)?;
        let d = issuer.discovery().await?;
        let id_token = tokens
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| OAuthError::InvalidToken("no id_token".to_owned()))?;
        let claims = issuer.verify(id_token, &p.client_id, nonce, self.core.now_ms()).await?;
        if claims.email.as_deref().is_some_and(|e| !e.trim().is_empty()) {
            let verified = claims.email_verified();
            return identity(&p.name, claims.sub, claims.email.as_deref(), verified);
        }
        // Providers that keep profile claims out of the ID token give them at userinfo.
        let Some(url) = d.userinfo_endpoint.as_deref() else {
            return Err(OAuthError::InvalidToken("no email".to_owned()));
        };
        let info: UserInfo = self.http.get_json(url, Some(tokens.access_token().secret())).await?;
        if info.sub != claims.sub {
            return Err(OAuthError::InvalidToken("userinfo subject differs".to_owned()));
        }
        let verified = matches!(&info.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&info.email_verified, Some(serde_json::Value::String(s)) if s == "true");
        identity(&p.name, claims.sub, info.email.as_deref(), verified)
    }

    async fn github_identity(&self, p: &ProviderConfig, tokens: &Tokens) -> Result<Identity, OAuthError> {
        let access = tokens.access_token().secret();
        let user: GitHubUser = self.http.get_json(&format!("{}/user", p.api_url), Some(access)).await?;
        let emails: Vec<GitHubEmail> = self.http.get_json(&format!("{}/user/emails", p.api_url), Some(access)).await?;
        let primary = emails.iter().find(|e| e.primary);
        let Some(primary) = primary else { return Err(OAuthError::InvalidToken("no primary email".to_owned())) };
        identity(&p.name, user.id.to_string(), Some(&primary.email), primary.verified)
    }

    /// Completes a link flow: the browser must still be signed in with the session that
    /// started it. The identity must not belong to anyone, and the user must not have one at
    /// this provider yet.
    pub async fn complete_link(
        &self,
        identity: &Identity,
        user: UserId,
        session: SessionId,
        who: &Principal,
        client: &ClientInfo,
    ) -> Result<(), OAuthError> {
        if who.user_id() != user || who.session_id() != session {
            return Err(OAuthError::SessionChanged);
        }
        let tx = self.core.store.begin().await?;
        self.link_to_signed_in(tx, user, identity, client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: ProviderKind) -> ProviderConfig {
        ProviderConfig {
            name: "idp".to_owned(),
            kind,
            display_name: "IdP".to_owned(),
            client_id: "client 1".to_owned(),
            client_secret: None,
            issuer: "https://idp.example".to_owned(),
            api_url: String::new(),
            scopes: vec!["openid".to_owned(), "email".to_owned()],
        }
    }

    fn query(url: &oauth2::url::Url) -> Vec<(String, String)> {
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn authorization_urls_carry_pkce_state_nonce_and_keep_existing_queries() {
        let p = provider(ProviderKind::Oidc);
        let endpoints = Endpoints {
            authorize: "https://idp.example/auth?x=y".to_owned(),
            token: "https://idp.example/token".to_owned(),
            auth_type: AuthType::BasicAuth,
        };
        let client = code_client(&p, &endpoints, "https://app.example/auth/oauth/idp/callback").unwrap();
        let (url, state, verifier) = authorization_url(&p, &client, "n-1");
        assert_eq!(url.path(), "/auth");
        let q = query(&url);
        let get = |k: &str| q.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
        assert_eq!(get("x"), Some("y"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("client_id"), Some("client 1"));
        assert_eq!(get("redirect_uri"), Some("https://app.example/auth/oauth/idp/callback"));
        assert_eq!(get("scope"), Some("openid email"));
        assert_eq!(get("state"), Some(state.secret().as_str()));
        assert_eq!(get("nonce"), Some("n-1"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        let challenge = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            Sha256::digest(verifier.secret().as_bytes()),
        );
        assert_eq!(get("code_challenge"), Some(challenge.as_str()));
        // Fresh every time.
        let (_, again, _) = authorization_url(&p, &client, "n-1");
        assert_ne!(again.secret(), state.secret());
        assert_eq!(state.secret().len(), 43, "32 random bytes");
    }

    #[test]
    fn github_gets_no_nonce() {
        let p = provider(ProviderKind::GitHub);
        let endpoints = Endpoints {
            authorize: "https://github.example/login/oauth/authorize".to_owned(),
            token: "https://github.example/login/oauth/access_token".to_owned(),
            auth_type: AuthType::RequestBody,
        };
        let client = code_client(&p, &endpoints, "https://app.example/cb").unwrap();
        let (url, _, _) = authorization_url(&p, &client, "n-1");
        assert!(query(&url).iter().all(|(k, _)| k != "nonce"));
    }

    #[test]
    fn token_endpoint_errors_read_as_provider_failures() {
        let github = br#"{"error":"bad_verification_code","error_description":"The code is wrong."}"#.to_vec();
        let parse = serde_path_to_error::deserialize::<_, Tokens>(&mut serde_json::Deserializer::from_slice(&github))
            .map(|_| ())
            .unwrap_err();
        let e = token_error(RequestTokenError::Parse(parse, github));
        assert!(
            matches!(e, OAuthError::Provider(ProviderError::Refused(ref c)) if c == "bad_verification_code"),
            "{e:?}"
        );
        let e = token_error(RequestTokenError::Parse(
            serde_path_to_error::deserialize::<_, Tokens>(&mut serde_json::Deserializer::from_slice(b"<html>"))
                .map(|_| ())
                .unwrap_err(),
            b"<html>".to_vec(),
        ));
        assert!(matches!(e, OAuthError::Provider(ProviderError::Malformed(_))), "{e:?}");
    }
}
