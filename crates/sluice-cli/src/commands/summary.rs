//! The end-of-run summary on stderr.

use std::fmt::Write;
use std::time::Duration;

use sluice::Stats;

use sluice::durable::Messages;

/// Where the input stands, for the summary's first line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lines {
    /// Input lines, if counted.
    pub total: Option<u64>,
    /// Lines with a record, earlier runs' included.
    pub done: u64,
    /// Of those, done by earlier runs.
    pub resumed: u64,
}

/// What the summary says of money.
#[derive(Debug, Clone, Copy, Default)]
pub struct Money<'a> {
    /// What earlier runs of the same output spent.
    pub earlier: Option<f64>,
    /// The day the prices were taken.
    pub taken: &'a str,
}

/// Formats the summary of a run, with the three most common failure messages.
pub fn render(
    stats: &Stats,
    invalid_lines: u64,
    wall: Duration,
    messages: &Messages,
    lines: Lines,
    money: Money<'_>,
) -> String {
    let secs = wall.as_secs_f64().max(1e-9);
    let mut out = String::new();
    let _ = writeln!(out, "── sluice summary ──");
    let _ = write!(out, "  done         {}", lines.done);
    if let Some(total) = lines.total {
        let _ = write!(out, " of {total} lines");
        if total > lines.done {
            let _ = write!(out, " ({} left)", total - lines.done);
        }
    } else {
        let _ = write!(out, " lines");
    }
    if lines.resumed > 0 {
        let _ = write!(out, ", {} by earlier runs", lines.resumed);
    }
    out.push('\n');
    let _ = writeln!(out, "  ok           {}", stats.ok);
    let failed = stats.failed_total() + invalid_lines;
    let _ = write!(out, "  failed       {failed}");
    if failed > 0 {
        let mut kinds: Vec<String> = stats
            .failed
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if invalid_lines > 0 {
            kinds.push(format!("invalid_input {invalid_lines}"));
        }
        let _ = write!(out, "  ({})", kinds.join(", "));
    }
    out.push('\n');
    for (i, (count, code, message)) in messages.top(3).into_iter().enumerate() {
        let label = if i == 0 { "most common" } else { "" };
        let _ = writeln!(out, "  {label:<12} {count}× {code}: {message}");
    }
    let _ = writeln!(
        out,
        "  attempts     {} ({} retries, {} rate-limited 429s)",
        stats.attempts, stats.retries, stats.rate_limited
    );
    let cached = if stats.cached_tokens > 0 {
        format!(" ({} cached)", stats.cached_tokens)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  tokens       {} prompt{cached} + {} completion",
        stats.prompt_tokens, stats.completion_tokens
    );
    let _ = writeln!(out, "  cost         {}", cost_words(stats, money));
    let _ = writeln!(
        out,
        "  wall time    {:.2} s  ({:.1} requests/s, {:.0} tokens/s)",
        secs,
        stats.finished() as f64 / secs,
        (stats.prompt_tokens + stats.completion_tokens) as f64 / secs
    );
    if stats.ok > 0 {
        let ms = |q: f64| stats.latency(q).as_secs_f64() * 1000.0;
        let _ = writeln!(
            out,
            "  latency      p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms",
            ms(0.5),
            ms(0.9),
            ms(0.99)
        );
    }
    out
}

/// One line per endpoint of several: its share of the successes, its failures and how
/// often it was taken out.
pub fn endpoints(split: &[sluice::fleet::EndpointStats]) -> String {
    let total: u64 = split.iter().map(|e| e.succeeded).sum::<u64>().max(1);
    let mut out = String::new();
    for (i, e) in split.iter().enumerate() {
        let label = if i == 0 { "endpoints" } else { "" };
        let mut line = format!(
            "  {label:<12} {}: {} ok ({:.0} %), {} failed attempts",
            e.name,
            e.succeeded,
            100.0 * e.succeeded as f64 / total as f64,
            e.failed
        );
        if e.ejections > 0 {
            let _ = write!(line, ", taken out {}×", e.ejections);
        }
        if e.ejected {
            line.push_str(" (out now)");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `$0.0123 (prices of 2025-08-20)`, what earlier runs spent, and what is unknown.
fn cost_words(stats: &Stats, money: Money<'_>) -> String {
    let dollars = crate::progress::dollars;
    let mut words = match stats.known_cost() {
        Some(c) => format!("{} (prices of {})", dollars(c), money.taken),
        None if stats.unpriced > 0 => {
            "unknown (the model has no price: add it with --prices)".to_owned()
        }
        None => "$0".to_owned(),
    };
    if stats.unpriced > 0 && stats.known_cost().is_some() {
        let _ = write!(
            words,
            "; {} results of models without a price not counted",
            stats.unpriced
        );
    }
    if let Some(e) = money.earlier.filter(|e| *e > 0.0) {
        let _ = write!(words, "; {} by earlier runs", dollars(e));
    }
    words
}
