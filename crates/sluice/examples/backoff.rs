//! Pattern 5: exponential backoff with jitter around any async operation, retrying only
//! retryable errors: `sluice::retry::with_backoff` with an initial delay, a maximum, a
//! growth factor, a number of attempts and jitter on or off.
//!
//! Here it wraps a sluice call whose own retries are turned off, to show the mechanism
//! alone; normally the client's retry policy does this for every request.
//!
//! ```sh
//! cargo run -p sluice --example backoff
//! ```

mod support;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use sluice::retry::{Backoff, with_backoff};
use sluice::{RequestError, RetryPolicy};
use sluice_sim::{Fault, Sim};

async fn run() -> Result<(), support::Error> {
    // Half the answers are 503s (retryable); a few are 400s (never worth retrying).
    let (builder, sim) = support::connect(
        Sim::builder()
            .fault(Fault::Status(503), 0.5)
            .fault(Fault::BadRequest, 0.05)
            .seed(8),
    )
    .await?;
    let one_try = RetryPolicy {
        max_attempts: NonZeroU32::new(1).unwrap(),
        ..RetryPolicy::default()
    };
    let client = builder.retry(one_try).build()?;

    let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(400))?
        .with_factor(2.0)
        .with_jitter(true);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let tries = AtomicU32::new(0);
    let (mut ok, mut permanent) = (0, 0);
    for i in 0..20 {
        let outcome = with_backoff(
            &backoff,
            NonZeroU32::new(8).unwrap(),
            &mut rng,
            |e: &RequestError| e.kind.is_retryable(),
            || {
                tries.fetch_add(1, Ordering::Relaxed);
                client
                    .chat("gpt-4o-mini")
                    .user(format!("question {i}"))
                    .max_tokens(5)
                    .send()
            },
        )
        .await;
        match outcome {
            Ok(_) => ok += 1,
            Err(e) => {
                println!(
                    "question {i}: {} (not retried: {})",
                    e.kind,
                    !e.kind.is_retryable()
                );
                permanent += 1;
            }
        }
    }
    let tries = tries.load(Ordering::Relaxed);
    println!("{ok} answered, {permanent} refused for good, {tries} tries in all");
    assert_eq!(ok + permanent, 20);
    if let Some(sim) = sim {
        let s = sim.stats();
        assert!(
            s.fault(Fault::Status(503)) > 0 && tries > 20,
            "503s were retried"
        );
        assert_eq!(
            permanent as u64,
            s.fault(Fault::BadRequest),
            "only 400s failed for good"
        );
        assert_eq!(s.received, u64::from(tries));
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
