//! The two API dialects the simulator speaks: how a client authenticates, the shape of an
//! error body, the rate-limit headers and the request id header.
//!
//! - OpenAI (and Azure): `Authorization: Bearer KEY` or `api-key: KEY`;
//!   `{"error": {"message", "type", "param", "code"}}`;
//!   `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` with resets as durations;
//!   `x-request-id`.
//! - Anthropic: `x-api-key: KEY` and a required `anthropic-version`;
//!   `{"type": "error", "error": {"type", "message"}}` with the type named by the status
//!   (`rate_limit_error`, `overloaded_error` on 529...);
//!   `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`
//!   with resets as RFC 3339 times; `request-id`.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::json;

use super::errors::ApiError;
use crate::duration_fmt::format_reset;
use crate::limiter::LimitView;

/// Which dialect an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAI's, which Azure and the compatible servers share.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl Dialect {
    /// The key the client sent, in this dialect's header.
    pub(crate) fn given_key(self, headers: &HeaderMap) -> Option<&str> {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            Dialect::OpenAi => headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .or_else(|| value("api-key")),
            Dialect::Anthropic => value("x-api-key"),
        }
    }

    /// A header the dialect requires that the request lacks: Anthropic's version.
    pub(crate) fn missing_header(self, headers: &HeaderMap) -> Option<ApiError> {
        (self == Dialect::Anthropic && !headers.contains_key("anthropic-version"))
            .then(|| ApiError::invalid("anthropic-version: header is required"))
    }

    /// The body of an error answer.
    pub(crate) fn error_body(self, e: &ApiError) -> Vec<u8> {
        let body = match self {
            Dialect::OpenAi => json!({
                "error": {"message": e.message, "type": e.kind, "param": e.param, "code": e.code}
            }),
            Dialect::Anthropic => json!({
                "type": "error",
                "error": {"type": anthropic_type(e.status.as_u16()), "message": e.message},
            }),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The header the request id travels in.
    pub(crate) fn request_id_header(self) -> &'static str {
        match self {
            Dialect::OpenAi => "x-request-id",
            Dialect::Anthropic => "request-id",
        }
    }

    /// Writes the limited budgets' headers.
    pub(crate) fn put_limit_headers(self, h: &mut HeaderMap, view: &LimitView) {
        let now = SystemTime::now();
        for (kind, b) in view.each() {
            let (prefix, reset) = match self {
                Dialect::OpenAi => {
                    // OpenAI states requests and tokens only.
                    if !matches!(
                        kind,
                        crate::limiter::LimitKind::Requests | crate::limiter::LimitKind::Tokens
                    ) {
                        continue;
                    }
                    ("x-ratelimit", format_reset(b.reset))
                }
                Dialect::Anthropic => ("anthropic-ratelimit", rfc3339(now + b.reset)),
            };
            let name = |part: &str| match self {
                Dialect::OpenAi => format!("{prefix}-{part}-{}", kind.as_str()),
                Dialect::Anthropic => format!("{prefix}-{}-{part}", kind.as_str()),
            };
            let mut put = |part: &str, value: HeaderValue| {
                if let Ok(name) = HeaderName::from_bytes(name(part).as_bytes()) {
                    h.insert(name, value);
                }
            };
            put("limit", HeaderValue::from(b.limit));
            put("remaining", HeaderValue::from(b.remaining));
            if let Ok(v) = HeaderValue::from_str(&reset) {
                put("reset", v);
            }
        }
    }
}

/// Anthropic's error `type` for a status.
fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// A time as RFC 3339 in UTC, to the second, rounded up (a reset is never early).
fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
        .ceil() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil: the date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_are_utc_dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_801);
        assert_eq!(rfc3339(t), "2024-05-01T12:00:01Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
