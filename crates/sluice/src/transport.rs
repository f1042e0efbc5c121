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
}

/// The header a request's `custom_id` travels in.
pub const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// The default cap on a response body: a batch of 2,048 embeddings of 3,072 dimensions,
/// pretty-printed with full precision as OpenAI sends them, is about 190 MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// How much of an over-long body an error keeps, for people to see what it was.
pub const TOO_LARGE_PREFIX: usize = 1024;

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
    /// The largest response body read; a larger one fails the attempt unread.
    pub max_response_bytes: u64,
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
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Sends requests.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    urls: [reqwest::Url; 4],
    max_response_bytes: u64,
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
            let mut value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
            value.set_sensitive(is_secret_header(name.as_str()));
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
        Ok(Transport {
            http,
            urls,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// The URL requests to `endpoint` go to.
    pub(crate) fn url(&self, endpoint: Endpoint) -> &reqwest::Url {
        &self.urls[endpoint.index()]
    }

    /// One attempt: the whole answer, or what stopped it.
    pub(crate) async fn send(&self, request: &Request) -> Result<Reply, TransportError> {
        let url = self.urls[request.endpoint.index()].clone();
        let mut builder = self.http.post(url).body(request.body.clone());
        if let Ok(id) = HeaderValue::from_str(&request.custom_id) {
            builder = builder.header(CLIENT_REQUEST_ID, id);
        }
        let mut response = builder.send().await.map_err(failure)?;
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
        let location = (300..400)
            .contains(&status)
            .then(|| headers.get(reqwest::header::LOCATION))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = self.max_response_bytes;
        let too_large = |prefix: Bytes, seen: String| TransportError {
            kind: ErrorKind::ResponseTooLarge,
            message: format!(
                "HTTP {status} with a body of {seen}, over the limit of {limit} bytes; \
                 the body was not read"
            ),
            status: Some(status),
            prefix: Some(prefix),
        };
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(too_large(Bytes::new(), format!("{length} bytes")));
        }
        // Read chunk by chunk so a body without a length (chunked, or endless) is cut off at
        // the limit instead of filling memory. One chunk, the usual case, is kept as it
        // came. More are copied into segments of fixed size and joined once at the end:
        // memory while reading is the body itself, with no doubling buffer and none of the
        // slack each chunk's read buffer carries.
        let mut first: Option<Bytes> = None;
        let mut segments = Segments::default();
        let mut held: u64 = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| with_status(failure(e), status))?
        {
            held += chunk.len() as u64;
            if let Some(f) = first.take() {
                segments.push(&f);
            }
            if held > limit {
                segments.push(&chunk);
                return Err(too_large(
                    segments.prefix(TOO_LARGE_PREFIX),
                    "more than that (no length given)".to_owned(),
                ));
            }
            if segments.is_empty() {
                first = Some(chunk);
            } else {
                segments.push(&chunk);
            }
        }
        let body = match first {
            Some(f) => f,
            None => segments.join(),
        };
        Ok(Reply {
            status,
            retry_after,
            should_retry,
            request_id,
            body,
            rate,
            location,
        })
    }
}

/// A body received in several chunks, copied into fixed-size segments.
#[derive(Default)]
struct Segments {
    full: Vec<Vec<u8>>,
    len: usize,
}

impl Segments {
    const SIZE: usize = 1 << 20;

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        while !bytes.is_empty() {
            match self.full.last_mut() {
                Some(last) if last.len() < last.capacity() => {
                    let n = (last.capacity() - last.len()).min(bytes.len());
                    last.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                }
                _ => self.full.push(Vec::with_capacity(Self::SIZE)),
            }
        }
    }

    fn prefix(&self, n: usize) -> Bytes {
        let mut out = Vec::with_capacity(n);
        for s in &self.full {
            out.extend_from_slice(&s[..(n - out.len()).min(s.len())]);
            if out.len() == n {
                break;
            }
        }
        Bytes::from(out)
    }

    fn join(self) -> Bytes {
        let mut out = Vec::with_capacity(self.len);
        for s in self.full {
            out.extend_from_slice(&s);
        }
        Bytes::from(out)
    }
}

fn with_status(mut e: TransportError, status: u16) -> TransportError {
    e.status = Some(status);
    e
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
    TransportError {
        kind,
        message,
        status: None,
        prefix: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_join_to_what_was_pushed_and_give_a_prefix() {
        let mut s = Segments::default();
        let mut want = Vec::new();
        for i in 0..300u32 {
            let chunk = vec![(i % 251) as u8; 1 + (i as usize * 7919) % 20_000];
            s.push(&chunk);
            want.extend_from_slice(&chunk);
        }
        assert!(s.full.iter().all(|seg| seg.capacity() == Segments::SIZE));
        assert_eq!(&s.prefix(5000)[..], &want[..5000]);
        assert_eq!(&s.join()[..], &want[..]);
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
