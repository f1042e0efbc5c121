//! Pattern 7: a batch with a concurrency cap and a progress callback (done, total).
//!
//! ```sh
//! cargo run -p sluice --example progress
//! ```

mod support;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sluice_sim::{Latency, Sim};

async fn run() -> Result<(), support::Error> {
    let (builder, sim) = support::connect(Sim::builder().latency(Latency {
        ttft: Duration::from_millis(20),
        per_token: Duration::ZERO,
        jitter: 0.5,
    }))
    .await?;
    // At most 8 requests in flight at once.
    let client = builder.concurrency(NonZeroUsize::new(8).unwrap()).build()?;

    let total = 60;
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = reports.clone();
    let requests: Vec<_> = (0..total)
        .map(|i| {
            client
                .chat("gpt-4o-mini")
                .user(format!("summarise item {i}"))
                .max_tokens(10)
                .request()
        })
        .collect();
    let results: Vec<_> = client
        .batch(futures::stream::iter(requests))
        .total(total)
        .on_progress(move |p| {
            if p.done % 10 == 0 {
                println!("{}/{}", p.done, p.total.unwrap_or(0));
            }
            seen.lock().unwrap().push(p.done);
        })
        .start()
        .collect()
        .await;

    assert_eq!(results.len() as u64, total);
    let reports = reports.lock().unwrap();
    assert_eq!(
        *reports,
        (1..=total).collect::<Vec<_>>(),
        "one report per result, in order"
    );
    if let Some(sim) = sim {
        let most = sim.stats().max_in_flight;
        println!("at most {most} requests were in flight at once");
        assert!(most <= 8, "{most} in flight");
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
