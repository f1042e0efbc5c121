//! HTTP: one pooled reqwest client (rustls, HTTP/2 where the server offers it, redirects
//! off so a key is never forwarded to another host, the auth header marked sensitive).

use std::error::Error as _;
use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::error::{ConfigError, ErrorKind};
use crate::limits::RateHeaders;
use crate::request::{Endpoint, Request};
use crate::retry::{retry_after, should_retry};

/// An API key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the one place that sends it and the places that redact it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How the key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthStyle {
    /// `Authorization: Bearer KEY` (OpenAI and most compatible servers).
    #[default]
    Bearer,
    /// `api-key: KEY` (Azure OpenAI).
    ApiKeyHeader,
}

/// The header a request's `custom_id` travels in.
pub const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// What came back from one attempt.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The server's retry delay, if it gave one.
    pub retry_after: Option<Duration>,
    /// The server's `x-should-retry`, if it gave one.
    pub should_retry: Option<bool>,
    /// The server's request id (`x-request-id`).
    pub request_id: Option<String>,
    /// The whole body.
    pub body: Bytes,
    /// The rate-limit headers.
    pub rate: RateHeaders,
}

/// A failure before a whole answer arrived.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// Connect, timeout or transport.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Ends in `/v1` for OpenAI-compatible servers.
    pub base_url: String,
    /// The key, if any.
    pub api_key: Option<ApiKey>,
    /// How the key is sent.
    pub auth: AuthStyle,
    /// Extra headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub timeout: Duration,
    /// Idle connections kept per host.
    pub pool_size: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            base_url: "https://api.openai.com/v1".to_owned(),
            api_key: None,
            auth: AuthStyle::Bearer,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
            pool_size: 64,
        }
    }
}

/// Sends requests.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    urls: [reqwest::Url; 4],
}

impl Transport {
    pub(crate) fn new(config: &TransportConfig) -> Result<Self, ConfigError> {
        let base = config.base_url.trim_end_matches('/');
        let url_for = |e: Endpoint| {
            let url = reqwest::Url::parse(&format!("{base}{}", e.path()))
                .map_err(|_| ConfigError::BadBaseUrl(config.base_url.clone()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::BadBaseUrl(config.base_url.clone()));
            }
            Ok(url)
        };
        let urls = [
            url_for(Endpoint::ChatCompletions)?,
            url_for(Endpoint::Completions)?,
            url_for(Endpoint::Embeddings)?,
            url_for(Endpoint::Responses)?,
        ];
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &config.headers {
            let bad = || ConfigError::BadHeader(name.clone());
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(value).map_err(|_| bad())?;
            headers.insert(name, value);
        }
        if let Some(key) = &config.api_key {
            let (name, value) = match config.auth {
                AuthStyle::Bearer => (
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {}", key.expose()),
                ),
                AuthStyle::ApiKeyHeader => {
                    (HeaderName::from_static("api-key"), key.expose().to_owned())
                }
            };
            // Never name the key in the error: it would be printed.
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| ConfigError::BadHeader("the API key".to_owned()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder();
        if !proxy_configured() {
            // With no proxy in the environment, skip reqwest's per-request proxy matching,
            // which parses the URL again for every request.
            builder = builder.no_proxy();
        }
        let http = builder
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            // sluice decides every retry itself (classified, budgeted, paced); reqwest's own
            // layer would also copy every request's headers in case it retries one.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_max_idle_per_host(config.pool_size)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Transport { http, urls })
    }

    /// One attempt: the whole answer, or what stopped it.
    pub(crate) async fn send(&self, request: &Request) -> Result<Reply, TransportError> {
        let url = self.urls[request.endpoint.index()].clone();
        let mut builder = self.http.post(url).body(request.body.clone());
        if let Ok(id) = HeaderValue::from_str(&request.custom_id) {
            builder = builder.header(CLIENT_REQUEST_ID, id);
        }
        let response = builder.send().await.map_err(failure)?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let now = SystemTime::now();
        let retry_after = retry_after(headers, now);
        let should_retry = should_retry(headers);
        let rate = RateHeaders::parse(headers, now);
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(failure)?;
        Ok(Reply {
            status,
            retry_after,
            should_retry,
            request_id,
            body,
            rate,
        })
    }
}

/// Whether the environment names a proxy reqwest would use.
fn proxy_configured() -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
        .iter()
        .flat_map(|name| [name.to_string(), name.to_lowercase()])
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Classifies a reqwest error and describes it with its causes, the URL left out.
fn failure(err: reqwest::Error) -> TransportError {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Transport
    };
    let err = err.without_url();
    let mut message = err.to_string();
    // The useful part ("connection reset by peer") is usually a few causes down.
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        next = cause.source();
    }
    TransportError { kind, message }
}
