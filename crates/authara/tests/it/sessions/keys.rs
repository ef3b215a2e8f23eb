//! Signing keys: asymmetric signing, the JWKS document, and the algorithm choice.

use crate::app::TestApp;
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};

/// With EdDSA, tokens verify with nothing but the published JWKS.
async fn eddsa_tokens_verify_against_the_published_jwks(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_JWT_ALGORITHM", "EdDSA")]).await;
    assert!(app.db.data_dir().join("dev-ed25519.pem").exists(), "dev key generated in the data dir");
    let c = app.signed_in("ed@example.com", PW).await;
    let token = c.cookie("authara_access").unwrap();
    let jwks = c.get("/auth/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    assert!(jwks.headers["cache-control"].to_str().unwrap().contains("max-age"));
    let jwks = jwks.json();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );

    // What an application does: pick the key by kid and verify locally.
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["app"]);
    validation.set_issuer(&["authara"]);
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
    assert_eq!(data.claims["org_role"], "owner");
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);

    // The key survives a restart (never regenerated over an existing one).
    let (db, clock) = app.stop().await;
    let app = TestApp::start_on(db, &[("AUTHARA_JWT_ALGORITHM", "EdDSA")], Some(clock)).await;
    let again = app.client();
    again.set_cookie("authara_access", &token);
    assert_eq!(again.get("/auth/api/v1/user").await.status, 200);
}

// Security review finding: HS256 tokens were accepted under EdDSA without an explicit choice.
/// Under EdDSA, HS256 tokens verify only when that is chosen explicitly.
async fn hs256_tokens_under_eddsa_need_an_explicit_choice(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("hs@example.com", PW).await;
    let hs256 = c.cookie("authara_access").unwrap();
    let (db, clock) = app.stop().await;
    let app = TestApp::start_on(db, &[("AUTHARA_JWT_ALGORITHM", "EdDSA")], Some(clock)).await;
    let probe = app.client();
    probe.set_cookie("authara_access", &hs256);
    assert_eq!(probe.get("/auth/api/v1/user").await.status, 401, "HMAC keys verify nothing by default");
    let (db, clock) = app.stop().await;
    let app =
        TestApp::start_on(db, &[("AUTHARA_JWT_ALGORITHM", "EdDSA"), ("AUTHARA_JWT_ACCEPT_HS256", "true")], Some(clock))
            .await;
    let probe = app.client();
    probe.set_cookie("authara_access", &hs256);
    assert_eq!(probe.get("/auth/api/v1/user").await.status, 200, "accepted when chosen");
}

on_both_engines!(eddsa_tokens_verify_against_the_published_jwks, hs256_tokens_under_eddsa_need_an_explicit_choice,);
