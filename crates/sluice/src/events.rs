//! Events: the only way the engine tells the outside what it is doing. It never prints;
//! displays, logs and metrics subscribe to these.

use std::sync::Arc;
use std::time::Duration;

use crate::cost::CapStop;
use crate::error::ErrorKind;
use crate::halt::HaltReason;

/// Something the engine did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An attempt went out.
    Sent {
        /// The request.
        custom_id: &'a str,
        /// The request's tag.
        tag: u64,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// An attempt failed and will be retried after `delay`.
    Retrying {
        /// The request.
        custom_id: &'a str,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        kind: ErrorKind,
        /// When it goes again.
        delay: Duration,
    },
    /// A 429 paused admission for every request.
    Paused {
        /// For how long.
        duration: Duration,
    },
    /// A request finished, well or not.
    Finished {
        /// The request.
        custom_id: &'a str,
        /// The request's tag.
        tag: u64,
        /// `None` on success.
        error: Option<ErrorKind>,
    },
    /// The batch stopped by itself: it cannot succeed as configured (see
    /// [`crate::halt`]). Requests not finished stay pending.
    Halted {
        /// Why.
        reason: HaltReason,
    },
    /// The spend cap stopped admission (see [`crate::cost::SpendCap`]): requests in
    /// flight finish, the rest stay pending.
    CapReached {
        /// Why.
        stop: &'a CapStop,
    },
}

/// A subscriber to events. Called on the engine's task: keep it quick (count, or forward
/// to a channel).
pub type Observer = Arc<dyn Fn(&Event<'_>) + Send + Sync>;
