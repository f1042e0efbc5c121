//! Pattern 8: a priority queue. Submit with high, normal or low priority from anywhere and
//! await the result; what waits in the queue goes out high first, first come first served
//! within a priority (`client.queue()`; clones of a queue share it).
//!
//! ```sh
//! cargo run -p sluice --example priority_queue
//! ```

mod support;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice::Priority;
use sluice_sim::{Latency, Sim};

async fn run() -> Result<(), support::Error> {
    let (builder, sim) = support::connect(Sim::builder().latency(Latency {
        ttft: Duration::from_millis(10),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }))
    .await?;
    // One at a time, so the queue decides the whole order.
    let client = builder.concurrency(NonZeroUsize::new(1).unwrap()).build()?;

    let queue = client.queue();
    let order = Arc::new(Mutex::new(Vec::new()));
    // Twelve calls submitted at once, a third at each priority; each awaits its own answer.
    let calls = (0..12).map(|i| {
        let priority = [Priority::Low, Priority::Normal, Priority::High][i % 3];
        let (client, queue, order) = (&client, &queue, order.clone());
        async move {
            let answer = client
                .chat("gpt-4o-mini")
                .user(format!("job {i}"))
                .max_tokens(5)
                .priority(priority)
                .submit(queue)
                .await;
            order.lock().unwrap().push((i, priority));
            answer.map(|a| a.text())
        }
    });
    for answer in futures::future::join_all(calls).await {
        answer?;
    }
    let order = order.lock().unwrap().clone();
    println!("finished in order: {order:?}");
    // The first went out before the others were queued; after it, high, normal, low.
    let rest: Vec<Priority> = order[1..].iter().map(|(_, p)| *p).collect();
    let mut by_priority = rest.clone();
    by_priority.sort_by(|a, b| b.cmp(a));
    assert_eq!(rest, by_priority, "higher priorities first");
    for level in [Priority::High, Priority::Normal, Priority::Low] {
        let jobs: Vec<usize> = order[1..]
            .iter()
            .filter(|(_, p)| *p == level)
            .map(|(i, _)| *i)
            .collect();
        assert!(jobs.is_sorted(), "{level:?} in submission order: {jobs:?}");
    }
    drop(sim);
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
