//! Connections kept open and lent to one request at a time (HTTP/1.1) or shared by all
//! (HTTP/2, where the server offers it by ALPN), over hyper's connection API.
//!
//! Why not hyper-util's pooled client: for every request it clones its connector, hashes
//! the host into its pool's map under a lock, races a checkout against a connect it
//! builds and drops, and rewrites the URL and `Host` it could be given; all that was 11 %
//! of the CPU sluice spends on a request against a local server (docs/BENCHMARKS.md,
//! "A pool of our own"). Here an origin's connections are a short list behind a lock, the
//! URL forms and `Host` are made once per URL ([`super::http_wire`]), and a connection is
//! dialled only when none is idle.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Frame, Incoming};
use hyper::client::conn::{TrySendError, http1, http2};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::Connection as _;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use super::dial::{BoxError, Conn, Dialer, dial};

/// What a request carries as its body.
pub(super) type Body = Full<Bytes>;

/// How long a connection may sit unused and still be lent: as long as hyper-util's pool
/// keeps one. Past that a server or a NAT in between may have dropped it without a word,
/// and a request sent on it would wait for its whole timeout.
const IDLE_FOR: Duration = Duration::from_secs(90);

/// Opens connections and keeps those that may be used again.
pub(super) struct Pool {
    connector: HttpsConnector<Dialer>,
    h2: http2::Builder<TokioExecutor>,
    /// Idle HTTP/1.1 connections kept per origin.
    max_idle: usize,
}

/// The connections to one origin (scheme, host and port).
pub(super) struct Origin {
    /// What the connector is asked to reach.
    dst: Uri,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Idle HTTP/1.1 connections, the one used last at the end.
    idle: Vec<Idle>,
    /// The HTTP/2 connection every request shares, once the server chose HTTP/2.
    shared: Option<http2::SendRequest<Body>>,
}

struct Idle {
    connection: H1,
    proxied: bool,
    since: Instant,
}

/// An HTTP/1.1 connection: where requests are handed, and the future that writes them
/// and reads their answers. That future is polled by the request the connection is lent
/// to, inside its own task, rather than spawned as a task of its own: the request and its
/// answer then need no hand-off between two tasks (a channel, a wake-up and a turn of the
/// runtime's queue each way, often across its threads). While idle nothing polls it; a
/// close by the server meanwhile is seen when it is next lent.
struct H1 {
    sender: http1::SendRequest<Body>,
    driver: Driver,
}

/// The future of an HTTP/1.1 connection, and whether it has finished.
struct Driver {
    future: Pin<Box<http1::Connection<MaybeHttpsStream<Conn>, Body>>>,
    /// The connection is closed (by the server, or after an error that reaches the
    /// request), and its future is not polled again.
    ended: bool,
}

impl Driver {
    /// Moves the connection on as far as it goes now.
    fn advance(&mut self, cx: &mut std::task::Context<'_>) {
        if !self.ended && self.future.as_mut().poll(cx).is_ready() {
            self.ended = true;
        }
    }

    /// Awaits `work` while moving the connection on.
    async fn drive<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            self.advance(cx);
            work.as_mut().poll(cx)
        })
        .await
    }

    /// Lets the connection finish what its last answer left it (an answer that said
    /// `Connection: close` closes it now, one that did not makes it ready for the next
    /// request), as far as it can without waiting: polled once, with no task to wake, as
    /// it goes idle.
    fn wind_up(&mut self) {
        self.advance(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    }
}

impl H1 {
    /// Waits until the connection takes a request, driving it meanwhile.
    async fn ready(&mut self) -> hyper::Result<()> {
        let sender = &mut self.sender;
        self.driver
            .drive(std::future::poll_fn(|cx| sender.poll_ready(cx)))
            .await
    }
}

/// A connection lent to one request.
pub(super) struct Lease {
    sender: Sender,
    /// Whether it goes to a proxy that forwards plain http (the request then names its
    /// whole URL).
    pub proxied: bool,
    /// Whether it carried a request before: a request it gives back unsent (the server
    /// closed it meanwhile) may go on another.
    pub reused: bool,
}

enum Sender {
    H1(H1),
    H2(http2::SendRequest<Body>),
}

impl Origin {
    /// The origin of `url` (its scheme, host and port).
    pub(super) fn of(url: &Uri) -> Result<Origin, http::Error> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = url.scheme().cloned();
        parts.authority = url.authority().cloned();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        Ok(Origin {
            dst: Uri::from_parts(parts)?,
            kept: Mutex::default(),
        })
    }

    /// Whether `url` is on this origin.
    pub(super) fn serves(&self, url: &Uri) -> bool {
        self.dst.scheme() == url.scheme() && self.dst.authority() == url.authority()
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        // A panic while holding the lock leaves a list that is still a list.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Lease {
    /// Whether the connection speaks HTTP/2 (the request then names its whole URL and
    /// no `Host`).
    pub(super) fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// Sends `request`; if the connection closed before it was sent, the error gives it
    /// back.
    pub(super) async fn send(
        &mut self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Body>>> {
        match &mut self.sender {
            Sender::H1(h1) => {
                let sent = h1.sender.try_send_request(request);
                h1.driver.drive(sent).await
            }
            Sender::H2(sender) => sender.try_send_request(request).await,
        }
    }

    /// The next frame of an answer's body on this connection.
    pub(super) async fn frame(
        &mut self,
        body: &mut Incoming,
    ) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        use http_body_util::BodyExt as _;
        match &mut self.sender {
            Sender::H1(h1) => h1.driver.drive(body.frame()).await,
            Sender::H2(_) => body.frame().await,
        }
    }
}

impl Pool {
    /// A pool dialling with `connector`, keeping up to `max_idle` idle connections an
    /// origin.
    pub(super) fn new(connector: HttpsConnector<Dialer>, max_idle: usize) -> Self {
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new());
        Pool {
            connector,
            h2,
            max_idle,
        }
    }

    /// A connection to `origin`: the shared HTTP/2 one, an idle one, or a new one.
    pub(super) async fn lease(&self, origin: &Origin) -> Result<Lease, BoxError> {
        match self.reuse(origin).await {
            Some(lease) => Ok(lease),
            // Boxed: dialling holds a TLS and HTTP/2 handshake, some 11 KB that every
            // request's future would otherwise carry, and copy, for a step taken once a
            // connection.
            None => Box::pin(self.dial(origin)).await,
        }
    }

    /// Takes back the connection of a request whose answer was read to the end.
    pub(super) fn give_back(&self, origin: &Origin, lease: Lease) {
        let Sender::H1(mut connection) = lease.sender else {
            return; // the shared HTTP/2 connection stays where it is
        };
        connection.driver.wind_up();
        if connection.driver.ended || connection.sender.is_closed() {
            return;
        }
        let mut kept = origin.kept();
        if kept.idle.len() < self.max_idle {
            kept.idle.push(Idle {
                connection,
                proxied: lease.proxied,
                since: Instant::now(),
            });
        }
    }

    async fn reuse(&self, origin: &Origin) -> Option<Lease> {
        loop {
            let idle = {
                let mut kept = origin.kept();
                if let Some(shared) = &kept.shared {
                    if !shared.is_closed() {
                        let lease = Lease {
                            sender: Sender::H2(shared.clone()),
                            proxied: false,
                            reused: true,
                        };
                        return Some(lease);
                    }
                    kept.shared = None;
                }
                kept.idle.pop()?
            };
            if idle.since.elapsed() > IDLE_FOR {
                continue; // dropped, which closes it
            }
            let mut connection = idle.connection;
            // Ready at once unless the connection is still winding up its last answer;
            // an error means the server closed it.
            if connection.ready().await.is_ok() {
                let lease = Lease {
                    sender: Sender::H1(connection),
                    proxied: idle.proxied,
                    reused: true,
                };
                return Some(lease);
            }
        }
    }

    async fn dial(&self, origin: &Origin) -> Result<Lease, BoxError> {
        let io = dial(self.connector.clone(), origin.dst.clone()).await?;
        let connected = io.connected();
        if connected.is_negotiated_h2() {
            let (sender, connection) = self.h2.handshake(io).await?;
            // Its errors reach the requests on it.
            tokio::spawn(connection);
            let mut kept = origin.kept();
            // Requests that dialled together each get a connection; the first to be
            // shared stays, the others close once their request is done.
            if kept
                .shared
                .as_ref()
                .is_none_or(http2::SendRequest::is_closed)
            {
                kept.shared = Some(sender.clone());
            }
            return Ok(Lease {
                sender: Sender::H2(sender),
                proxied: false,
                reused: false,
            });
        }
        let (sender, driver) = http1::handshake(io).await?;
        Ok(Lease {
            sender: Sender::H1(H1 {
                sender,
                driver: Driver {
                    future: Box::pin(driver),
                    ended: false,
                },
            }),
            proxied: connected.is_proxied(),
            reused: false,
        })
    }
}
