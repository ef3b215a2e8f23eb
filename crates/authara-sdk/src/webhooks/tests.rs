use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::claims::OrgRole;
use crate::client::OrgKind;

const SECRET: &str = "whsec-test-0123456789";
const NOW_S: i64 = 1_800_000_000;

struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(SECRET).unwrap().clock(Arc::new(FixedClock(AtomicI64::new(NOW_S * 1000))))
}

/// The signature the server computes (services/webhooks.rs): lowercase hex HMAC-SHA256.
fn sign(secret: &str, message: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, message);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

struct Signed {
    v1: String,
    ts: String,
    v2: String,
}

fn signed(body: &[u8], ts: i64) -> Signed {
    let mut msg = format!("{ts}.").into_bytes();
    msg.extend_from_slice(body);
    Signed { v1: sign(SECRET, body), ts: ts.to_string(), v2: sign(SECRET, &msg) }
}

fn headers(s: &Signed) -> WebhookHeaders<'_> {
    WebhookHeaders { signature: Some(&s.v1), timestamp: Some(&s.ts), signature_v2: Some(&s.v2) }
}

const BODY: &[u8] = br#"{"id":"d1","type":"user.created","created_at":"2026-01-02T03:04:05.678Z","data":{"user_id":"6f1c2a4e-1d0b-4c36-9a43-2f4e51a7b9c1"}}"#;

#[test]
fn a_delivery_signed_as_the_server_signs_is_accepted() {
    let s = signed(BODY, NOW_S - 10);
    let event = verifier().verify_event(headers(&s), BODY).unwrap();
    assert_eq!(event.id, "d1");
    assert_eq!(event.created_at, "2026-01-02T03:04:05.678Z");
    match event.event {
        Event::UserCreated(u) => assert_eq!(u.user_id.to_string(), "6f1c2a4e-1d0b-4c36-9a43-2f4e51a7b9c1"),
        other => panic!("{other:?}"),
    }
    let upper = Signed { v1: s.v1.to_uppercase().replace("SHA256=", "sha256="), ..s };
    assert!(verifier().verify(headers(&upper), BODY).is_ok(), "hex digits in either case");
}

#[test]
fn tampering_with_body_timestamp_or_secret_is_refused() {
    let s = signed(BODY, NOW_S);
    let tampered = BODY.to_vec().into_iter().map(|b| if b == b'1' { b'2' } else { b }).collect::<Vec<_>>();
    assert_eq!(verifier().verify(headers(&s), &tampered), Err(WebhookError::InvalidSignature));
    let moved = Signed { ts: (NOW_S - 1).to_string(), ..signed(BODY, NOW_S) };
    assert_eq!(verifier().verify(headers(&moved), BODY), Err(WebhookError::InvalidSignature), "ts is signed");
    let other = WebhookVerifier::new("another-secret").unwrap();
    assert_eq!(other.verify(headers(&s), BODY), Err(WebhookError::InvalidSignature));
    // A valid timestamped signature does not excuse a wrong contract signature.
    let bad_v1 = Signed { v1: sign("another-secret", BODY), ..signed(BODY, NOW_S) };
    assert_eq!(verifier().verify(headers(&bad_v1), BODY), Err(WebhookError::InvalidSignature));
    for junk in ["", "sha256=", "sha256=zz", "md5=00", &"sha256=0".repeat(2), &format!("sha256={}", "g".repeat(64))] {
        let h = WebhookHeaders { signature: None, timestamp: Some(&s.ts), signature_v2: Some(junk) };
        assert_eq!(verifier().verify(h, BODY), Err(WebhookError::InvalidSignature), "{junk:?}");
    }
}

#[test]
fn replays_outside_the_window_are_refused_both_ways() {
    for (ts, ok) in [(NOW_S - 300, true), (NOW_S + 300, true), (NOW_S - 301, false), (NOW_S + 301, false)] {
        let s = signed(BODY, ts);
        let got = verifier().verify(headers(&s), BODY);
        assert_eq!(got.is_ok(), ok, "ts {ts}: {got:?}");
        if !ok {
            assert_eq!(got, Err(WebhookError::Expired));
        }
    }
    let s = signed(BODY, NOW_S - 3600);
    assert!(verifier().tolerance(Duration::from_secs(7200)).verify(headers(&s), BODY).is_ok());
    for ts in ["", "soon", "-5", "+5", "1.5"] {
        let s = Signed { ts: ts.to_owned(), ..signed(BODY, NOW_S) };
        assert_eq!(verifier().verify(headers(&s), BODY), Err(WebhookError::InvalidTimestamp), "{ts:?}");
    }
}

#[test]
fn the_contract_signature_alone_is_accepted_only_when_allowed() {
    let s = signed(BODY, NOW_S);
    let v1_only = WebhookHeaders { signature: Some(&s.v1), timestamp: None, signature_v2: None };
    assert_eq!(verifier().verify(v1_only, BODY), Err(WebhookError::MissingSignature));
    assert!(verifier().allow_untimestamped(true).verify(v1_only, BODY).is_ok());
    let wrong = sign("nope", BODY);
    let forged = WebhookHeaders { signature: Some(&wrong), timestamp: None, signature_v2: None };
    assert_eq!(verifier().allow_untimestamped(true).verify(forged, BODY), Err(WebhookError::InvalidSignature));
    assert_eq!(
        verifier().allow_untimestamped(true).verify(WebhookHeaders::default(), BODY),
        Err(WebhookError::MissingSignature)
    );
    assert!(WebhookVerifier::new("").is_err(), "an empty secret is refused");
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let big = vec![b' '; 2048];
    let s = signed(&big, NOW_S);
    assert_eq!(verifier().max_body_bytes(1024).verify(headers(&s), &big), Err(WebhookError::TooLarge));
}

/// A sample `data` for every type the contract lists, as the server writes it.
fn sample(kind: &str) -> serde_json::Value {
    let (org, user, inv) = (
        "0b3d9c1e-5f7a-4e2b-8c6d-1a2b3c4d5e6f",
        "6f1c2a4e-1d0b-4c36-9a43-2f4e51a7b9c1",
        "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
    );
    let invitation = |extra: serde_json::Value| {
        let mut v = serde_json::json!({"invitation_id": inv, "organization_id": org, "email": "a@example.com",
            "role": "member", "metadata": {"plan": "pro"}});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    match kind {
        "user.created" | "user.updated" | "user.deleted" => serde_json::json!({"user_id": user}),
        "organization.created" | "organization.updated" | "organization.deleted" => {
            serde_json::json!({"organization_id": org, "name": "Acme", "kind": "team", "created_by_user_id": null})
        }
        "organization.membership.created" => serde_json::json!({"organization_id": org, "user_id": user,
            "role": "owner", "is_initial_membership": true, "invitation_id": null, "metadata": {}}),
        "organization.membership.updated" | "organization.membership.deleted" => {
            serde_json::json!({"organization_id": org, "user_id": user, "role": "admin"})
        }
        "organization.invitation.created" => {
            invitation(serde_json::json!({"invited_by_user_id": user, "expires_at": "2026-01-09T00:00:00Z"}))
        }
        "organization.invitation.accepted" => {
            invitation(serde_json::json!({"accepted_by_user_id": user, "accepted_at": "2026-01-03T00:00:00Z"}))
        }
        "organization.invitation.revoked" => {
            invitation(serde_json::json!({"revoked_by_user_id": null, "revoked_at": "2026-01-03T00:00:00Z"}))
        }
        other => panic!("no sample for {other}"),
    }
}

#[test]
fn every_event_of_the_contract_parses_into_its_typed_variant() {
    let contract =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contract/webhooks.yaml")).unwrap();
    let kinds: Vec<&str> = contract.lines().filter_map(|l| l.trim().strip_prefix("- type: ")).collect();
    assert_eq!(kinds.len(), 12, "the contract lists twelve events");
    for kind in kinds {
        let body =
            serde_json::json!({"id": "d", "type": kind, "created_at": "2026-01-02T03:04:05Z", "data": sample(kind)});
        let event = WebhookEvent::parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(event.event.kind(), kind);
        assert!(!matches!(event.event, Event::Other { .. }), "{kind} has a typed variant");
    }
    let body = serde_json::json!({"id": "d", "type": "organization.created", "created_at": "x", "data": sample("organization.created")});
    match WebhookEvent::parse(body.to_string().as_bytes()).unwrap().event {
        Event::OrganizationCreated(o) => {
            assert_eq!((o.name.as_str(), o.kind, o.created_by_user_id), ("Acme", OrgKind::Team, None));
        }
        other => panic!("{other:?}"),
    }
    let body = serde_json::json!({"id": "d", "type": "organization.invitation.accepted", "created_at": "x",
        "data": sample("organization.invitation.accepted")});
    match WebhookEvent::parse(body.to_string().as_bytes()).unwrap().event {
        Event::InvitationAccepted(i) => {
            assert_eq!(i.role, OrgRole::Member);
            assert_eq!(i.metadata["plan"], "pro");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_types_pass_through_and_broken_bodies_are_errors() {
    let body = br#"{"id":"d","type":"session.started","created_at":"x","data":{"a":1}}"#;
    match WebhookEvent::parse(body).unwrap().event {
        Event::Other { kind, data } => assert_eq!((kind.as_str(), data["a"].as_i64()), ("session.started", Some(1))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(WebhookEvent::parse(b"nope"), Err(WebhookError::InvalidEvent(_))));
    let wrong_data = br#"{"id":"d","type":"user.created","created_at":"x","data":{"user_id":"not-a-uuid"}}"#;
    assert!(matches!(WebhookEvent::parse(wrong_data), Err(WebhookError::InvalidEvent(_))));
}
