//! The seam for a server that is not across a network: an [`HttpService`] answers each
//! request in memory (the simulator in tests, a fake in a user's own tests). Everything
//! around the wire is the production path: the same URL, headers, key, request id,
//! timeout, size limit and header parsing, so a test through the seam tests the engine as
//! it runs, and on paused `tokio::time` it runs in milliseconds.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Uri};

use super::{CLIENT_REQUEST_ID, Reply, TOO_LARGE_PREFIX, TransportError, too_large};
use crate::error::ErrorKind;

/// A server in memory: takes a request as it would go over HTTP, returns the answer as it
/// would come back, or the transport failure it stands for (a reset connection, a
/// refused connect). Closures of that shape are services:
///
/// ```
/// use bytes::Bytes;
/// use sluice::transport::{HttpService, TransportError};
///
/// let always_ok = |_request: http::Request<Bytes>| async {
///     Ok::<_, TransportError>(
///         http::Response::builder()
///             .status(200)
///             .body(Bytes::from_static(br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#))
///             .expect("a valid response"),
///     )
/// };
/// let client = sluice::Client::builder().service(always_ok).build();
/// assert!(client.is_ok());
/// ```
pub trait HttpService: Send + Sync + 'static {
    /// Answers one request.
    fn call(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<Bytes>, TransportError>>;
}

impl<F, Fut> HttpService for F
where
    F: Fn(http::Request<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<http::Response<Bytes>, TransportError>> + Send + 'static,
{
    fn call(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(self(request))
    }
}

/// The wire through a service, and the headers every request carries.
#[derive(Clone)]
pub(super) struct ServiceWire {
    pub service: Arc<dyn HttpService>,
    pub headers: HeaderMap,
}

impl ServiceWire {
    /// One attempt through the service.
    pub(super) async fn send(
        &self,
        url: &Uri,
        body: Bytes,
        id: Option<&str>,
        limit: u64,
    ) -> Result<Reply, TransportError> {
        let mut request = http::Request::post(url.clone())
            .body(body)
            .map_err(|e| TransportError::new(ErrorKind::Transport, e.to_string()))?;
        *request.headers_mut() = self.headers.clone();
        if let Some(Ok(id)) = id.map(HeaderValue::from_str) {
            request.headers_mut().insert(CLIENT_REQUEST_ID, id);
        }
        let response = self.service.call(request).await?;
        let status = response.status().as_u16();
        let head = Reply::from_head(status, &crate::head::of_map(response.headers()));
        let body = response.into_body();
        if body.len() as u64 > limit {
            return Err(too_large(
                status,
                limit,
                body.slice(..TOO_LARGE_PREFIX.min(body.len())),
                Some(body.len() as u64),
            ));
        }
        Ok(head.with_body(body))
    }
}
