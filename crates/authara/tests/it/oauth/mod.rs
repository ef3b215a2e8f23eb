//! Sign-in providers: Google's ID-token API, the authorization-code flow against a local
//! OpenID provider, recovery links, linking and unlinking.

pub mod code_flow;
mod google;
mod google_pages;
mod invitations;
pub mod provider;

use crate::app::TestApp;
use crate::harness::Engine;
use provider::Provider;

/// An app with `provider` configured as Google and as the generic provider `stub`.
pub async fn app_with(engine: Engine, provider: &Provider, extra: &[(&str, &str)]) -> TestApp {
    TestApp::start_with_env(engine, &provider.env(), extra).await
}
