//! What every example shares: the server to talk to. With `OPENAI_API_KEY` set (and
//! `OPENAI_BASE_URL` for a compatible server) it is that server; without, the built-in
//! simulator starts in this process on 127.0.0.1, configured as the example needs, and the
//! example says so. Run as a test (`cargo test`), an example talks to the simulator in
//! memory on a paused clock, so its waits take no real time.

#![allow(dead_code)] // each example uses its share

// The engine tests' helpers: the in-memory simulator as a client's transport.
#[path = "../../tests/common/mod.rs"]
mod common;

use sluice::{Client, ClientBuilder};
use sluice_sim::{InMemorySim, SimBuilder, SimHandle, SimStats};

/// An example's error type: anything, with its message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The simulator an example talks to.
pub enum Sim {
    /// Serving on 127.0.0.1.
    Http(SimHandle),
    /// In memory (under `cargo test`).
    Memory(InMemorySim),
}

impl Sim {
    /// Its statistics so far.
    pub fn stats(&self) -> SimStats {
        match self {
            Sim::Http(h) => h.stats(),
            Sim::Memory(m) => m.stats(),
        }
    }
}

/// A client builder for the real server, or for a simulator built from `sim` (returned,
/// to keep it alive and read its statistics).
pub async fn connect(sim: SimBuilder) -> Result<(ClientBuilder, Option<Sim>), Error> {
    if cfg!(test) {
        let sim = sim.build()?.in_memory();
        let builder = common::in_memory(&sim);
        return Ok((builder, Some(Sim::Memory(sim))));
    }
    if std::env::var_os("OPENAI_API_KEY").is_some() {
        return Ok((Client::builder().from_env()?, None));
    }
    let sim = sim.build()?.spawn().await?;
    eprintln!(
        "(no OPENAI_API_KEY: talking to the built-in simulator at {})",
        sim.base_url()
    );
    Ok((
        Client::builder().base_url(sim.base_url()),
        Some(Sim::Http(sim)),
    ))
}

/// Arrival times at the simulator, in seconds from its start, sorted.
pub fn arrivals(sim: &Sim) -> Vec<f64> {
    common::sorted_arrivals(sim.stats(), |_| true)
}

/// The most of `times` (seconds) within any `window` seconds.
pub fn most_in_any_window(times: &[f64], window: f64) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}
