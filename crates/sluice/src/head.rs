//! An answer's headers as the readers of rate limits, retry hints and request ids take
//! them: name and value pairs borrowed from wherever the head was parsed (an HTTP/1.1 head
//! still in its connection's buffer, or hyper's `HeaderMap`), so reading an answer copies
//! no header. An HTTP/1.1 head built into a `HeaderMap` first cost seven allocations an
//! answer (docs/BENCHMARKS.md, "HTTP/1.1 spoken here").

use http::HeaderMap;
use smallvec::SmallVec;

/// One header: its name as it was sent (in any case) and its value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header<'a> {
    name: &'a str,
    value: &'a [u8],
}

/// The headers of a map, borrowed; a dozen or so, as most answers carry, without an
/// allocation.
pub(crate) type Borrowed<'a> = SmallVec<[Header<'a>; 16]>;

impl<'a> Header<'a> {
    pub(crate) fn new(name: &'a str, value: &'a [u8]) -> Self {
        Header { name, value }
    }

    /// Whether the name is `lower` (a lowercase name), in any case.
    pub(crate) fn is(&self, lower: &str) -> bool {
        self.name.eq_ignore_ascii_case(lower)
    }

    /// Whether the name starts with `lower` (lowercase), in any case.
    pub(crate) fn starts_with(&self, lower: &str) -> bool {
        let name = self.name.as_bytes();
        name.len() >= lower.len() && name[..lower.len()].eq_ignore_ascii_case(lower.as_bytes())
    }

    /// Whether the name ends with `lower` (lowercase), in any case.
    pub(crate) fn ends_with(&self, lower: &str) -> bool {
        let name = self.name.as_bytes();
        name.len() >= lower.len()
            && name[name.len() - lower.len()..].eq_ignore_ascii_case(lower.as_bytes())
    }

    /// The value as text, trimmed, when it is visible ASCII (the rule of `http`'s
    /// `HeaderValue::to_str`).
    pub(crate) fn text(&self) -> Option<&'a str> {
        if !self
            .value
            .iter()
            .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b))
        {
            return None;
        }
        std::str::from_utf8(self.value).ok().map(str::trim)
    }
}

/// The headers of `map`, in its order.
pub(crate) fn of_map(map: &HeaderMap) -> Borrowed<'_> {
    map.iter()
        .map(|(name, value)| Header::new(name.as_str(), value.as_bytes()))
        .collect()
}

/// The text of the first header named `lower` (lowercase).
pub(crate) fn find<'a>(head: &[Header<'a>], lower: &str) -> Option<&'a str> {
    head.iter().find(|h| h.is(lower)).and_then(Header::text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case_and_values_read_as_header_value_reads_them() {
        let h = Header::new("X-RateLimit-Reset-Tokens", b" 1s \t");
        assert!(h.is("x-ratelimit-reset-tokens"));
        assert!(h.starts_with("x-ratelimit-"));
        assert!(h.ends_with("-reset-tokens"));
        assert!(!h.ends_with("-reset-requests"));
        assert!(!Header::new("x", b"").starts_with("x-ratelimit-"));
        assert_eq!(h.text(), Some("1s"));
        for value in [&b"caf\xc3\xa9"[..], b"plain", b"t\tab", b" x "] {
            let header = http::HeaderValue::from_bytes(value).unwrap();
            assert_eq!(
                Header::new("n", value).text(),
                header.to_str().ok().map(str::trim),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_map_is_borrowed_in_order_and_the_first_of_a_name_found() {
        let mut map = HeaderMap::new();
        map.append("request-id", http::HeaderValue::from_static("one"));
        map.append("request-id", http::HeaderValue::from_static("two"));
        map.append("location", http::HeaderValue::from_static("/x"));
        let head = of_map(&map);
        assert_eq!(head.len(), 3);
        assert_eq!(find(&head, "request-id"), Some("one"));
        assert_eq!(find(&head, "location"), Some("/x"));
        assert_eq!(find(&head, "x-request-id"), None);
    }
}
