//! `sluice-sim`: an OpenAI-compatible API simulator for rehearsing and testing batches.
//!
//! It serves `/v1/chat/completions` (plain and streamed), `/v1/completions`,
//! `/v1/embeddings`, `/v1/responses` and `/v1/models`, with:
//! - rate limits counted the way OpenAI counts them ([`RateLimits`]), the `x-ratelimit-*`
//!   headers, and 429s with `retry-after`;
//! - a latency model ([`Latency`]) and a capacity model of a self-hosted server;
//! - fault injection with a fixed seed ([`Fault`]);
//! - replies derived from the request ([`content`]) so a client's results can be checked;
//! - statistics ([`SimStats`]) at `GET /sim/stats` and through [`SimHandle::stats`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::num::NonZeroU64;
//! let sim = sluice_sim::Sim::builder()
//!     .rpm(NonZeroU64::new(600))
//!     .fault(sluice_sim::Fault::Status(503), 0.01)
//!     .seed(7)
//!     .build()
//!     .expect("valid configuration");
//! let handle = sim.spawn().await?; // 127.0.0.1 on a free port
//! // ... point a client at handle.base_url() ...
//! assert_eq!(handle.stats().total_429(), 0);
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod config;
pub mod content;
mod duration_fmt;
mod faults;
mod in_memory;
mod limiter;
mod server;
mod state;
mod stats;
pub mod tokens;

pub use api::CLIENT_REQUEST_ID;
pub use config::{
    ConfigError, FaultSpec, Latency, ModelPolicy, QuotaMode, RateLimits, SimBuilder, SimConfig,
    Window,
};
pub use duration_fmt::format_reset;
pub use faults::{Fault, FaultPlan, FaultWindow};
pub use in_memory::{IN_MEMORY_BASE_URL, InMemoryError, InMemorySim};
pub use limiter::{BudgetView, Decision, LimitChange, LimitKind, LimitView, Limiter};
pub use server::{Sim, SimHandle};
pub use stats::{PeakWindows, SimStats};
