//! Deterministic content derived from the request, so a test can prove that every result
//! belongs to the request that asked for it.
//!
//! A reply quotes the client's request id and a fingerprint of the prompt:
//! `sim-reply id=<X-Client-Request-Id> fp=<16 hex digits> ...`. Embeddings are unit vectors
//! drawn from an RNG seeded with the text's fingerprint.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// The FNV-1a 64-bit hash: tiny, stable across versions and platforms, and good enough to
/// tell prompts apart (this is an identity check, not security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The fingerprint of a request's prompt: the hash of the compact JSON of its `messages`
/// (chat), `prompt` (completions) or `input` (embeddings, responses).
///
/// `serde_json` writes object keys in sorted order, so a client that parses and re-writes
/// the same value gets the same fingerprint.
pub fn prompt_fingerprint(prompt: &Value) -> u64 {
    fnv1a(serde_json::to_string(prompt).unwrap_or_default().as_bytes())
}

/// The marker a reply starts with; tests search for it.
pub fn reply_marker(client_id: Option<&str>, fingerprint: u64) -> String {
    format!(
        "sim-reply id={} fp={fingerprint:016x}",
        client_id.unwrap_or("-")
    )
}

/// Filler words after the marker, one per further output token, so longer answers look
/// longer. Chosen from a short list by the fingerprint.
const WORDS: [&str; 8] = [
    " alpha", " bravo", " charlie", " delta", " echo", " foxtrot", " golf", " hotel",
];

/// Output tokens the marker is taken to stand for.
const MARKER_TOKENS: u32 = 8;

/// The `i`-th filler word of a reply.
fn filler(fingerprint: u64, i: u32) -> &'static str {
    WORDS[((fingerprint >> (i % 16)) as usize + i as usize) % WORDS.len()]
}

/// The pieces of a reply of `tokens` output tokens: the marker, then one filler word per
/// token past the marker's share. Streaming sends them one chunk each.
pub fn reply_pieces(client_id: Option<&str>, fingerprint: u64, tokens: u32) -> Vec<String> {
    let mut pieces = vec![reply_marker(client_id, fingerprint)];
    pieces.extend(
        (0..tokens.saturating_sub(MARKER_TOKENS)).map(|i| filler(fingerprint, i).to_owned()),
    );
    pieces
}

/// The reply text of `tokens` output tokens: the marker, then filler words.
pub fn reply_text(client_id: Option<&str>, fingerprint: u64, tokens: u32) -> String {
    let mut text = reply_marker(client_id, fingerprint);
    for i in 0..tokens.saturating_sub(MARKER_TOKENS) {
        text.push_str(filler(fingerprint, i));
    }
    text
}

/// Output tokens for a prompt: the configured count, or 16 to 64 from the fingerprint,
/// never more than `max_tokens`.
pub fn output_tokens(configured: Option<u32>, fingerprint: u64, max_tokens: Option<u64>) -> u32 {
    let natural = configured.unwrap_or(16 + (fingerprint % 49) as u32);
    match max_tokens {
        Some(max) => natural.min(u32::try_from(max).unwrap_or(u32::MAX)),
        None => natural,
    }
}

/// A deterministic unit vector of `dimensions` for `text`.
pub fn embedding(text_fingerprint: u64, dimensions: usize) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(text_fingerprint);
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fingerprint_survives_a_parse_and_rewrite() {
        let a: Value = serde_json::from_str(r#"[{"role":"user","content":"hi"}]"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"[ { "content" : "hi", "role" : "user" } ]"#).unwrap();
        assert_eq!(prompt_fingerprint(&a), prompt_fingerprint(&b));
        assert_ne!(prompt_fingerprint(&a), prompt_fingerprint(&json!("hi")));
    }

    #[test]
    fn reply_quotes_id_and_fingerprint_and_pieces_rejoin() {
        let text = reply_text(Some("req-7"), 0xabc, 20);
        assert!(text.starts_with("sim-reply id=req-7 fp=0000000000000abc"));
        assert_eq!(text.split(' ').count(), 3 + 12);
        assert_eq!(reply_pieces(Some("req-7"), 0xabc, 20).concat(), text);
    }

    #[test]
    fn output_tokens_respect_max_tokens() {
        assert_eq!(output_tokens(Some(100), 1, Some(10)), 10);
        assert_eq!(output_tokens(Some(5), 1, None), 5);
        let natural = output_tokens(None, 12345, None);
        assert!((16..=64).contains(&natural));
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding(42, 1536);
        assert_eq!(a.len(), 1536);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(a, embedding(42, 1536));
        assert_ne!(a, embedding(43, 1536));
    }
}
