//! Property tests over arbitrary bytes, standing in for a coverage-guided fuzzer where one
//! cannot run in CI (cargo fuzz needs a nightly toolchain): the input line parser and the
//! recovery scan of output files. `PROPTEST_CASES=100000 cargo test --release --test fuzz`
//! runs them longer; docs/RELIABILITY.md records such runs and what they found.

use std::collections::BTreeSet;
use std::path::PathBuf;

use futures::StreamExt;
use proptest::prelude::*;
use serde_json::Value;
use sluice::input::{self, Format, InputItem, InputOptions, PromptOptions};
use sluice::journal::{identify, repair, scan};

/// Cases per property: 512 in the test suite, more with `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Bytes that look like input: fragments of Batch lines, JSON punctuation, escapes, NULs,
/// invalid UTF-8, long runs, CR and LF, mixed at random.
fn input_bytes() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just(br#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#.to_vec()),
        Just(br#"{"custom_id":7,"url":"/v1/embeddings","body":{}}"#.to_vec()),
        Just(br#"{"custom_id":"s","url":"/v1/chat/completions","body":{"stream":true},"priority":"high"}"#.to_vec()),
        Just(br#""custom_id""#.to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[[[[[[[[[[".to_vec()),
        Just(b"\\u0000\\ud800\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(vec![0u8; 7]),
        Just(vec![0xff, 0xfe, 0xc3]),
        Just(vec![b'x'; 300]),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

/// Lines in `bytes` as the reader counts them (a last line without a newline counts).
fn line_count(bytes: &[u8]) -> u64 {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n"))
}

fn read_all(bytes: Vec<u8>, options: InputOptions) -> Vec<InputItem> {
    runtime()
        .block_on(input::read("fuzz.jsonl".into(), std::io::Cursor::new(bytes), options).collect())
}

fn prompts() -> Option<PromptOptions> {
    Some(PromptOptions {
        model: "m".into(),
        system: None,
        max_tokens: None,
        temperature: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Every line becomes exactly one request or one error naming its line, in order, and
    /// the end reports the number of lines; every request's body is a JSON object.
    #[test]
    fn the_line_parser_gives_one_item_per_line_and_never_panics(
        bytes in input_bytes(),
        format in prop_oneof![Just(Format::Auto), Just(Format::Batch), Just(Format::Prompts)],
        with_model in any::<bool>(),
        max_line in prop_oneof![Just(64usize), Just(16 << 20)],
    ) {
        let lines = line_count(&bytes);
        let options = InputOptions {
            format,
            prompts: if with_model || format == Format::Prompts { prompts() } else { None },
            max_line_bytes: max_line,
            ..InputOptions::default()
        };
        let items = read_all(bytes, options);
        let (last, rest) = items.split_last().expect("at least the end");
        prop_assert!(matches!(last, InputItem::End(n) if *n == lines), "{:?}", last);
        prop_assert_eq!(rest.len() as u64, lines);
        for (i, item) in rest.iter().enumerate() {
            let number = i as u64 + 1;
            match item {
                InputItem::Request(n, r) => {
                    prop_assert_eq!(*n, number);
                    prop_assert!(!r.custom_id.is_empty());
                    let body: Value = serde_json::from_slice(&r.body).unwrap();
                    prop_assert!(body.is_object());
                    prop_assert_ne!(body.get("stream"), Some(&Value::Bool(true)));
                }
                InputItem::Invalid(e) => {
                    prop_assert_eq!(e.line, number);
                    let prefix = format!("fuzz.jsonl:{}: ", number);
                    prop_assert!(e.to_string().starts_with(&prefix));
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}

/// A record as sluice writes it, for input line `line`.
fn record(line: u64, ok: bool) -> Vec<u8> {
    let tail = if ok {
        r#""response":{"status_code":200,"request_id":null,"body":{"x":"y\n"}},"error":null}"#
    } else {
        r#""response":null,"error":{"code":"server_error","message":"m"}}"#
    };
    format!(r#"{{"id":"batch_req_{line}","custom_id":"c{line}","line":{line},{tail}"#)
        .into_bytes()
        .into_iter()
        .chain(*b"\n")
        .collect()
}

/// Damage a power loss, a crash or a bug could leave in an output file.
#[derive(Debug, Clone)]
enum Damage {
    /// A run of NUL bytes overwriting what was there.
    Nul { at: usize, len: usize },
    /// Arbitrary bytes inserted.
    Insert { at: usize, bytes: Vec<u8> },
    /// The file cut short.
    Truncate { at: usize },
    /// A record written twice.
    Repeat { record: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1usize..400).prop_map(|(at, len)| Damage::Nul { at, len }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..60))
            .prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        any::<usize>().prop_map(|record| Damage::Repeat { record }),
    ]
}

fn temp_file(bytes: &[u8]) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("out-{}.jsonl", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&p, bytes).unwrap();
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// After scan and repair, a damaged output holds only whole records, at most one per
    /// input line, every one of them a record that was written; a second scan finds
    /// nothing to repair.
    #[test]
    fn recovery_leaves_only_whole_records_once_per_line(
        records in prop::collection::vec(any::<bool>(), 0..30),
        damages in prop::collection::vec(damage(), 0..5),
    ) {
        let written: Vec<Vec<u8>> =
            records.iter().enumerate().map(|(i, ok)| record(i as u64 + 1, *ok)).collect();
        let mut bytes = written.concat();
        for d in &damages {
            let len = bytes.len().max(1);
            match d {
                Damage::Nul { at, len: n } => {
                    let at = at % len;
                    let end = (at + n).min(bytes.len());
                    if at < end { bytes[at..end].fill(0); }
                }
                Damage::Insert { at, bytes: extra } => {
                    let at = at % (bytes.len() + 1);
                    bytes.splice(at..at, extra.iter().copied());
                }
                Damage::Truncate { at } => bytes.truncate(at % len),
                Damage::Repeat { record } if !written.is_empty() => {
                    bytes.extend_from_slice(&written[record % written.len()]);
                }
                Damage::Repeat { .. } => {}
            }
        }
        let path = temp_file(&bytes);
        let mut seen = BTreeSet::new();
        let report = scan(&path, |r| r.line.is_some_and(|l| seen.insert(l))).unwrap();
        repair(&path, &report).unwrap();
        let after = std::fs::read(&path).unwrap();
        let mut lines = BTreeSet::new();
        for line in after.split_inclusive(|&b| b == b'\n') {
            prop_assert!(line.ends_with(b"\n"), "no torn tail");
            prop_assert!(!line.contains(&0), "no NUL");
            // Valid JSON by the reading sluice gives the answers it writes (which, as most
            // JSON readers do, lets a lone surrogate escape through).
            prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
            let n = identify(line).and_then(|r| r.line).expect("a line number");
            prop_assert!(lines.insert(n), "line {} twice", n);
        }
        let again = scan(&path, |_| true).unwrap();
        prop_assert!(!again.needs_repair());
        let _ = std::fs::remove_file(&path);
    }

    /// The scan reads any bytes at all without panicking, and never changes the file.
    #[test]
    fn scanning_arbitrary_bytes_never_panics_or_writes(bytes in input_bytes()) {
        let path = temp_file(&bytes);
        let _ = scan(&path, |_| true).unwrap();
        prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let _ = std::fs::remove_file(&path);
    }
}
