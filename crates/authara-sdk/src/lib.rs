//! # authara-sdk
//!
//! For Rust applications behind an [authara](https://github.com/authara-org) server: verify
//! the access tokens it mints, guard routes, check its webhooks, and call its internal API.
//!
//! | you need | use |
//! |---|---|
//! | the user of a request, in axum | [`AuthUser`] / `Option<AuthUser>` with `Authara::layer` |
//! | the same in actix-web (feature `actix`) | [`AuthUser`] with `App::app_data(authara)` |
//! | a guard on a router or scope | `Authara::require` (axum), `actix::Require` (actix-web) |
//! | to verify a token yourself | [`Verifier::verify`] |
//! | a webhook endpoint | the [`webhooks::Webhook`] extractor, or [`webhooks::WebhookVerifier`] |
//! | to create teams and invitations | [`client::InternalClient`] |
//!
//! ## Verification
//!
//! A [`Verifier`] checks a token's signature, its issuer (`AUTHARA_JWT_ISSUER`), its audience
//! (`app` unless configured) and its expiry (with 60 s of leeway), and that the claims the
//! server always sets are there; it returns typed [`Claims`]. Keys:
//!
//! - **HS256** (the server's default): the shared `AUTHARA_JWT_KEYS`
//!   ([`VerifierBuilder::hs256_keys`]), or the file behind `AUTHARA_JWT_KEYS_FILE`
//!   ([`VerifierBuilder::hs256_keys_file`]), re-read when it changes;
//! - **EdDSA** (`AUTHARA_JWT_ALGORITHM=EdDSA`): the server's public keys at
//!   `/auth/.well-known/jwks.json` ([`VerifierBuilder::jwks_url`]).
//!
//! Tokens are read and checked with `jsonwebtoken` (the server's JWT library), each key under
//! a `Validation` pinned to its one algorithm, so `alg: none` and algorithm confusion fail. The
//! key file and the JWKS are read at the first verification and cached; they are read again
//! when a token names an unknown kid (a key rotation) or when they are older than
//! [`max_key_age`](VerifierBuilder::max_key_age) (5 min, so a key the server dropped stops
//! verifying), but never more than once per
//! [`refetch_interval`](VerifierBuilder::refetch_interval) (30 s): tokens with made-up kids
//! cannot make the verifier hammer the server. Once warm, a verification makes no network call,
//! and a token seen before (each request of a session sends the same one) skips the signature
//! check; its expiry is checked every time.
//!
//! ## Anonymous requests
//!
//! As the Go SDK: an HTMX request gets `200` with `HX-Redirect` to the login page, a browser
//! navigation (`Accept: text/html`) a `302` there, both with `return_to` set to the request's
//! path and query; everything else a `401` with the contract's error envelope. A signed-in user
//! who does not meet a [`Requirement`] gets `403`. See [`Refusal`] and [`Unauthenticated`].
//!
//! ## Example (axum)
//!
//! ```no_run
//! use axum::{Json, Router, routing::get};
//! use authara_sdk::{AuthUser, Authara, PlatformRole, Requirement, Verifier};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let verifier = Verifier::builder("authara")
//!         .hs256_keys("k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".parse()?)
//!         .build()?;
//!     let authara = Authara::new(verifier);
//!     let app = Router::new()
//!         .route("/me", get(|user: AuthUser| async move { Json(user.user_id()) }))
//!         .route(
//!             "/admin",
//!             get(|| async { "admins only" })
//!                 .route_layer(authara.require(Requirement::PlatformRole(PlatformRole::Admin))),
//!         )
//!         .layer(authara.layer());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! A complete application, run against a real server by the crate's tests, is
//! `examples/axum-app.rs` (`cargo run -p authara-sdk --example axum-app`).
//!
//! ## Features
//!
//! - `axum` (default): the axum extractors and tower layers;
//! - `actix`: the actix-web extractors and middleware.

#![warn(missing_docs)]

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
mod claims;
pub mod client;
mod clock;
mod guard;
mod key_store;
mod keys;
mod verified;
mod verifier;
pub mod webhooks;

pub use claims::{Audience, Claims, OrgRole, PlatformRole};
pub use clock::{Clock, SystemClock};
pub use guard::{
    ACCESS_COOKIE, Answer, AuthUser, Authara, LOGIN_PATH, Refusal, Requirement, Unauthenticated, access_token,
};
pub use key_store::KeyFetchError;
pub use keys::{HmacKeys, KeyError};
pub use uuid::Uuid;
pub use verifier::{BuildError, JWKS_PATH, Verifier, VerifierBuilder, VerifyError};
