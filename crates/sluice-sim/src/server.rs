//! Serving: the accept loop, per-connection control (so a handler can reset its own
//! connection), and a handle that reads statistics and shuts everything down.
//!
//! The loop is written out with hyper-util instead of `axum::serve` for one reason: the
//! `reset` fault must close the TCP connection with an RST before any response, and only
//! the code that owns the socket can do that.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::{SimBuilder, SimConfig};
use crate::state::SimState;
use crate::stats::SimStats;

/// A configured simulator, ready to serve. Build one with [`Sim::builder`].
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let sim = sluice_sim::Sim::builder().build().expect("valid config");
/// let handle = sim.spawn().await?;
/// println!("serving on {}", handle.base_url());
/// let stats = handle.stats();
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Sim {
    pub(crate) config: SimConfig,
}

impl Sim {
    /// A builder with the defaults: instant, unlimited, no faults.
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    /// The validated configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Serves on a free port of 127.0.0.1.
    pub async fn spawn(self) -> std::io::Result<SimHandle> {
        self.spawn_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves on `addr`.
    pub async fn spawn_on(self, addr: SocketAddr) -> std::io::Result<SimHandle> {
        // Build the tokenizers before serving: building one takes a few hundred ms, and
        // doing it inside the first request would hold those requests and then admit them
        // all at once, which is not how a real server's clock works.
        tokio::task::spawn_blocking(crate::tokens::warm_up)
            .await
            .map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(self.config));
        let router = crate::api::router(state.clone());
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            router,
            shutdown.clone(),
            tracker.clone(),
        ));
        Ok(SimHandle {
            addr,
            state,
            shutdown,
            tracker,
            accept,
        })
    }
}

/// A running simulator. Dropping it without [`SimHandle::shutdown`] stops it too, but
/// without waiting for its connections to close.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    accept: JoinHandle<()>,
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, what an OpenAI client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> SimStats {
        self.state.recorder.snapshot(self.state.now())
    }

    /// Changes the rate limits from now on (what `POST /sim/limits` does): a key's tier
    /// raised mid-run, or a limit lowered. Returns the limits in force after.
    pub fn set_limits(&self, change: crate::LimitChange) -> crate::RateLimits {
        self.state.set_limits(change)
    }

    /// Stops accepting, drops every connection (hung requests included) and waits until
    /// all of their tasks have ended.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        self.tracker.close();
        let _ = (&mut self.accept).await;
        self.tracker.wait().await;
    }

    /// Resolves when shutdown has been asked for (by [`SimHandle::shutdown`] or a drop).
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.shutdown.cancelled()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Lets a handler act on the connection its request came on.
#[derive(Clone, Debug)]
pub(crate) struct ConnControl {
    pub(crate) close: CancellationToken,
    pub(crate) reset: Arc<AtomicBool>,
}

impl ConnControl {
    /// Closes the connection with a TCP reset, whatever is in flight on it.
    pub(crate) fn reset(&self) {
        self.reset.store(true, Ordering::Release);
        self.close.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let builder = Arc::new(ConnBuilder::new(TokioExecutor::new()));
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: keep serving the others.
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let control = ConnControl {
            close: shutdown.child_token(),
            reset: Arc::new(AtomicBool::new(false)),
        };
        tracker.spawn(serve_connection(
            stream,
            router.clone(),
            control,
            builder.clone(),
        ));
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: axum::Router,
    control: ConnControl,
    builder: Arc<ConnBuilder<TokioExecutor>>,
) {
    let fd: RawFd = stream.as_raw_fd();
    let for_requests = control.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(for_requests.clone());
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = &mut conn => {
            if let Err(err) = result {
                tracing::debug!(%err, "connection ended with an error");
            }
        }
        _ = control.close.cancelled() => {
            if control.reset.load(Ordering::Acquire) {
                // SAFETY: `conn` owns the socket and lives until the end of this function,
                // after this borrow, so `fd` is open while it is used.
                let socket = unsafe { BorrowedFd::borrow_raw(fd) };
                let _ = socket2::SockRef::from(&socket).set_linger(Some(std::time::Duration::ZERO));
            }
        }
    }
    // The pinned connection drops as this function returns, closing the socket: with zero
    // linger, that sends the RST.
}
