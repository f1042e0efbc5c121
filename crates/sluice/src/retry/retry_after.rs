//! The server's word on when to come back and whether to: `retry-after-ms`, `retry-after`
//! (seconds, maybe fractional, or an HTTP date) and `x-should-retry`.

use std::time::{Duration, SystemTime};

use http::header::HeaderMap;

use crate::head::{self, Header};

/// Reads the retry delay the server asked for: `retry-after-ms`, then `retry-after`
/// (seconds or an HTTP date), then the same headers with a prefix (`x-upstream-retry-after`),
/// which gateways and proxies add when they forward the upstream's answer. Negative,
/// unparseable or absurd values are ignored.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    retry_after_in(&head::of_map(headers), now)
}

/// [`retry_after`] over an answer's headers however they were parsed.
pub(crate) fn retry_after_in(headers: &[Header<'_>], now: SystemTime) -> Option<Duration> {
    // Best first: plain before prefixed, milliseconds before seconds.
    let mut best: Option<(u8, Duration)> = None;
    for header in headers {
        let (rank, millis) = if header.is("retry-after-ms") {
            (0, true)
        } else if header.is("retry-after") {
            (1, false)
        } else if header.ends_with("-retry-after-ms") {
            (2, true)
        } else if header.ends_with("-retry-after") {
            (3, false)
        } else {
            continue;
        };
        if best.is_some_and(|(r, _)| r <= rank) {
            continue;
        }
        let Some(text) = header.text() else {
            continue;
        };
        let delay = if millis {
            seconds(text)
                .map(|ms| ms / 1000.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
        } else {
            delay_of(text, now)
        };
        if let Some(d) = delay {
            best = Some((rank, d));
        }
    }
    best.map(|(_, d)| d)
}

/// A non-negative finite number.
fn seconds(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// `retry-after`'s value: seconds, or an HTTP date (one in the past means now).
fn delay_of(text: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = text.parse::<f64>() {
        return seconds(text)
            .filter(|_| secs.is_finite())
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The delay an error's body names when no header does: Gemini's `RESOURCE_EXHAUSTED`
/// answer carries a `RetryInfo` detail with `"retryDelay": "26s"`, and OpenAI writes
/// "Please try again in 5.289s" (or "in 20ms", "in 1m30s") when it sends no retry header.
pub fn retry_after_in_text(body: &[u8]) -> Option<Duration> {
    retry_delay_field(body).or_else(|| try_again_in(body))
}

/// Gemini's `"retryDelay": "26s"` (a protobuf Duration in JSON: seconds with an `s`).
fn retry_delay_field(body: &[u8]) -> Option<Duration> {
    const FIELD: &[u8] = b"\"retryDelay\"";
    let at = memchr::memmem::find(body, FIELD)? + FIELD.len();
    let rest = &body[at..];
    let open = rest.iter().position(|b| *b == b'"')?;
    // Only white space and the colon may come between the name and its value.
    if !rest[..open]
        .iter()
        .all(|b| *b == b':' || b.is_ascii_whitespace())
    {
        return None;
    }
    let value = &rest[open + 1..];
    let close = value.iter().position(|b| *b == b'"')?;
    let text = std::str::from_utf8(&value[..close]).ok()?;
    crate::limits::parse_go_duration(text.trim())
}

/// OpenAI's "try again in 5.289s" in an error message.
fn try_again_in(body: &[u8]) -> Option<Duration> {
    const PHRASE: &[u8] = b"try again in ";
    let at = memchr::memmem::find(body, PHRASE)? + PHRASE.len();
    let rest = &body[at..];
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'.'))
        .unwrap_or(rest.len());
    let word = std::str::from_utf8(&rest[..end]).ok()?;
    let word = word.strip_suffix('.').unwrap_or(word);
    crate::limits::parse_go_duration(word)
}

/// `x-should-retry: true|false`, which overrides what the status says.
pub fn should_retry(headers: &HeaderMap) -> Option<bool> {
    should_retry_in(&head::of_map(headers))
}

/// [`should_retry`] over an answer's headers however they were parsed.
pub(crate) fn should_retry_in(headers: &[Header<'_>]) -> Option<bool> {
    match head::find(headers, "x-should-retry")? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_all_three_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1500")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.25")]), now),
            Some(Duration::from_millis(250))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(7))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn prefers_milliseconds_and_ignores_garbage() {
        let now = SystemTime::now();
        let both = headers(&[("retry-after-ms", "20"), ("retry-after", "1")]);
        assert_eq!(retry_after(&both, now), Some(Duration::from_millis(20)));
        for bad in ["soon", "-1", "NaN", "inf", ""] {
            assert_eq!(
                retry_after(&headers(&[("retry-after", bad)]), now),
                None,
                "{bad}"
            );
        }
        let bad_ms = headers(&[("retry-after-ms", "-5"), ("retry-after", "3")]);
        assert_eq!(retry_after(&bad_ms, now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn reads_should_retry() {
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "true")])),
            Some(true)
        );
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "false")])),
            Some(false)
        );
        assert_eq!(should_retry(&headers(&[("x-should-retry", "maybe")])), None);
        assert_eq!(should_retry(&HeaderMap::new()), None);
    }

    #[test]
    fn prefixed_copies_count_below_the_plain_headers() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            retry_after(&headers(&[("x-upstream-retry-after", "55")]), now),
            Some(Duration::from_secs(55))
        );
        assert_eq!(
            retry_after(&headers(&[("llm-retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(
                &headers(&[("x-upstream-retry-after", "55"), ("retry-after", "3")]),
                now
            ),
            Some(Duration::from_secs(3)),
            "the plain header wins"
        );
        assert_eq!(
            retry_after(&headers(&[("x-upstream-retry-after", "soon")]), now),
            None
        );
    }

    #[test]
    fn reads_the_delay_in_an_error_text() {
        let body = br#"{"error":{"message":"Rate limit reached for gpt-4o-mini. Please try again in 5.289s. Visit ..."}}"#;
        assert_eq!(
            retry_after_in_text(body),
            Some(Duration::from_secs_f64(5.289))
        );
        assert_eq!(
            retry_after_in_text(b"Please try again in 20ms."),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            retry_after_in_text(b"try again in 1m30s"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(retry_after_in_text(b"try again later"), None);
    }

    #[test]
    fn reads_geminis_retry_info() {
        let body = br#"{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": "26s"}]}}"#;
        assert_eq!(retry_after_in_text(body), Some(Duration::from_secs(26)));
        assert_eq!(
            retry_after_in_text(br#"{"retryDelay":"1.5s"}"#),
            Some(Duration::from_millis(1500))
        );
        // A field whose value is not a duration string says nothing.
        assert_eq!(retry_after_in_text(br#"{"retryDelay": 26}"#), None);
        assert_eq!(retry_after_in_text(br#"{"retryDelay": "soon"}"#), None);
    }
}
