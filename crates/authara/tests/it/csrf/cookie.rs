//! The CSRF cookie's attributes (every state-changing route's refusals: `csrf::routes`).

use crate::app::TestApp;
use crate::harness::Engine;

#[tokio::test]
async fn csrf_cookie_attributes() {
    let app = TestApp::start(Engine::Sqlite).await;
    let c = app.client();
    let res = c.get("/auth/api/v1/csrf").await;
    let cookie = res.set_cookie("authara_csrf").unwrap();
    assert!(cookie.contains("Path=/") && cookie.contains("Max-Age=2592000") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("HttpOnly"), "the browser SDK reads it from document.cookie");
    assert_eq!(res.json()["csrf_token"].as_str().unwrap().len(), 43);
    assert_eq!(res.json()["csrf_token"].as_str(), c.cookie("authara_csrf").as_deref());
}
