//! Errors, classified. Every failure has an [`ErrorKind`] that says what it was and
//! whether waiting could help; callers count and branch on kinds, never on message text.

use std::fmt;

use bytes::Bytes;

use crate::retry::GiveUp;

/// What kind of failure a request met. The string form is the `error.code` written to the
/// errors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 429 because a rate limit was reached (retryable).
    RateLimited,
    /// 429 `insufficient_quota`: the account has no money left (permanent).
    InsufficientQuota,
    /// 5xx, 529 overloaded, 408 or 409 from the server (retryable).
    Server,
    /// 400, 404, 422 and other client errors (permanent).
    InvalidRequest,
    /// 401 or 403: the key is wrong or lacks access (permanent).
    Auth,
    /// 402: the account must pay first (permanent).
    PaymentRequired,
    /// 404: the URL (or the model) does not exist (permanent).
    NotFound,
    /// 3xx: the server redirects, and redirects are not followed (permanent), so that a
    /// key is never sent to another host.
    Redirect,
    /// The answer was larger than the response size limit (permanent: the same request
    /// would get the same answer).
    ResponseTooLarge,
    /// The connection could not be made (retryable).
    Connect,
    /// The request took longer than the timeout (retryable).
    Timeout,
    /// The connection broke while sending or receiving (retryable).
    Transport,
    /// The server answered 2xx with a body that is not JSON (retryable).
    MalformedResponse,
    /// The request's estimated tokens exceed the whole TPM budget: it can never be admitted.
    TooLarge,
    /// The input line could not be used (permanent, never sent).
    InvalidInput,
    /// The same `custom_id` appeared earlier in the input (permanent, never sent).
    DuplicateId,
    /// The batch was cancelled before this request finished.
    Cancelled,
    /// A spend cap stopped the request before it was sent (permanent for this client).
    SpendCap,
}

impl ErrorKind {
    /// The `error.code` written for this kind.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::InsufficientQuota => "insufficient_quota",
            ErrorKind::Server => "server_error",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Auth => "authentication_error",
            ErrorKind::PaymentRequired => "payment_required",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Redirect => "redirect",
            ErrorKind::ResponseTooLarge => "response_too_large",
            ErrorKind::Connect => "connection_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport_error",
            ErrorKind::MalformedResponse => "malformed_response",
            ErrorKind::TooLarge => "request_too_large",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::DuplicateId => "duplicate_custom_id",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::SpendCap => "spend_cap",
        }
    }

    /// Whether another attempt could succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Server
                | ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Transport
                | ErrorKind::MalformedResponse
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A request that failed for good: its kind, a message for people, and what the server
/// said last, if it said anything.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {}", self.full_message())]
#[non_exhaustive]
pub struct RequestError {
    /// The classification.
    pub kind: ErrorKind,
    /// What happened, for people.
    pub message: String,
    /// The last HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// The last response body, if any.
    pub body: Option<Bytes>,
    /// The server's request id of the last attempt, if any.
    pub request_id: Option<String>,
    /// Attempts made (0 when the request was never sent).
    pub attempts: u32,
    /// Why it was not retried again, when the retry policy wrote it off.
    pub gave_up: Option<GiveUp>,
    /// The underlying error of a failure before any answer (the HTTP client's, with its
    /// own causes), for `Error::source` chains.
    #[source]
    pub source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl RequestError {
    /// A failure with no response attached.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RequestError {
            kind,
            message: message.into(),
            status: None,
            body: None,
            request_id: None,
            attempts: 0,
            gave_up: None,
            source: None,
        }
    }

    /// The message with why retrying stopped, if it did: what a person reads.
    pub fn full_message(&self) -> std::borrow::Cow<'_, str> {
        match &self.gave_up {
            Some(why) => format!("{}; {why}", self.message).into(),
            None => self.message.as_str().into(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL does not parse or is not http(s).
    #[error("base URL `{0}` is not a valid http(s) URL")]
    BadBaseUrl(String),
    /// A header name or value that HTTP does not allow.
    #[error("header `{0}` is not a valid HTTP header")]
    BadHeader(String),
    /// Backoff settings out of order.
    #[error("backoff base {base:?} must be positive and at most the maximum {max:?}")]
    BadBackoff {
        /// The base delay.
        base: std::time::Duration,
        /// The maximum delay.
        max: std::time::Duration,
    },
    /// A setting the environment must give is not there.
    #[error("{0} is not set")]
    MissingEnv(&'static str),
    /// The provider has no default base URL (Azure: every deployment has its own).
    #[error("{0} needs a base URL (its deployment's URL, with ?api-version=...)")]
    MissingBaseUrl(crate::transport::Provider),
    /// More endpoints than one client keeps.
    #[error("{0} endpoints; at most 64 can be used together")]
    TooManyEndpoints(usize),
    /// The certificates `SSL_CERT_FILE` or `SSL_CERT_DIR` names cannot be used.
    #[error(
        "{variable}={}: {reason}; point it at CA certificates in PEM, or unset it",
        path.display()
    )]
    CertificateFile {
        /// `SSL_CERT_FILE` or `SSL_CERT_DIR`.
        variable: &'static str,
        /// The file or folder.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
