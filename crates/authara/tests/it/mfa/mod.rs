//! Two-step verification through the real HTTP server: the app factor and its recovery codes,
//! the second step of every first factor, step-up, the policies, the pages, and what never
//! leaves the server (the secret, the codes).

mod api;
mod first_factors;
mod pages;
mod policy;
mod secrecy;

use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{Res, TestApp, TestClient};

pub use crate::harness::PW;

/// What the tests allow a user per minute: the limit has a test of its own.
pub const NO_LIMIT: (&str, &str) = ("AUTHARA_RATE_LIMIT_MFA_USER_LIMIT", "100000");

/// The app's code `offset` time steps from `now_ms` (RFC 6238, as any authenticator app).
pub fn code_at(secret: &[u8], now_ms: i64, offset: i64) -> String {
    let step = now_ms.div_euclid(1000).div_euclid(30) + offset;
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret.to_vec(), None, String::new());
    totp.generate(u64::try_from(step * 30).unwrap())
}

/// A code the app does not show now (none of the three steps accepted at `now_ms`).
pub fn wrong_code(secret: &[u8], now_ms: i64) -> String {
    let good: Vec<String> = (-1..=1).map(|o| code_at(secret, now_ms, o)).collect();
    (0..4).map(|i| format!("{i}{i}{i}{i}{i}{i}")).find(|c| !good.contains(c)).unwrap()
}

/// The secret as the setup answer (or the page) shows it, in base32.
pub fn decode(base32: &str) -> Vec<u8> {
    totp_rs::Secret::Encoded(base32.replace(' ', "")).to_bytes().expect("a base32 secret")
}

/// An enrolled authenticator app: its secret and the recovery codes shown at enrolment.
pub struct Factor {
    pub secret: Vec<u8>,
    pub recovery: Vec<String>,
}

impl Factor {
    /// The code the app shows after the clock moves on one step (each step is good once).
    pub fn next(&self, app: &TestApp) -> String {
        app.clock.advance(std::time::Duration::from_secs(30));
        code_at(&self.secret, app.clock_now(), 0)
    }
}

/// Turns the authenticator app on for the signed-in client `c`, through the API.
pub async fn enrol(app: &TestApp, c: &TestClient) -> Factor {
    let res = c.post("/auth/api/v1/mfa/totp/setup").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let base32 = res.json()["secret"].as_str().unwrap().to_owned();
    assert!(res.json()["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"), "{}", res.text());
    let secret = decode(&base32);
    assert_eq!(secret.len(), 20, "160 bits");
    let res = c
        .json(Method::POST, "/auth/api/v1/mfa/totp/confirm", &json!({"code": code_at(&secret, app.clock_now(), 0)}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let recovery: Vec<String> =
        res.json()["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(recovery.len(), 10);
    Factor { secret, recovery }
}

/// A new account with the app on; the client that enrolled it stays signed in.
pub async fn protected(app: &TestApp, email: &str) -> (TestClient, Factor) {
    let c = app.signed_in(email, PW).await;
    let f = enrol(app, &c).await;
    (c, f)
}

/// A password login on `c`: the answer.
pub async fn login(c: &TestClient, email: &str) -> Res {
    if c.cookie("authara_csrf").is_none() {
        c.fetch_csrf().await;
    }
    c.json(Method::POST, "/auth/api/v1/login", &json!({"email": email, "password": PW})).await
}

/// A password login on a new client that answers `mfa_required`: the client (holding the
/// `authara_mfa` cookie, no session) and the challenge id.
pub async fn waiting(app: &TestApp, email: &str) -> (TestClient, String) {
    let c = app.client();
    let res = login(&c, email).await;
    (c.clone(), challenge_of(&res))
}

/// The waiting sign-in of a `401 mfa_required` answer (checked: no session cookie was set).
pub fn challenge_of(res: &Res) -> String {
    assert_eq!((res.status, res.error_code().as_str()), (401, "mfa_required"), "{}", res.text());
    assert!(res.set_cookie("authara_access").is_none() && res.set_cookie("authara_refresh").is_none());
    assert!(res.set_cookie("authara_mfa").is_some(), "the binding cookie");
    res.json()["mfa"]["challenge_id"].as_str().unwrap().to_owned()
}

/// `POST /login/mfa` with a code.
pub async fn second(c: &TestClient, challenge: &str, code: &str) -> Res {
    c.json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": challenge, "code": code})).await
}

/// The payload of a JWT.
pub fn claims(token: &str) -> Value {
    crate::app::jwt_claims(token)
}

/// The `amr` of the client's access cookie.
pub fn amr_of(c: &TestClient) -> Vec<String> {
    let token = c.cookie("authara_access").expect("signed in");
    claims(&token)["amr"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Runs the email outbox until it is idle.
pub async fn send_mail(app: &TestApp) {
    crate::app::drain_mail(app).await;
}
