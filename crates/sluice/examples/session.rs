//! Pattern 9: a session as a scoped resource with statistics (requests, successes,
//! failures, total tokens, average latency, success rate), a per-request timeout, and a
//! batch whose items fail one by one without failing the batch.
//!
//! The client is the session: everything sent through it (and its clones) counts in one
//! set of statistics and shares one connection pool; dropping the last clone closes it.
//!
//! ```sh
//! cargo run -p sluice --example session
//! ```

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use futures::StreamExt;
use sluice::{ErrorKind, RetryPolicy, Stats};
use sluice_sim::{Fault, Sim};

/// Runs one session and returns its statistics; the client (and its connections) end with
/// this function, whether it returns early with an error or not.
async fn session() -> Result<Stats, support::Error> {
    // One request in ten hangs; the timeout cuts it off.
    let (builder, sim) = support::connect(Sim::builder().fault(Fault::Hang, 0.1).seed(12)).await?;
    let client = builder
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy {
            max_attempts: NonZeroU32::new(1).unwrap(),
            ..RetryPolicy::default()
        })
        .build()?;

    let requests: Vec<_> = (0..30)
        .map(|i| {
            client
                .chat("gpt-4o-mini")
                .user(format!("short answer {i}"))
                .max_tokens(8)
                .request()
        })
        .collect();
    let mut results = client.run(futures::stream::iter(requests));
    let mut timed_out = 0;
    while let Some(result) = results.next().await {
        if let Err(e) = &result.outcome {
            assert_eq!(e.kind, ErrorKind::Timeout);
            timed_out += 1;
        }
    }
    let stats = client.stats();
    if let Some(sim) = &sim {
        assert_eq!(
            timed_out,
            sim.stats().fault(Fault::Hang),
            "each hang timed out, alone"
        );
        assert!(timed_out > 0);
    }
    Ok(stats)
}

async fn run() -> Result<(), support::Error> {
    let stats = session().await?;
    println!(
        "requests {}, successes {}, failures {}, tokens {}, average latency {:.1} ms, success rate {:.0} %",
        stats.finished(),
        stats.ok,
        stats.failed_total(),
        stats.total_tokens(),
        stats.latency_mean().as_secs_f64() * 1000.0,
        stats.success_rate() * 100.0
    );
    assert_eq!(stats.finished(), 30);
    assert_eq!(stats.ok + stats.failed_total(), 30);
    assert!(stats.total_tokens() > 0);
    assert!((stats.success_rate() - stats.ok as f64 / 30.0).abs() < 1e-9);
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
