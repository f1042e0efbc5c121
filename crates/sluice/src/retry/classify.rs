//! What an HTTP answer means: success, worth another attempt, or final.

use serde::Deserialize;

use crate::error::ErrorKind;

/// The verdict on one attempt's HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx.
    Success,
    /// Worth another attempt. `rate_limited` asks every worker to pause.
    Retry {
        /// What went wrong.
        kind: ErrorKind,
        /// Whether this was a 429 rate limit, which pauses admission for everyone.
        rate_limited: bool,
    },
    /// Final.
    Fail(ErrorKind),
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    error: Option<ErrorFields<'a>>,
}

#[derive(Deserialize)]
struct ErrorFields<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<&'a str>,
}

/// True when a 429 body says the account is out of quota, which no wait will fix.
fn is_quota_error(body: &[u8]) -> bool {
    let Ok(ErrorBody { error: Some(e) }) = serde_json::from_slice::<ErrorBody>(body) else {
        // Fall back to a plain search for bodies that are not OpenAI-shaped.
        return memchr_contains(body, b"insufficient_quota");
    };
    [e.code, e.kind]
        .into_iter()
        .flatten()
        .any(|s| s == "insufficient_quota" || s == "billing_hard_limit_reached")
}

fn memchr_contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Classifies a status (with the server's `x-should-retry`, which overrides it, and the
/// body, which tells a quota 429 from a rate 429).
pub fn classify(status: u16, should_retry: Option<bool>, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Success;
    }
    let (kind, retryable) = match status {
        429 if is_quota_error(body) => (ErrorKind::InsufficientQuota, false),
        429 => (ErrorKind::RateLimited, true),
        401 | 403 => (ErrorKind::Auth, false),
        402 => (ErrorKind::PaymentRequired, false),
        404 => (ErrorKind::NotFound, false),
        300..=399 => (ErrorKind::Redirect, false),
        408 | 409 => (ErrorKind::Server, true),
        400..=499 => (ErrorKind::InvalidRequest, false),
        _ => (ErrorKind::Server, true),
    };
    // Sending a redirected request again only meets the same redirect.
    let retryable = kind != ErrorKind::Redirect && should_retry.unwrap_or(retryable);
    if retryable {
        Verdict::Retry {
            kind,
            rate_limited: kind == ErrorKind::RateLimited,
        }
    } else {
        Verdict::Fail(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(kind: ErrorKind) -> Verdict {
        Verdict::Retry {
            kind,
            rate_limited: kind == ErrorKind::RateLimited,
        }
    }

    #[test]
    fn retries_what_waiting_can_fix() {
        for status in [408, 409, 500, 502, 503, 504, 529] {
            assert_eq!(
                classify(status, None, b""),
                retry(ErrorKind::Server),
                "{status}"
            );
        }
        let body = br#"{"error":{"code":"rate_limit_exceeded","type":"requests"}}"#;
        assert_eq!(classify(429, None, body), retry(ErrorKind::RateLimited));
    }

    #[test]
    fn never_retries_other_client_errors_or_quota() {
        for status in [400, 413, 422] {
            assert_eq!(
                classify(status, None, b""),
                Verdict::Fail(ErrorKind::InvalidRequest),
                "{status}"
            );
        }
        for status in [401, 403] {
            assert_eq!(classify(status, None, b""), Verdict::Fail(ErrorKind::Auth));
        }
        assert_eq!(
            classify(402, None, b""),
            Verdict::Fail(ErrorKind::PaymentRequired)
        );
        assert_eq!(classify(404, None, b""), Verdict::Fail(ErrorKind::NotFound));
        for status in [301, 302, 307, 308] {
            assert_eq!(
                classify(status, None, b""),
                Verdict::Fail(ErrorKind::Redirect),
                "a redirect is never retried: {status}"
            );
        }
        let quota = br#"{"error":{"code":"insufficient_quota","type":"insufficient_quota"}}"#;
        assert_eq!(
            classify(429, None, quota),
            Verdict::Fail(ErrorKind::InsufficientQuota)
        );
        assert_eq!(
            classify(429, None, b"insufficient_quota!"),
            Verdict::Fail(ErrorKind::InsufficientQuota)
        );
    }

    #[test]
    fn should_retry_header_overrides_the_status() {
        assert_eq!(
            classify(400, Some(true), b""),
            retry(ErrorKind::InvalidRequest)
        );
        assert_eq!(
            classify(503, Some(false), b""),
            Verdict::Fail(ErrorKind::Server)
        );
        assert_eq!(classify(200, Some(false), b""), Verdict::Success);
    }
}
