//! `sluice`: run large batches of LLM API requests as fast as the provider allows, and
//! never faster.
//!
//! One engine does the work for a single call, a batch of millions, a queue of calls from
//! many tasks and a durable file run: it keeps within requests-per-minute and
//! tokens-per-minute budgets ([`Limits`]), pauses every worker when the server says 429,
//! finds limits nobody told it, retries only what is worth retrying with backoff, jitter
//! and a budget ([`RetryPolicy`]), orders waiting work by [`Priority`], counts tokens and
//! cost ([`Stats`]), and reports what it does as [`Event`]s instead of printing. The
//! library never prints and never panics on what a server or an input says.
//!
//! # Quick start
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use sluice::{Client, Limits, limits::Budget};
//!
//! // OPENAI_API_KEY, and OPENAI_BASE_URL for a compatible server, as the OpenAI SDKs read them.
//! let client = Client::builder()
//!     .from_env()?
//!     .limits(Limits { rpm: Budget::per_minute(500), tpm: Budget::per_minute(200_000), ..Limits::default() })
//!     .build()?;
//!
//! // One call.
//! let text = client.chat("gpt-4o-mini").user("Why is the sky blue?").max_tokens(60).send().await?.text();
//!
//! // Many, in parallel within the limits, results in input order, each a success or an error.
//! let requests: Vec<_> = (0..1000)
//!     .map(|i| client.chat("gpt-4o-mini").user(format!("Summarise item {i}")).request())
//!     .collect();
//! let mut results = client
//!     .batch(futures::stream::iter(requests))
//!     .on_progress(|p| eprintln!("{} done", p.done))
//!     .in_order(std::num::NonZeroUsize::new(256).unwrap());
//! while let Some(result) = results.next().await {
//!     match result.outcome {
//!         Ok(answer) => println!("{}: {}", result.custom_id, answer.text().unwrap_or_default()),
//!         Err(e) => println!("{}: {} ({})", result.custom_id, e.kind, e.message),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Patterns and their examples
//!
//! Each is a short program in `crates/sluice/examples/`, run with `cargo run -p sluice
//! --example NAME` (against `OPENAI_API_KEY`'s server, or the built-in simulator without
//! one) and run by `cargo test`, asserting what it shows.
//!
//! | Pattern | How | Example |
//! |---|---|---|
//! | One async completion | [`Client::chat`], [`Chat::send`] | `one_completion` |
//! | Many prompts in parallel, errors beside their prompts, input order | [`Client::batch`], [`Batch::in_order`] | `many_prompts` |
//! | Requests-per-minute and tokens-per-minute budgets | [`Limits`], [`limits::Budget`] | `rate_limits` |
//! | N requests per sliding window, around any call | [`limits::Pacer::window`] | `sliding_window` |
//! | Backoff with jitter around any async operation | [`retry::with_backoff`], [`Backoff`] | `backoff` |
//! | A rate that rises on success and falls on 429s | [`limits::Budget::Auto`], [`limits::AdaptivePacer`] | `adaptive` |
//! | A concurrency cap and a progress callback | [`ClientBuilder::concurrency`], [`Batch::on_progress`] | `progress` |
//! | A priority queue: submit and await | [`Client::queue`], [`Priority`] | `priority_queue` |
//! | A session with statistics, per-request timeout, per-item errors | [`Client::stats`], [`Stats`], [`ClientBuilder::timeout`] | `session` |
//! | All of it: priorities, adaptive limits, backoff, progress, cancellation, bounded memory | [`Batch::cancel_on`], [`Batch::in_order`] | `full` |
//! | A resumable file run, exactly one result per line | [`DurableRun`] | (the CLI's `sluice run`) |
//! | Anthropic's Messages API, Azure deployments | [`ClientBuilder::provider`], [`Provider`], [`Endpoint::Messages`] | (tests/providers.rs) |
//! | Several endpoints as one, each with its own limits | [`ClientBuilder::endpoints`], [`fleet`] | (tests/fleet.rs) |
//!
//! # Where things are
//!
//! - [`Client`] and [`ClientBuilder`]: the face; [`types`] for typed bodies, or
//!   [`Request::json`] / [`Success::json`] with your own.
//! - The engine (private) runs every request through the same stages: the gate
//!   (admission, [`limits`]), the attempt ([`transport`]), and settle ([`retry`]).
//! - [`Provider`]: the dialect a server speaks (OpenAI, Anthropic, Azure): URLs, key
//!   header, required headers; answers of every dialect are read without one.
//! - [`fleet`]: several endpoints behind one client, routed by model and free capacity.
//! - [`transport::HttpService`]: the seam under the engine, for an in-memory server in
//!   tests (run them on a paused `tokio::time` clock: they take milliseconds).
//! - [`durable`], [`journal`], [`input`], [`output`]: file runs that survive crashes.
//! - [`cost`]: prices and spend caps; [`estimate`]: token counts before sending.

#![warn(missing_docs)]

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
pub mod fleet;
pub mod halt;
mod head;
pub mod input;
pub mod journal;
mod json_text;
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
    ANTHROPIC_VERSION, ApiKey, AuthStyle, CLIENT_REQUEST_ID, DEFAULT_MAX_RESPONSE_BYTES, Provider,
    is_secret_header,
};
