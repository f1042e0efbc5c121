//! Connections kept open and lent to one request at a time (HTTP/1.1, spoken by
//! [`super::h1`]) or shared by all (HTTP/2, where the server offers it by ALPN, over
//! hyper's connection API).
//!
//! Why not hyper-util's pooled client: for every request it clones its connector, hashes
//! the host into its pool's map under a lock, races a checkout against a connect it
//! builds and drops, and rewrites the URL and `Host` it could be given; all that was 11 %
//! of the CPU sluice spends on a request against a local server (docs/BENCHMARKS.md,
//! "A pool of our own"). Here an origin's connections are a short list behind a lock, the
//! URL forms and `Host` are made once per URL ([`super::http_wire`]), and a connection is
//! dialled only when none is idle.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::Connection as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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
    connection: Box<H1>,
    proxied: bool,
    since: Instant,
}

/// An HTTP/1.1 connection, spoken by [`super::h1`] inside the task of the request it is
/// lent to.
pub(super) type H1 = super::h1::H1<TokioIo<MaybeHttpsStream<Conn>>>;

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

/// A lent connection, by the protocol it speaks.
pub(super) enum Sender {
    /// Boxed: a TLS connection holds some 2 KB of state, which the future of every
    /// request holding the lease would otherwise carry and move.
    H1(Box<H1>),
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
    /// The connection, to send on.
    pub(super) fn sender(&mut self) -> &mut Sender {
        &mut self.sender
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
        match self.reuse(origin) {
            Some(lease) => Ok(lease),
            // Boxed: dialling holds a TLS and HTTP/2 handshake, some 11 KB that every
            // request's future would otherwise carry, and copy, for a step taken once a
            // connection.
            None => Box::pin(self.dial(origin)).await,
        }
    }

    /// Takes back the connection of a request whose answer was read to the end and left
    /// it able to carry another.
    pub(super) fn give_back(&self, origin: &Origin, lease: Lease) {
        let Sender::H1(connection) = lease.sender else {
            return; // the shared HTTP/2 connection stays where it is
        };
        let mut kept = origin.kept();
        if kept.idle.len() < self.max_idle {
            kept.idle.push(Idle {
                connection,
                proxied: lease.proxied,
                since: Instant::now(),
            });
        }
    }

    fn reuse(&self, origin: &Origin) -> Option<Lease> {
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
            // A connection the server closed while it was idle reads as ready.
            if connection.is_open() {
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
        Ok(Lease {
            sender: Sender::H1(Box::new(H1::new(TokioIo::new(io)))),
            proxied: connected.is_proxied(),
            reused: false,
        })
    }
}
