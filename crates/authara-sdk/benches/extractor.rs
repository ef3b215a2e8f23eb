//! The per-request cost of the axum extractor, warm (keys loaded, no network), in ns per
//! request: `cargo bench -p authara-sdk --bench extractor`.
//!
//! Cases: a token seen before (each request of a session sends the same token for its
//! lifetime, so this is the common case), and a token whose signature is checked on every call
//! (the verified-token cache turned off): HS256 and EdDSA (keys from a JWKS served on
//! 127.0.0.1). Last, a whole axum router: a handler that extracts `AuthUser` against one that
//! does not (alternating rounds, the best of each), the difference being what an application
//! pays per request.

use std::hint::black_box;
use std::time::Instant;

use authara_sdk::{AuthUser, Authara, Verifier};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::Request;
use axum::routing::get;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair as _;
use tower::ServiceExt as _;

const ISSUER: &str = "authara";
const TARGET_NS: f64 = 5_000.0;

fn claims(now: i64) -> serde_json::Value {
    serde_json::json!({
        "sid": uuid::Uuid::new_v4(), "org_id": uuid::Uuid::new_v4(), "org_role": "owner", "roles": ["authara:admin"],
        "iss": ISSUER, "sub": uuid::Uuid::new_v4(), "aud": ["app"], "exp": now + 600, "iat": now
    })
}

fn now_s() -> i64 {
    authara_sdk::Clock::now_ms(&authara_sdk::SystemClock) / 1000
}

/// Runs `f` `n` times, five rounds; the best round's ns per call.
fn measure<F: FnMut()>(n: u32, mut f: F) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(n));
    }
    best
}

fn report(name: &str, ns: f64) {
    let verdict = if ns < TARGET_NS { "under" } else { "OVER" };
    println!("{name:<58} {ns:>9.0} ns/request  ({verdict} the 5 µs target)");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let now = now_s();

    // HS256.
    let secret = [42u8; 32];
    let hs_keys = format!("k1:{}", base64::engine::general_purpose::STANDARD.encode(secret));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs_token = jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_secret(&secret))?;

    // EdDSA, with its JWKS on 127.0.0.1.
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).map_err(|e| e.to_string())?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| e.to_string())?;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed-1", "alg": "EdDSA", "use": "sig"}]});
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let jwks_url = format!("http://{}{}", listener.local_addr()?, authara_sdk::JWKS_PATH);
    let jwks_app = Router::new().route(authara_sdk::JWKS_PATH, get(move || async move { axum::Json(jwks.clone()) }));
    rt.spawn(async move { axum::serve(listener, jwks_app).await });
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ed-1".into());
    let ed_token = jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_ed_der(pkcs8.as_ref()))?;

    let hs = |cache: usize| -> Result<Authara, Box<dyn std::error::Error>> {
        Ok(Authara::new(Verifier::builder(ISSUER).hs256_keys(hs_keys.parse()?).verified_cache_size(cache).build()?))
    };
    let ed = |cache: usize| -> Result<Authara, Box<dyn std::error::Error>> {
        let verifier = Verifier::builder(ISSUER).jwks_url(&jwks_url).verified_cache_size(cache).build()?;
        rt.block_on(verifier.refresh_keys())?;
        Ok(Authara::new(verifier))
    };

    println!("authara-sdk extractor, warm (keys loaded, no network), best of 5 rounds:");
    let cases = [
        ("AuthUser, HS256, token seen before (cookie)", hs(4096)?, &hs_token, 200_000),
        ("AuthUser, HS256, signature checked every time", hs(0)?, &hs_token, 50_000),
        ("AuthUser, EdDSA (JWKS), token seen before (cookie)", ed(4096)?, &ed_token, 200_000),
        ("AuthUser, EdDSA (JWKS), signature checked every time", ed(0)?, &ed_token, 5_000),
    ];
    for (name, authara, token, n) in cases {
        let req = Request::builder()
            .uri("/me")
            .header("accept", "application/json")
            .header("cookie", format!("theme=dark; authara_access={token}; lang=en"))
            .extension(authara.clone())
            .body(())?;
        let (mut parts, ()) = req.into_parts();
        let ns = rt.block_on(async {
            let mut ok = 0u32;
            let ns = measure(n, || {
                let user = futures_now(AuthUser::from_request_parts(&mut parts, &()));
                ok += u32::from(matches!(user, Some(Ok(_))));
            });
            assert!(ok > 0, "{name}: the token did not verify");
            ns
        });
        report(name, ns);
        let _ = black_box(authara.verifier().key_fetches());
    }

    // The whole router, per request: with and without the extractor.
    let authara = hs(4096)?;
    let router = Router::new()
        .route("/open", get(|| async { "ok" }))
        .route("/me", get(|user: AuthUser| async move { user.user_id().to_string() }))
        .layer(authara.layer());
    let request = |path: &str| {
        Request::builder()
            .uri(path)
            .header("cookie", format!("authara_access={hs_token}"))
            .body(axum::body::Body::empty())
    };
    // One round of `n` requests to `path`: ns per request.
    let round = |path: &'static str| -> Result<f64, Box<dyn std::error::Error>> {
        let n = 50_000u32;
        let router = router.clone();
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..n {
                let res = router.clone().oneshot(request(path)?).await?;
                assert!(res.status().is_success(), "{path}: {}", res.status());
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
        Ok(start.elapsed().as_nanos() as f64 / f64::from(n))
    };
    let _ = (round("/open")?, round("/me")?);
    // Rounds of the two routes alternate, so that a busy moment of the machine does not fall
    // on one of them only; the best round of each.
    let (mut open, mut me) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        open = open.min(round("/open")?);
        me = me.min(round("/me")?);
    }
    println!("{:<58} {open:>9.0} ns/request", "axum router, handler without AuthUser");
    println!("{:<58} {me:>9.0} ns/request", "axum router, handler with AuthUser (HS256, seen before)");
    report("  difference: what the extractor adds", me - open);
    Ok(())
}

/// Polls a future that completes without waiting (a warm extractor never waits): `None` if it
/// would have.
fn futures_now<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
