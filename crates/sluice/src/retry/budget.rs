//! A retry budget: retries may add at most a share of the original traffic, plus a small
//! steady allowance, so that when most requests fail their retries do not multiply the load
//! on a struggling server. A retry beyond the budget waits for it instead of going out.

use std::time::Duration;

use tokio::time::Instant;

/// Retries allowed: `ratio` per original request, plus `min_per_sec` a second.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: f64,
    balance: f64,
    max_balance: f64,
    last: Instant,
}

impl RetryBudget {
    /// A budget that starts with one second of the steady allowance.
    pub fn new(ratio: f64, min_per_sec: f64, now: Instant) -> Self {
        let min_per_sec = min_per_sec.max(0.01);
        RetryBudget {
            ratio: ratio.max(0.0),
            min_per_sec,
            balance: min_per_sec,
            max_balance: (min_per_sec * 10.0).max(100.0),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            self.balance = (self.balance + (now - self.last).as_secs_f64() * self.min_per_sec)
                .min(self.max_balance);
            self.last = now;
        }
    }

    /// An original request went out: it earns `ratio` of a retry.
    pub fn deposit(&mut self) {
        self.balance = (self.balance + self.ratio).min(self.max_balance);
    }

    /// Takes one retry and says how long it must wait for the budget to cover it (zero
    /// when covered now). Retries beyond the budget queue up at the steady allowance.
    pub fn take(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.balance -= 1.0;
        if self.balance >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.balance / self.min_per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_the_share_of_originals() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(0.2, 1.0, t0);
        for _ in 0..100 {
            b.deposit();
        }
        // 1 to start with + 100 * 0.2.
        let granted = (0..1000).take_while(|_| b.take(t0).is_zero()).count();
        assert_eq!(granted, 21);
        // The 22nd had to wait a second; the next one two.
        assert_eq!(b.take(t0), Duration::from_secs(2));
        // Waiting earns the allowance back.
        assert_eq!(b.take(t0 + Duration::from_secs(10)), Duration::ZERO);
    }
}
