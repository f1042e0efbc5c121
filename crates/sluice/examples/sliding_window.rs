//! Pattern 4: a sliding window: at most N requests in any window of T, around any call.
//! `sluice::limits::Pacer::window` keeps an exact log of the last N; calls wait their turn
//! in order.
//!
//! ```sh
//! cargo run -p sluice --example sliding_window
//! ```

mod support;

use std::num::NonZeroUsize;
use std::time::Duration;

use sluice::limits::Pacer;
use sluice_sim::Sim;

async fn run() -> Result<(), support::Error> {
    let (builder, sim) = support::connect(Sim::builder()).await?;
    let client = builder.build()?;
    // 10 requests in any second.
    let window = Pacer::window(NonZeroUsize::new(10).unwrap(), Duration::from_secs(1));

    let start = tokio::time::Instant::now();
    let calls = (0..25).map(|i| {
        let (client, window) = (&client, &window);
        async move {
            let waited = window.acquire().await;
            if !waited.is_zero() {
                println!("request {i} waited {:.2} s", waited.as_secs_f64());
            }
            let went = start.elapsed().as_secs_f64();
            let answer = client
                .chat("gpt-4o-mini")
                .user(format!("ping {i}"))
                .max_tokens(5)
                .send()
                .await;
            answer.map(|_| went)
        }
    });
    let mut went = Vec::new();
    for result in futures::future::join_all(calls).await {
        went.push(result?);
    }
    went.sort_by(f64::total_cmp);
    let most = support::most_in_any_window(&went, 1.0);
    println!("at most {most} requests went in any second");
    assert!(most <= 10, "{most} in one second");
    assert!(went[24] >= 2.0, "25 at 10 a second take two seconds");
    if let Some(sim) = sim {
        // At the server, arrivals carry network and scheduling delay on top.
        let at_server = support::most_in_any_window(&support::arrivals(&sim), 1.0);
        println!("at most {at_server} reached the server in any second");
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
