//! Opening connections: straight to the server, or through the proxy the environment
//! names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, upper or lower case,
//! read as curl reads them). An https destination goes through an HTTP `CONNECT` tunnel
//! (TLS is then spoken end to end with the server, over the tunnel); a plain http one goes
//! to the proxy itself, and its requests are sent in absolute form with the proxy's
//! credentials (see [`super::http_wire`]); `socks5://` and `socks5h://` proxies are dialled
//! through SOCKS5. TLS itself is added around this by the HTTPS connector.

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
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
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

/// Opens TCP connections, through a proxy where the rules say so.
#[derive(Clone)]
pub(super) struct Dialer {
    tcp: HttpConnector,
    proxies: Option<Arc<Matcher>>,
}

impl Dialer {
    pub(super) fn new(connect_timeout: Duration, proxies: Option<Arc<Matcher>>) -> Self {
        let mut tcp = HttpConnector::new();
        // https destinations come here too: TLS is the layer above's job.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        Dialer { tcp, proxies }
    }
}

/// A proxy this dialler cannot speak to.
#[derive(Debug)]
struct UnsupportedProxy(String);

impl fmt::Display for UnsupportedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a proxy of scheme `{}` is not supported (use http://, socks5:// or socks5h://)",
            self.0
        )
    }
}

impl StdError for UnsupportedProxy {}

/// Readies a connector and calls it, as the `Service` contract asks.
async fn dial<S>(mut service: S, dst: Uri) -> Result<S::Response, BoxError>
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
        let proxy = self
            .proxies
            .as_ref()
            .and_then(|rules| rules.intercept(&dst));
        Box::pin(async move {
            let Some(proxy) = proxy else {
                return Ok(Conn::direct(dial(tcp, dst).await?));
            };
            let at = proxy.uri().clone();
            match at.scheme_str() {
                Some("http") if dst.scheme() == Some(&Scheme::HTTP) => Ok(Conn {
                    io: dial(tcp, at).await?,
                    proxied: true,
                }),
                Some("http") => {
                    let mut tunnel = Tunnel::new(at, tcp);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    Ok(Conn::direct(dial(tunnel, dst).await?))
                }
                Some(scheme @ ("socks5" | "socks5h")) => {
                    // socks5h: the proxy resolves the host name; socks5: we do.
                    let mut socks = SocksV5::new(at.clone(), tcp).local_dns(scheme == "socks5");
                    if let Some((user, pass)) = proxy.raw_auth() {
                        socks = socks.with_auth(user.to_owned(), pass.to_owned());
                    }
                    Ok(Conn::direct(dial(socks, dst).await?))
                }
                other => Err(UnsupportedProxy(other.unwrap_or_default().to_owned()).into()),
            }
        })
    }
}

/// A TCP connection, and whether it goes to a proxy that forwards plain http requests
/// (which then must name their whole URL).
pub(super) struct Conn {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Conn {
    fn direct(io: TokioIo<TcpStream>) -> Self {
        Conn { io, proxied: false }
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
