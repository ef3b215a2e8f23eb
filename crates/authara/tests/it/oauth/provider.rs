//! A small OpenID provider in the test process: discovery, a JWKS with the fixed test key
//! (`fixtures/oidc_test_key.pem`), an authorization endpoint that answers at once with a code
//! for the identity the test chose, a token endpoint that checks the PKCE verifier and signs
//! RS256 ID tokens, and userinfo. Tests also sign Google-style ID tokens with [`Provider::id_token`].
//! Failure modes (token endpoint down or slow, wrong nonce) are switched per test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

pub const KEY: &[u8] = include_bytes!("../fixtures/oidc_test_key.pem");
pub const OTHER_KEY: &[u8] = include_bytes!("../fixtures/oidc_other_key.pem");
pub const JWKS: &str = include_str!("../fixtures/oidc_test_jwks.json");
pub const KID: &str = "test-key-1";
pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret";

/// Who signs in at the provider next.
#[derive(Debug, Clone)]
pub struct Person {
    pub sub: String,
    pub email: String,
    pub verified: bool,
}

impl Person {
    pub fn new(sub: &str, email: &str) -> Self {
        Person { sub: sub.to_owned(), email: email.to_owned(), verified: true }
    }
}

/// How the token endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    Normal,
    /// 500 from the token endpoint.
    Down,
    /// Answers after the server's provider timeout.
    Slow,
    /// Signs the ID token with another nonce.
    WrongNonce,
    /// Refuses the code: 400 `invalid_grant`.
    Refuse,
    /// Redirects (307) to `/token-moved`, which would answer as the token endpoint does.
    Moved,
    /// Userinfo answers for another subject than the ID token's.
    UserinfoOtherSubject,
    /// The ID token is signed with HS256 under the client secret (a symmetric algorithm).
    Hs256,
    /// The discovery document names another issuer than the configured one.
    OtherIssuer,
}

struct Pending {
    person: Person,
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

struct Inner {
    base: String,
    next: Mutex<Person>,
    mode: Mutex<TokenMode>,
    codes: Mutex<HashMap<String, Pending>>,
    jwks_hits: AtomicUsize,
    token_hits: AtomicUsize,
    access: Mutex<HashMap<String, Person>>,
}

/// A running provider; dropped with the test runtime.
#[derive(Clone)]
pub struct Provider(Arc<Inner>);

impl Provider {
    pub async fn start() -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Inner {
            base,
            next: Mutex::new(Person::new("subject-1", "first@example.com")),
            mode: Mutex::new(TokenMode::Normal),
            codes: Mutex::default(),
            jwks_hits: AtomicUsize::new(0),
            token_hits: AtomicUsize::new(0),
            access: Mutex::default(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/token-moved", post(token_moved))
            .route("/userinfo", get(userinfo))
            // GitHub's OAuth endpoints and API (GitHub is OAuth 2 without OpenID).
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(github_token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider(inner)
    }

    /// The environment of an app with this provider as generic provider `stub` and as Google.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTHARA_OAUTH_PROVIDERS", "google,stub".to_owned()),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
            ("AUTHARA_OAUTH_GOOGLE_ISSUER", self.0.base.clone()),
            ("AUTHARA_OAUTH_STUB_ISSUER", self.0.base.clone()),
            ("AUTHARA_OAUTH_STUB_CLIENT_ID", CLIENT_ID.to_owned()),
            ("AUTHARA_OAUTH_STUB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("AUTHARA_OAUTH_STUB_DISPLAY_NAME", "Stub ID".to_owned()),
        ]
    }

    /// The environment of an app with this provider as GitHub (web and API at the same address).
    pub fn github_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTHARA_OAUTH_PROVIDERS", "github".to_owned()),
            ("AUTHARA_OAUTH_GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
            ("AUTHARA_OAUTH_GITHUB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("AUTHARA_OAUTH_GITHUB_URL", self.0.base.clone()),
            ("AUTHARA_OAUTH_GITHUB_API_URL", self.0.base.clone()),
        ]
    }

    pub fn sign_in_as(&self, person: Person) {
        *self.0.next.lock().unwrap() = person;
    }

    pub fn set_mode(&self, mode: TokenMode) {
        *self.0.mode.lock().unwrap() = mode;
    }

    pub fn jwks_hits(&self) -> usize {
        self.0.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn token_hits(&self) -> usize {
        self.0.token_hits.load(Ordering::SeqCst)
    }

    /// An RS256 ID token with these claims over the defaults (iss, aud, exp in 5 min, sub,
    /// email, email_verified), signed with `key` under `kid`.
    pub fn id_token_with(&self, claims: Value, key: &[u8], kid: &str) -> String {
        use authara::clock::Clock as _;
        let now = authara::clock::SystemClock.now_ms() / 1000;
        let mut c = json!({
            "iss": self.0.base, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
            "sub": "google-sub-1", "email": "g@example.com", "email_verified": true,
        });
        for (k, v) in claims.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &c, &jsonwebtoken::EncodingKey::from_rsa_pem(key).unwrap()).unwrap()
    }

    /// An ID token with the test key.
    pub fn id_token(&self, claims: Value) -> String {
        self.id_token_with(claims, KEY, KID)
    }
}

async fn discovery(State(s): State<Arc<Inner>>) -> Response {
    let b = &s.base;
    let issuer = if *s.mode.lock().unwrap() == TokenMode::OtherIssuer { "https://issuer.example.net" } else { b };
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "jwks_uri": format!("{b}/jwks"),
        "userinfo_endpoint": format!("{b}/userinfo"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
    .into_response()
}

async fn jwks(State(s): State<Arc<Inner>>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    ([("content-type", "application/json")], JWKS).into_response()
}

/// Consent is implied: redirects back at once with a code (or `error` when asked to).
async fn authorize(State(s): State<Arc<Inner>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("client_id"), CLIENT_ID);
    assert_eq!(get("code_challenge_method"), "S256");
    assert!(!get("state").is_empty() && get("code_challenge").len() == 43);
    let redirect_uri = get("redirect_uri");
    let code = uuid::Uuid::new_v4().simple().to_string();
    let person = s.next.lock().unwrap().clone();
    s.codes.lock().unwrap().insert(
        code.clone(),
        Pending { person, nonce: get("nonce"), challenge: get("code_challenge"), redirect_uri: redirect_uri.clone() },
    );
    let enc = authara::services::return_to::encode;
    Redirect::to(&format!("{redirect_uri}?code={code}&state={}", enc(&get("state")))).into_response()
}

async fn token(
    State(s): State<Arc<Inner>>,
    headers: axum::http::HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    s.token_hits.fetch_add(1, Ordering::SeqCst);
    let mode = *s.mode.lock().unwrap();
    match mode {
        TokenMode::Down => return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        TokenMode::Slow => tokio::time::sleep(Duration::from_secs(15)).await,
        TokenMode::Refuse => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
        }
        TokenMode::Moved => {
            return (StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, "/token-moved")]).into_response();
        }
        TokenMode::Normal
        | TokenMode::WrongNonce
        | TokenMode::UserinfoOtherSubject
        | TokenMode::Hs256
        | TokenMode::OtherIssuer => {}
    }
    answer_token(s, mode, headers, f)
}

/// Where `TokenMode::Moved` sends token requests: a client that followed would sign in.
async fn token_moved(
    State(s): State<Arc<Inner>>,
    headers: axum::http::HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    answer_token(s, TokenMode::Normal, headers, f)
}

fn answer_token(
    s: Arc<Inner>,
    mode: TokenMode,
    headers: axum::http::HeaderMap,
    f: HashMap<String, String>,
) -> Response {
    let basic =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let Some(p) = s.codes.lock().unwrap().remove(f.get("code").map(String::as_str).unwrap_or_default()) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    if challenge != p.challenge || f.get("redirect_uri") != Some(&p.redirect_uri) {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    }
    let nonce = if mode == TokenMode::WrongNonce { "another-nonce".to_owned() } else { p.nonce };
    let provider = Provider(s.clone());
    // Like oidc-provider: profile claims only at userinfo.
    let claims = json!({"sub": p.person.sub, "nonce": nonce, "email": null, "email_verified": null});
    let id_token = if mode == TokenMode::Hs256 {
        let mut c = claims;
        let now = authara::clock::Clock::now_ms(&authara::clock::SystemClock) / 1000;
        c["iss"] = json!(s.base);
        c["aud"] = json!(CLIENT_ID);
        c["iat"] = json!(now);
        c["exp"] = json!(now + 300);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(&header, &c, &jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes())).unwrap()
    } else {
        provider.id_token(claims)
    };
    let access = uuid::Uuid::new_v4().simple().to_string();
    s.access.lock().unwrap().insert(access.clone(), p.person);
    axum::Json(json!({"access_token": access, "token_type": "Bearer", "id_token": id_token, "expires_in": 300}))
        .into_response()
}

async fn userinfo(State(s): State<Arc<Inner>>, headers: axum::http::HeaderMap) -> Response {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let person = token.and_then(|t| s.access.lock().unwrap().get(t).cloned());
    let sub = |p: &Person| {
        if *s.mode.lock().unwrap() == TokenMode::UserinfoOtherSubject {
            "someone-else".to_owned()
        } else {
            p.sub.clone()
        }
    };
    match person {
        Some(p) => axum::Json(json!({"sub": sub(&p), "email": p.email, "email_verified": p.verified})).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// GitHub's token endpoint: client credentials in the form, the PKCE verifier checked.
async fn github_token(State(s): State<Arc<Inner>>, Form(f): Form<HashMap<String, String>>) -> Response {
    s.token_hits.fetch_add(1, Ordering::SeqCst);
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return axum::Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    let Some(p) = s.codes.lock().unwrap().remove(f.get("code").map(String::as_str).unwrap_or_default()) else {
        return axum::Json(json!({"error": "bad_verification_code"})).into_response();
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    if challenge != p.challenge {
        return axum::Json(json!({"error": "bad_verification_code"})).into_response();
    }
    let access = uuid::Uuid::new_v4().simple().to_string();
    s.access.lock().unwrap().insert(access.clone(), p.person);
    axum::Json(json!({"access_token": access, "token_type": "bearer", "scope": "read:user,user:email"})).into_response()
}

fn github_person(s: &Inner, headers: &axum::http::HeaderMap) -> Option<Person> {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))?;
    s.access.lock().unwrap().get(token).cloned()
}

async fn github_user(State(s): State<Arc<Inner>>, headers: axum::http::HeaderMap) -> Response {
    match github_person(&s, &headers) {
        Some(p) => axum::Json(json!({"id": p.sub.parse::<u64>().unwrap(), "login": "octo"})).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// A verified secondary address first: only the primary one counts.
async fn github_emails(State(s): State<Arc<Inner>>, headers: axum::http::HeaderMap) -> Response {
    match github_person(&s, &headers) {
        Some(p) => axum::Json(json!([
            {"email": "secondary@example.com", "primary": false, "verified": true},
            {"email": p.email, "primary": true, "verified": p.verified},
        ]))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
