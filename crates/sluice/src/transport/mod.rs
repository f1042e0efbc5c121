//! Sending one attempt: the URLs, the headers every request shares and the key (marked
//! sensitive), the time an attempt may take, over a wire that is HTTP (`h1`, or hyper for HTTP/2) in
//! production or a service in memory ([`HttpService`]) in tests.

mod dial;
mod dialect;
mod h1;
mod http_wire;
mod pool;
mod service;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Uri;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::error::{ConfigError, ErrorKind};
use crate::head::{self, Header};
use crate::limits::RateHeaders;
use crate::request::{Endpoint, Request};
use crate::retry::{retry_after_in, should_retry_in};

pub use dialect::{ANTHROPIC_VERSION, Provider, sends_503_for_overload};
use http_wire::HttpWire;
pub use service::HttpService;
use service::ServiceWire;

/// An API key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key. White space around it (a stray space or newline from a copy and
    /// paste) is not part of it: it is neither sent nor looked for when redacting.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        let trimmed = key.trim();
        ApiKey(if trimmed.len() == key.len() {
            key
        } else {
            trimmed.to_owned()
        })
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
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
}

/// The header a request's `custom_id` travels in.
pub const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// The default cap on a response body: a batch of 2,048 embeddings of 3,072 dimensions,
/// pretty-printed with full precision as OpenAI sends them, is about 190 MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// How much of an over-long body an error keeps, for people to see what it was.
pub(crate) const TOO_LARGE_PREFIX: usize = 1024;

/// Whether a header's value is a credential: sent marked sensitive, and redacted from
/// everything a server sends back.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "key",
        "token",
        "secret",
        "password",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// What came back from one attempt.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
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
    /// Where a redirect points (3xx only).
    pub location: Option<String>,
}

/// A failure before a whole answer arrived.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// Connect, timeout, transport, or a body over the size limit.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
    /// The HTTP status, when the headers arrived.
    pub status: Option<u16>,
    /// The start of the body, for a body over the size limit.
    pub prefix: Option<Bytes>,
    /// The underlying error (the HTTP client's, with its own causes), if there is one.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    /// Ends in `/v1` for OpenAI-compatible servers; `None`: the provider's default.
    pub base_url: Option<String>,
    /// The dialect the base URL speaks.
    pub provider: Provider,
    /// The key, if any.
    pub api_key: Option<ApiKey>,
    /// How the key is sent; `None`: as the provider wants it.
    pub auth: Option<AuthStyle>,
    /// Extra headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub timeout: Duration,
    /// Idle connections kept per host.
    pub pool_size: usize,
    /// The largest response body read; a larger one fails the attempt unread.
    pub max_response_bytes: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            base_url: None,
            provider: Provider::OpenAi,
            api_key: None,
            auth: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
            pool_size: 64,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Sends requests: the URLs and headers every attempt shares, and the wire under them
/// (HTTP, or a service in memory).
#[derive(Clone)]
pub(crate) struct Transport {
    urls: [Uri; Endpoint::ALL.len()],
    wire: Wire,
    /// Time allowed for a whole attempt, body included.
    timeout: Duration,
    max_response_bytes: u64,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

/// What carries the bytes.
#[derive(Clone)]
enum Wire {
    Http(Box<HttpWire>),
    Service(ServiceWire),
}

impl Transport {
    /// The transport `config` describes, over HTTP or, given one, through `service`.
    pub(crate) fn new(
        config: &TransportConfig,
        service: Option<Arc<dyn HttpService>>,
    ) -> Result<Self, ConfigError> {
        let provider = config.provider;
        let base = config
            .base_url
            .as_deref()
            .or(provider.default_base_url())
            .ok_or(ConfigError::MissingBaseUrl(provider))?;
        let mut urls = Vec::with_capacity(Endpoint::ALL.len());
        for e in Endpoint::ALL {
            let url = provider.endpoint_url(base, e)?;
            urls.push(
                Uri::try_from(url.as_str())
                    .map_err(|_| ConfigError::BadBaseUrl(base.to_owned()))?,
            );
        }
        let urls: [Uri; Endpoint::ALL.len()] = urls.try_into().expect("one URL per endpoint");
        let headers = shared_headers(config)?;
        let wire = match service {
            Some(service) => Wire::Service(ServiceWire { service, headers }),
            None => Wire::Http(Box::new(HttpWire::new(config, headers, &urls)?)),
        };
        Ok(Transport {
            urls,
            wire,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// The URL requests to `endpoint` go to.
    pub(crate) fn url(&self, endpoint: Endpoint) -> &Uri {
        &self.urls[endpoint.index()]
    }

    /// One attempt: the whole answer within the time allowed, or what stopped it.
    pub(crate) async fn send(&self, request: &Request) -> Result<Reply, TransportError> {
        let url = &self.urls[request.endpoint.index()];
        let id = header_safe(&request.custom_id);
        let body = request.body.clone();
        let limit = self.max_response_bytes;
        let attempt = async {
            match &self.wire {
                Wire::Http(wire) => wire.send(request.endpoint.index(), body, id, limit).await,
                Wire::Service(wire) => wire.send(url, body, id, limit).await,
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::new(
                    ErrorKind::Timeout,
                    format!("no whole answer within {:.0} s", self.timeout.as_secs_f64()),
                ))
            })
    }
}

/// `id` if it can be a header value (no control character but tab, the rule
/// `HeaderValue::from_str` applies), checked without making one: over HTTP/1.1 the id is
/// written as it is. A request whose id cannot be a header goes without one.
fn header_safe(id: &str) -> Option<&str> {
    id.bytes()
        .all(|b| (b >= b' ' && b != 0x7f) || b == b'\t')
        .then_some(id)
}

/// What every request says it is: providers and gateways log it, and some refuse
/// requests without one.
pub const USER_AGENT: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// The headers every request carries: content type, a user agent naming sluice, those
/// the provider requires, the configured extras (which may replace any of these) and the
/// key, credentials marked sensitive.
fn shared_headers(config: &TransportConfig) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    );
    for (name, value) in config.provider.required_headers() {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    for (name, value) in &config.headers {
        let bad = || ConfigError::BadHeader(name.clone());
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        value.set_sensitive(is_secret_header(name.as_str()));
        headers.insert(name, value);
    }
    if let Some(key) = &config.api_key {
        let (name, value) = match config.auth.unwrap_or(config.provider.auth()) {
            AuthStyle::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose())),
            AuthStyle::ApiKeyHeader => {
                (HeaderName::from_static("api-key"), key.expose().to_owned())
            }
            AuthStyle::XApiKey => (
                HeaderName::from_static("x-api-key"),
                key.expose().to_owned(),
            ),
        };
        // Never name the key in the error: it would be printed.
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| ConfigError::BadHeader("the API key".to_owned()))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

impl Reply {
    /// What the status line and headers say; the body comes with [`Reply::with_body`].
    pub(crate) fn from_head(status: u16, headers: &[Header<'_>]) -> Reply {
        let now = SystemTime::now();
        let text = |name| head::find(headers, name).map(str::to_owned);
        Reply {
            status,
            retry_after: retry_after_in(headers, now),
            should_retry: should_retry_in(headers),
            // OpenAI's `x-request-id`, Anthropic's `request-id`.
            request_id: text("x-request-id").or_else(|| text("request-id")),
            body: Bytes::new(),
            rate: RateHeaders::parse_head(headers, now),
            location: (300..400)
                .contains(&status)
                .then(|| text("location"))
                .flatten(),
        }
    }

    pub(crate) fn with_body(mut self, body: Bytes) -> Reply {
        self.body = body;
        self
    }
}

impl TransportError {
    /// A failure of `kind` (connect, timeout, transport) before any answer.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            status: None,
            prefix: None,
            source: None,
        }
    }

    /// The same failure, caused by `source`.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same failure, after the answer's status arrived.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// The failure for an answer whose body passes `limit`: the length it `stated`, or none
/// (chunks, or a body to the close); `prefix` keeps its start.
fn too_large(status: u16, limit: u64, prefix: Bytes, stated: Option<u64>) -> TransportError {
    let seen = match stated {
        Some(length) => format!("{length} bytes"),
        None => "more than that (no length given)".to_owned(),
    };
    TransportError {
        kind: ErrorKind::ResponseTooLarge,
        message: format!(
            "HTTP {status} with a body of {seen}, over the limit of {limit} bytes; \
             the body was not read"
        ),
        status: Some(status),
        prefix: Some(prefix),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_header_safe_exactly_when_it_can_be_a_header_value() {
        let mut ids: Vec<String> = (0u32..0x250)
            .filter_map(char::from_u32)
            .map(|c| format!("id{c}x"))
            .collect();
        ids.extend([
            "".into(),
            "plain-123".into(),
            "tab\tin".into(),
            "日本".into(),
        ]);
        for id in &ids {
            assert_eq!(
                header_safe(id).is_some(),
                HeaderValue::from_str(id).is_ok(),
                "{id:?}"
            );
        }
    }

    #[test]
    fn keys_are_trimmed_and_credential_headers_recognised() {
        assert_eq!(ApiKey::new(" \tsk-abc\n").expose(), "sk-abc");
        for name in [
            "Authorization",
            "x-api-key",
            "X-Auth-Token",
            "Cookie",
            "client_secret",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["OpenAI-Organization", "X-Trace", "anthropic-version"] {
            assert!(!is_secret_header(name), "{name}");
        }
    }
}
