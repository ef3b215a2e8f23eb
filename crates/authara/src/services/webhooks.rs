//! Webhooks: deliver the public domain events to `AUTHARA_WEBHOOK_URL`, signed, retried,
//! observable (behavior.md §11, better).
//!
//! Deliveries are written with their event in the change's own transaction (see
//! `services::events`), so a rolled-back change never produces one and a committed one always
//! does, even if the process dies right after the commit. A delivery keeps its id across
//! retries (receivers deduplicate on `X-Authara-Delivery`). Each request carries the contract's
//! `X-Authara-Signature: sha256=<hex HMAC of the body>`, and, so that receivers can refuse
//! replays, `X-Authara-Timestamp` (unix seconds) with `X-Authara-Signature-V2: sha256=<hex HMAC of
//! "<timestamp>.<body>">`.
//!
//! Outcomes: 2xx delivered; network errors, timeouts, 429 and 5xx are retried after
//! `AUTHARA_WEBHOOK_RETRY_DELAYS` until `AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS`; any other status
//! (a redirect elsewhere included) fails at once. Responses are read only up to 1 KiB.
//!
//! Where a signed body may go: redirects are followed only to the configured URL's own origin
//! (scheme, host and port), at most 3; and deliveries connect to loopback, link-local, private
//! and other non-public addresses only when the configured URL itself is one (an IP address or
//! `localhost`, or a name whose addresses all are, decided when it first resolves), so a
//! public receiver's name that later resolves inside the network (DNS rebinding) reaches
//! nothing there. What is recorded of a failure (`last_error`, the console, the log) never holds
//! the URL's path or query, where receivers keep keys.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ring::hmac;
use uuid::Uuid;

use super::Core;
use crate::clock::ms;
use crate::config::WebhookConfig;
use crate::store::StoreError;
use crate::store::webhooks::{Attempt, DeliveryRow};

/// What one dispatch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Webhooks are off, or nothing was due.
    Idle,
    Delivered,
    /// Failed for now; the delivery waits for its next attempt.
    Retrying,
    /// Failed for good (a non-retryable status or attempts exhausted).
    Failed,
}

/// At most this much of a receiver's answer is read (for the error message).
const MAX_RESPONSE_BYTES: usize = 1024;

/// The webhook dispatcher.
#[derive(Clone)]
pub struct Webhooks {
    core: Core,
    http: reqwest::Client,
}

impl Webhooks {
    pub(crate) fn new(core: Core) -> Result<Self, String> {
        let timeout = core.config.webhooks.as_ref().map_or(Duration::from_secs(5), |w| w.timeout);
        // why (SSRF): a redirect that changes the scheme, the host or the port would carry the
        // signed body somewhere the operator never named; only the configured origin, at most 3.
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
            if attempt.previous().len() >= 3 || !same_origin { attempt.stop() } else { attempt.follow() }
        });
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver { private_ok: Arc::new(OnceLock::new()) }))
            // why (SSRF): through a proxy of HTTP(S)_PROXY the resolver above would see only the
            // proxy; deliveries go straight to the receiver, so its addresses are the ones checked.
            .no_proxy()
            .user_agent(concat!("authara/", env!("CARGO_PKG_VERSION"), " webhooks"))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Self { core, http })
    }

    fn config(&self) -> Option<&WebhookConfig> {
        self.core.config.webhooks.as_ref()
    }

    /// Waits until a commit on this instance queued a delivery, or `at_most` passed.
    pub async fn wait_for_work(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.core.webhook_kick.notified()).await;
    }

    /// Claims the next due delivery and sends it.
    pub async fn deliver_next(&self) -> Result<Outcome, StoreError> {
        let Some(cfg) = self.config() else { return Ok(Outcome::Idle) };
        let store = &self.core.store;
        let Some(d) = store.claim_delivery(self.core.now_ms()).await? else { return Ok(Outcome::Idle) };
        let timestamp = self.core.now_ms().div_euclid(1000);
        let key = hmac::Key::new(hmac::HMAC_SHA256, cfg.secret.expose_secret().as_bytes());
        let v1 = hex(hmac::sign(&key, d.payload.as_bytes()).as_ref());
        let v2 = hex(hmac::sign(&key, format!("{timestamp}.{}", d.payload).as_bytes()).as_ref());
        let started = Instant::now();
        let sent = self
            .http
            .post(&cfg.url)
            .header("content-type", "application/json")
            .header("x-authara-event", &d.event_type)
            .header("x-authara-delivery", d.id.to_string())
            .header("x-authara-signature", format!("sha256={v1}"))
            .header("x-authara-timestamp", timestamp.to_string())
            .header("x-authara-signature-v2", format!("sha256={v2}"))
            .body(d.payload.clone())
            .send()
            .await;
        let (status, error) = match sent {
            Ok(mut res) => {
                let status = res.status();
                let mut body = Vec::new();
                while body.len() < MAX_RESPONSE_BYTES {
                    match res.chunk().await {
                        Ok(Some(chunk)) => {
                            body.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE_BYTES - body.len())])
                        }
                        _ => break,
                    }
                }
                let error = (!status.is_success()).then(|| {
                    let answer = redact(String::from_utf8_lossy(&body).trim(), &cfg.url);
                    format!("HTTP {}: {answer}", status.as_u16())
                });
                (Some(status), error)
            }
            Err(e) => (None, Some(describe(&e))),
        };
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let code = status.map(|s| i32::from(s.as_u16()));
        let retryable = status.is_none_or(|s| s.as_u16() == 429 || s.is_server_error());
        let max = i32::try_from(cfg.max_delivery_attempts).unwrap_or(i32::MAX);
        let now = self.core.now_ms();
        let (attempt, outcome) = match &error {
            None => (Attempt::Delivered { status: code.unwrap_or(200), latency_ms }, Outcome::Delivered),
            Some(e) if retryable && d.attempt_count < max => {
                let index = usize::try_from(d.attempt_count - 1).unwrap_or(0).min(cfg.retry_delays.len() - 1);
                let next_at_ms = now.saturating_add(ms(cfg.retry_delays[index]));
                (Attempt::Retry { next_at_ms, error: e, status: code, latency_ms }, Outcome::Retrying)
            }
            Some(e) => (Attempt::Failed { error: e, status: code, latency_ms }, Outcome::Failed),
        };
        if !store.finish_delivery(d.id, d.processing_started_at_ms, now, &attempt).await? {
            tracing::warn!(delivery = %d.id, "webhook delivery lease lost; left to its new owner");
        }
        match outcome {
            Outcome::Delivered => {
                tracing::debug!(delivery = %d.id, event = %d.event_type, latency_ms, "webhook delivered")
            }
            _ => {
                tracing::warn!(delivery = %d.id, event = %d.event_type, attempts = d.attempt_count, error = ?error, "webhook delivery failed")
            }
        }
        Ok(outcome)
    }

    /// Returns deliveries abandoned by a dead worker to the queue. Returns how many.
    pub async fn reap(&self) -> Result<u64, StoreError> {
        let Some(cfg) = self.config() else { return Ok(0) };
        let now = self.core.now_ms();
        let max = i32::try_from(cfg.max_delivery_attempts).unwrap_or(i32::MAX);
        self.core.store.reap_deliveries(now, now - ms(cfg.processing_stale_after), max).await
    }

    /// Deletes delivered and failed deliveries past their retention.
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        let Some(cfg) = self.config() else { return Ok(0) };
        let now = self.core.now_ms();
        self.core.store.cleanup_deliveries(now - ms(cfg.delivered_retention), now - ms(cfg.failed_retention)).await
    }

    /// Queues a delivered or failed delivery again, under the same delivery id.
    pub async fn redeliver(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = self.core.store.redeliver(id, self.core.now_ms()).await?;
        if done {
            self.core.webhook_kick.notify_one();
        }
        Ok(done)
    }

    /// The newest deliveries, for operators.
    pub async fn recent(&self, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        self.core.store.recent_deliveries(limit).await
    }

    pub async fn delivery(&self, id: Uuid) -> Result<Option<DeliveryRow>, StoreError> {
        self.core.store.delivery(id).await
    }

    /// Deliveries per status.
    pub async fn counts(&self) -> Result<std::collections::HashMap<crate::domain::DeliveryStatus, i64>, StoreError> {
        self.core.store.delivery_counts().await
    }

    /// Whether webhooks are configured, and the settings the workers need.
    pub fn settings(&self) -> Option<&WebhookConfig> {
        self.config()
    }
}

/// A failed request in words, without its URL (reqwest's own text names the whole URL, path and
/// query included): the kind of failure, and the operating system's reason when there is one.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut reason = None;
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            reason = Some(io.to_string());
        }
        cause = c.source();
    }
    match reason {
        Some(r) if !e.is_timeout() => format!("{kind}: {r}"),
        _ => kind.to_owned(),
    }
}

/// A receiver's answer with the configured URL's path and query taken out (an error page that
/// echoes the request path would otherwise put a key kept there into `last_error`).
fn redact(answer: &str, url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else { return answer.to_owned() };
    let mut out = answer.replace(url, "[webhook URL]");
    let path = parsed.path();
    if let Some(query) = parsed.query().filter(|q| !q.is_empty()) {
        out = out.replace(query, "[query]");
    }
    if path.len() > 1 {
        out = out.replace(path, "[path]");
    }
    out
}

/// Whether `ip` is an address of the public internet: not loopback, private (RFC 1918, unique
/// local), link-local, shared (CGNAT), unspecified, multicast, broadcast, reserved or for
/// documentation and benchmarks; IPv4 inside IPv6 (mapped, NAT64, 6to4) is judged as IPv4.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(a == 0
                || a == 10
                || a == 127
                || (a == 100 && (64..128).contains(&b))
                || (a == 169 && b == 254)
                || (a == 172 && (16..32).contains(&b))
                || (a == 192 && b == 168)
                || (a == 192 && b == 0 && (c == 0 || c == 2))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 198 && b == 51 && c == 100)
                || (a == 203 && b == 0 && c == 113)
                || a >= 224)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [x, y] = s[6].to_be_bytes();
                let [z, w] = s[7].to_be_bytes();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(x, y, z, w)));
            }
            if s[0] == 0x2002 {
                let [x, y] = s[1].to_be_bytes();
                let [z, w] = s[2].to_be_bytes();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(x, y, z, w)));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] & 0xff00) == 0xff00
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// The webhook client's name resolution: the configured host's addresses, of which only public
/// ones unless the configured host itself resolved (the first time) to non-public addresses only.
/// Redirects stay on the configured origin, and an IP address in the URL is not resolved, so
/// this sees the configured host only.
struct GuardedResolver {
    /// Decided at the first successful resolution.
    private_ok: Arc<OnceLock<bool>>,
}

impl GuardedResolver {
    fn allowed(private_ok: &OnceLock<bool>, found: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let private_ok = *private_ok.get_or_init(|| {
            let inside = found.iter().all(|a| !is_public(a.ip()));
            if inside {
                tracing::info!("the webhook receiver is on a private network: deliveries may go to private addresses");
            }
            inside
        });
        if private_ok { found } else { found.into_iter().filter(|a| is_public(a.ip())).collect() }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let private_ok = Arc::clone(&self.private_ok);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(std::io::Error::other("the receiver's name has no address").into());
            }
            let allowed = GuardedResolver::allowed(&private_ok, found);
            if allowed.is_empty() {
                return Err(std::io::Error::other(
                    "the receiver's name resolved to a non-public address (refused: the configured URL is public)",
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_internet_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            assert!(!is_public(ip(inside)), "{inside}");
        }
        for outside in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(outside)), "{outside}");
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| SocketAddr::new(ip(a), 0)).collect()
    }

    #[test]
    fn a_public_receiver_name_never_reaches_inside_later() {
        let decided = OnceLock::new();
        assert_eq!(GuardedResolver::allowed(&decided, addrs(&["93.184.216.34"])), addrs(&["93.184.216.34"]));
        // Rebound: the same name now answers with addresses inside.
        assert!(GuardedResolver::allowed(&decided, addrs(&["127.0.0.1", "10.0.0.5"])).is_empty());
        assert_eq!(
            GuardedResolver::allowed(&decided, addrs(&["10.0.0.5", "93.184.216.35"])),
            addrs(&["93.184.216.35"])
        );
    }

    #[test]
    fn a_receiver_configured_inside_stays_reachable() {
        let decided = OnceLock::new();
        assert_eq!(GuardedResolver::allowed(&decided, addrs(&["10.0.0.7"])), addrs(&["10.0.0.7"]));
        assert_eq!(GuardedResolver::allowed(&decided, addrs(&["10.0.0.8"])), addrs(&["10.0.0.8"]));
    }

    #[test]
    fn answers_lose_the_urls_path_and_query() {
        let url = "https://hooks.example.com/in/k3y-in-path?token=qs-secret";
        let echoed = "Cannot POST /in/k3y-in-path?token=qs-secret (see https://hooks.example.com/in/k3y-in-path?token=qs-secret)";
        let out = redact(echoed, url);
        assert!(!out.contains("k3y-in-path") && !out.contains("qs-secret"), "{out}");
        assert_eq!(redact("Service Unavailable", url), "Service Unavailable");
    }

    #[test]
    fn documentation_and_benchmark_ranges_are_not_public() {
        for reserved in [
            "192.0.2.1",
            "192.0.0.9",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.1",
            "2001:db8::1",
            "fec0::1",
        ] {
            assert!(!is_public(ip(reserved)), "{reserved}");
        }
        for outside in ["192.0.3.1", "198.20.0.1", "203.0.114.1", "2001:db9::1"] {
            assert!(is_public(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn a_root_path_and_an_empty_query_are_not_redacted() {
        let url = "https://hooks.example.com/?";
        assert_eq!(redact("502 from /upstream/x", url), "502 from /upstream/x");
        assert_eq!(redact("see https://hooks.example.com/?", url), "see [webhook URL]");
        assert_eq!(redact("kept as is", "not a url"), "kept as is");
    }

    #[test]
    fn signatures_are_lowercase_hex_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[tokio::test]
    async fn a_failed_request_is_described_without_its_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/secret-path?token=secret-query");
        let e = reqwest::Client::builder().no_proxy().build().unwrap().post(&url).send().await.unwrap_err();
        let said = describe(&e);
        assert!(said.starts_with("connection failed"), "{said}");
        assert!(!said.contains("secret"), "{said}");

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/secret-path", silent.local_addr().unwrap());
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(100)).build().unwrap();
        let e = client.post(&url).send().await;
        assert_eq!(describe(&e.unwrap_err()), "timed out");
    }
}
