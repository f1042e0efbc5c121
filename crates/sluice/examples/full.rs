//! Pattern 10: everything together. A lazily generated input (bounded memory however many
//! prompts), a few urgent ones at high priority, an unknown rate limit found adaptively,
//! retries with backoff and jitter, live progress, results in input order, a graceful
//! stop on Ctrl-C (the batch stops admitting, what is in flight finishes and is written),
//! and the session's statistics at the end.
//!
//! On the simulator it stops itself after 250 results, as a Ctrl-C would, to show the
//! graceful stop.
//!
//! ```sh
//! cargo run -p sluice --example full
//! ```

mod support;

use std::io::Write;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use futures::StreamExt;
use sluice::retry::Backoff;
use sluice::{Limits, Priority, RetryPolicy};
use sluice_sim::{Fault, Latency, Sim};
use tokio_util::sync::CancellationToken;

const PROMPTS: u64 = 400;

async fn run() -> Result<(), support::Error> {
    let (builder, sim) = support::connect(
        Sim::builder()
            .rpm(NonZeroU64::new(9_000)) // hidden: found by the client
            .send_headers(false)
            .latency(Latency {
                ttft: Duration::from_millis(15),
                per_token: Duration::ZERO,
                jitter: 0.8,
            })
            .fault(Fault::Status(503), 0.03)
            .seed(21),
    )
    .await?;
    let client = builder
        .concurrency(NonZeroUsize::new(32).unwrap())
        .limits(Limits {
            rpm: sluice::limits::Budget::auto(),
            ..Limits::default()
        })
        .retry(RetryPolicy {
            max_attempts: NonZeroU32::new(6).unwrap(),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2))?
                .with_jitter(true),
            ..RetryPolicy::default()
        })
        .build()?;

    // Ctrl-C stops admitting; a second Ctrl-C is the default (exit at once).
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping: finishing what is in flight");
            on_signal.cancel();
        }
    });

    // Generated as the batch pulls it: nothing is held but the window.
    let chats = client.clone();
    let prompts = futures::stream::iter(0..PROMPTS).map(move |i| {
        let urgent = i % 50 == 7;
        chats
            .chat("gpt-4o-mini")
            .user(format!("Write one line about item {i}."))
            .max_tokens(16)
            .id(format!("item-{i}"))
            .priority(if urgent {
                Priority::High
            } else {
                Priority::Normal
            })
            .request()
    });
    let mut results = client
        .batch(prompts)
        .total(PROMPTS)
        .cancel_on(stop.clone())
        .on_progress(|p| {
            if p.done % 50 == 0 {
                eprintln!(
                    "progress: {}/{} ({} failed)",
                    p.done,
                    p.total.unwrap_or(0),
                    p.failed
                );
            }
        })
        .in_order(NonZeroUsize::new(128).unwrap());

    // Results in input order, each written as it comes.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut written = 0u64;
    let mut previous: Option<u64> = None;
    while let Some(result) = results.next().await {
        let n: u64 = result.custom_id["item-".len()..].parse()?;
        assert!(previous.is_none_or(|p| p < n), "input order");
        previous = Some(n);
        match &result.outcome {
            Ok(answer) => writeln!(
                out,
                "{}\t{}",
                result.custom_id,
                answer.text().unwrap_or_default()
            )?,
            Err(e) => writeln!(out, "{}\terror {}: {}", result.custom_id, e.kind, e.message)?,
        }
        written += 1;
        if sim.is_some() && written == 250 {
            stop.cancel(); // what a Ctrl-C does
        }
    }
    out.flush()?;
    drop(out);

    let stats = client.stats();
    eprintln!(
        "{} written; {} ok, {} failed, {} retries ({} rate-limited), {} tokens, mean latency {:.0} ms, success rate {:.1} %",
        written,
        stats.ok,
        stats.failed_total(),
        stats.retries,
        stats.rate_limited,
        stats.total_tokens(),
        stats.latency_mean().as_secs_f64() * 1000.0,
        stats.success_rate() * 100.0
    );
    assert_eq!(written, stats.finished(), "every finished request written");
    if let Some(sim) = sim {
        assert!(
            (250..PROMPTS).contains(&written),
            "stopped gracefully after 250: {written}"
        );
        let s = sim.stats();
        // The server saw exactly the attempts the client counted.
        assert_eq!(s.received, stats.attempts);
        assert!(stats.retries > 0, "the 503s and 429s were retried");
        assert!(results.held() == 0);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), support::Error> {
    run().await
}

/// In `cargo test`: against the simulator in memory, on a paused clock.
#[tokio::test(start_paused = true)]
async fn runs_against_the_simulator() {
    run().await.unwrap();
}
