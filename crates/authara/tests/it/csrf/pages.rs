//! The pages check CSRF before they touch the session.

use std::time::Duration;

use reqwest::Method;

use crate::app::TestApp;
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};

// Security review finding: a forged account POST rotated the refresh token before failing CSRF.
/// A forged POST to an account page is refused before the session is touched: the refresh
/// token is not rotated (or dropped) by a request that fails CSRF.
async fn account_posts_check_csrf_before_refreshing(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    let c = app.signed_in("csrf-first@example.com", PW).await;
    let refresh = c.cookie("authara_refresh").unwrap();
    app.clock.advance(Duration::from_secs(11 * 60));
    let body = b"csrf_token=forged&username=new-name".to_vec();
    *c.send_csrf.lock().unwrap() = false;
    let res = c
        .send(Method::POST, "/auth/user/username", Some(body), &[("content-type", "application/x-www-form-urlencoded")])
        .await;
    assert_eq!(res.status, 403);
    assert!(res.set_cookie("authara_refresh").is_none(), "nothing rotated by a refused request");
    assert_eq!(c.cookie("authara_refresh").unwrap(), refresh);
    *c.send_csrf.lock().unwrap() = true;
    let page = c.get("/auth/account").await;
    assert_eq!(page.status, 200, "the session is alive: the token was never consumed");
    assert!(page.set_cookie("authara_refresh").is_some(), "and the rotation rides on the page");
    assert_eq!(c.get("/auth/account").await.status, 200, "the rotated token works");
}

on_both_engines!(account_posts_check_csrf_before_refreshing,);
