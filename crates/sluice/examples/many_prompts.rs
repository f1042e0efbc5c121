//! Pattern 2: many prompts in parallel; each result is a response or an error kept beside
//! its prompt, in input order. One bad item never fails the others.
//!
//! ```sh
//! cargo run -p sluice --example many_prompts
//! ```

mod support;

use std::num::NonZeroUsize;

use futures::StreamExt;
use sluice::Request;
use sluice_sim::{Fault, Sim};

async fn run() -> Result<(), support::Error> {
    // The simulator refuses one request in ten as malformed, to show per-item errors.
    let (builder, sim) =
        support::connect(Sim::builder().fault(Fault::BadRequest, 0.1).seed(3)).await?;
    let client = builder
        .concurrency(NonZeroUsize::new(16).unwrap())
        .build()?;

    let prompts: Vec<String> = (1..=50).map(|i| format!("What is {i} squared?")).collect();
    let requests = prompts.iter().enumerate().map(|(i, prompt)| {
        client
            .chat("gpt-4o-mini")
            .user(prompt.as_str())
            .max_tokens(20)
            .id(format!("q{i}"))
            .request()
    });
    // In input order, holding at most 32 results that finished early.
    let mut results = client
        .batch(futures::stream::iter(requests.collect::<Vec<Request>>()))
        .in_order(NonZeroUsize::new(32).unwrap());

    let mut rows = Vec::new();
    while let Some(result) = results.next().await {
        rows.push((
            result.custom_id.clone(),
            result.outcome.map(|s| s.text().unwrap_or_default()),
        ));
    }
    for ((id, outcome), prompt) in rows.iter().zip(&prompts) {
        match outcome {
            Ok(text) => println!(
                "{id} {prompt} -> {}",
                text.chars().take(40).collect::<String>()
            ),
            Err(e) => println!("{id} {prompt} -> error {}: {}", e.kind, e.message),
        }
    }
    assert_eq!(rows.len(), prompts.len(), "one result per prompt");
    for (i, (id, _)) in rows.iter().enumerate() {
        assert_eq!(id, &format!("q{i}"), "input order");
    }
    if let Some(sim) = sim {
        let errors = rows.iter().filter(|(_, o)| o.is_err()).count() as u64;
        assert!(errors > 0, "the simulator refused some");
        assert_eq!(
            errors,
            sim.stats().fault(Fault::BadRequest),
            "each refusal kept beside its prompt"
        );
        assert_eq!(
            sim.stats().received,
            prompts.len() as u64,
            "a 400 is not retried"
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
