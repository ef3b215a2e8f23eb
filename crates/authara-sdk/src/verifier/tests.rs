use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair as _;
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
    assert_eq!(v.verify(&format!("{none}.{}.", parts[1])).await, Err(VerifyError::Malformed));
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

/// A token assembled by hand: `header` and `claims` as given, signed (HS256) with `key` over
/// exactly the segments written, so that only what a case changes is wrong.
fn hand_signed(header: &str, claims: &str, key: &[u8]) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn segments(token: &str) -> [String; 3] {
    let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts.try_into().unwrap()
}

#[tokio::test]
async fn headers_that_cannot_be_read_are_malformed() {
    let v = verifier(ManualClock::at(NOW_S));
    let c = claims(NOW_S).to_string();
    let [header, body, sig] = segments(&hs256("k1", &k1(), &claims(NOW_S)));
    assert!(v.verify(&format!("{header}.{body}.{sig}")).await.is_ok(), "the pieces verify as they are");
    let cases = [
        (format!("{header}.{body}"), "two segments"),
        (format!("{header}.{body}.{sig}.{sig}"), "four segments"),
        (format!("{header}.{body}.{sig}.{sig}.{sig}"), "five segments (JWE)"),
        (format!(".{body}.{sig}"), "an empty header"),
        (format!("{header}=.{body}.{sig}"), "a padded header"),
        (format!("{}.{body}.{sig}", header.replace('J', "+")), "standard, not url-safe, base64"),
        (format!("!!!!.{body}.{sig}"), "a header that is not base64"),
        (format!("{}.{body}.{sig}", URL_SAFE_NO_PAD.encode("not json")), "a header that is not JSON"),
        (hand_signed(r#"{"alg":"none","kid":"k1"}"#, &c, &k1()), "alg none, signed"),
        (format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#)), "alg none, unsigned"),
        (hand_signed(r#"{"alg":"hs256","kid":"k1"}"#, &c, &k1()), "an algorithm name in the wrong case"),
        (hand_signed(r#"{"kid":"k1"}"#, &c, &k1()), "no alg"),
        (hand_signed(r#"{"alg":"HS256"}"#, &c, &k1()), "no kid"),
        (hand_signed(r#"{"alg":"HS256","kid":""}"#, &c, &k1()), "an empty kid"),
        (hand_signed(r#"{"alg":"HS256","kid":1}"#, &c, &k1()), "a kid that is not a string"),
        (hand_signed(r#"{"alg":"HS256","kid":"k1","crit":["exp"]}"#, &c, &k1()), "a critical extension"),
        (hand_signed(r#"{"alg":"HS256","kid":"k1","b64":false,"crit":["b64"]}"#, &c, &k1()), "unencoded payload"),
    ];
    for (token, case) in cases {
        assert_eq!(v.verify(&token).await, Err(VerifyError::Malformed), "{case}");
    }
    assert!(v.verify(&hand_signed(r#"{"alg":"HS256","kid":"k1","crit":null}"#, &c, &k1())).await.is_ok());
    for alg in ["HS384", "HS512", "RS256", "PS256", "ES256"] {
        let token = hand_signed(&format!(r#"{{"alg":"{alg}","kid":"k1"}}"#), &c, &k1());
        assert_eq!(v.verify(&token).await, Err(VerifyError::UnsupportedAlgorithm), "{alg}");
    }
}

#[tokio::test]
async fn signatures_and_payloads_that_were_not_signed_are_refused() {
    let v = verifier(ManualClock::at(NOW_S));
    let [header, body, sig] = segments(&hs256("k1", &k1(), &claims(NOW_S)));
    // The last character of a 32-byte tag carries 2 unused bits: another value that decodes
    // to the same bytes is not the tag's encoding.
    const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = URL_SAFE.iter().position(|&b| b == *sig.as_bytes().last().unwrap()).unwrap();
    let loose = format!("{}{}", &sig[..sig.len() - 1], char::from(URL_SAFE[last | 1]));
    let mut c: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&body).unwrap()).unwrap();
    c["roles"] = serde_json::json!(["authara:admin", "authara:auditor"]);
    let tampered = URL_SAFE_NO_PAD.encode(c.to_string());
    let cases = [
        (format!("{header}.{body}."), "no signature"),
        (format!("{header}.{body}.{sig}="), "a padded signature"),
        (format!("{header}.{body}.{loose}"), "a signature with its unused bits set"),
        (format!("{header}.{body}.{}", &sig[..40]), "a truncated signature"),
        (format!("{header}.{body}.!!!!"), "a signature that is not base64"),
        (format!("{header}.{tampered}.{sig}"), "a changed payload"),
        (format!("{header}.{body}x.{sig}"), "a payload with one more character"),
        (format!("{header}.!!!!.{sig}"), "a payload that is not base64"),
        (hs256("k1", &secret(9), &claims(NOW_S)), "another secret under a known kid"),
    ];
    for (token, case) in cases {
        assert_eq!(v.verify(&token).await, Err(VerifyError::BadSignature), "{case}");
    }
}

#[tokio::test]
async fn signed_claims_without_the_registered_ones_are_refused() {
    let v = verifier(ManualClock::at(NOW_S));
    let header = r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#;
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut c = claims(NOW_S);
        edit(c.as_object_mut().unwrap());
        hand_signed(header, &c.to_string(), &k1())
    };
    assert!(v.verify(&with(&|_| {})).await.is_ok());
    let single_aud = v.verify(&with(&|c| drop(c.insert("aud".into(), "app".into())))).await.unwrap();
    assert_eq!(single_aud.aud, ["app"], "a single-string aud is accepted");
    assert_eq!(v.verify(&with(&|c| drop(c.remove("aud")))).await, Err(VerifyError::WrongAudience));
    assert_eq!(
        v.verify(&with(&|c| drop(c.insert("aud".into(), serde_json::json!([]))))).await,
        Err(VerifyError::WrongAudience)
    );
    assert_eq!(
        v.verify(&with(&|c| drop(c.insert("aud".into(), "admin".into())))).await,
        Err(VerifyError::WrongAudience)
    );
    assert_eq!(v.verify(&with(&|c| drop(c.remove("iss")))).await, Err(VerifyError::InvalidClaims));
    assert_eq!(
        v.verify(&with(&|c| drop(c.insert("iss".into(), serde_json::json!(["authara"]))))).await,
        Err(VerifyError::InvalidClaims),
        "one issuer, as a string"
    );
    assert_eq!(v.verify(&with(&|c| drop(c.remove("exp")))).await, Err(VerifyError::InvalidClaims));
    assert_eq!(v.verify(&with(&|c| drop(c.remove("iat")))).await, Err(VerifyError::InvalidClaims));
    assert_eq!(
        v.verify(&with(&|c| drop(c.insert("exp".into(), "soon".into())))).await,
        Err(VerifyError::InvalidClaims)
    );
    for not_claims in ["[1,2]", "null", "\"text\"", "{", "not json"] {
        assert_eq!(
            v.verify(&hand_signed(header, not_claims, &k1())).await,
            Err(VerifyError::InvalidClaims),
            "{not_claims}"
        );
    }
}

/// Serves `jwks` on 127.0.0.1 for the test's lifetime; the document's URL.
async fn serve_jwks(jwks: serde_json::Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{}", listener.local_addr().unwrap(), crate::JWKS_PATH);
    let app = axum::Router::new()
        .route(crate::JWKS_PATH, axum::routing::get(move || std::future::ready(axum::Json(jwks.clone()))));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A new Ed25519 key: its signing key for jsonwebtoken and its public key.
fn ed25519() -> (EncodingKey, [u8; 32]) {
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    (EncodingKey::from_ed_der(pkcs8.as_ref()), pair.public_key().as_ref().try_into().unwrap())
}

fn eddsa(kid: &str, key: &EncodingKey, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn an_hmac_kid_never_verifies_eddsa_and_an_eddsa_kid_never_hmac() {
    // One verifier with both: HMAC keys k1 and hs-only, Ed25519 keys k1 (the same kid) and ed-only.
    let (signing, public) = ed25519();
    let x = URL_SAFE_NO_PAD.encode(public);
    let okp = |kid: &str| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
    let url = serve_jwks(serde_json::json!({"keys": [okp("k1"), okp("ed-only")]})).await;
    let hs_only = base64::engine::general_purpose::STANDARD.encode(secret(5));
    let v = Verifier::builder("authara")
        .hs256_keys(format!("{K1},hs-only:{hs_only}").parse().unwrap())
        .jwks_url(url)
        .clock(ManualClock::at(NOW_S))
        .build()
        .unwrap();
    v.refresh_keys().await.unwrap();
    let c = claims(NOW_S);
    assert!(v.verify(&hs256("k1", &k1(), &c)).await.is_ok());
    assert!(v.verify(&eddsa("k1", &signing, &c)).await.is_ok());
    assert!(v.verify(&eddsa("ed-only", &signing, &c)).await.is_ok());

    // The classic confusion: HS256 keyed with the published public key, as bytes or as text.
    for secret in [public.to_vec(), x.clone().into_bytes()] {
        assert_eq!(v.verify(&hs256("k1", &secret, &c)).await, Err(VerifyError::BadSignature), "k1's HMAC key");
        assert_eq!(v.verify(&hs256("ed-only", &secret, &c)).await, Err(VerifyError::UnknownKey));
    }
    // An Ed25519 key of the attacker's under the kids of the verifier.
    let (other, _) = ed25519();
    assert_eq!(v.verify(&eddsa("k1", &other, &c)).await, Err(VerifyError::BadSignature));
    assert_eq!(v.verify(&eddsa("hs-only", &other, &c)).await, Err(VerifyError::UnknownKey));
    assert_eq!(v.verify(&eddsa("hs-only", &signing, &c)).await, Err(VerifyError::UnknownKey));
    // An EdDSA header over an HMAC tag of k1's secret.
    let [_, body, tag] = segments(&hs256("k1", &k1(), &c));
    let ed_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k1"}"#);
    assert_eq!(v.verify(&format!("{ed_header}.{body}.{tag}")).await, Err(VerifyError::BadSignature));
    // EdDSA signatures that are not one.
    let [header, body, sig] = segments(&eddsa("k1", &signing, &c));
    for bad in [String::new(), format!("{sig}="), "!!!!".to_owned(), sig[..sig.len() - 2].to_owned()] {
        assert_eq!(v.verify(&format!("{header}.{body}.{bad}")).await, Err(VerifyError::BadSignature), "{bad:?}");
    }
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
