//! Pattern 1: one async completion, and its text.
//!
//! ```sh
//! cargo run -p sluice --example one_completion
//! ```

mod support;

async fn run() -> Result<(), support::Error> {
    let (builder, _sim) = support::connect(sluice_sim::Sim::builder()).await?;
    let client = builder.build()?;

    // Waits for admission, retries what is worth retrying, and returns the answer or a
    // classified error (`err.kind`).
    let answer = client
        .chat("gpt-4o-mini")
        .user("In one sentence: why is the sky blue?")
        .max_tokens(60)
        .send()
        .await?;
    let text = answer.text().unwrap_or_default();
    println!("{text}");
    println!(
        "({} prompt + {} completion tokens)",
        answer.usage.prompt_tokens, answer.usage.completion_tokens
    );
    assert!(!text.is_empty(), "a chat answer has text");
    assert!(answer.usage.prompt_tokens > 0);
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
