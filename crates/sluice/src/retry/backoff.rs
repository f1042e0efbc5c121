//! Exponential backoff with full jitter: the n-th retry waits a uniform time between zero
//! and `min(max, base * factor^(n-1))` (factor 2 unless set), which spreads a crowd of
//! retries out instead of sending them back together. Without jitter it waits the whole
//! ceiling. The RNG is the caller's, so tests are deterministic.

use std::time::Duration;

use rand::Rng;

use crate::error::ConfigError;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    factor: f64,
    jitter: bool,
}

impl Backoff {
    /// `base` is the cap of the first retry's delay, `max` the cap of every delay.
    pub fn new(base: Duration, max: Duration) -> Result<Self, ConfigError> {
        if base.is_zero() || base > max {
            return Err(ConfigError::BadBackoff { base, max });
        }
        Ok(Backoff {
            base,
            max,
            factor: 2.0,
            jitter: true,
        })
    }

    /// The same backoff growing by `factor` each retry instead of 2 (at least 1).
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// The same backoff with jitter on (the default: a uniform draw below the ceiling) or
    /// off (every delay is its ceiling: predictable, but a crowd retries together).
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The cap for retry number `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(64) as i32;
        let grown = self.base.as_secs_f64() * self.factor.powi(exponent);
        if grown >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(grown)
        }
    }

    /// A delay for retry number `retry`: drawn uniformly from `[0, ceiling]`, or the
    /// ceiling itself without jitter.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        if self.jitter {
            self.ceiling(retry).mul_f64(rng.random::<f64>())
        } else {
            self.ceiling(retry)
        }
    }
}

impl Default for Backoff {
    /// 500 ms, doubling, at most 60 s.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn ceiling_doubles_up_to_the_max() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).unwrap();
        let caps: Vec<u128> = (1..=6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(1000), Duration::from_secs(1));
    }

    #[test]
    fn factor_and_jitter_can_be_set() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
            .unwrap()
            .with_factor(3.0)
            .with_jitter(false);
        let mut rng = SmallRng::seed_from_u64(1);
        let delays: Vec<u128> = (1..=5).map(|n| b.delay(n, &mut rng).as_millis()).collect();
        assert_eq!(delays, vec![100, 300, 900, 2700, 8100]);
        assert_eq!(b.delay(6, &mut rng), Duration::from_secs(10));
    }

    #[test]
    fn rejects_inverted_settings() {
        assert!(Backoff::new(Duration::from_secs(2), Duration::from_secs(1)).is_err());
        assert!(Backoff::new(Duration::ZERO, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn jitter_spreads_delays_over_the_whole_range() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let delays: Vec<f64> = (0..1000)
            .map(|_| b.delay(1, &mut rng).as_secs_f64())
            .collect();
        let low = delays.iter().filter(|d| **d < 0.25).count();
        let high = delays.iter().filter(|d| **d > 0.75).count();
        assert!(low > 150 && high > 150, "{low} {high}");
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_its_ceiling(seed: u64, retry in 1u32..100, base_ms in 1u64..5000, extra_ms in 0u64..100_000) {
            let b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(base_ms + extra_ms)).unwrap();
            let mut rng = SmallRng::seed_from_u64(seed);
            let d = b.delay(retry, &mut rng);
            prop_assert!(d <= b.ceiling(retry));
            prop_assert!(b.ceiling(retry) <= Duration::from_millis(base_ms + extra_ms));
        }
    }
}
