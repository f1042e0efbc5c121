//! Scrubbing secrets (the API key, secret header values) out of anything a server sends
//! back, before it reaches a file, a log or an error message. Servers echo keys in
//! authentication errors, and not always as they were sent: JSON-escaped (`sk\u002d...`),
//! percent-encoded, or inside base64. A JSON reader of the output would decode the first
//! back into the key, so every one of these forms is found and replaced.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are matched literally only: their base64 forms would be too
/// short to tell from chance.
const MIN_BASE64_SECRET: usize = 12;

/// Shorter values are not treated as secrets: a placeholder key for a local server (`x`,
/// `EMPTY`, `none`) would otherwise be cut out of every word of every answer that holds it.
/// Real API keys are dozens of characters.
pub const MIN_SECRET_LEN: usize = 8;

/// One secret and the base64 runs that can only come from it, each with a searcher built
/// once (every answer a server sends is searched).
#[derive(Clone)]
struct Secret {
    raw: Vec<u8>,
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl Secret {
    fn new(raw: &str) -> Self {
        let raw = raw.as_bytes().to_vec();
        let mut base64 = Vec::new();
        if raw.len() >= MIN_BASE64_SECRET {
            // Embedded in a longer base64 text, the secret starts at one of three byte
            // alignments; the characters that encode only whole groups of its own bytes
            // are the same whatever surrounds it.
            for skip in 0..3 {
                let whole = (raw.len() - skip) / 3 * 3;
                let part = &raw[skip..skip + whole];
                for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    let form = engine.encode(part).into_bytes();
                    if !base64.contains(&form) {
                        base64.push(form);
                    }
                }
            }
        }
        let finders = std::iter::once(&raw)
            .chain(&base64)
            .map(|form| memchr::memmem::Finder::new(form).into_owned())
            .collect();
        Secret { raw, finders }
    }
}

/// Replaces every secret it was given, in every form a server might echo it in.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor for `secrets` (empty ones are ignored; surrounding white space is not
    /// part of a secret, as it is not sent).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = Redactor::default();
        for s in secrets {
            out.add(s);
        }
        out
    }

    /// Adds a secret (ignored when shorter than [`MIN_SECRET_LEN`]).
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_SECRET_LEN
            && !self.secrets.iter().any(|s| s.raw == secret.as_bytes())
        {
            self.secrets.push(Secret::new(secret));
        }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `bytes` with every secret replaced. Free when no secret and no escape is present.
    pub fn redact(&self, bytes: Bytes) -> Bytes {
        match self.spans(&bytes) {
            spans if spans.is_empty() => bytes,
            spans => Bytes::from(replace(&bytes, &spans)),
        }
    }

    /// `text` with every secret replaced.
    pub fn redact_str(&self, text: &str) -> String {
        let spans = self.spans(text.as_bytes());
        if spans.is_empty() {
            return text.to_owned();
        }
        // Spans start and end on character boundaries: secrets and escapes are ASCII where
        // they begin and end, or whole characters.
        String::from_utf8_lossy(&replace(text.as_bytes(), &spans)).into_owned()
    }

    /// The byte ranges that hold a secret, sorted and merged.
    fn spans(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        if self.secrets.is_empty() {
            return spans;
        }
        let escaped = memchr::memchr2(b'\\', b'%', hay).is_some();
        for secret in &self.secrets {
            for finder in &secret.finders {
                let len = finder.needle().len();
                spans.extend(finder.find_iter(hay).map(|at| (at, at + len)));
            }
            if escaped {
                escaped_matches(hay, &secret.raw, &mut spans);
            }
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// Finds `secret` written with any mix of literal bytes, JSON `\uXXXX` escapes, `\/`, and
/// percent-encoding.
fn escaped_matches(hay: &[u8], secret: &[u8], spans: &mut Vec<(usize, usize)>) {
    let Some(&first) = secret.first() else {
        return;
    };
    for start in memchr::memchr3_iter(first, b'\\', b'%', hay) {
        if let Some(end) = match_at(hay, start, secret) {
            spans.push((start, end));
        }
    }
}

/// Where a match of `secret` starting at `start` ends, if there is one.
fn match_at(hay: &[u8], start: usize, secret: &[u8]) -> Option<usize> {
    let mut i = start;
    for &want in secret {
        let rest = hay.get(i..)?;
        i += if rest.first() == Some(&want) {
            1
        } else if rest.starts_with(b"\\u") && hex_byte(rest.get(2..6)?) == Some(want) {
            6
        } else if rest.first() == Some(&b'%') && hex_byte(rest.get(1..3)?) == Some(want) {
            3
        } else if want == b'/' && rest.starts_with(b"\\/") {
            2
        } else {
            return None;
        };
    }
    Some(i)
}

/// The byte that 2 or 4 hex digits spell (4 only when the first two are zero).
fn hex_byte(digits: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(digits).ok()?;
    let value = u32::from_str_radix(text, 16).ok()?;
    u8::try_from(value).ok()
}

fn replace(hay: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut at = 0;
    for &(s, e) in spans {
        out.extend_from_slice(&hay[at..s]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = e;
    }
    out.extend_from_slice(&hay[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test-Canary/0123456789abcdef";

    fn clean(text: &str) -> String {
        Redactor::new([KEY]).redact_str(text)
    }

    #[test]
    fn replaces_every_literal_occurrence() {
        let r = Redactor::new(["sk-abc123"]);
        let body =
            Bytes::from_static(br#"{"error":"Incorrect API key provided: sk-abc123. sk-abc123"}"#);
        assert_eq!(
            &r.redact(body)[..],
            br#"{"error":"Incorrect API key provided: [REDACTED]. [REDACTED]"}"#
        );
        let untouched = Bytes::from_static(b"nothing here");
        assert_eq!(r.redact(untouched.clone()), untouched);
    }

    #[test]
    fn json_escapes_percent_encoding_and_base64_are_caught() {
        let json_escaped = KEY.replace('-', "\\u002d").replace('/', "\\/");
        let upper = KEY.replace('-', "\\u002D");
        let every_char: String = KEY
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let percent = KEY.replace('-', "%2d").replace('/', "%2F");
        for form in [json_escaped, upper, every_char, percent] {
            let text = format!(r#"{{"message":"bad key {form}!"}}"#);
            assert_eq!(
                clean(&text),
                r#"{"message":"bad key [REDACTED]!"}"#,
                "{form}"
            );
        }
        // Inside base64 at every alignment, in both alphabets.
        for prefix in ["", "a", "ab", "Bearer "] {
            let plain = format!("{prefix}{KEY} trailing");
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                let encoded = engine.encode(&plain);
                let out = clean(&encoded);
                assert!(out.contains(REDACTED), "{prefix:?}: {out}");
            }
        }
        // A decoded JSON string of the redacted text holds no key.
        let escaped = format!(r#""{}""#, KEY.replace('-', "\\u002d"));
        let decoded: String = serde_json::from_str(&clean(&escaped)).unwrap();
        assert!(!decoded.contains(KEY));
    }

    #[test]
    fn white_space_around_a_secret_is_not_part_of_it() {
        let r = Redactor::new([" \tsk-spaced-key-123\t "]);
        assert_eq!(
            r.redact_str("echo: sk-spaced-key-123."),
            "echo: [REDACTED]."
        );
        assert!(Redactor::new(["  "]).is_empty());
        assert!(
            Redactor::new(["x", "EMPTY"]).is_empty(),
            "placeholders are not secrets"
        );
    }
}
