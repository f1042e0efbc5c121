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

/// Whether an answer says the server is overloaded, which slows everyone as a 429 does:
/// every 529 (Anthropic's `overloaded_error`), and a 503 whose body says so (Gemini's
/// `UNAVAILABLE` "model is overloaded", OpenAI's "engine is currently overloaded", an
/// `overloaded_error` passed on by a gateway). A bare 503 stays an ordinary server error:
/// many servers send one for a restart or a bad upstream, where slowing down helps no one.
pub fn is_overload(status: u16, body: &[u8]) -> bool {
    match status {
        529 => true,
        503 => {
            let head = &body[..body.len().min(4096)];
            let lower = head.to_ascii_lowercase();
            memchr_contains(&lower, b"overloaded") || memchr_contains(head, b"\"UNAVAILABLE\"")
        }
        _ => false,
    }
}

/// Classifies a status (with the server's `x-should-retry`, which overrides it, and the
/// body, which tells a quota 429 from a rate 429).
pub fn classify(status: u16, should_retry: Option<bool>, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Success;
    }
    let (kind, retryable) = match status {
        429 if is_quota_error(body) => (ErrorKind::InsufficientQuota, false),
        // Anthropic says it is out of credits with a 400, not a 402.
        400 if memchr_contains(body, b"credit balance is too low") => {
            (ErrorKind::PaymentRequired, false)
        }
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
    fn overload_is_a_529_or_a_503_that_says_so() {
        assert!(is_overload(529, b""));
        let gemini = br#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#;
        assert!(is_overload(503, gemini));
        assert!(is_overload(
            503,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        ));
        assert!(!is_overload(503, b"upstream connect error"));
        assert!(!is_overload(500, gemini));
    }

    #[test]
    fn anthropics_out_of_credits_400_is_payment_required() {
        let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#;
        assert_eq!(
            classify(400, None, body),
            Verdict::Fail(ErrorKind::PaymentRequired)
        );
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
