//! The authorization-code flow with PKCE (S256), `state` and `nonce`, for Google (with a
//! client secret), GitHub and any OpenID Connect issuer.
//!
//! `start` stores the flow server-side (keyed by the SHA-256 of `state`, ten minutes) and
//! returns the provider's authorization URL; the browser keeps `state` in a short-lived cookie
//! too, so a callback is only accepted from the browser that started it. `finish` takes the
//! flow (deleted at once: a replayed `state` finds nothing, on any instance), exchanges the code
//! with the verifier at the token endpoint, and turns the answer into an [`Identity`]: a
//! verified ID token (OpenID) or GitHub's user and verified primary email.

use base64::Engine as _;
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{Identity, OAuth, OAuthError, identity};
use crate::cache::{LimitKey, Scope};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::{SessionId, UserId};
use crate::services::audit::Actor;
use crate::services::auth::Principal;
use crate::services::sessions::ClientInfo;
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

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
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

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

fn with_query(endpoint: &str, params: &[(&str, &str)]) -> String {
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{q}")
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
        let endpoint = match p.kind {
            ProviderKind::GitHub => format!("{}/login/oauth/authorize", p.issuer),
            ProviderKind::Google | ProviderKind::Oidc => {
                self.issuer(provider)?.discovery().await?.authorization_endpoint
            }
        };
        let (state, nonce, verifier) = (random_token(), random_token(), random_token());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let now = self.core.now_ms();
        let state_hash = sha256(&state);
        self.core
            .store
            .insert_flow(&NewFlow {
                state_hash: &state_hash,
                provider,
                nonce: &nonce,
                pkce_verifier: &verifier,
                purpose: if link.is_some() { "link" } else { "login" },
                user_id: link.map(|(who, _)| who.user_id()),
                session_id: link.map(|(who, _)| who.session_id()),
                return_to,
                expires_at_ms: now.saturating_add(FLOW_TTL_MS),
                now_ms: now,
            })
            .await?;
        let redirect_uri = self.redirect_uri(provider);
        let scope = p.scopes.join(" ");
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", p.client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", scope.as_str()),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if p.kind != ProviderKind::GitHub {
            params.push(("nonce", nonce.as_str()));
        }
        Ok(Started { authorization_url: with_query(&endpoint, &params), state })
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
        let redirect_uri = self.redirect_uri(provider);
        let identity = match p.kind {
            ProviderKind::GitHub => self.github_identity(p, code, &redirect_uri, &flow.pkce_verifier).await?,
            ProviderKind::Google | ProviderKind::Oidc => {
                self.oidc_identity(p, code, &redirect_uri, &flow.pkce_verifier, &flow.nonce).await?
            }
        };
        Ok(match (flow.purpose.as_str(), flow.user_id, flow.session_id) {
            ("link", Some(user), Some(session)) => {
                Finished::Link { identity, user, session, return_to: flow.return_to }
            }
            ("login", _, _) => Finished::Login { identity, return_to: flow.return_to },
            _ => return Err(OAuthError::InvalidState),
        })
    }

    async fn oidc_identity(
        &self,
        p: &ProviderConfig,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<Identity, OAuthError> {
        let issuer = self.issuer(&p.name)?;
        let d = issuer.discovery().await?;
        let secret = p.client_secret.as_ref().map(|s| s.expose_secret());
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        // client_secret_basic unless the provider only takes client_secret_post.
        let post_only = d.token_endpoint_auth_methods_supported.as_ref().is_some_and(|m| {
            m.iter().any(|x| x == "client_secret_post") && !m.iter().any(|x| x == "client_secret_basic")
        });
        let basic = match secret {
            Some(secret) if !post_only => Some((p.client_id.as_str(), secret)),
            Some(secret) => {
                form.push(("client_id", &p.client_id));
                form.push(("client_secret", secret));
                None
            }
            None => {
                form.push(("client_id", &p.client_id));
                None
            }
        };
        let tokens: TokenResponse = self.http.post_form(&d.token_endpoint, &form, basic).await?;
        if let Some(e) = tokens.error {
            return Err(OAuthError::Denied(e.chars().take(64).collect()));
        }
        let id_token = tokens.id_token.ok_or_else(|| OAuthError::InvalidToken("no id_token".to_owned()))?;
        let claims = issuer.verify(&id_token, &p.client_id, nonce, self.core.now_ms()).await?;
        if claims.email.as_deref().is_some_and(|e| !e.trim().is_empty()) {
            let verified = claims.email_verified();
            return identity(&p.name, claims.sub, claims.email.as_deref(), verified);
        }
        // Providers that keep profile claims out of the ID token give them at userinfo.
        let (Some(url), Some(access)) = (d.userinfo_endpoint.as_deref(), tokens.access_token.as_deref()) else {
            return Err(OAuthError::InvalidToken("no email".to_owned()));
        };
        let info: UserInfo = self.http.get_json(url, Some(access)).await?;
        if info.sub != claims.sub {
            return Err(OAuthError::InvalidToken("userinfo subject differs".to_owned()));
        }
        let verified = matches!(&info.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&info.email_verified, Some(serde_json::Value::String(s)) if s == "true");
        identity(&p.name, claims.sub, info.email.as_deref(), verified)
    }

    async fn github_identity(
        &self,
        p: &ProviderConfig,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Identity, OAuthError> {
        let secret = p.client_secret.as_ref().map(|s| s.expose_secret()).unwrap_or_default();
        let form = [
            ("client_id", p.client_id.as_str()),
            ("client_secret", secret),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let url = format!("{}/login/oauth/access_token", p.issuer);
        let tokens: TokenResponse = self.http.post_form(&url, &form, None).await?;
        if let Some(e) = tokens.error {
            return Err(OAuthError::Denied(e.chars().take(64).collect()));
        }
        let access = tokens.access_token.ok_or_else(|| OAuthError::InvalidToken("no access_token".to_owned()))?;
        let user: GitHubUser = self.http.get_json(&format!("{}/user", p.api_url), Some(&access)).await?;
        let emails: Vec<GitHubEmail> = self.http.get_json(&format!("{}/user/emails", p.api_url), Some(&access)).await?;
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
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let row = tx.user_by_id(user).await?.ok_or(OAuthError::SessionChanged)?;
        self.link_in(&mut tx, user, &identity.provider, &identity.subject, now).await?;
        let meta = json!({ "provider": identity.provider, "proof": "session" });
        self.core
            .audit(&mut tx, &Actor::user(user, client), "user.provider_linked", Some((user, &row.email)), meta)
            .await?;
        tx.commit().await?;
        self.core.forget_user(user);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_urls_keep_existing_queries() {
        assert_eq!(with_query("https://idp/auth", &[("a", "1 2")]), "https://idp/auth?a=1+2");
        assert_eq!(with_query("https://idp/auth?x=y", &[("a", "b")]), "https://idp/auth?x=y&a=b");
    }
}
