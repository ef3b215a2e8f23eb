//! SMTP over TLS against a real TLS server: STARTTLS and implicit TLS deliver encrypted to a
//! relay whose private CA is named by `AUTHARA_EMAIL_SMTP_CA_FILE`; a certificate that is not
//! trusted, or not for the configured host, gets nothing, in plain text or otherwise.

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::app::drain_mail as drain;
use crate::harness::{Engine, PW, on_both_engines};
use crate::smtp::{SmtpSink, Tls};
use authara::worker::email::Outcome;

/// Signs `email` up and asks for a password reset, which queues one email.
async fn queue_a_reset_mail(app: &TestApp, email: &str) {
    app.signed_in(email, PW).await;
    let c = app.csrf_client().await;
    let body = json!({"email": email, "new_password": "copper-lantern-meadow"});
    let res = c.json(Method::POST, "/auth/api/v1/password-reset/challenges", &body).await;
    assert_eq!(res.status, 202);
}

async fn starttls_and_implicit_tls_deliver_encrypted_to_a_private_ca_relay(engine: Engine) {
    for (tls, email) in [(Tls::StartTls, "starttls@example.com"), (Tls::Implicit, "implicit@example.com")] {
        let sink = SmtpSink::start_tls(tls).await;
        let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
        queue_a_reset_mail(&app, email).await;
        assert_eq!(drain(&app).await, vec![Outcome::Sent], "{tls:?}");
        let got = sink.to(email);
        assert_eq!(got.len(), 1, "{tls:?}: delivered once");
        assert!(got[0].tls, "{tls:?}: the message travelled inside TLS");
        assert!(got[0].data.contains("Subject:"), "{tls:?}: the whole message arrived");
        assert_eq!(sink.failed_handshakes(), 0);
    }
}

/// Without the relay's CA (only the public roots are trusted), or with the CA but a host name
/// the certificate does not name, the handshake is refused: the job waits for a retry and
/// nothing reaches the server.
async fn an_untrusted_or_misnamed_certificate_gets_no_mail(engine: Engine) {
    for tls in [Tls::StartTls, Tls::Implicit] {
        let sink = SmtpSink::start_tls(tls).await;
        let untrusted: Vec<(String, String)> =
            sink.env().into_iter().filter(|(k, _)| k != "AUTHARA_EMAIL_SMTP_CA_FILE").collect();
        let misnamed: Vec<(String, String)> = sink
            .env()
            .into_iter()
            .map(|(k, v)| if k == "AUTHARA_EMAIL_SMTP_HOST" { (k, "127.0.0.1".to_owned()) } else { (k, v) })
            .collect();
        for (why, env) in [("no CA file", untrusted), ("host not in the certificate", misnamed)] {
            let app = TestApp::start_with_env(engine, &env, &[]).await;
            let before = sink.failed_handshakes();
            queue_a_reset_mail(&app, "refused@example.com").await;
            assert_eq!(drain(&app).await, vec![Outcome::Retrying], "{tls:?}, {why}");
            // The server sees the refusal (the client's alert, or its closed socket) a moment later.
            let refused = async {
                while sink.failed_handshakes() == before {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            };
            let seen = tokio::time::timeout(std::time::Duration::from_secs(5), refused).await;
            assert!(seen.is_ok(), "{tls:?}, {why}: the client refused the handshake");
        }
        assert!(sink.messages().is_empty(), "{tls:?}: nothing was sent");
    }
}

on_both_engines!(
    starttls_and_implicit_tls_deliver_encrypted_to_a_private_ca_relay,
    an_untrusted_or_misnamed_certificate_gets_no_mail,
);
