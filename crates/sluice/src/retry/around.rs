//! Backoff with jitter around any async operation, not only HTTP: retry what `retryable`
//! says is worth it, waiting as the [`Backoff`] says, up to a number of attempts.

use std::future::Future;
use std::num::NonZeroU32;

use rand::Rng;

use super::Backoff;

/// Runs `operation` until it succeeds, fails with an error `retryable` rejects, or has
/// been tried `attempts` times; between tries it waits [`Backoff::delay`] (on
/// `tokio::time`, with the caller's RNG, so a test is deterministic and, on a paused clock,
/// instant). Returns the last outcome.
///
/// ```
/// # async fn demo() {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use rand::SeedableRng;
/// use sluice::retry::{Backoff, with_backoff};
///
/// let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100)).unwrap();
/// let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
/// let mut calls = 0;
/// let answer: Result<u32, &str> = with_backoff(
///     &backoff,
///     NonZeroU32::new(5).unwrap(),
///     &mut rng,
///     |e: &&str| *e == "busy",
///     || { calls += 1; let n = calls; async move { if n < 3 { Err("busy") } else { Ok(n) } } },
/// ).await;
/// assert_eq!(answer, Ok(3));
/// # }
/// ```
pub async fn with_backoff<T, E, F, Fut>(
    backoff: &Backoff,
    attempts: NonZeroU32,
    rng: &mut impl Rng,
    retryable: impl Fn(&E) -> bool,
    mut operation: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(e) if attempt >= attempts.get() || !retryable(&e) => return Err(e),
            Err(_) => {
                tokio::time::sleep(backoff.delay(attempt, rng)).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_is_retryable_and_waits_between_tries() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8))
            .unwrap()
            .with_jitter(false);
        let mut rng = SmallRng::seed_from_u64(1);
        let start = Instant::now();
        let mut calls = 0;
        let out: Result<(), &str> = with_backoff(
            &backoff,
            NonZeroU32::new(4).unwrap(),
            &mut rng,
            |e| *e == "transient",
            || {
                calls += 1;
                async { Err("transient") }
            },
        )
        .await;
        assert_eq!(out, Err("transient"));
        assert_eq!(calls, 4);
        // 1 + 2 + 4 s between four tries.
        assert_eq!(start.elapsed(), Duration::from_secs(7));

        let mut calls = 0;
        let out: Result<(), &str> = with_backoff(
            &backoff,
            NonZeroU32::new(4).unwrap(),
            &mut rng,
            |e| *e == "transient",
            || {
                calls += 1;
                async { Err("bad request") }
            },
        )
        .await;
        assert_eq!(out, Err("bad request"));
        assert_eq!(calls, 1, "a permanent error is not retried");
    }
}
