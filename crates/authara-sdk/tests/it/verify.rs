//! The verifier against tokens of the real server, signed with HS256 and with EdDSA: claims,
//! expiry, audience, and keys that rotate or are withdrawn while the application runs.

use std::time::Duration;

use authara_sdk::{Audience, OrgRole, PlatformRole, VerifyError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::harness::{
    Alg, K1, K2, ManualClock, Server, ed25519_pem, eventually, jwks_requests, on_both_algorithms, verifier_for,
};

async fn a_login_token_verifies_into_its_claims(alg: Alg) {
    let server = Server::start(alg).await;
    let signed_up = server.sign_up("claims@example.com").await;
    let session = server.log_in("claims@example.com", "app").await;
    let verifier = verifier_for(&server, alg).build().unwrap();
    let claims = verifier.verify(&session.access_token).await.unwrap();
    assert_eq!(claims.sub.to_string(), signed_up.user_id);
    assert_eq!(claims.iss, crate::harness::ISSUER);
    assert_eq!(claims.aud, ["app"]);
    assert_eq!(claims.org_role, OrgRole::Owner, "the first organization is the user's own");
    assert!(claims.roles.is_empty());
    assert!(!claims.sid.is_nil() && !claims.org_id.is_nil());
    assert_eq!(claims.amr.as_deref(), Some(&["pwd".to_owned()][..]), "a password sign-in, one factor");
    assert!(claims.authenticated_with("pwd") && !claims.authenticated_with("otp"));
    let auth_time = claims.auth_time.expect("the server says when the user signed in");
    assert!((claims.iat - 5..=claims.iat).contains(&auth_time), "signed in just now: {auth_time} vs {}", claims.iat);
    assert_ne!(
        claims.sid,
        verifier.verify(&signed_up.access_token).await.unwrap().sid,
        "the login is a session of its own"
    );
    let expected_fetches = u64::from(alg == Alg::EdDsa);
    assert_eq!(verifier.key_fetches(), expected_fetches, "the JWKS is fetched once, HS256 keys never");
}

async fn once_warm_no_request_reaches_the_server(alg: Alg) {
    let server = Server::start(alg).await;
    let verifier = verifier_for(&server, alg).build().unwrap();
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(server.sign_up(&format!("warm{i}@example.com")).await.access_token);
    }
    let before = jwks_requests(&server);
    for _ in 0..50 {
        for t in &tokens {
            assert!(verifier.verify(t).await.is_ok());
        }
    }
    assert_eq!(verifier.key_fetches(), u64::from(alg == Alg::EdDsa));
    assert_served(&server, before + usize::from(alg == Alg::EdDsa)).await;
}

async fn a_token_expires_after_its_lifetime_and_the_leeway(alg: Alg) {
    let server = Server::start(alg).await;
    let token = server.sign_up("expiry@example.com").await.access_token;
    let clock = ManualClock::now();
    let verifier = verifier_for(&server, alg).clock(clock.clone()).leeway(Duration::from_secs(30)).build().unwrap();
    assert!(verifier.verify(&token).await.is_ok());
    // AUTHARA_ACCESS_TOKEN_TTL_MINUTES defaults to 10.
    clock.advance(Duration::from_secs(600 + 25));
    assert!(verifier.verify(&token).await.is_ok(), "inside the leeway");
    clock.advance(Duration::from_secs(10));
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Expired));
}

async fn the_audience_and_issuer_must_match(alg: Alg) {
    let server = Server::start(alg).await;
    let app_token = server.sign_up("admin@example.com").await.access_token;
    server.cli(&["admin", "grant", "--email", "admin@example.com"]).await;
    let admin_token = server.log_in("admin@example.com", "admin").await.access_token;

    let app = verifier_for(&server, alg).build().unwrap();
    let admin = verifier_for(&server, alg).audience(Audience::Admin).build().unwrap();
    assert_eq!(admin.verify(&app_token).await, Err(VerifyError::WrongAudience));
    assert_eq!(app.verify(&admin_token).await, Err(VerifyError::WrongAudience));
    let claims = admin.verify(&admin_token).await.unwrap();
    assert!(claims.has_role(PlatformRole::Admin));
    assert_eq!(claims.aud, ["admin"]);

    let other = match alg {
        Alg::Hs256 => authara_sdk::Verifier::builder("someone-else").hs256_keys(K1.parse().unwrap()),
        Alg::EdDsa => authara_sdk::Verifier::builder("someone-else").jwks_url(server.jwks_url()),
    };
    assert_eq!(other.build().unwrap().verify(&app_token).await, Err(VerifyError::WrongIssuer));
}

async fn a_new_kid_is_picked_up_without_a_restart(alg: Alg) {
    let server = Server::start(alg).await;
    let signed_up = server.sign_up("rotate@example.com").await;
    let before = signed_up.access_token;
    let clock = ManualClock::now();
    let keys_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys_file.path(), K1).unwrap();
    let builder = match alg {
        Alg::Hs256 => authara_sdk::Verifier::builder(crate::harness::ISSUER).hs256_keys_file(keys_file.path()),
        Alg::EdDsa => verifier_for(&server, alg),
    };
    let verifier = builder.clock(clock.clone()).build().unwrap();
    assert!(verifier.verify(&before).await.is_ok());

    // The server rotates: a new active key (HS256: k2 beside k1, in the shared file too;
    // EdDSA: a new Ed25519 key, whose kid only its JWKS announces).
    let mut env = server.env.clone();
    match alg {
        Alg::Hs256 => {
            env.insert("AUTHARA_JWT_KEYS".into(), format!("{K1},{K2}"));
            env.insert("AUTHARA_JWT_ACTIVE_KEY_ID".into(), "k2".into());
            std::fs::write(keys_file.path(), format!("{K1}\n{K2}\n")).unwrap();
        }
        Alg::EdDsa => {
            env.insert("AUTHARA_JWT_EDDSA_PRIVATE_KEY".into(), ed25519_pem());
        }
    }
    let server = server.restart_with(env).await;
    let after = server.log_in("rotate@example.com", "app").await.access_token;
    assert_ne!(kid(&after), kid(&before));

    assert_eq!(verifier.verify(&after).await, Err(VerifyError::UnknownKey), "not within 30 s of the last fetch");
    assert_eq!(verifier.key_fetches(), 1);
    clock.advance(Duration::from_secs(30));
    let claims = verifier.verify(&after).await.unwrap();
    assert_eq!(claims.sub.to_string(), signed_up.user_id);
    assert_eq!(verifier.key_fetches(), 2, "one refetch for the new kid");
}

async fn a_withdrawn_key_stops_verifying(alg: Alg) {
    let server = Server::start(alg).await;
    let old = server.sign_up("revoked@example.com").await.access_token;
    let clock = ManualClock::now();
    let keys_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys_file.path(), format!("{K1},{K2}")).unwrap();
    let builder = match alg {
        Alg::Hs256 => authara_sdk::Verifier::builder(crate::harness::ISSUER).hs256_keys_file(keys_file.path()),
        Alg::EdDsa => verifier_for(&server, alg),
    };
    let verifier = builder.clock(clock.clone()).max_key_age(Duration::from_secs(120)).build().unwrap();
    assert!(verifier.verify(&old).await.is_ok());

    // The old key is withdrawn (compromised): the server signs with another and no longer
    // lists it, nor does the shared file.
    let mut env = server.env.clone();
    match alg {
        Alg::Hs256 => {
            env.insert("AUTHARA_JWT_KEYS".into(), K2.into());
            env.insert("AUTHARA_JWT_ACTIVE_KEY_ID".into(), "k2".into());
            std::fs::write(keys_file.path(), K2).unwrap();
        }
        Alg::EdDsa => {
            env.insert("AUTHARA_JWT_EDDSA_PRIVATE_KEY".into(), ed25519_pem());
        }
    }
    let server = server.restart_with(env).await;
    assert!(verifier.verify(&old).await.is_ok(), "until the keys are read again");
    clock.advance(Duration::from_secs(120));
    assert_eq!(verifier.verify(&old).await, Err(VerifyError::UnknownKey), "after the maximum age");
    let fresh = server.log_in("revoked@example.com", "app").await.access_token;
    assert!(verifier.verify(&fresh).await.is_ok());
}

async fn a_flood_of_unknown_kids_costs_one_fetch_per_interval(alg: Alg) {
    let server = Server::start(alg).await;
    let token = server.sign_up("flood@example.com").await.access_token;
    let clock = ManualClock::now();
    let keys_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys_file.path(), K1).unwrap();
    let builder = match alg {
        Alg::Hs256 => authara_sdk::Verifier::builder(crate::harness::ISSUER).hs256_keys_file(keys_file.path()),
        Alg::EdDsa => verifier_for(&server, alg),
    };
    let verifier = builder.clock(clock.clone()).build().unwrap();
    assert!(verifier.verify(&token).await.is_ok());
    let fetched = verifier.key_fetches();
    let served = jwks_requests(&server);

    let forged = |i: usize| {
        let mut header = Header::new(if alg == Alg::Hs256 { Algorithm::HS256 } else { Algorithm::EdDSA });
        header.kid = Some(format!("attacker-{i}"));
        let claims = serde_json::json!({"sub": uuid::Uuid::new_v4(), "iss": crate::harness::ISSUER});
        let key = match alg {
            Alg::Hs256 => EncodingKey::from_secret(&[7; 32]),
            Alg::EdDsa => EncodingKey::from_ed_pem(ed25519_pem().as_bytes()).unwrap(),
        };
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    for round in 0..3 {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (verifier, token) = (verifier.clone(), forged(round * 1000 + i));
                tokio::spawn(async move { verifier.verify(&token).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err(VerifyError::UnknownKey));
        }
        // The genuine token still verifies throughout.
        assert!(verifier.verify(&token).await.is_ok());
        clock.advance(Duration::from_secs(31));
    }
    // Rounds 31 s apart: the first one falls within 30 s of the initial fetch.
    assert_eq!(verifier.key_fetches() - fetched, 2, "at most one fetch per 30 s");
    if alg == Alg::EdDsa {
        assert_served(&server, served + 2).await;
    }
}

/// The server's log shows exactly `count` JWKS requests (waiting for lines still on their way,
/// then for any that should not come).
async fn assert_served(server: &Server, count: usize) {
    eventually(Duration::from_secs(10), || jwks_requests(server) >= count).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(jwks_requests(server), count, "JWKS requests the server answered");
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn the_servers_public_key_signs_nothing_but_eddsa() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let server = Server::start(Alg::EdDsa).await;
    let token = server.sign_up("confusion@example.com").await.access_token;
    // A verifier that takes HS256 tokens too, so that the confusion has somewhere to go.
    let verifier = verifier_for(&server, Alg::EdDsa).hs256_keys(K1.parse().unwrap()).build().unwrap();
    assert!(verifier.verify(&token).await.is_ok());

    let jwks: serde_json::Value = reqwest::get(server.jwks_url()).await.unwrap().json().await.unwrap();
    let published = &jwks["keys"][0];
    let (server_kid, x) = (published["kid"].as_str().unwrap(), published["x"].as_str().unwrap());
    assert_eq!(server_kid, kid(&token));
    let parts: Vec<&str> = token.split('.').collect();
    let (header, body, sig) = (parts[0], parts[1], parts[2]);
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();

    // The published key as an HMAC secret (raw or as its text), under the server's kid.
    for secret in [URL_SAFE_NO_PAD.decode(x).unwrap(), x.as_bytes().to_vec()] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(server_kid.to_owned());
        let forged = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(verifier.verify(&forged).await, Err(VerifyError::UnknownKey));
    }
    // alg none under the server's kid, with and without the server's signature.
    let none = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": "none", "kid": server_kid}).to_string());
    assert_eq!(verifier.verify(&format!("{none}.{body}.")).await, Err(VerifyError::Malformed));
    assert_eq!(verifier.verify(&format!("{none}.{body}.{sig}")).await, Err(VerifyError::Malformed));
    // The server's signature over claims raised to platform admin.
    claims["roles"] = serde_json::json!(["authara:admin"]);
    let raised = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(verifier.verify(&format!("{header}.{raised}.{sig}")).await, Err(VerifyError::BadSignature));
    assert!(verifier.verify(&token).await.is_ok(), "the genuine token still verifies");
}

#[tokio::test]
async fn an_unreachable_jwks_leaves_tokens_unverifiable_not_accepted() {
    let server = Server::start(Alg::EdDsa).await;
    let token = server.sign_up("down@example.com").await.access_token;
    let port = crate::harness::free_port();
    let verifier = authara_sdk::Verifier::builder(crate::harness::ISSUER)
        .jwks_url(format!("http://127.0.0.1:{port}{}", authara_sdk::JWKS_PATH))
        .fetch_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::KeysUnavailable));
    assert!(verifier.refresh_keys().await.is_err());
}

on_both_algorithms!(
    a_login_token_verifies_into_its_claims,
    once_warm_no_request_reaches_the_server,
    a_token_expires_after_its_lifetime_and_the_leeway,
    the_audience_and_issuer_must_match,
    a_new_kid_is_picked_up_without_a_restart,
    a_withdrawn_key_stops_verifying,
    a_flood_of_unknown_kids_costs_one_fetch_per_interval,
);
