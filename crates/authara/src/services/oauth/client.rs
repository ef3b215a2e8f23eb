//! HTTP to sign-in providers: one `reqwest` client (rustls) with connect and total timeouts,
//! responses read up to a size bound, JSON only.

use std::time::Duration;

use serde::de::DeserializeOwned;

/// Connect timeout to a provider.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout to a provider.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest provider response read (discovery documents, key sets, tokens, profiles).
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// Why a provider could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    #[error("provider answered HTTP {0}")]
    Status(u16),
    #[error("provider response over {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("provider response malformed: {0}")]
    Malformed(String),
}

/// The client every provider call goes through.
#[derive(Clone, Debug)]
pub struct ProviderHttp {
    client: reqwest::Client,
}

impl ProviderHttp {
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("authara/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("provider HTTP client: {e}"))?;
        Ok(Self { client })
    }

    /// `GET url` (with a bearer token when given), decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str, bearer: Option<&str>) -> Result<T, ProviderError> {
        let mut req = self.client.get(url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        self.json(req).await
    }

    /// `POST url` with an urlencoded form (and HTTP Basic client authentication when given),
    /// decoded as JSON.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<T, ProviderError> {
        let body = serde_urlencoded::to_string(form).map_err(|e| ProviderError::Malformed(e.to_string()))?;
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            // RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
            let enc =
                |s: &str| serde_urlencoded::to_string([("", s)]).unwrap_or_default().trim_start_matches('=').to_owned();
            req = req.basic_auth(enc(id), Some(enc(secret)));
        }
        self.json(req).await
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ProviderError> {
        let mut res = req.send().await.map_err(|e| ProviderError::Unreachable(without_url(&e)))?;
        let status = res.status();
        if res.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return Err(ProviderError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| ProviderError::Unreachable(without_url(&e)))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ProviderError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(ProviderError::Status(status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|e| ProviderError::Malformed(e.to_string()))
    }
}

/// A reqwest error without its URL (token endpoints may carry codes in queries).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "request failed"
    };
    kind.to_owned()
}
