//! Opening connections: straight to the server, or through the proxy the environment
//! names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, upper or lower case,
//! read as curl reads them). An https destination goes through an HTTP `CONNECT` tunnel
//! (TLS is then spoken end to end with the server, over the tunnel); a plain http one goes
//! to the proxy itself, and its requests are sent in absolute form with the proxy's
//! credentials (see [`super::http_wire`]). An `https://` proxy is reached over TLS (checked
//! as servers are), `socks5://` and `socks5h://` ones through SOCKS5. TLS with the
//! destination is added around all this by the HTTPS connector.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::Uri;
use http::uri::Scheme;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

pub(super) type BoxError = Box<dyn StdError + Send + Sync>;

/// Whether the environment names a proxy at all: without one, no destination is matched
/// against proxy rules.
fn proxy_configured() -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
        .iter()
        .flat_map(|name| [name.to_string(), name.to_lowercase()])
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// The proxy rules of the environment, if it names a proxy.
pub(super) fn proxies_from_env() -> Option<Arc<Matcher>> {
    proxy_configured().then(|| Arc::new(Matcher::from_env()))
}

/// A connection to a server or a proxy: TCP, or TLS over it to an `https://` proxy.
type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Opens TCP connections, through a proxy where the rules say so.
#[derive(Clone)]
pub(super) struct Dialer {
    tcp: HttpConnector,
    proxies: Option<Arc<Matcher>>,
    /// TLS to an `https://` proxy (HTTP/1.1: a `CONNECT` or a forwarded request).
    to_tls_proxy: HttpsConnector<HttpConnector>,
}

impl Dialer {
    /// Connects within `connect_timeout`, through `proxies`; `tls` checks an `https://`
    /// proxy's certificate.
    pub(super) fn new(
        connect_timeout: Duration,
        proxies: Option<Arc<Matcher>>,
        tls: rustls::ClientConfig,
    ) -> Self {
        let mut tcp = HttpConnector::new();
        // https destinations come here too: TLS is the layer above's job.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let to_tls_proxy = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp.clone());
        Dialer {
            tcp,
            proxies,
            to_tls_proxy,
        }
    }
}

/// A proxy this dialler cannot speak to.
#[derive(Debug)]
struct UnsupportedProxy(String);

impl fmt::Display for UnsupportedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a proxy of scheme `{}` is not supported (use http://, https://, socks5:// or \
             socks5h://)",
            self.0
        )
    }
}

impl StdError for UnsupportedProxy {}

/// Readies a connector and calls it, as the `Service` contract asks.
pub(super) async fn dial<S>(mut service: S, dst: Uri) -> Result<S::Response, BoxError>
where
    S: Service<Uri>,
    S::Error: Into<BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    service.call(dst).await.map_err(Into::into)
}

impl Service<Uri> for Dialer {
    type Response = Conn;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Conn, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let tcp = self.tcp.clone();
        let to_tls_proxy = self.to_tls_proxy.clone();
        let proxy = self
            .proxies
            .as_ref()
            .and_then(|rules| rules.intercept(&dst));
        Box::pin(async move {
            let Some(proxy) = proxy else {
                return Ok(Conn::direct(dial(tcp, dst).await?.into()));
            };
            let at = proxy.uri().clone();
            let plain = dst.scheme() == Some(&Scheme::HTTP);
            match at.scheme_str() {
                Some("http") if plain => Ok(Conn::to_proxy(dial(tcp, at).await?.into())),
                Some("https") if plain => Ok(Conn::to_proxy(dial(to_tls_proxy, at).await?)),
                Some("http") => {
                    let io = dial(tunnel(at, tcp, &proxy), dst).await?;
                    Ok(Conn::direct(io.into()))
                }
                Some("https") => {
                    let io = dial(tunnel(at, to_tls_proxy, &proxy), dst).await?;
                    Ok(Conn::direct(io))
                }
                Some(scheme @ ("socks5" | "socks5h")) => {
                    // socks5h: the proxy resolves the host name; socks5: we do.
                    let mut socks = SocksV5::new(at.clone(), tcp).local_dns(scheme == "socks5");
                    if let Some((user, pass)) = proxy.raw_auth() {
                        socks = socks.with_auth(user.to_owned(), pass.to_owned());
                    }
                    Ok(Conn::direct(dial(socks, dst).await?.into()))
                }
                other => Err(UnsupportedProxy(other.unwrap_or_default().to_owned()).into()),
            }
        })
    }
}

/// A `CONNECT` tunnel through the proxy at `at`, reached by `connector`, with the
/// proxy's credentials if it has some.
fn tunnel<C>(at: Uri, connector: C, proxy: &Intercept) -> Tunnel<C> {
    let tunnel = Tunnel::new(at, connector);
    match proxy.basic_auth() {
        Some(auth) => tunnel.with_auth(auth.clone()),
        None => tunnel,
    }
}

/// A connection, and whether it goes to a proxy that forwards plain http requests (which
/// then must name their whole URL).
pub(super) struct Conn {
    io: Stream,
    proxied: bool,
}

impl Conn {
    /// To the server, or a tunnel to it.
    fn direct(io: Stream) -> Self {
        Conn { io, proxied: false }
    }

    /// To a proxy that forwards plain http requests.
    fn to_proxy(io: Stream) -> Self {
        Conn { io, proxied: true }
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
