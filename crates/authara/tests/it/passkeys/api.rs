//! `/auth/api/v1/passkeys/*` with the software authenticator: registration, discoverable
//! sign-in, and every way a ceremony can be wrong.

use std::time::Duration;

use authara::domain::UserId;
use reqwest::Method;
use serde_json::{Value, json};

use super::authenticator::{Knobs, RP_ID, SoftAuthenticator, b64, unb64};
use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

pub const PASSKEY_ENV: &[(&str, &str)] = &[("PUBLIC_URL", super::authenticator::ORIGIN)];

async fn start(engine: Engine) -> TestApp {
    TestApp::start_with(engine, PASSKEY_ENV).await
}

async fn user_id(c: &TestClient) -> UserId {
    let me = c.get("/auth/api/v1/user").await;
    assert_eq!(me.status, 200);
    UserId(me.json()["id"].as_str().unwrap().parse().unwrap())
}

async fn register_options(c: &TestClient) -> (String, Value) {
    let res = c.post("/auth/api/v1/passkeys/register/options").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    (v["challenge_id"].as_str().unwrap().to_owned(), v["options"].clone())
}

async fn register_finish(c: &TestClient, challenge_id: &str, credential: Value) -> crate::app::Res {
    c.json(
        Method::POST,
        "/auth/api/v1/passkeys/register/finish",
        &json!({"challenge_id": challenge_id, "credential": credential}),
    )
    .await
}

/// Registers `auth` for the signed-in client `c`.
pub async fn register(c: &TestClient, auth: &mut SoftAuthenticator, k: &Knobs) {
    let (id, options) = register_options(c).await;
    let res = register_finish(c, &id, auth.register(&options, k)).await;
    assert_eq!(res.status, 204, "{}", res.text());
}

pub async fn login_options(c: &TestClient) -> (String, Value) {
    let res = c.post("/auth/api/v1/passkeys/authenticate/options").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    (v["challenge_id"].as_str().unwrap().to_owned(), v["options"].clone())
}

pub async fn login_finish(c: &TestClient, challenge_id: &str, credential: Value) -> crate::app::Res {
    c.json(
        Method::POST,
        "/auth/api/v1/passkeys/authenticate/finish",
        &json!({"challenge_id": challenge_id, "credential": credential}),
    )
    .await
}

/// Ceremony rows in the database.
async fn ceremonies(app: &TestApp) -> i64 {
    const COUNT: &str = "SELECT COUNT(*) FROM webauthn_challenges";
    match &app.db.pg_database {
        None => {
            let mut c = app.db.sqlite_connection().await;
            sqlx::query_scalar(COUNT).fetch_one(&mut c).await.unwrap()
        }
        Some(db) => sqlx::query_scalar(COUNT).fetch_one(&mut crate::harness::pg_connect(db).await).await.unwrap(),
    }
}

/// A new browser signs in with `auth`'s passkey alone: the browser and the finish's answer.
pub async fn sign_in_with(app: &TestApp, auth: &mut SoftAuthenticator) -> (TestClient, crate::app::Res) {
    let b = app.csrf_client().await;
    let (id, options) = login_options(&b).await;
    let res = login_finish(&b, &id, auth.assert(&options, &Knobs::default())).await;
    (b, res)
}

async fn register_then_sign_in_with_nothing_but_the_passkey(engine: Engine) {
    let app = start(engine).await;
    let c = app.signed_in("pk@example.com", PW).await;
    let uid = user_id(&c).await;

    let (challenge_id, options) = register_options(&c).await;
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], RP_ID);
    assert_eq!(unb64(pk["user"]["id"].as_str().unwrap()), uid.0.as_bytes(), "user handle = the user's UUID bytes");
    assert_eq!(pk["user"]["name"], "pk@example.com");
    let sel = &pk["authenticatorSelection"];
    assert_eq!((sel["residentKey"].as_str(), sel["requireResidentKey"].as_bool()), (Some("required"), Some(true)));
    assert_eq!(sel["userVerification"], "required");
    assert!(pk.get("excludeCredentials").is_none_or(|e| e.as_array().is_some_and(Vec::is_empty)));

    let mut auth = SoftAuthenticator::new();
    let res = register_finish(&c, &challenge_id, auth.register(&options, &Knobs::default())).await;
    assert_eq!(res.status, 204, "{}", res.text());
    let res = register_finish(&c, &challenge_id, auth.register(&options, &Knobs::default())).await;
    assert_eq!(res.status, 422, "a finished registration cannot be replayed");

    let listed = app.store.passkeys_of(uid).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].name.contains('•'), "a generated name: {}", listed[0].name);
    let (_, again) = register_options(&c).await;
    let excluded: Vec<String> = again["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(excluded, vec![b64(&auth.credential_id)], "registered passkeys are excluded");

    // A browser with no cookie at all signs in with the passkey alone.
    let b = app.csrf_client().await;
    let (challenge_id, options) = login_options(&b).await;
    assert!(options["publicKey"].get("allowCredentials").is_none_or(|a| a.as_array().is_some_and(Vec::is_empty)));
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let assertion = auth.assert(&options, &Knobs::default());
    let res = login_finish(&b, &challenge_id, assertion.clone()).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["user"]["id"], uid.0.to_string());
    assert!(res.set_cookie("authara_access").is_some() && res.set_cookie("authara_refresh").is_some());
    assert_eq!(user_id(&b).await, uid);

    let res = login_finish(&app.csrf_client().await, &challenge_id, assertion).await;
    assert_eq!((res.status, res.error_code().as_str()), (401, "unauthorized"), "a consumed challenge is refused");
    let used = app.store.passkeys_of(uid).await.unwrap();
    assert!(used[0].last_used_at_ms.is_some(), "last use recorded");
}

async fn registrations_that_do_not_verify_are_refused_and_the_ceremony_stays_usable(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("a@example.com", PW).await;
    let b = app.signed_in("b@example.com", PW).await;
    let mut auth = SoftAuthenticator::new();
    let (id, options) = register_options(&a).await;
    let wrong = |k: Knobs| k;
    for (what, k) in [
        ("another origin", wrong(Knobs { origin: "https://evil.example".into(), ..Knobs::default() })),
        ("another RP ID", wrong(Knobs { rp_id: "evil.example".into(), ..Knobs::default() })),
        ("no user verification", wrong(Knobs { user_verified: false, ..Knobs::default() })),
    ] {
        let res = register_finish(&a, &id, auth.register(&options, &k)).await;
        assert_eq!((res.status, res.error_code().as_str()), (422, "passkey_registration_invalid"), "{what}");
    }
    let res = register_finish(&b, &id, auth.register(&options, &Knobs::default())).await;
    assert_eq!(res.status, 422, "another user's ceremony");
    let res = register_finish(&a, &id, json!({"id": "x"})).await;
    assert_eq!(res.status, 422, "a malformed credential");
    // None of the failures consumed the ceremony.
    let res = register_finish(&a, &id, auth.register(&options, &Knobs::default())).await;
    assert_eq!(res.status, 204, "{}", res.text());
}

/// The same credential again, for another user: 409.
async fn the_same_credential_for_another_user_is_a_conflict(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("a@example.com", PW).await;
    let b = app.signed_in("b@example.com", PW).await;
    let mut auth = SoftAuthenticator::new();
    let (id, options) = register_options(&a).await;
    assert_eq!(register_finish(&a, &id, auth.register(&options, &Knobs::default())).await.status, 204);
    let (id, options) = register_options(&b).await;
    let res = register_finish(&b, &id, auth.register(&options, &Knobs::default())).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "passkey_already_exists"));
}

/// A new registration replaces the user's open one: a signed-in client cannot pile up rows.
async fn a_new_registration_replaces_the_open_one(engine: Engine) {
    let app = start(engine).await;
    let b = app.signed_in("b@example.com", PW).await;
    let (replaced, replaced_options) = register_options(&b).await;
    let open_before = ceremonies(&app).await;
    let (id, options) = register_options(&b).await;
    assert_eq!(ceremonies(&app).await, open_before, "the open registration was replaced");
    let res =
        register_finish(&b, &replaced, SoftAuthenticator::new().register(&replaced_options, &Knobs::default())).await;
    assert_eq!(res.status, 422, "a replaced registration cannot be finished");
    let res = register_finish(&b, &id, SoftAuthenticator::new().register(&options, &Knobs::default())).await;
    assert_eq!(res.status, 204, "the new one can: {}", res.text());
}

/// An expired ceremony is refused; the cleanup worker removes ceremonies an hour after they
/// expire: the ones pushed back to 1970 go, the ones of the last minutes stay until then.
async fn expired_ceremonies_are_refused_and_cleaned_up_an_hour_later(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("a@example.com", PW).await;
    let b = app.signed_in("b@example.com", PW).await;
    let (done, done_options) = register_options(&a).await;
    let res = register_finish(&a, &done, SoftAuthenticator::new().register(&done_options, &Knobs::default())).await;
    assert_eq!(res.status, 204, "{}", res.text());
    let (id, options) = register_options(&b).await;
    app.db.raw_sql("UPDATE webauthn_challenges SET expires_at_ms = 0 WHERE consumed_at_ms IS NULL").await;
    let res = register_finish(&b, &id, SoftAuthenticator::new().register(&options, &Knobs::default())).await;
    assert_eq!(res.status, 422, "expired");
    let before = ceremonies(&app).await;
    authara::worker::cleanup::run_once(&app.services).await.unwrap();
    let after = ceremonies(&app).await;
    assert!(after >= 1 && after < before, "{before} → {after}");
    app.clock.advance(Duration::from_secs(3600 + 301));
    authara::worker::cleanup::run_once(&app.services).await.unwrap();
    assert_eq!(ceremonies(&app).await, 0);
}

/// Signed out: 401; a stale session (no recent sign-in): 403.
async fn adding_a_passkey_needs_a_session_with_a_recent_sign_in(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("a@example.com", PW).await;
    let anon = app.csrf_client().await;
    assert_eq!(anon.post("/auth/api/v1/passkeys/register/options").await.status, 401);
    app.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(a.post("/auth/api/v1/sessions/refresh").await.status, 200);
    app.clock.advance(Duration::from_secs(2 * 60));
    let res = a.post("/auth/api/v1/passkeys/register/options").await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "adding a passkey needs a recent sign-in");
}

async fn sign_ins_that_do_not_verify_are_refused_and_the_challenge_stays_usable(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("s@example.com", PW).await;
    let mut auth = SoftAuthenticator::new();
    register(&a, &mut auth, &Knobs::default()).await;

    let c = app.csrf_client().await;
    let (id, options) = login_options(&c).await;
    let mut stranger = SoftAuthenticator::new();
    stranger.user_handle = auth.user_handle.clone();
    for (what, credential) in [
        (
            "another origin",
            auth.assert(&options, &Knobs { origin: "http://localhost:9999".into(), ..Knobs::default() }),
        ),
        ("another RP ID", auth.assert(&options, &Knobs { rp_id: "example.org".into(), ..Knobs::default() })),
        ("no user verification", auth.assert(&options, &Knobs { user_verified: false, ..Knobs::default() })),
        ("a tampered signature", auth.assert(&options, &Knobs { tamper_signature: true, ..Knobs::default() })),
        ("an unknown credential", stranger.assert(&options, &Knobs::default())),
        ("a malformed credential", json!({"id": 1})),
    ] {
        let res = login_finish(&c, &id, credential).await;
        assert_eq!((res.status, res.error_code().as_str()), (401, "unauthorized"), "{what}");
    }
    assert!(c.cookie("authara_access").is_none());
    // A registration ceremony is not a sign-in ceremony.
    let (reg_id, reg_options) = register_options(&a).await;
    let res = login_finish(&c, &reg_id, auth.assert(&reg_options, &Knobs::default())).await;
    assert_eq!(res.status, 401, "wrong purpose");

    let res = login_finish(&c, &id, auth.assert(&options, &Knobs::default())).await;
    assert_eq!(res.status, 200, "failed attempts left the challenge usable: {}", res.text());

    // Expired after five minutes.
    let (id, options) = login_options(&c).await;
    app.clock.advance(Duration::from_secs(301));
    let res = login_finish(&c, &id, auth.assert(&options, &Knobs::default())).await;
    assert_eq!(res.status, 401, "expired");
}

async fn a_counter_that_goes_backwards_flags_the_passkey(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("clone@example.com", PW).await;
    let uid = user_id(&a).await;
    let mut auth = SoftAuthenticator::new();
    register(&a, &mut auth, &Knobs { counter: Some(5), ..Knobs::default() }).await;
    let c = app.csrf_client().await;
    let (id, options) = login_options(&c).await;
    assert_eq!(
        login_finish(&c, &id, auth.assert(&options, &Knobs { counter: Some(6), ..Knobs::default() })).await.status,
        200
    );
    assert!(!app.store.passkeys_of(uid).await.unwrap()[0].clone_warning);

    let (id, options) = login_options(&c).await;
    let res = login_finish(&c, &id, auth.assert(&options, &Knobs { counter: Some(3), ..Knobs::default() })).await;
    assert_eq!(res.status, 401, "a counter behind the stored one is refused");
    assert!(app.store.passkeys_of(uid).await.unwrap()[0].clone_warning, "and the passkey is flagged");
}

/// Exactly when a copied passkey can be caught (the README says the same): an authenticator
/// that reports a signature counter must report more than the stored one each time, else the
/// sign-in is refused and the passkey flagged; one that reports 0 (synced passkeys do) cannot be
/// told from its copies, and every copy signs in.
async fn status_of_sign_in(app: &TestApp, auth: &mut SoftAuthenticator, k: Knobs) -> u16 {
    let c = app.csrf_client().await;
    let (id, options) = login_options(&c).await;
    login_finish(&c, &id, auth.assert(&options, &k)).await.status
}

async fn clone_detection_needs_a_counter(engine: Engine) {
    let app = start(engine).await;
    let counted = |n: u32| Knobs { counter: Some(n), ..Knobs::default() };

    // A device-bound authenticator that counts.
    let a = app.signed_in("counted@example.com", PW).await;
    let uid = user_id(&a).await;
    let mut auth = SoftAuthenticator::new();
    register(&a, &mut auth, &counted(5)).await;
    assert_eq!(status_of_sign_in(&app, &mut auth, counted(6)).await, 200);
    assert_eq!(status_of_sign_in(&app, &mut auth, counted(6)).await, 401, "the same count again: a copy used it");
    assert!(app.store.passkeys_of(uid).await.unwrap()[0].clone_warning, "flagged");
    assert_eq!(
        status_of_sign_in(&app, &mut auth, counted(7)).await,
        200,
        "the owner's next count still signs in; the flag stays"
    );
    assert!(app.store.passkeys_of(uid).await.unwrap()[0].clone_warning);
    assert_eq!(
        status_of_sign_in(&app, &mut auth, counted(0)).await,
        401,
        "a counting authenticator that reports 0 is refused"
    );
    let count = |email: &'static str| {
        let sql = format!(
            "SELECT CAST(sign_count AS TEXT) FROM passkeys WHERE user_id = (SELECT id FROM users WHERE email = '{email}')"
        );
        let db = &app.db;
        async move { db.texts(&sql).await }
    };
    assert_eq!(count("counted@example.com").await, ["7"], "refusals do not move the stored counter");

    // A synced passkey reports 0 every time: its copies are indistinguishable and all sign in.
    let s = app.signed_in("synced@example.com", PW).await;
    let sid = user_id(&s).await;
    let mut synced = SoftAuthenticator::new();
    register(&s, &mut synced, &counted(0)).await;
    for copy in 0..3 {
        assert_eq!(status_of_sign_in(&app, &mut synced, counted(0)).await, 200, "copy {copy}");
    }
    assert!(!app.store.passkeys_of(sid).await.unwrap()[0].clone_warning, "nothing to compare: never flagged");
    assert_eq!(count("synced@example.com").await, ["0"]);
}

async fn disabled_users_cannot_sign_in_with_a_passkey(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("off@example.com", PW).await;
    let mut auth = SoftAuthenticator::new();
    register(&a, &mut auth, &Knobs::default()).await;
    app.db.raw_sql("UPDATE users SET disabled_at_ms = 1 WHERE email = 'off@example.com'").await;
    let c = app.csrf_client().await;
    let (id, options) = login_options(&c).await;
    let res = login_finish(&c, &id, auth.assert(&options, &Knobs::default())).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));
    assert!(c.cookie("authara_access").is_none());
}

async fn passkey_sign_in_is_rate_limited_per_ip(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        &[("PUBLIC_URL", super::authenticator::ORIGIN), ("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_LIMIT", "2")],
    )
    .await;
    let c = app.csrf_client().await;
    let (id, _) = login_options(&c).await;
    login_options(&c).await;
    let res = c.post("/auth/api/v1/passkeys/authenticate/options").await;
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"));
    // Finishing has its own counter.
    for _ in 0..2 {
        assert_eq!(login_finish(&c, &id, json!({})).await.status, 401);
    }
    let res = login_finish(&c, &id, json!({})).await;
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"));
}

async fn a_ceremony_finishes_once_on_any_instance(engine: Engine) {
    let app = start(engine).await;
    let a = app.signed_in("twice@example.com", PW).await;
    // Counter 0 throughout, as synced passkeys send: only the ceremony can refuse a replay.
    let zero = Knobs { counter: Some(0), ..Knobs::default() };
    let mut auth = SoftAuthenticator::new();
    register(&a, &mut auth, &zero).await;

    // Started here, finished by another instance on the same database.
    let c = app.csrf_client().await;
    let (id, options) = login_options(&c).await;
    let other = app.second_instance().await;
    let client = authara::domain::ClientInfo::default();
    let credential = auth.assert(&options, &zero);
    let signed = other
        .passkeys()
        .finish_authentication(id.parse().unwrap(), credential, authara::domain::Audience::App, &client)
        .await
        .expect("the other instance finishes the ceremony");
    let authara::services::accounts::Completion::SignedIn(signed) = signed else {
        panic!("a passkey is two factors: no second step")
    };
    assert_eq!(signed.user.email, "twice@example.com");

    // One assertion sent twice at once: exactly one session.
    let (id, options) = login_options(&c).await;
    let credential = auth.assert(&options, &zero);
    let (x, y) = (app.csrf_client().await, app.csrf_client().await);
    let (r1, r2) = tokio::join!(login_finish(&x, &id, credential.clone()), login_finish(&y, &id, credential));
    let mut statuses = [r1.status, r2.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);
    let uid = user_id(&a).await;
    assert!(!app.store.passkeys_of(uid).await.unwrap()[0].clone_warning, "refused by the ceremony, not the counter");
}

on_both_engines!(
    register_then_sign_in_with_nothing_but_the_passkey,
    registrations_that_do_not_verify_are_refused_and_the_ceremony_stays_usable,
    the_same_credential_for_another_user_is_a_conflict,
    a_new_registration_replaces_the_open_one,
    expired_ceremonies_are_refused_and_cleaned_up_an_hour_later,
    adding_a_passkey_needs_a_session_with_a_recent_sign_in,
    sign_ins_that_do_not_verify_are_refused_and_the_challenge_stays_usable,
    a_counter_that_goes_backwards_flags_the_passkey,
    clone_detection_needs_a_counter,
    disabled_users_cannot_sign_in_with_a_passkey,
    passkey_sign_in_is_rate_limited_per_ip,
    ; threaded: a_ceremony_finishes_once_on_any_instance,
);
