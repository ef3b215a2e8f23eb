//! Webhook deliveries: signature and replay checks, and the events of `contract/webhooks.yaml`
//! as typed values.
//!
//! The server signs each delivery twice with `AUTHARA_WEBHOOK_SECRET` (HMAC-SHA256, lowercase
//! hex):
//!
//! - `X-Authara-Signature: sha256=<HMAC of the body>` (the contract's signature), and
//! - `X-Authara-Signature-V2: sha256=<HMAC of "<timestamp>.<body>">` with
//!   `X-Authara-Timestamp: <unix seconds>`, which binds the time of sending, so a captured
//!   delivery cannot be replayed outside the tolerance window.
//!
//! [`WebhookVerifier`] checks both (the timestamped one is required unless
//! [`allow_untimestamped`](WebhookVerifier::allow_untimestamped) is set, for servers that only
//! send the first). Inside the window a delivery may still arrive twice (retries are
//! at-least-once): deduplicate on [`WebhookEvent::id`], the same across retries.

mod events;

use std::sync::Arc;
use std::time::Duration;

pub use events::{
    Event, InvitationAccepted, InvitationCreated, InvitationRevoked, MembershipChanged, MembershipCreated,
    OrganizationChanged, UserChanged, WebhookEvent,
};
use ring::hmac;

use crate::clock::{Clock, SystemClock};

/// `X-Authara-Signature`
pub const SIGNATURE_HEADER: &str = "x-authara-signature";
/// `X-Authara-Signature-V2`
pub const SIGNATURE_V2_HEADER: &str = "x-authara-signature-v2";
/// `X-Authara-Timestamp`
pub const TIMESTAMP_HEADER: &str = "x-authara-timestamp";
/// `X-Authara-Event`
pub const EVENT_HEADER: &str = "x-authara-event";
/// `X-Authara-Delivery`
pub const DELIVERY_HEADER: &str = "x-authara-delivery";

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A signature header is missing (the timestamped one, unless untimestamped deliveries
    /// are allowed).
    #[error("missing signature")]
    MissingSignature,
    /// A signature is not `sha256=<64 hex digits>` or does not match.
    #[error("invalid signature")]
    InvalidSignature,
    /// `X-Authara-Timestamp` is missing or not unix seconds.
    #[error("missing or invalid timestamp")]
    InvalidTimestamp,
    /// The timestamp is further from now than the tolerance: a replay, or a clock far off.
    #[error("timestamp outside the tolerance window")]
    Expired,
    /// The body is larger than the limit.
    #[error("body too large")]
    TooLarge,
    /// The signature is valid but the body is not an event envelope.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
}

impl WebhookError {
    /// Whether the sender could not prove it holds the secret (answer `401`), as opposed to a
    /// signed body that is unusable or too large.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            WebhookError::MissingSignature
                | WebhookError::InvalidSignature
                | WebhookError::InvalidTimestamp
                | WebhookError::Expired
        )
    }
}

/// The signature headers of a delivery (values as received).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookHeaders<'a> {
    /// `X-Authara-Signature`
    pub signature: Option<&'a str>,
    /// `X-Authara-Timestamp`
    pub timestamp: Option<&'a str>,
    /// `X-Authara-Signature-V2`
    pub signature_v2: Option<&'a str>,
}

impl<'a> WebhookHeaders<'a> {
    /// Reads the three headers through `get` (a lookup by lowercase header name).
    pub fn from_fn(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            signature: get(SIGNATURE_HEADER),
            timestamp: get(TIMESTAMP_HEADER),
            signature_v2: get(SIGNATURE_V2_HEADER),
        }
    }
}

/// Checks deliveries signed with `AUTHARA_WEBHOOK_SECRET`. Cheap to clone.
///
/// ```
/// use authara_sdk::webhooks::{WebhookHeaders, WebhookVerifier};
/// let verifier = WebhookVerifier::new("the-webhook-secret")?;
/// let refused = verifier.verify(WebhookHeaders::default(), br#"{"id":"1"}"#);
/// assert!(refused.is_err());
/// # Ok::<(), authara_sdk::webhooks::EmptySecret>(())
/// ```
#[derive(Clone)]
pub struct WebhookVerifier {
    key: hmac::Key,
    tolerance_s: i64,
    untimestamped: bool,
    max_body: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("tolerance_s", &self.tolerance_s)
            .field("untimestamped", &self.untimestamped)
            .finish_non_exhaustive()
    }
}

/// The webhook secret is empty: every signature would be forgeable by anyone who knows that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret is empty")]
pub struct EmptySecret;

impl WebhookVerifier {
    /// A verifier for `secret` (the server's `AUTHARA_WEBHOOK_SECRET`, as text), with a
    /// tolerance of 5 minutes and bodies up to 1 MiB.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, EmptySecret> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(EmptySecret);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            tolerance_s: 300,
            untimestamped: false,
            max_body: 1024 * 1024,
            clock: Arc::new(SystemClock),
        })
    }

    /// How far the timestamp may be from now, either way (default 5 minutes).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance_s = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Accepts deliveries that carry only `X-Authara-Signature` (servers that do not send the
    /// timestamped signature). Such deliveries can be replayed; off by default.
    #[must_use]
    pub fn allow_untimestamped(mut self, allow: bool) -> Self {
        self.untimestamped = allow;
        self
    }

    /// The largest body the extractors read (default 1 MiB).
    #[must_use]
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// The clock for the tolerance window (default: the system's). For tests.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The body limit of the extractors.
    pub fn body_limit(&self) -> usize {
        self.max_body
    }

    /// Checks the signatures of `body` (the exact bytes received).
    pub fn verify(&self, headers: WebhookHeaders<'_>, body: &[u8]) -> Result<(), WebhookError> {
        if body.len() > self.max_body {
            return Err(WebhookError::TooLarge);
        }
        match (headers.signature_v2, headers.timestamp) {
            (Some(v2), timestamp) => {
                let ts = timestamp.map(str::trim).ok_or(WebhookError::InvalidTimestamp)?;
                let ts_value: i64 = match ts.parse() {
                    Ok(v) if ts.bytes().all(|b| b.is_ascii_digit()) => v,
                    _ => return Err(WebhookError::InvalidTimestamp),
                };
                let mut signed = Vec::with_capacity(ts.len() + 1 + body.len());
                signed.extend_from_slice(ts.as_bytes());
                signed.push(b'.');
                signed.extend_from_slice(body);
                self.check(v2, &signed)?;
                let now = self.clock.now_ms().div_euclid(1000);
                if now.abs_diff(ts_value) > self.tolerance_s.unsigned_abs() {
                    return Err(WebhookError::Expired);
                }
                // The contract's signature, when sent, must hold as well.
                if let Some(v1) = headers.signature {
                    self.check(v1, body)?;
                }
                Ok(())
            }
            (None, _) if !self.untimestamped => Err(WebhookError::MissingSignature),
            (None, _) => self.check(headers.signature.ok_or(WebhookError::MissingSignature)?, body),
        }
    }

    /// [`verify`](Self::verify), then parses the event.
    pub fn verify_event(&self, headers: WebhookHeaders<'_>, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        self.verify(headers, body)?;
        WebhookEvent::parse(body)
    }

    /// Compares `sha256=<hex>` with the HMAC of `message`, in constant time.
    fn check(&self, header: &str, message: &[u8]) -> Result<(), WebhookError> {
        let hex = header.trim().strip_prefix("sha256=").ok_or(WebhookError::InvalidSignature)?;
        let tag = decode_hex(hex).ok_or(WebhookError::InvalidSignature)?;
        hmac::verify(&self.key, message, &tag).map_err(|_| WebhookError::InvalidSignature)
    }
}

/// 64 hex digits (either case) to 32 bytes.
fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// A verified webhook delivery: the extractor of the web integrations (extract it last: it
/// reads the body).
///
/// Anything unsigned, tampered, replayed outside the window or too large is refused before
/// the handler runs; see [`WebhookRejection`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Webhook {
    /// The event.
    pub event: WebhookEvent,
    /// `X-Authara-Delivery`, the same across retries.
    pub delivery_id: Option<String>,
}

/// Why a [`Webhook`] was refused, answered in the contract's envelope.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// `401 invalid_signature`, `400 invalid_request` or `413 payload_too_large`.
    Invalid(WebhookError),
    /// The body could not be read: `400 invalid_request`.
    Body,
    /// No [`WebhookVerifier`] installed (a programming error): `500 internal_error`.
    NotConfigured,
}

impl WebhookRejection {
    /// The answer: HTTP status, the envelope's code and message.
    pub fn answer(&self) -> (u16, &'static str, &'static str) {
        match self {
            WebhookRejection::Invalid(e) if e.is_unauthenticated() => {
                (401, "invalid_signature", "The webhook signature is missing, invalid or stale.")
            }
            WebhookRejection::Invalid(WebhookError::TooLarge) => {
                (413, "payload_too_large", "The webhook body is too large.")
            }
            WebhookRejection::Invalid(_) | WebhookRejection::Body => {
                (400, "invalid_request", "The webhook body is not a valid event.")
            }
            WebhookRejection::NotConfigured => (500, "internal_error", "Internal server error."),
        }
    }

    /// The answer's body, the contract's error envelope.
    pub fn body(&self) -> String {
        let (_, code, message) = self.answer();
        serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
    }
}

impl std::fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookRejection::Invalid(e) => write!(f, "webhook refused: {e}"),
            WebhookRejection::Body => f.write_str("webhook refused: the body could not be read"),
            WebhookRejection::NotConfigured => f.write_str("no WebhookVerifier installed"),
        }
    }
}

#[cfg(test)]
mod tests;
