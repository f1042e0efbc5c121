//! Whether an endpoint is fit to send to: after [`EJECT_AFTER`] failures in a row that say
//! the endpoint is unwell (not the request), it is out for a cool-down that doubles with
//! each ejection (10 s, 20 s, ... at most 5 minutes); then it gets requests again, and one
//! success makes it healthy.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::ErrorKind;

/// Failures in a row that take an endpoint out.
pub const EJECT_AFTER: u32 = 5;
/// The first cool-down.
const FIRST_COOL_DOWN: Duration = Duration::from_secs(10);
/// The longest cool-down.
const MAX_COOL_DOWN: Duration = Duration::from_secs(300);

/// Whether a failure of `kind` (with `status`) is the endpoint's rather than the request's:
/// no connection, no answer in time, a broken answer, a server error, or a refusal of the
/// key, the model or the account there. Another endpoint may well succeed.
pub fn is_endpoint_failure(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::Transport
            | ErrorKind::Server
            | ErrorKind::MalformedResponse
            | ErrorKind::Auth
            | ErrorKind::NotFound
            | ErrorKind::PaymentRequired
            | ErrorKind::InsufficientQuota
            | ErrorKind::Redirect
    )
}

/// Whether a final failure of `kind` at one endpoint should be tried at another instead.
pub fn worth_another_endpoint(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Auth
            | ErrorKind::NotFound
            | ErrorKind::PaymentRequired
            | ErrorKind::InsufficientQuota
            | ErrorKind::Redirect
    )
}

/// One endpoint's health.
#[derive(Debug, Default)]
pub struct Health {
    failures_in_a_row: u32,
    out_until: Option<Instant>,
    /// Times taken out.
    pub ejections: u32,
}

impl Health {
    /// Whether it may be sent to at `now`.
    pub fn available(&self, now: Instant) -> bool {
        self.out_until.is_none_or(|t| now >= t)
    }

    /// When it comes back, if it is out at `now`.
    pub fn back_at(&self, now: Instant) -> Option<Instant> {
        self.out_until.filter(|&t| t > now)
    }

    /// A success: healthy again.
    pub fn on_success(&mut self) {
        self.failures_in_a_row = 0;
        self.out_until = None;
    }

    /// A failure that is the endpoint's. Returns how long it is taken out, if this takes
    /// it out.
    pub fn on_failure(&mut self, now: Instant) -> Option<Duration> {
        if !self.available(now) {
            return None;
        }
        self.failures_in_a_row += 1;
        if self.failures_in_a_row < EJECT_AFTER {
            return None;
        }
        self.failures_in_a_row = 0;
        self.ejections += 1;
        let cool_down = FIRST_COOL_DOWN
            .saturating_mul(1 << (self.ejections - 1).min(16))
            .min(MAX_COOL_DOWN);
        self.out_until = Some(now + cool_down);
        Some(cool_down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_after_failures_in_a_row_for_a_doubling_cool_down_and_back_on_success() {
        let t0 = Instant::now();
        let mut h = Health::default();
        for _ in 1..EJECT_AFTER {
            assert_eq!(h.on_failure(t0), None);
        }
        assert_eq!(h.on_failure(t0), Some(Duration::from_secs(10)));
        assert!(!h.available(t0 + Duration::from_secs(9)));
        assert!(h.available(t0 + Duration::from_secs(10)));
        let t1 = t0 + Duration::from_secs(10);
        for _ in 1..EJECT_AFTER {
            h.on_failure(t1);
        }
        assert_eq!(h.on_failure(t1), Some(Duration::from_secs(20)));
        h.on_success();
        assert!(h.available(t1));
        // A success between failures resets the count.
        let mut h = Health::default();
        for _ in 0..10 {
            h.on_failure(t0);
            h.on_failure(t0);
            h.on_success();
        }
        assert_eq!(h.ejections, 0);
    }
}
