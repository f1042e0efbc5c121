//! `sluice`: run large batches of LLM API requests as fast as the provider allows, and
//! never faster.
//!
//! The engine keeps within requests-per-minute and tokens-per-minute budgets
//! ([`Limits`]), pauses every worker on a 429, retries only what is worth retrying with
//! backoff, jitter and a budget ([`RetryPolicy`]), and reports what it does as [`Event`]s
//! instead of printing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::num::NonZeroU64;
//! use futures::StreamExt;
//! use sluice::{ApiKey, Client, Limits, Request};
//!
//! let client = Client::builder()
//!     .base_url("http://127.0.0.1:8080/v1")
//!     .api_key(ApiKey::new("sk-..."))
//!     .limits(Limits { rpm: NonZeroU64::new(500).into(), tpm: NonZeroU64::new(200_000).into(), ..Limits::default() })
//!     .build()?;
//! let body = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
//! let one = client.send(&Request::chat("r0", &body)).await?;
//! let requests = (1..100).map(move |i| Request::chat(format!("r{i}"), &body));
//! let mut results = client.run(futures::stream::iter(requests));
//! while let Some(result) = results.next().await {
//!     println!("{}: {}", result.custom_id, result.outcome.is_ok());
//! }
//! # Ok(()) }
//! ```

pub mod answer;
pub mod batch;
mod binding;
mod builder;
mod chat;
mod client;
pub mod cost;
mod describe;
pub mod durable;
mod engine;
pub mod error;
pub mod estimate;
pub mod events;
pub mod halt;
pub mod input;
pub mod journal;
pub mod limits;
mod outcome;
pub mod output;
mod priority;
pub mod redact;
mod request;
pub mod retry;
mod stats;
pub mod transport;
pub mod types;

pub use batch::{Batch, InOrder, Progress, Queue};
pub use binding::Binding;
pub use chat::Chat;
pub use client::{Client, ClientBuilder, Concurrency, EMBED_CHUNK, LimitsNow, RateNow};
pub use durable::{DurableOptions, DurableRun, RunControl};
pub use engine::BatchRun;
pub use error::{ConfigError, ErrorKind, RequestError};
pub use events::{Event, Observer};
pub use halt::{Halt, HaltReason, StopEarly};
pub use limits::Limits;
pub use outcome::{BatchResult, Reported, Success, Usage, parse_usage};
pub use priority::Priority;
pub use request::{Endpoint, Request};
pub use retry::{Backoff, RetryPolicy};
pub use stats::Stats;
pub use transport::{
    ApiKey, AuthStyle, CLIENT_REQUEST_ID, DEFAULT_MAX_RESPONSE_BYTES, TransportConfig,
    is_secret_header,
};
