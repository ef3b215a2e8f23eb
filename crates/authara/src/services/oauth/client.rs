//! HTTP to sign-in providers: `reqwest` (rustls) with connect and total timeouts, responses
//! read up to a size bound, JSON only. [`ProviderHttp`] is also the `oauth2` crate's HTTP client
//! for token requests (which follow no redirects), so they keep the same limits.

use std::future::Future;
use std::pin::Pin;
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
    /// The token endpoint answered with an OAuth error (`invalid_grant`, `invalid_client`, …).
    #[error("provider refused the token request: {0}")]
    Refused(String),
}

/// The client every provider call goes through.
#[derive(Clone, Debug)]
pub struct ProviderHttp {
    client: reqwest::Client,
    /// For token requests: no redirects (a code and a client secret go to one address only).
    token_client: reqwest::Client,
}

fn build(redirect: reqwest::redirect::Policy) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(redirect)
        .user_agent(concat!("authara/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("provider HTTP client: {e}"))
}

impl ProviderHttp {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            client: build(reqwest::redirect::Policy::limited(3))?,
            token_client: build(reqwest::redirect::Policy::none())?,
        })
    }

    /// `GET url` (with a bearer token when given), decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str, bearer: Option<&str>) -> Result<T, ProviderError> {
        let mut req = self.client.get(url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        self.json(req).await
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ProviderError> {
        let res = req.send().await.map_err(|e| ProviderError::Unreachable(without_url(&e)))?;
        let status = res.status();
        let body = read_bounded(res).await?;
        if !status.is_success() {
            return Err(ProviderError::Status(status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|e| ProviderError::Malformed(e.to_string()))
    }
}

/// The body of a response, up to [`MAX_RESPONSE_BYTES`].
async fn read_bounded(mut res: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
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
    Ok(body)
}

/// The `oauth2` crate's token requests go through the token client: same timeouts and size
/// bound, no redirects. Only a success or an OAuth error status (400, 401) carries an answer
/// for the crate to read; anything else is the provider failing.
impl<'c> oauth2::AsyncHttpClient<'c> for ProviderHttp {
    type Error = ProviderError;
    type Future = Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, ProviderError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|_| ProviderError::Malformed("token request not sendable".to_owned()))?;
            let res =
                self.token_client.execute(request).await.map_err(|e| ProviderError::Unreachable(without_url(&e)))?;
            let status = res.status();
            if !(status.is_success() || status.as_u16() == 400 || status.as_u16() == 401) {
                return Err(ProviderError::Status(status.as_u16()));
            }
            let headers = res.headers().clone();
            let mut answer = oauth2::HttpResponse::new(read_bounded(res).await?);
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
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
