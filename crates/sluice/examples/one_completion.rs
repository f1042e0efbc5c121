//! Pattern 1: one async completion, and its text.
//!
//! With `OPENAI_API_KEY` set (and `OPENAI_BASE_URL` for a compatible server) it asks that
//! server; without, it starts the built-in simulator in this process and says so.
//!
//! ```sh
//! cargo run -p sluice --example one_completion
//! ```

use serde_json::json;
use sluice::{ApiKey, Client, Request};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Either a real server from the environment, or the simulator (kept alive until the end).
    let (client, _sim) = match std::env::var("OPENAI_API_KEY") {
        Ok(key) => {
            let base = std::env::var("OPENAI_BASE_URL")
                .unwrap_or_else(|_| "https://api.openai.com/v1".to_owned());
            let client = Client::builder()
                .base_url(base)
                .api_key(ApiKey::new(key))
                .build()?;
            (client, None)
        }
        Err(_) => {
            let sim = sluice_sim::Sim::builder().build()?.spawn().await?;
            eprintln!(
                "no OPENAI_API_KEY: asking the built-in simulator at {}",
                sim.base_url()
            );
            (
                Client::builder().base_url(sim.base_url()).build()?,
                Some(sim),
            )
        }
    };

    let request = Request::chat(
        "hello-1",
        &json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "In one sentence: why is the sky blue?"}],
            "max_tokens": 60,
        }),
    );
    // Waits for admission, retries what is worth retrying, and returns the answer or a
    // classified error (`err.kind`).
    let answer = client.send(&request).await?;
    let text = answer.text().unwrap_or_default();
    println!("{text}");
    println!(
        "({} prompt + {} completion tokens)",
        answer.usage.prompt_tokens, answer.usage.completion_tokens
    );
    assert!(!text.is_empty(), "a chat answer has text");
    Ok(())
}
