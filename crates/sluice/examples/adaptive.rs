//! Pattern 6: an adaptive client whose rate rises on success and falls on rate-limit
//! errors. With `rpm_auto`, sluice searches for a limit nobody told it: the rate doubles
//! each second until the first 429, drops, then creeps up again (AIMD), never storming
//! the server.
//!
//! `sluice::limits::AdaptivePacer` is the same controller around any other operation.
//!
//! ```sh
//! cargo run -p sluice --example adaptive
//! ```

mod support;

use std::num::{NonZeroU64, NonZeroUsize};

use futures::StreamExt;
use sluice::Limits;
use sluice_sim::{Latency, Sim};

async fn run() -> Result<(), support::Error> {
    // A hidden limit of 3,000 a minute (50 a second) and no rate-limit headers to read.
    let (builder, sim) = support::connect(
        Sim::builder()
            .rpm(NonZeroU64::new(3_000))
            .send_headers(false)
            .latency(Latency {
                ttft: std::time::Duration::from_millis(5),
                per_token: std::time::Duration::ZERO,
                jitter: 0.3,
            }),
    )
    .await?;
    let client = builder
        .concurrency(NonZeroUsize::new(32).unwrap())
        .limits(Limits {
            rpm: sluice::limits::Budget::auto(),
            ..Limits::default()
        })
        .build()?;

    let requests = (0..200).map(|i| {
        client
            .chat("gpt-4o-mini")
            .user(format!("item {i}"))
            .max_tokens(5)
            .request()
    });
    let mut run = client.run(futures::stream::iter(requests.collect::<Vec<_>>()));
    let mut done = 0;
    while let Some(result) = run.next().await {
        assert!(result.outcome.is_ok());
        done += 1;
        if done % 50 == 0 {
            let now = client.limits_now();
            println!(
                "{done} done; admitting {:.0} requests a minute",
                now.requests.rate.unwrap_or_default()
            );
        }
    }
    let stats = client.stats();
    println!(
        "{} refusals met on the way ({} requests)",
        stats.rate_limited, stats.ok
    );
    assert_eq!(stats.ok, 200);
    if let Some(sim) = sim {
        let s = sim.stats();
        assert!(s.total_429() > 0, "the search met the limit");
        assert!(
            (s.total_429() as f64) < 0.1 * s.received as f64,
            "{} refusals of {}: the rate fell back after them",
            s.total_429(),
            s.received
        );
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
