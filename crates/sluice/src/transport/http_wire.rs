//! The production wire: HTTP/1.1 spoken by [`super::h1`] and HTTP/2 by hyper, on
//! connections kept by [`super::pool`], over rustls
//! (checked against the webpki roots and those `SSL_CERT_FILE` names; HTTP/2 where the
//! server offers it by ALPN, HTTP/1.1 otherwise), opened by [`super::dial`] (proxies from
//! the environment), no redirects followed (a key is never forwarded to another host),
//! credentials marked sensitive. Not reqwest: reqwest's layers (its
//! URL parsing on every request, redirect and retry services, client clones) cost about
//! 2.4 µs of CPU a request, 14 % of all sluice spends on one (docs/BENCHMARKS.md, "The
//! wire on hyper, two threads").

use std::error::Error as StdError;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::BodyExt as _;
use http_body_util::Full;
use hyper::body::Body as _;
use hyper::client::conn::http2;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::proxy::matcher::Matcher;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::dial::{BoxError, Dialer, proxies_from_env};
use super::h1::H1Error;
use super::pool::{Body, Origin, Pool, Sender};
use super::{
    CLIENT_REQUEST_ID, Reply, TOO_LARGE_PREFIX, TransportConfig, TransportError, too_large,
};
use crate::error::{ConfigError, ErrorKind};

/// The HTTP client and what every request through it carries.
#[derive(Clone)]
pub(super) struct HttpWire {
    pool: Arc<Pool>,
    /// Where each endpoint's requests go, in the order of the URLs the wire was made for.
    routes: Arc<[Route]>,
    /// The headers every request shares, the key among them, with places for the `Host`
    /// and the request's id.
    headers: HeaderMap,
    /// Whether the place for the request's id is the wire's own (not a configured header):
    /// a request whose id cannot be a header value then goes without one.
    id_slot: bool,
}

/// One URL, in the forms its requests need, made once rather than on every request.
struct Route {
    origin: Arc<Origin>,
    /// The URL whole: over HTTP/2, or to a proxy that forwards plain http.
    absolute: Uri,
    /// Its path and query alone: over HTTP/1.1 straight to the server (or a tunnel).
    origin_form: Uri,
    /// The `Host` of an HTTP/1.1 request (HTTP/2 names it in the URL).
    host: HeaderValue,
    /// The `Proxy-Authorization` its plain http requests need when the environment sends
    /// them to a proxy that asks for credentials, found once here rather than matched
    /// against the proxy rules on every request.
    proxy_credentials: Option<HeaderValue>,
}

impl HttpWire {
    /// The wire `config` describes, sending `headers` with every request to `urls`.
    pub(super) fn new(
        config: &TransportConfig,
        headers: HeaderMap,
        urls: &[Uri],
    ) -> Result<Self, ConfigError> {
        let proxies = proxies_from_env();
        let https = urls.iter().any(|u| u.scheme() == Some(&Scheme::HTTPS));
        // The environment's CA certificates are read only where TLS can be spoken: reading
        // a system's folder of them (SSL_CERT_DIR=/etc/ssl/certs) takes milliseconds that
        // a run against a local http server would wait for nothing.
        let tls = tls_config(https || proxies.is_some())?;
        let mut origins: Vec<Arc<Origin>> = Vec::new();
        let mut routes = Vec::with_capacity(urls.len());
        for url in urls {
            let bad = || ConfigError::BadBaseUrl(url.to_string());
            let origin = match origins.iter().find(|o| o.serves(url)) {
                Some(origin) => origin.clone(),
                None => {
                    let origin = Arc::new(Origin::of(url).map_err(|_| bad())?);
                    origins.push(origin.clone());
                    origin
                }
            };
            routes.push(Route {
                origin,
                absolute: url.clone(),
                origin_form: origin_form(url).ok_or_else(bad)?,
                host: host(url).ok_or_else(bad)?,
                proxy_credentials: proxies.as_deref().and_then(|r| proxy_credentials(r, url)),
            });
        }
        let dialer = Dialer::new(config.connect_timeout, proxies, tls.clone());
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(dialer);
        // Every request also names its length, its `Host` and (mostly) its id: the shared
        // map holds places for them, which each request's copy fills in. A copy of a map
        // has no room to spare, and adding to it would grow and rehash it on every request.
        let mut headers = headers;
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let id_slot = !headers.contains_key(CLIENT_REQUEST_ID);
        if id_slot {
            headers.insert(CLIENT_REQUEST_ID, HeaderValue::from_static(""));
        }
        if let Some(route) = routes.first() {
            headers.insert(HOST, route.host.clone());
        }
        Ok(HttpWire {
            pool: Arc::new(Pool::new(connector, config.pool_size)),
            routes: routes.into(),
            headers,
            id_slot,
        })
    }

    /// One attempt over HTTP to the `at`-th URL the wire was made for: the whole answer,
    /// or what stopped it. The caller bounds its time.
    pub(super) async fn send(
        &self,
        at: usize,
        body: Bytes,
        id: Option<&str>,
        limit: u64,
    ) -> Result<Reply, TransportError> {
        let route = &self.routes[at];
        loop {
            let mut lease = self
                .pool
                .lease(&route.origin)
                .await
                .map_err(connect_failure)?;
            let (proxied, reused) = (lease.proxied, lease.reused);
            let sent = match lease.sender() {
                Sender::H1(h1) => {
                    self.write_head(h1.head(), route, proxied, body.len(), id);
                    match h1.exchange(&body, limit).await {
                        Ok(answer) => {
                            if answer.reusable {
                                self.pool.give_back(&route.origin, lease);
                            }
                            return Ok(answer.reply);
                        }
                        Err(H1Error::Unsent(_)) if reused => None,
                        Err(e) => return Err(h1_failure(e, limit)),
                    }
                }
                Sender::H2(sender) => {
                    self.send_h2(route, sender, reused, &body, id, limit)
                        .await?
                }
            };
            if let Some(reply) = sent {
                return Ok(reply);
            }
            // The server closed an idle connection as it was taken: the request never
            // left, and goes on another.
        }
    }

    /// An HTTP/1.1 request's head to `route`: the request line, the shared headers with
    /// the places for the length, `Host` and id filled in, and the blank line.
    fn write_head(
        &self,
        out: &mut Vec<u8>,
        route: &Route,
        proxied: bool,
        length: usize,
        id: Option<&str>,
    ) {
        out.extend_from_slice(b"POST ");
        if proxied {
            out.extend_from_slice(route.absolute.to_string().as_bytes());
        } else {
            let path = route.origin_form.path_and_query();
            out.extend_from_slice(path.map_or("/", PathAndQuery::as_str).as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut line = |name: &[u8], value: &[u8]| {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        for (name, value) in &self.headers {
            if name == CONTENT_LENGTH {
                let mut digits = [0u8; 20];
                line(b"content-length", decimal(length, &mut digits));
            } else if name == HOST {
                line(b"host", route.host.as_bytes());
            } else if name == CLIENT_REQUEST_ID {
                match id {
                    Some(id) => line(name.as_str().as_bytes(), id.as_bytes()),
                    None if self.id_slot => {}
                    None => line(name.as_str().as_bytes(), value.as_bytes()),
                }
            } else {
                line(name.as_str().as_bytes(), value.as_bytes());
            }
        }
        if let Some(auth) = &route.proxy_credentials {
            line(b"proxy-authorization", auth.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// One attempt on the shared HTTP/2 connection `sender` (`reused` if it carried
    /// requests before): the answer, `None` if the connection closed before the request
    /// left, or what stopped it.
    async fn send_h2(
        &self,
        route: &Route,
        sender: &mut http2::SendRequest<Body>,
        reused: bool,
        body: &Bytes,
        id: Option<&str>,
        limit: u64,
    ) -> Result<Option<Reply>, TransportError> {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = route.absolute.clone();
        let headers = request.headers_mut();
        *headers = self.headers.clone();
        headers.remove(HOST);
        headers.insert(CONTENT_LENGTH, content_length(body.len()));
        match id.map(HeaderValue::from_str) {
            Some(Ok(id)) => {
                headers.insert(CLIENT_REQUEST_ID, id);
            }
            _ if self.id_slot => {
                headers.remove(CLIENT_REQUEST_ID);
            }
            _ => {}
        }
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut refused) => {
                return match refused.take_message() {
                    Some(_) if reused => Ok(None),
                    _ => Err(failure(refused.into_error())),
                };
            }
        };
        let status = response.status().as_u16();
        if let Some(length) = response.body().size_hint().exact()
            && length > limit
        {
            return Err(too_large(status, limit, Bytes::new(), Some(length)));
        }
        let head = Reply::from_head(status, &crate::head::of_map(response.headers()));
        let mut body = response.into_body();
        // Read chunk by chunk so a body without a length (or an endless one) is cut off at
        // the limit instead of filling memory. One chunk, the usual case, is kept as it
        // came until the end. More are copied into segments of fixed size and joined once
        // at the end: memory while reading is the body itself, with no doubling buffer and
        // none of the slack each chunk's read buffer carries.
        let mut first: Option<Bytes> = None;
        let mut segments = Segments::default();
        let mut held: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| failure(e).with_status(status))?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
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
                    None,
                ));
            }
            if segments.is_empty() {
                first = Some(chunk);
            } else {
                segments.push(&chunk);
            }
        }
        // Copied out of hyper's read buffer: a slice of it would keep the whole buffer
        // alive while the result waits to be written.
        let body = match first {
            Some(f) => Bytes::copy_from_slice(&f),
            None => segments.join(),
        };
        Ok(Some(head.with_body(body)))
    }
}

/// `n` in decimal digits, written into `digits`.
fn decimal(n: usize, digits: &mut [u8; 20]) -> &[u8] {
    use std::io::Write as _;
    let mut rest = &mut digits[..];
    let _ = write!(rest, "{n}");
    let written = 20 - rest.len();
    &digits[..written]
}

/// A `Content-Length` value, made with one allocation (`HeaderValue::from(usize)` takes
/// two).
fn content_length(length: usize) -> HeaderValue {
    let mut digits = [0u8; 20];
    HeaderValue::from_bytes(decimal(length, &mut digits))
        .unwrap_or_else(|_| HeaderValue::from(length))
}

/// `url`'s path and query, as an HTTP/1.1 request names it to the server itself.
fn origin_form(url: &Uri) -> Option<Uri> {
    let path = url
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::from_parts({
        let mut parts = http::uri::Parts::default();
        parts.path_and_query = Some(path);
        parts
    })
    .ok()
}

/// The `Host` of a request to `url`: its host, and its port unless the scheme's own.
fn host(url: &Uri) -> Option<HeaderValue> {
    let name = url.host()?;
    let default = match url.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    match url.port_u16() {
        Some(port) if port != default => HeaderValue::from_str(&format!("{name}:{port}")).ok(),
        _ => HeaderValue::from_str(name).ok(),
    }
}

/// The `Proxy-Authorization` a plain http request to `uri` needs when `rules` send it to
/// a proxy that asks for credentials (an https one carries them in its tunnel's
/// `CONNECT`).
fn proxy_credentials(rules: &Matcher, uri: &Uri) -> Option<HeaderValue> {
    if uri.scheme() != Some(&Scheme::HTTP) {
        return None;
    }
    let proxy = rules.intercept(uri)?;
    if !matches!(proxy.uri().scheme_str(), Some("http" | "https")) {
        return None;
    }
    let mut auth = proxy.basic_auth()?.clone();
    auth.set_sensitive(true);
    Some(auth)
}

/// TLS as reqwest's `rustls-tls` set it up (ring, TLS 1.2 and 1.3), against the webpki
/// roots and, with `from_env`, those of [`roots_from_env`].
fn tls_config(from_env: bool) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if from_env {
        roots_from_env(&mut roots)?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Adds the certificates in the PEM file `SSL_CERT_FILE` names and in the PEM files of
/// the folder `SSL_CERT_DIR` names, as curl, OpenSSL and Python's `ssl` (so the OpenAI
/// SDK) read them: a company's own CA, for a proxy that inspects TLS or a server inside
/// its network.
fn roots_from_env(roots: &mut rustls::RootCertStore) -> Result<(), ConfigError> {
    for variable in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) else {
            continue;
        };
        let path = std::path::PathBuf::from(path);
        let bad = |reason: String| ConfigError::CertificateFile {
            variable,
            path: path.clone(),
            reason,
        };
        let certificates = if variable == "SSL_CERT_DIR" {
            certificates_in_folder(&path)
        } else {
            certificates_in_file(&path)
        }
        .map_err(bad)?;
        if certificates.is_empty() {
            return Err(bad("it holds no certificate".to_owned()));
        }
        let (added, _unusable) = roots.add_parsable_certificates(certificates);
        if added == 0 {
            return Err(bad(
                "none of its certificates can serve as a root".to_owned()
            ));
        }
    }
    Ok(())
}

/// The certificates of a PEM file.
fn certificates_in_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())
}

/// The certificates of every PEM file in a folder (OpenSSL's hashed names are links to
/// them); files that hold none, such as a README, are passed over.
fn certificates_in_folder(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certificates = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| e.to_string())? {
        let file = entry.map_err(|e| e.to_string())?.path();
        if file.is_file() {
            certificates.extend(certificates_in_file(&file).unwrap_or_default());
        }
    }
    Ok(certificates)
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

/// A connection that could not be opened: a timeout if the connect timed out, a connect
/// failure otherwise.
fn connect_failure(err: BoxError) -> TransportError {
    let (message, timed_out) = describe(&*err);
    let kind = if timed_out {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    let mut failure = TransportError::new(kind, message);
    failure.source = Some(Arc::from(err));
    failure
}

/// A failure of an HTTP/1.1 exchange.
fn h1_failure(err: H1Error, limit: u64) -> TransportError {
    match err {
        H1Error::TooLarge {
            status,
            stated,
            prefix,
        } => too_large(status, limit, prefix, stated),
        err => {
            let (message, _) = describe(&err);
            TransportError::new(ErrorKind::Transport, message).with_source(err)
        }
    }
}

/// A failure on an open connection (a reset, a broken answer).
fn failure(err: hyper::Error) -> TransportError {
    let (message, _) = describe(&err);
    TransportError::new(ErrorKind::Transport, message).with_source(err)
}

/// What went wrong, with its causes (the useful part, "connection refused", is usually a
/// few causes down), and whether one of them is an I/O timeout.
fn describe(err: &(dyn StdError + 'static)) -> (String, bool) {
    let mut message = err.to_string();
    let mut timed_out = false;
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(cause) = next {
        timed_out |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        next = cause.source();
    }
    (message, timed_out)
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
