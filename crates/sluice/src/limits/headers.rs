//! Rate-limit headers: what the server says the limits are and how much is left.
//!
//! - OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, resets as Go
//!   durations (`1s`, `6m0s`, `12ms`, `4m12.172s`) until the budget is full again.
//! - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
//!   {limit,remaining,reset}`, resets as RFC 3339 times (input and output tokens are
//!   limited apart).
//!
//! Missing, zero, negative and garbled values are ignored, one value at a time: a server
//! that sends a good limit and a garbled reset still teaches the limit.

use std::time::{Duration, SystemTime};

use http::header::HeaderMap;

use crate::head::{self, Header};

/// One budget as the headers describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetHeaders {
    /// The per-minute limit.
    pub limit: Option<u64>,
    /// What is left of it.
    pub remaining: Option<u64>,
    /// Time until it is full again.
    pub reset: Option<Duration>,
}

impl BudgetHeaders {
    /// True when nothing was learned.
    pub fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }
}

/// Every budget the headers describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateHeaders {
    /// Requests.
    pub requests: BudgetHeaders,
    /// Tokens.
    pub tokens: BudgetHeaders,
    /// Input tokens (Anthropic).
    pub input_tokens: BudgetHeaders,
    /// Output tokens (Anthropic).
    pub output_tokens: BudgetHeaders,
}

impl RateHeaders {
    /// True when the answer named no budget at all (a local or self-hosted server).
    pub fn is_empty(&self) -> bool {
        [
            &self.requests,
            &self.tokens,
            &self.input_tokens,
            &self.output_tokens,
        ]
        .iter()
        .all(|b| b.is_empty())
    }

    /// Reads whichever provider's headers are present (OpenAI's first).
    pub fn parse(headers: &HeaderMap, now: SystemTime) -> Self {
        Self::parse_head(&head::of_map(headers), now)
    }

    /// [`RateHeaders::parse`] over an answer's headers however they were parsed.
    pub(crate) fn parse_head(headers: &[Header<'_>], now: SystemTime) -> Self {
        // One pass over the headers instead of a lookup for each of the eighteen names:
        // most answers carry a dozen headers, and no name needs more than a compare.
        let mut found: [Option<&str>; NAMES.len()] = [None; NAMES.len()];
        for header in headers {
            if !(header.starts_with("x-ratelimit-") || header.starts_with("anthropic-ratelimit-")) {
                continue;
            }
            if let Some(i) = NAMES.iter().position(|n| header.is(n))
                && found[i].is_none()
            {
                found[i] = header.text();
            }
        }
        let budget = |at: usize| {
            let openai = BudgetHeaders {
                limit: found[at].and_then(positive),
                remaining: found[at + 1].and_then(non_negative),
                reset: found[at + 2].and_then(parse_go_duration),
            };
            if !openai.is_empty() {
                return openai;
            }
            BudgetHeaders {
                limit: found[at + 6].and_then(positive),
                remaining: found[at + 7].and_then(non_negative),
                reset: found[at + 8].and_then(|t| until_rfc3339(t, now)),
            }
        };
        let anthropic_only = |at: usize| BudgetHeaders {
            limit: found[at].and_then(positive),
            remaining: found[at + 1].and_then(non_negative),
            reset: found[at + 2].and_then(|t| until_rfc3339(t, now)),
        };
        RateHeaders {
            requests: budget(0),
            tokens: budget(3),
            input_tokens: anthropic_only(12),
            output_tokens: anthropic_only(15),
        }
    }
}

/// The names read: OpenAI's requests and tokens (limit, remaining, reset), then
/// Anthropic's in the same order, six places later, then Anthropic's input and output
/// tokens.
const NAMES: [&str; 18] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
];

fn positive(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|&n| n > 0)
}

fn non_negative(s: &str) -> Option<u64> {
    s.parse::<u64>().ok()
}

/// Parses a Go duration as OpenAI writes it: a sequence of number-unit pairs with units
/// `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`; numbers may be fractional. `None` on anything else.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (scale, unit_len) = if rest.starts_with("ms") {
            (1e-3, 2)
        } else if rest.starts_with("us") {
            (1e-6, 2)
        } else if rest.starts_with("µs") {
            (1e-6, "µs".len())
        } else if rest.starts_with("ns") {
            (1e-9, 2)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return None;
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Time from `now` until an RFC 3339 instant (`2024-05-01T12:00:30Z`,
/// `2024-05-01T12:00:30.5+02:00`); zero if it has passed, `None` if it does not parse.
pub fn until_rfc3339(s: &str, now: SystemTime) -> Option<Duration> {
    let at = parse_rfc3339(s)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if len == 0 {
            return None;
        }
        let digits = &frac[..len.min(9)];
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
        rest = &frac[len..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn go_durations_in_every_form() {
        assert_eq!(parse_go_duration("1s"), Some(ms(1000)));
        assert_eq!(parse_go_duration("6m0s"), Some(ms(360_000)));
        assert_eq!(parse_go_duration("12ms"), Some(ms(12)));
        assert_eq!(parse_go_duration("4m12.172s"), Some(ms(252_172)));
        assert_eq!(parse_go_duration("1h2m3s"), Some(ms(3_723_000)));
        assert_eq!(parse_go_duration("0.5s"), Some(ms(500)));
        assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "s", "1", "1x", "-1s", "1s2", "abc", "1.2.3s", "NaNs"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_times_with_offsets_and_fractions() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800); // 2024-05-01T12:00:00Z
        assert_eq!(until_rfc3339("2024-05-01T12:00:30Z", now), Some(ms(30_000)));
        assert_eq!(
            until_rfc3339("2024-05-01T12:00:30.250Z", now),
            Some(ms(30_250))
        );
        assert_eq!(
            until_rfc3339("2024-05-01T14:00:30+02:00", now),
            Some(ms(30_000))
        );
        assert_eq!(
            until_rfc3339("2024-05-01T11:00:00Z", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "tomorrow",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T12:00:30",
            "2024-05-01T12:00:30+0200",
        ] {
            assert_eq!(until_rfc3339(bad, now), None, "{bad}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_first_of_repeated_headers_counts_and_other_headers_are_passed_over() {
        let now = SystemTime::UNIX_EPOCH;
        let mut h = headers(&[
            ("content-type", "application/json"),
            ("x-ratelimit-limit-requests", " 600 "),
            ("x-ratelimit-reset-tokens-extra", "1s"),
        ]);
        h.append("x-ratelimit-limit-requests", HeaderValue::from_static("7"));
        let parsed = RateHeaders::parse(&h, now);
        assert_eq!(parsed.requests.limit, Some(600));
        assert_eq!(parsed.tokens, BudgetHeaders::default());
    }

    #[test]
    fn reads_openai_and_anthropic_headers_and_ignores_bad_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800);
        let openai = RateHeaders::parse(
            &headers(&[
                ("x-ratelimit-limit-requests", "500"),
                ("x-ratelimit-remaining-requests", "499"),
                ("x-ratelimit-reset-requests", "120ms"),
                ("x-ratelimit-limit-tokens", "-1"),
                ("x-ratelimit-remaining-tokens", "garbage"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ]),
            now,
        );
        assert_eq!(
            openai.requests,
            BudgetHeaders {
                limit: Some(500),
                remaining: Some(499),
                reset: Some(ms(120))
            }
        );
        assert_eq!(
            openai.tokens,
            BudgetHeaders {
                limit: None,
                remaining: None,
                reset: Some(ms(360_000))
            }
        );
        let anthropic = RateHeaders::parse(
            &headers(&[
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2024-05-01T12:00:01Z"),
                ("anthropic-ratelimit-tokens-limit", "0"),
                ("anthropic-ratelimit-input-tokens-limit", "40000"),
                ("anthropic-ratelimit-input-tokens-remaining", "39000"),
                ("anthropic-ratelimit-output-tokens-limit", "8000"),
                (
                    "anthropic-ratelimit-output-tokens-reset",
                    "2024-05-01T12:00:02Z",
                ),
            ]),
            now,
        );
        assert_eq!(
            (
                anthropic.input_tokens.limit,
                anthropic.input_tokens.remaining
            ),
            (Some(40_000), Some(39_000))
        );
        assert_eq!(
            (anthropic.output_tokens.limit, anthropic.output_tokens.reset),
            (Some(8000), Some(ms(2000)))
        );
        assert_eq!(
            anthropic.requests,
            BudgetHeaders {
                limit: Some(50),
                remaining: Some(0),
                reset: Some(ms(1000))
            }
        );
        assert!(anthropic.tokens.is_empty(), "a zero limit teaches nothing");
        assert_eq!(
            RateHeaders::parse(&HeaderMap::new(), now),
            RateHeaders::default()
        );
    }
}
