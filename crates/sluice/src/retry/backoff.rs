//! Exponential backoff with full jitter: the n-th retry waits a uniform time between zero
//! and `min(max, base * 2^(n-1))`, which spreads a crowd of retries out instead of sending
//! them back together. The RNG is the caller's, so tests are deterministic.

use std::time::Duration;

use rand::Rng;

use crate::error::ConfigError;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// `base` is the cap of the first retry's delay, `max` the cap of every delay.
    pub fn new(base: Duration, max: Duration) -> Result<Self, ConfigError> {
        if base.is_zero() || base > max {
            return Err(ConfigError::BadBackoff { base, max });
        }
        Ok(Backoff { base, max })
    }

    /// The cap for retry number `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(31));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A delay for retry number `retry`, drawn uniformly from `[0, ceiling]`.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        self.ceiling(retry).mul_f64(rng.random::<f64>())
    }
}

impl Default for Backoff {
    /// 500 ms, doubling, at most 60 s.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
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
