//! Token counters for the o200k and cl100k vocabularies, side by side: whether they count
//! alike on a mixed corpus (English, code, CJK, emoji, long runs of one character), how
//! fast they count text they have not seen (no text repeats, so no cache flatters anyone),
//! and the memory one encoding takes (each measured in a fresh child process).

use std::time::Instant;

const CANDIDATES: [&str; 3] = ["tiktoken", "tiktoken-rs", "bpe-openai"];

fn count(which: &str, enc: &str, text: &str) -> usize {
    match (which, enc) {
        ("tiktoken", e) => tiktoken::get_encoding(e).unwrap().count(text),
        ("tiktoken-rs", "o200k_base") => tiktoken_rs::o200k_base_singleton().encode_ordinary(text).len(),
        ("tiktoken-rs", _) => tiktoken_rs::cl100k_base_singleton().encode_ordinary(text).len(),
        ("bpe-openai", "o200k_base") => bpe_openai::o200k_base().count(text),
        ("bpe-openai", _) => bpe_openai::cl100k_base().count(text),
        _ => unreachable!(),
    }
}

fn mixed() -> Vec<String> {
    let mut v: Vec<String> = [
        "The quick brown fox jumps over the lazy dog. In two sentences, explain tides!",
        "fn main() {\n    let x: Vec<u64> = (0..10).map(|i| i * 2).collect();\n}\n\tif (a && b) { return -1; } // c",
        "東京は日本の首都です。我们今天去公园散步。안녕하세요, 반갑습니다.",
        "🎉🔥👍🏽 family: 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ✨ Ünïcödé",
        "'s 't 're 've 'm 'll 'd  CAPS lowerUPPER camelCase 3.14159 1234567890",
        "<|endoftext|> <|im_start|>user text<|im_end|>   \n\n\n  ",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push("a".repeat(20_000));
    v.push(" ".repeat(5000) + &"=".repeat(5000));
    v.push("ab".repeat(5000) + &"🙂".repeat(1000));
    v
}

/// About `bytes` of text in which no sentence repeats: words drawn from a generated
/// vocabulary, numbers, code and CJK, from a fixed seed.
fn fresh(bytes: usize) -> Vec<String> {
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let syllables = ["ka", "lo", "mer", "tin", "sa", "vor", "el", "qu", "ist", "an", "re", "po", "ly", "ne", "dru", "th"];
    let cjk = ['的', '是', '日', '本', '語', '文', '字', '学', '生', '東', '京', '国'];
    let mut out = Vec::new();
    let mut total = 0;
    while total < bytes {
        let mut s = String::new();
        for _ in 0..200 {
            match next() % 10 {
                0 => s.push_str(&format!(" {}", next() % 100_000)),
                1 => s.push_str(&format!(" fn_{}(x) {{ return x * {}; }}", next() % 1000, next() % 97)),
                2 => (0..3).for_each(|_| s.push(cjk[(next() % cjk.len() as u64) as usize])),
                _ => {
                    s.push(' ');
                    for _ in 0..(1 + next() % 4) {
                        s.push_str(syllables[(next() % syllables.len() as u64) as usize]);
                    }
                }
            }
        }
        total += s.len();
        out.push(s);
    }
    out
}

fn status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with(key)).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "load" {
        let before = status("VmRSS:");
        count(&args[2], &args[3], "hello world");
        println!("{} {}", (status("VmRSS:") - before) / 1024, status("VmHWM:") / 1024);
        return;
    }
    println!("| encoder | encoding | agrees with tiktoken-rs on the mixed corpus | MB/s on unseen text | M tokens/s | RSS of one encoding MiB (peak of the process) |");
    println!("|---|---|---|---|---|---|");
    let corpus = fresh(16 << 20);
    let bytes: usize = corpus.iter().map(String::len).sum();
    for enc in ["o200k_base", "cl100k_base"] {
        let reference: Vec<usize> = mixed().iter().map(|t| count("tiktoken-rs", enc, t)).collect();
        for which in CANDIDATES {
            let agrees = mixed().iter().zip(&reference).all(|(t, r)| count(which, enc, t) == *r);
            count(which, enc, "warm up");
            let t = Instant::now();
            let tokens: usize = corpus.iter().map(|s| count(which, enc, s)).sum();
            let secs = t.elapsed().as_secs_f64();
            let load = std::process::Command::new(&args[0]).args(["load", which, enc]).output().unwrap();
            let load = String::from_utf8_lossy(&load.stdout);
            let mut it = load.split_whitespace();
            let (rss, peak) = (it.next().unwrap_or("?"), it.next().unwrap_or("?"));
            println!(
                "| {which} | {enc} | {} | {:.1} | {:.1} | {rss} ({peak}) |",
                if agrees { "yes" } else { "NO" },
                bytes as f64 / secs / 1e6,
                tokens as f64 / secs / 1e6
            );
        }
    }
}
