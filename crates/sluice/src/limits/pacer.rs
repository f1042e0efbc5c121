//! [`Pacer`]: the engine's rate limiting around any async operation, not only HTTP: await
//! [`Pacer::acquire`] before each call and the calls keep within the rate.

use std::collections::VecDeque;
use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::TokenBucket;

/// Paces calls: a token bucket (a steady rate with a small burst, how OpenAI counts) or an
/// exact window (at most N in any window of a given length). Waiters are served in the
/// order they arrived. Time is `tokio::time`, so a test on a paused clock is instant.
///
/// ```
/// # async fn demo() {
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// let pacer = sluice::limits::Pacer::window(NonZeroUsize::new(10).unwrap(), Duration::from_secs(1));
/// for _ in 0..20 {
///     pacer.acquire().await; // the 11th waits until the first is a second old
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<Kind>,
}

#[derive(Debug)]
enum Kind {
    Bucket(TokenBucket),
    Window {
        max: usize,
        window: Duration,
        /// When each of the last `max` units was taken, oldest first.
        times: VecDeque<Instant>,
    },
}

impl Pacer {
    /// At most `n` units a minute, with a burst of `burst` worth of the rate.
    pub fn per_minute(n: NonZeroU64, burst: Duration) -> Self {
        Pacer {
            state: Mutex::new(Kind::Bucket(TokenBucket::per_minute(
                n,
                burst,
                Instant::now(),
            ))),
        }
    }

    /// At most `max` units in any window of length `window`: a sliding log, exact and
    /// without burst beyond `max` (memory: `max` instants).
    pub fn window(max: NonZeroUsize, window: Duration) -> Self {
        Pacer {
            state: Mutex::new(Kind::Window {
                max: max.get(),
                window,
                times: VecDeque::with_capacity(max.get()),
            }),
        }
    }

    /// Waits until one unit may be taken and takes it; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        self.acquire_many(1).await
    }

    /// Waits until `cost` units (tokens, say) may be taken and takes them; returns how long
    /// it waited. A cost above the burst (or above a window's `max`) waits for a full
    /// bucket (or an empty window) and then goes, rather than never.
    pub async fn acquire_many(&self, cost: u64) -> Duration {
        let started = Instant::now();
        let mut state = self.state.lock().await;
        match &mut *state {
            Kind::Bucket(bucket) => loop {
                let wait = bucket.wait_for(Instant::now(), cost);
                if wait.is_zero() {
                    bucket.take(cost);
                    break;
                }
                tokio::time::sleep(wait).await;
            },
            Kind::Window { max, window, times } => {
                let units = (cost as usize).clamp(1, *max);
                for _ in 0..units {
                    loop {
                        let now = Instant::now();
                        while times
                            .front()
                            .is_some_and(|t| now.saturating_duration_since(*t) >= *window)
                        {
                            times.pop_front();
                        }
                        if times.len() < *max {
                            times.push_back(now);
                            break;
                        }
                        if let Some(oldest) = times.front() {
                            tokio::time::sleep_until(*oldest + *window).await;
                        }
                    }
                }
            }
        }
        started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_window_admits_at_most_its_max_in_any_window() {
        let pacer = Pacer::window(NonZeroUsize::new(10).unwrap(), Duration::from_secs(1));
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..35 {
            pacer.acquire().await;
            at.push(start.elapsed());
        }
        for (i, t) in at.iter().enumerate() {
            let in_window = at[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_secs(1))
                .count();
            assert!(in_window <= 10, "{in_window} within a second of {t:?}");
        }
        // 35 at 10 a second: the last goes at 3 s, not before.
        assert_eq!(at[34], Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_keeps_the_rate_after_its_burst() {
        let pacer = Pacer::per_minute(NonZeroU64::new(600).unwrap(), Duration::from_millis(500));
        let start = Instant::now();
        for _ in 0..105 {
            pacer.acquire().await;
        }
        // A burst of 5, then ~9.9 a second: 100 more take about 10 s.
        let took = start.elapsed().as_secs_f64();
        assert!((9.5..11.0).contains(&took), "{took}");
    }
}
