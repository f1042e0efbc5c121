//! What holds a batch back right now: the answer to "why is it not faster?". The
//! scheduler records it after every dispatch round (one relaxed store); displays sample it.

use std::sync::atomic::{AtomicU8, Ordering};

/// What admission is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
pub enum Binding {
    /// Nothing has been asked yet, or the batch is over.
    Idle = 0,
    /// The input: nothing is ready to send.
    Input = 1,
    /// The requests-per-minute budget.
    Requests = 2,
    /// The tokens-per-minute budget.
    Tokens = 3,
    /// A pause after the server refused (429 or 529).
    Paused = 4,
    /// The concurrency limit: every permit is in use.
    Concurrency = 5,
    /// Retries waiting for their backoff (or the retry budget).
    Retries = 6,
    /// The server: everything is sent, the answers are awaited.
    Server = 7,
    /// The input-tokens-per-minute budget.
    InputTokens = 8,
    /// The output-tokens-per-minute budget.
    OutputTokens = 9,
}

impl Binding {
    /// Every value, in order.
    pub const ALL: [Binding; 10] = [
        Binding::Idle,
        Binding::Input,
        Binding::Requests,
        Binding::Tokens,
        Binding::Paused,
        Binding::Concurrency,
        Binding::Retries,
        Binding::Server,
        Binding::InputTokens,
        Binding::OutputTokens,
    ];

    /// A stable name, for machines.
    pub const fn code(self) -> &'static str {
        match self {
            Binding::Idle => "idle",
            Binding::Input => "input",
            Binding::Requests => "requests_per_minute",
            Binding::Tokens => "tokens_per_minute",
            Binding::Paused => "rate_limit_pause",
            Binding::Concurrency => "concurrency",
            Binding::Retries => "retries",
            Binding::Server => "server",
            Binding::InputTokens => "input_tokens_per_minute",
            Binding::OutputTokens => "output_tokens_per_minute",
        }
    }

    /// Words for people.
    pub const fn describe(self) -> &'static str {
        match self {
            Binding::Idle => "nothing",
            Binding::Input => "the input (nothing to send)",
            Binding::Requests => "the requests-per-minute budget",
            Binding::Tokens => "the tokens-per-minute budget",
            Binding::Paused => "a pause the server asked for",
            Binding::Concurrency => "the concurrency limit",
            Binding::Retries => "retries waiting their turn",
            Binding::Server => "the server (answers awaited)",
            Binding::InputTokens => "the input-tokens-per-minute budget",
            Binding::OutputTokens => "the output-tokens-per-minute budget",
        }
    }

    fn from_u8(v: u8) -> Binding {
        Binding::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(Binding::Idle)
    }
}

/// The binding, shared between the scheduler and whoever samples it.
#[derive(Debug, Default)]
pub(crate) struct SharedBinding(AtomicU8);

impl SharedBinding {
    pub(crate) fn set(&self, b: Binding) {
        self.0.store(b as u8, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Binding {
        Binding::from_u8(self.0.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_value() {
        let shared = SharedBinding::default();
        assert_eq!(shared.get(), Binding::Idle);
        for b in Binding::ALL {
            shared.set(b);
            assert_eq!(shared.get(), b);
        }
    }
}
