use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use uuid::Uuid;

use super::*;

const K1: &str = "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
const NOW_S: i64 = 1_800_000_000;

struct ManualClock(AtomicI64);

impl ManualClock {
    fn at(s: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(s * 1000)))
    }
    fn advance(&self, d: Duration) {
        self.0.fetch_add(i64::try_from(d.as_millis()).unwrap(), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn secret(seed: u8) -> Vec<u8> {
    vec![seed; 32]
}

fn claims(iat: i64) -> serde_json::Value {
    serde_json::json!({
        "sid": Uuid::new_v4(), "org_id": Uuid::new_v4(), "org_role": "owner", "roles": ["authara:admin"],
        "iss": "authara", "sub": Uuid::new_v4(), "aud": ["app"], "exp": iat + 600, "iat": iat
    })
}

fn hs256(kid: &str, key: &[u8], claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
}

fn k1() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(K1.split_once(':').unwrap().1).unwrap()
}

fn verifier(clock: Arc<ManualClock>) -> Verifier {
    Verifier::builder("authara").hs256_keys(K1.parse().unwrap()).clock(clock).build().unwrap()
}

#[tokio::test]
async fn a_servers_token_verifies_into_typed_claims() {
    let c = claims(NOW_S);
    let v = verifier(ManualClock::at(NOW_S));
    let got = v.verify(&hs256("k1", &k1(), &c)).await.unwrap();
    assert_eq!(got.sub.to_string(), c["sub"].as_str().unwrap());
    assert_eq!(got.org_role, crate::OrgRole::Owner);
    assert!(got.has_role(crate::PlatformRole::Admin));
}

#[tokio::test]
async fn expiry_is_checked_with_the_leeway_and_on_every_call() {
    let clock = ManualClock::at(NOW_S);
    let v = verifier(clock.clone());
    let token = hs256("k1", &k1(), &claims(NOW_S));
    assert!(v.verify(&token).await.is_ok());
    clock.advance(Duration::from_secs(600 + 60));
    assert!(v.verify(&token).await.is_ok(), "within the 60 s leeway");
    clock.advance(Duration::from_secs(1));
    assert_eq!(v.verify(&token).await, Err(VerifyError::Expired), "the remembered token expires too");
    let strict = Verifier::builder("authara")
        .hs256_keys(K1.parse().unwrap())
        .leeway(Duration::ZERO)
        .clock(ManualClock::at(NOW_S + 601))
        .build()
        .unwrap();
    assert_eq!(strict.verify(&token).await, Err(VerifyError::Expired));
}

#[tokio::test]
async fn issuer_audience_and_claims_are_checked() {
    let v = verifier(ManualClock::at(NOW_S));
    let mut c = claims(NOW_S);
    c["iss"] = "someone-else".into();
    assert_eq!(v.verify(&hs256("k1", &k1(), &c)).await, Err(VerifyError::WrongIssuer));
    let mut c = claims(NOW_S);
    c["aud"] = serde_json::json!(["admin"]);
    assert_eq!(v.verify(&hs256("k1", &k1(), &c)).await, Err(VerifyError::WrongAudience));
    let admin = Verifier::builder("authara").hs256_keys(K1.parse().unwrap()).audience(Audience::Admin).build().unwrap();
    assert_eq!(admin.verify(&hs256("k1", &k1(), &claims(NOW_S))).await.err(), Some(VerifyError::WrongAudience));
    let mut c = claims(NOW_S);
    c["org_id"] = serde_json::json!(Uuid::nil());
    assert_eq!(v.verify(&hs256("k1", &k1(), &c)).await, Err(VerifyError::InvalidClaims));
    let mut c = claims(NOW_S);
    c["sid"] = "not-a-uuid".into();
    assert_eq!(v.verify(&hs256("k1", &k1(), &c)).await, Err(VerifyError::InvalidClaims));
}

#[tokio::test]
async fn forgeries_are_refused() {
    let v = verifier(ManualClock::at(NOW_S));
    let token = hs256("k1", &k1(), &claims(NOW_S));
    // Another secret under a known kid.
    assert_eq!(v.verify(&hs256("k1", &secret(9), &claims(NOW_S))).await, Err(VerifyError::BadSignature));
    // A changed payload.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut c: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    c["roles"] = serde_json::json!(["authara:admin", "authara:auditor"]);
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
    assert_eq!(v.verify(&parts.join(".")).await, Err(VerifyError::BadSignature));
    // alg: none, with and without a signature.
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1","typ":"JWT"}"#);
    assert!(v.verify(&format!("{none}.{}.", parts[1])).await.is_err());
    // Another algorithm for a known kid.
    let hs512 = {
        let mut h = Header::new(Algorithm::HS512);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(&h, &claims(NOW_S), &EncodingKey::from_secret(&k1())).unwrap()
    };
    assert_eq!(v.verify(&hs512).await, Err(VerifyError::UnsupportedAlgorithm));
    // Unknown kid, no kid, junk, and a token too long to read.
    assert_eq!(v.verify(&hs256("ghost", &k1(), &claims(NOW_S))).await, Err(VerifyError::UnknownKey));
    let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(NOW_S), &EncodingKey::from_secret(&k1()));
    assert_eq!(v.verify(&no_kid.unwrap()).await, Err(VerifyError::Malformed));
    assert_eq!(v.verify("not.a.jwt").await, Err(VerifyError::Malformed));
    assert_eq!(v.verify("").await, Err(VerifyError::Malformed));
    assert_eq!(v.verify(&"a".repeat(9000)).await, Err(VerifyError::Malformed));
}

#[tokio::test]
async fn an_hmac_kid_never_verifies_eddsa_and_an_eddsa_kid_never_hmac() {
    // The classic confusion: an HS256 token keyed with an Ed25519 public key, under its kid.
    let public = [7u8; 32];
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), K1).unwrap();
    let v = Verifier::builder("authara").hs256_keys_file(file.path()).clock(ManualClock::at(NOW_S)).build().unwrap();
    v.refresh_keys().await.unwrap();
    let forged = hs256(&format!("ed-{x}"), &public, &claims(NOW_S));
    assert_eq!(v.verify(&forged).await, Err(VerifyError::UnknownKey));
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let b64 = header_b64(&header);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims(NOW_S).to_string());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0u8; 64]);
    assert_eq!(v.verify(&format!("{b64}.{body}.{sig}")).await, Err(VerifyError::UnknownKey));
}

fn header_b64(h: &Header) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_string(h).unwrap())
}

#[tokio::test]
async fn a_key_file_is_reread_for_a_new_kid_within_the_refetch_bound() {
    let clock = ManualClock::at(NOW_S);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), K1).unwrap();
    let v = Verifier::builder("authara").hs256_keys_file(file.path()).clock(clock.clone()).build().unwrap();
    assert!(v.verify(&hs256("k1", &k1(), &claims(NOW_S))).await.is_ok());
    assert_eq!(v.key_fetches(), 1, "read at the first verification");

    // The secret is rotated in place: k2 added.
    let k2 = base64::engine::general_purpose::STANDARD.encode(secret(2));
    std::fs::write(file.path(), format!("{K1},k2:{k2}")).unwrap();
    let new_token = hs256("k2", &secret(2), &claims(NOW_S));
    assert_eq!(v.verify(&new_token).await, Err(VerifyError::UnknownKey), "within 30 s of the last read");
    assert_eq!(v.key_fetches(), 1);
    clock.advance(Duration::from_secs(30));
    assert!(v.verify(&new_token).await.is_ok(), "picked up without a restart");
    assert_eq!(v.key_fetches(), 2);

    // A flood of made-up kids within the interval reads nothing.
    for i in 0..500 {
        let _ = v.verify(&hs256(&format!("ghost-{i}"), &secret(3), &claims(NOW_S))).await;
    }
    assert_eq!(v.key_fetches(), 2);
    clock.advance(Duration::from_secs(31));
    for i in 0..500 {
        let _ = v.verify(&hs256(&format!("ghost-{i}"), &secret(3), &claims(NOW_S))).await;
    }
    assert_eq!(v.key_fetches(), 3, "one read per interval, whatever the flood");
}

#[tokio::test]
async fn a_removed_key_stops_verifying_after_the_maximum_age() {
    let clock = ManualClock::at(NOW_S);
    let file = tempfile::NamedTempFile::new().unwrap();
    let k2 = base64::engine::general_purpose::STANDARD.encode(secret(2));
    std::fs::write(file.path(), format!("{K1},k2:{k2}")).unwrap();
    let v = Verifier::builder("authara")
        .hs256_keys_file(file.path())
        .max_key_age(Duration::from_secs(120))
        .clock(clock.clone())
        .build()
        .unwrap();
    let old = hs256("k1", &k1(), &claims(NOW_S));
    assert!(v.verify(&old).await.is_ok());
    std::fs::write(file.path(), format!("k2:{k2}")).unwrap();
    clock.advance(Duration::from_secs(119));
    assert!(v.verify(&old).await.is_ok(), "until the keys are re-read");
    clock.advance(Duration::from_secs(1));
    assert_eq!(v.verify(&old).await, Err(VerifyError::UnknownKey), "remembered tokens of the key go with it");
    assert!(v.verify(&hs256("k2", &secret(2), &claims(NOW_S + 120))).await.is_ok());

    // A failed re-read keeps the keys in hand.
    std::fs::remove_file(file.path()).unwrap();
    clock.advance(Duration::from_secs(121));
    assert!(v.verify(&hs256("k2", &secret(2), &claims(NOW_S + 240))).await.is_ok());
    assert!(v.refresh_keys().await.is_err());
}

#[tokio::test]
async fn remembered_tokens_are_bounded() {
    let v = Verifier::builder("authara")
        .hs256_keys(K1.parse().unwrap())
        .verified_cache_size(8)
        .clock(ManualClock::at(NOW_S))
        .build()
        .unwrap();
    for _ in 0..100 {
        assert!(v.verify(&hs256("k1", &k1(), &claims(NOW_S))).await.is_ok());
    }
    assert!(v.inner.verified.len() <= 8);
    let _ = v.verify(&hs256("k1", &secret(9), &claims(NOW_S))).await;
    assert!(v.inner.verified.len() <= 8, "refused tokens are not remembered");
}

#[test]
fn a_builder_without_keys_or_with_a_bad_url_is_refused() {
    assert!(matches!(Verifier::builder("authara").build(), Err(BuildError::NoKeys)));
    assert!(matches!(Verifier::builder("").hs256_keys(K1.parse().unwrap()).build(), Err(BuildError::Issuer)));
    for url in ["/auth/.well-known/jwks.json", "ftp://x/jwks", "not a url"] {
        assert!(matches!(Verifier::builder("authara").jwks_url(url).build(), Err(BuildError::JwksUrl)), "{url}");
    }
}
