//! Pattern 3: a client with a requests-per-minute and a tokens-per-minute budget. sluice
//! paces admission to both (estimating each request's tokens before it goes), so a
//! server with those limits never has to refuse.
//!
//! ```sh
//! cargo run -p sluice --example rate_limits
//! ```

mod support;

use std::num::NonZeroU64;

use futures::StreamExt;
use sluice::Limits;
use sluice_sim::Sim;

async fn run() -> Result<(), support::Error> {
    let (rpm, tpm) = (1_200, 60_000);
    // The simulator enforces the same limits, and answers 429 to anything over them.
    let (builder, sim) = support::connect(
        Sim::builder()
            .rpm(NonZeroU64::new(rpm))
            .tpm(NonZeroU64::new(tpm)),
    )
    .await?;
    let client = builder
        .limits(Limits {
            rpm: NonZeroU64::new(rpm).into(),
            tpm: NonZeroU64::new(tpm).into(),
            ..Limits::default()
        })
        .build()?;

    let started = tokio::time::Instant::now();
    let requests: Vec<_> = (0..40)
        .map(|i| {
            client
                .chat("gpt-4o-mini")
                .user(format!("Tell me fact number {i} about otters."))
                .max_tokens(30)
                .request()
        })
        .collect();
    let results: Vec<_> = client.run(futures::stream::iter(requests)).collect().await;
    let stats = client.stats();
    println!(
        "{} requests in {:.1} s, {} tokens, {} refused by the server",
        results.len(),
        started.elapsed().as_secs_f64(),
        stats.total_tokens(),
        stats.rate_limited
    );
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    if let Some(sim) = sim {
        let s = sim.stats();
        assert_eq!(s.total_429(), 0, "kept within both limits");
        assert!(
            s.peak.requests_60s <= rpm && s.peak.tokens_60s <= tpm,
            "{:?}",
            s.peak
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
