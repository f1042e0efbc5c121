//! Scrubbing the API key out of anything a server sends back (some echo the key in an
//! authentication error), before it reaches a file, a log or an error message.

use bytes::Bytes;

/// What the key is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// `bytes` with every occurrence of `secret` replaced. Free when the key is absent.
pub fn redact(bytes: Bytes, secret: &str) -> Bytes {
    let needle = secret.as_bytes();
    if needle.is_empty() || !contains(&bytes, needle) {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest: &[u8] = &bytes;
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(REDACTED.as_bytes());
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

/// `text` with every occurrence of `secret` replaced.
pub fn redact_str(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, REDACTED)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence() {
        let body = Bytes::from_static(br#"{"error":"Incorrect API key provided: sk-abc. sk-abc"}"#);
        let clean = redact(body, "sk-abc");
        assert_eq!(
            &clean[..],
            br#"{"error":"Incorrect API key provided: [REDACTED]. [REDACTED]"}"#
        );
        assert_eq!(redact_str("key sk-abc", "sk-abc"), "key [REDACTED]");
        let untouched = Bytes::from_static(b"nothing here");
        assert_eq!(redact(untouched.clone(), "sk-abc"), untouched);
    }
}
