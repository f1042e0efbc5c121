//! The production wire: one pooled reqwest client (rustls, HTTP/2 where the server offers
//! it, redirects off so a key is never forwarded to another host, the auth header marked
//! sensitive).

use std::error::Error as _;

use bytes::Bytes;
use reqwest::header::HeaderMap;

use super::{Reply, TOO_LARGE_PREFIX, TransportConfig, TransportError, too_large};
use crate::error::{ConfigError, ErrorKind};

/// Builds the reqwest client: every header the requests share is a default header, so a
/// request adds only its own id.
pub(super) fn client(
    config: &TransportConfig,
    headers: HeaderMap,
) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder();
    if !proxy_configured() {
        // With no proxy in the environment, skip reqwest's per-request proxy matching,
        // which parses the URL again for every request.
        builder = builder.no_proxy();
    }
    builder
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
        .map_err(|e| ConfigError::Http(e.to_string()))
}

/// One attempt over HTTP: the whole answer, or what stopped it.
pub(super) async fn send(
    http: &reqwest::Client,
    url: reqwest::Url,
    body: Bytes,
    id: Option<reqwest::header::HeaderValue>,
    limit: u64,
) -> Result<Reply, TransportError> {
    let mut builder = http.post(url).body(body);
    if let Some(id) = id {
        builder = builder.header(super::CLIENT_REQUEST_ID, id);
    }
    let mut response = builder.send().await.map_err(failure)?;
    let status = response.status().as_u16();
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(too_large(
            status,
            limit,
            Bytes::new(),
            format!("{length} bytes"),
        ));
    }
    let head = Reply::from_head(status, response.headers());
    // Read chunk by chunk so a body without a length (chunked, or endless) is cut off at
    // the limit instead of filling memory. One chunk, the usual case, is kept as it came.
    // More are copied into segments of fixed size and joined once at the end: memory while
    // reading is the body itself, with no doubling buffer and none of the slack each
    // chunk's read buffer carries.
    let mut first: Option<Bytes> = None;
    let mut segments = Segments::default();
    let mut held: u64 = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failure(e).with_status(status))?
    {
        held += chunk.len() as u64;
        if let Some(f) = first.take() {
            segments.push(&f);
        }
        if held > limit {
            segments.push(&chunk);
            return Err(too_large(
                status,
                limit,
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
    Ok(head.with_body(match first {
        Some(f) => f,
        None => segments.join(),
    }))
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
    TransportError::new(kind, message).with_source(err)
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
}
