//! The actix-web integration (feature `actix`) in an application on a real socket, with tokens
//! of the real server: the same answers as the axum integration.

use actix_web::{App, HttpResponse, HttpServer, web};
use authara_sdk::actix::Require;
use authara_sdk::{AuthUser, Authara, OrgRole, PlatformRole, Requirement, Unauthenticated};
use serde_json::{Value, json};

use crate::axum_app::{assert_anonymous_answers, get_with};
use crate::harness::{Alg, Server, on_both_algorithms, verifier_for};

async fn me(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({"sub": user.user_id(), "org_role": user.org_role().as_str()}))
}

async fn maybe(user: Option<AuthUser>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"sub": user.map(|u| u.user_id())}))
}

/// Serves the application on a free port in a thread of its own (actix runs its own runtime);
/// the base URL. `authara: None` leaves the handle out of `app_data`.
pub fn serve(authara: Option<Authara>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let mut app = App::new().route("/me", web::get().to(me)).route("/maybe", web::get().to(maybe));
                if let Some(authara) = &authara {
                    let admin = Requirement::PlatformRole(PlatformRole::Admin);
                    app = app
                        .app_data(authara.clone())
                        .service(web::scope("/admin").wrap(Require::new(authara, admin)).route("", web::get().to(me)))
                        .service(
                            web::scope("/team")
                                .wrap(Require::new(authara, Requirement::OrgRole(OrgRole::Admin)))
                                .route("", web::get().to(me)),
                        );
                }
                app
            })
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await
        })
    });
    format!("http://{}", rx.recv().unwrap())
}

async fn signed_in_requests_reach_the_handler(alg: Alg) {
    let server = Server::start(alg).await;
    let session = server.sign_up("actix@example.com").await;
    let base = serve(Some(Authara::new(verifier_for(&server, alg).build().unwrap())));
    let bearer = format!("Bearer {}", session.access_token);
    let cookie = format!("theme=dark; authara_access={}", session.access_token);
    for header in [("authorization", bearer.as_str()), ("cookie", cookie.as_str())] {
        let res = get_with(&format!("{base}/me"), &[header]).await;
        assert_eq!(res.status, 200, "{header:?}: {}", res.body);
        assert_eq!(res.json()["sub"], session.user_id.as_str());
        assert_eq!(get_with(&format!("{base}/maybe"), &[header]).await.json()["sub"], session.user_id.as_str());
    }
    let anonymous = get_with(&format!("{base}/maybe"), &[("authorization", "Bearer nope")]).await;
    assert_eq!((anonymous.status, anonymous.json()["sub"].clone()), (200, Value::Null));
}

async fn anonymous_requests_get_the_same_answers_as_with_axum(alg: Alg) {
    let server = Server::start(alg).await;
    let base = serve(Some(Authara::new(verifier_for(&server, alg).build().unwrap())));
    assert_anonymous_answers(&base, "/me?tab=a b&x=1", &[], "%2Fme%3Ftab%3Da%2520b%26x%3D1").await;
    assert_anonymous_answers(&base, "/me", &[("authorization", "Bearer x.y.z")], "%2Fme").await;
    assert_anonymous_answers(&base, "/admin", &[], "%2Fadmin").await;
    assert_anonymous_answers(&base, "/team", &[], "%2Fteam").await;
}

async fn guards_refuse_signed_in_users_without_the_role(alg: Alg) {
    let server = Server::start(alg).await;
    let owner = server.sign_up("owner@example.com").await;
    server.cli(&["admin", "grant", "--email", "owner@example.com"]).await;
    let admin = server.log_in("owner@example.com", "app").await.access_token;
    let (_, member) = server.team_member(&owner.user_id, "member@example.com").await;
    let base = serve(Some(Authara::new(verifier_for(&server, alg).build().unwrap())));
    let call = |path: &'static str, token: String| {
        let base = base.clone();
        async move { get_with(&format!("{base}{path}"), &[("authorization", &format!("Bearer {token}"))]).await }
    };
    let res = call("/admin", admin).await;
    assert_eq!((res.status, res.json()["sub"].as_str()), (200, Some(owner.user_id.as_str())));
    for (path, token) in [("/admin", owner.access_token.clone()), ("/admin", member.clone()), ("/team", member)] {
        let res = call(path, token).await;
        assert_eq!(res.status, 403, "{path}");
        assert_eq!(res.json()["error"]["code"], "forbidden");
        assert_eq!(res.header("content-type"), Some("application/json"));
    }
    assert_eq!(call("/team", owner.access_token).await.status, 200);
}

#[tokio::test]
async fn without_the_handle_the_extractor_answers_500_and_the_option_none() {
    let base = serve(None);
    let res = get_with(&format!("{base}/me"), &[("authorization", "Bearer x")]).await;
    assert_eq!((res.status, res.json()["error"]["code"].as_str()), (500, Some("internal_error")));
    let res = get_with(&format!("{base}/maybe"), &[]).await;
    assert_eq!((res.status, res.json()["sub"].clone()), (200, Value::Null));
}

#[tokio::test]
async fn redirects_can_be_turned_off() {
    let verifier = authara_sdk::Verifier::builder("x").hs256_keys(crate::harness::K1.parse().unwrap()).build().unwrap();
    let base = serve(Some(Authara::new(verifier).unauthenticated(Unauthenticated::new().redirect(false))));
    let res = get_with(&format!("{base}/me"), &[("accept", "text/html")]).await;
    assert_eq!((res.status, res.json()["error"]["code"].as_str()), (401, Some("unauthorized")));
}

on_both_algorithms!(
    signed_in_requests_reach_the_handler,
    anonymous_requests_get_the_same_answers_as_with_axum,
    guards_refuse_signed_in_users_without_the_role,
);
