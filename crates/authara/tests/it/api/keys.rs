//! Asymmetric signing, the JWKS document, admin bootstrap, password rehashing.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, TestDb, on_both_engines, run_cli};

use crate::harness::PW;

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

/// `authara admin create` reads the password from stdin; the admin can then take the
/// admin audience, and the token names the role.
async fn admin_bootstrap_from_the_shell(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let mut env = db.env();
    env.insert("AUTHARA_PASSWORD_HASH_MEMORY_KIB".into(), "1024".into());
    env.insert("AUTHARA_PASSWORD_HASH_ITERATIONS".into(), "1".into());
    env.insert("AUTHARA_PASSWORD_HASH_PARALLELISM".into(), "1".into());
    let mut cmd = crate::harness::command(&["admin", "create", "--email", "Root@Example.com"], &env, db.data_dir());
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{PW}\n").as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("created admin root@example.com"), "{stdout}");
    assert!(!stdout.contains(PW), "a password from stdin is not echoed");

    let (code, _, err) = run_cli(&["admin", "grant", "--email", "nobody@example.com"], &env, db.data_dir()).await;
    assert_ne!(code, 0, "granting to an unknown email fails: {err}");

    let app = TestApp::start_on(db, &[], None).await;
    let c = app.client();
    c.fetch_csrf().await;
    let res = c
        .json(Method::POST, "/auth/api/v1/login?audience=admin", &json!({"email": "root@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let claims = crate::app::jwt_claims(&token);
    assert_eq!(claims["aud"], json!(["admin"]));
    assert_eq!(claims["roles"], json!(["authara:admin"]));
    // A refresh keeps the platform roles and may ask for the admin audience again.
    let refresh = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let again = c
        .json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": refresh, "audience": "admin"}))
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    let t = again.json()["access_token"].as_str().unwrap().to_owned();
    let claims = crate::app::jwt_claims(&t);
    assert_eq!(claims["roles"], json!(["authara:admin"]));
    let plain = app.signed_in("plain@example.com", PW).await;
    let token = plain.cookie("authara_refresh").unwrap();
    let res_plain = c
        .json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": token, "audience": "admin"}))
        .await;
    assert_eq!(res_plain.status, 401, "no admin audience without the admin role");
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "root@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    assert_eq!(c.get("/auth/api/v1/user").await.json()["roles"], json!(["authara:admin"]));
}

/// Hashes made with other parameters, or in the reference's format, are upgraded at login.
async fn logins_upgrade_old_password_hashes(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("old@example.com", PW).await;
    let user = app.store.user_by_email(&crate::app::email("old@example.com")).await.unwrap().unwrap();
    let before = app.store.password_hash(user.id).await.unwrap().unwrap();
    let (db, clock) = app.stop().await;

    let app = TestApp::start_on(db, &[("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "2048")], Some(clock)).await;
    let c = app.client();
    c.fetch_csrf().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "old@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    let mut after = before.clone();
    for _ in 0..100 {
        after = app.store.password_hash(user.id).await.unwrap().unwrap();
        if after != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(after.contains("m=2048"), "rehashed with the configured parameters: {after}");

    // A hash exported from the reference ($argon2id$v=1$t=..$m=..$p=..$salt$hash).
    let salt = b"0123456789abcdef";
    let params = argon2::Params::new(1024, 1, 1, Some(32)).unwrap();
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(PW.as_bytes(), salt, &mut key)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let legacy = format!("$argon2id$v=1$t=1$m=1024$p=1${}${}", b64.encode(salt), b64.encode(key));
    let mut tx = app.store.begin().await.unwrap();
    tx.set_password_hash(user.id, &legacy, 0).await.unwrap();
    tx.commit().await.unwrap();
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "old@example.com", "password": PW})).await;
    assert_eq!(res.status, 200, "the reference's hash format verifies");
    let res = c
        .json(Method::POST, "/auth/api/v1/login", &json!({"email": "old@example.com", "password": "wrong-password-9"}))
        .await;
    assert_eq!(res.status, 401);
}

on_both_engines!(
    eddsa_tokens_verify_against_the_published_jwks,
    admin_bootstrap_from_the_shell,
    logins_upgrade_old_password_hashes,
);
