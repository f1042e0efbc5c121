//! The simulator's rate limiter: per-minute budgets for requests and tokens (OpenAI's
//! RPM and TPM), and for input and output tokens apart (Anthropic's ITPM and OTPM).
//!
//! Each budget is two continuously refilled buckets that both must allow a request:
//! - the *minute* bucket holds the whole per-minute limit and refills at `limit / 60` a
//!   second; the `x-ratelimit-remaining-*` and `-reset-*` headers are read off it, so
//!   "remaining" falls by each request's cost and "reset" is the time until it is full;
//! - the *slice* bucket holds only `limit * burst / 60` (one second's worth by default) and
//!   refills at the same rate, so a whole minute's burst at t = 0 is refused, the way
//!   providers enforce limits over sub-minute slices.
//!
//! A request that costs more than a slice holds is admitted only when the slice bucket is
//! full, and then drives it negative (a debt that must refill first); otherwise a large
//! request could never pass. The consequence, documented and property-tested: over any
//! window of `w` seconds, admitted cost is at most `limit * w / 60 + slice + largest cost`.
//!
//! The limiter is pure: it reads time only as the `now` its caller passes, so tests drive
//! it with any clock.

use std::num::NonZeroU64;
use std::time::Duration;

use crate::config::{RateLimits, Window};

/// Which budget refused a request; OpenAI's `type` in the 429 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
    /// Input tokens per minute.
    InputTokens,
    /// Output tokens per minute.
    OutputTokens,
}

impl LimitKind {
    /// Every budget, in the order the limiter keeps them.
    pub const ALL: [LimitKind; 4] = [
        LimitKind::Requests,
        LimitKind::Tokens,
        LimitKind::InputTokens,
        LimitKind::OutputTokens,
    ];

    /// The word used in error bodies and header names (`x-ratelimit-limit-tokens`,
    /// `anthropic-ratelimit-input-tokens-limit`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::Tokens => "tokens",
            LimitKind::InputTokens => "input-tokens",
            LimitKind::OutputTokens => "output-tokens",
        }
    }
}

/// What a request costs each budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Charge {
    /// Prompt tokens plus `max_tokens` times `n` (the TPM budget).
    pub tokens: u64,
    /// Prompt tokens (the ITPM budget).
    pub input: u64,
    /// `max_tokens` times `n` (the OTPM budget), until the answer gives back what it did
    /// not use.
    pub output: u64,
}

impl From<u64> for Charge {
    /// A charge to the token budget alone.
    fn from(tokens: u64) -> Self {
        Charge {
            tokens,
            ..Charge::default()
        }
    }
}

/// One budget's state as the headers report it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetView {
    /// The per-minute limit.
    pub limit: u64,
    /// What is left of it now.
    pub remaining: u64,
    /// Time until the budget is full again.
    pub reset: Duration,
}

/// The budgets' state after a decision, for the headers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LimitView {
    /// The request budget, if limited.
    pub requests: Option<BudgetView>,
    /// The token budget, if limited.
    pub tokens: Option<BudgetView>,
    /// The input token budget, if limited.
    pub input_tokens: Option<BudgetView>,
    /// The output token budget, if limited.
    pub output_tokens: Option<BudgetView>,
}

impl LimitView {
    /// Each limited budget with its kind.
    pub fn each(&self) -> impl Iterator<Item = (LimitKind, BudgetView)> + '_ {
        [
            self.requests,
            self.tokens,
            self.input_tokens,
            self.output_tokens,
        ]
        .into_iter()
        .zip(LimitKind::ALL)
        .filter_map(|(view, kind)| view.map(|v| (kind, v)))
    }
}

/// A change of limits: for each budget, `None` leaves it as it is, `Some(None)` lifts it,
/// `Some(Some(n))` sets it to `n` a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub struct LimitChange {
    /// Requests per minute.
    #[serde(default, deserialize_with = "some")]
    pub rpm: Option<Option<NonZeroU64>>,
    /// Tokens per minute.
    #[serde(default, deserialize_with = "some")]
    pub tpm: Option<Option<NonZeroU64>>,
    /// Input tokens per minute.
    #[serde(default, deserialize_with = "some")]
    pub itpm: Option<Option<NonZeroU64>>,
    /// Output tokens per minute.
    #[serde(default, deserialize_with = "some")]
    pub otpm: Option<Option<NonZeroU64>>,
}

/// A field that is present (a number, or `null` or 0 to lift the limit).
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<NonZeroU64>>, D::Error> {
    let n: Option<u64> = serde::Deserialize::deserialize(d)?;
    Ok(Some(n.and_then(NonZeroU64::new)))
}

impl LimitChange {
    /// Each budget's change, indexed as [`LimitKind::ALL`].
    fn each(&self) -> impl Iterator<Item = (usize, Option<Option<NonZeroU64>>)> {
        [self.rpm, self.tpm, self.itpm, self.otpm]
            .into_iter()
            .enumerate()
    }
}

/// The outcome of asking for admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Admitted; the cost was taken from both budgets.
    Admitted(LimitView),
    /// Refused for now; try again after `retry_after`.
    Refused {
        /// The budget that was short.
        kind: LimitKind,
        /// When enough will have refilled.
        retry_after: Duration,
        /// The budgets' state.
        view: LimitView,
    },
    /// The request costs more tokens than a whole per-minute limit: it can never pass.
    TooLarge {
        /// The budget it cannot fit.
        kind: LimitKind,
        /// The per-minute limit.
        limit: u64,
        /// What the request asked for.
        requested: u64,
    },
}

#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    level: f64,
}

impl Bucket {
    fn full(capacity: f64) -> Self {
        Bucket {
            capacity,
            level: capacity,
        }
    }
}

/// One per-minute budget: a minute bucket and a slice bucket refilled at the same rate,
/// or, with [`Window::FixedMinute`], a count per clock minute.
#[derive(Debug, Clone)]
struct Budget {
    limit: u64,
    rate_per_sec: f64,
    minute: Bucket,
    slice: Bucket,
    last: Duration,
    window: Window,
    /// Another client's use a minute: taken from the refill (rolling), or charged at the
    /// start of each minute (fixed).
    external: f64,
    /// When the other client starts.
    external_from: Duration,
    /// The clock minute the fixed count belongs to.
    minute_index: u64,
}

const MINUTE: f64 = 60.0;

impl Budget {
    fn new(
        limit: NonZeroU64,
        burst: Duration,
        window: Window,
        external: u64,
        external_from: Duration,
    ) -> Self {
        let limit = limit.get();
        let rate_per_sec = limit as f64 / MINUTE;
        let slice = (rate_per_sec * burst.as_secs_f64()).max(1.0);
        let external = (external as f64).min(limit as f64);
        let mut budget = Budget {
            limit,
            rate_per_sec,
            minute: Bucket::full(limit as f64),
            slice: Bucket::full(slice),
            last: Duration::ZERO,
            window,
            external,
            external_from,
            minute_index: 0,
        };
        if window == Window::FixedMinute && external_from.is_zero() {
            budget.minute.level -= external;
        }
        budget
    }

    /// The other client's use a minute at `at` (nothing before it starts).
    fn external_at(&self, at: Duration) -> f64 {
        if at >= self.external_from {
            self.external
        } else {
            0.0
        }
    }

    /// Units a second the budget gains at `at`: its rate less the other client's use.
    fn net_rate(&self, at: Duration) -> f64 {
        self.rate_per_sec - self.external_at(at) / MINUTE
    }

    fn refill(&mut self, now: Duration) {
        if now <= self.last {
            return;
        }
        match self.window {
            Window::Rolling => {
                // Before and after the other client starts, each at its own net rate.
                let split = self.external_from.clamp(self.last, now);
                let gained = (split - self.last).as_secs_f64() * self.net_rate(self.last)
                    + (now - split).as_secs_f64() * self.net_rate(now);
                for bucket in [&mut self.minute, &mut self.slice] {
                    bucket.level = (bucket.level + gained).min(bucket.capacity);
                }
            }
            Window::FixedMinute => {
                let index = (now.as_secs_f64() / MINUTE) as u64;
                if index != self.minute_index {
                    self.minute_index = index;
                    let turned = Duration::from_secs_f64(index as f64 * MINUTE);
                    self.minute.level = self.minute.capacity - self.external_at(turned);
                }
            }
        }
        self.last = now;
    }

    /// The limit becomes `limit` a minute from `now` on: what was used stays used (the
    /// remaining budget moves by the difference), and both buckets take the new shape.
    fn set_limit(&mut self, now: Duration, limit: NonZeroU64, burst: Duration) {
        self.refill(now);
        let limit = limit.get();
        let delta = limit as f64 - self.limit as f64;
        self.limit = limit;
        self.rate_per_sec = limit as f64 / MINUTE;
        self.external = self.external.min(limit as f64);
        self.minute.capacity = limit as f64;
        self.minute.level = (self.minute.level + delta).min(self.minute.capacity);
        let slice = (self.rate_per_sec * burst.as_secs_f64()).max(1.0);
        let slice_delta = slice - self.slice.capacity;
        self.slice.capacity = slice;
        self.slice.level = (self.slice.level + slice_delta).min(slice);
    }

    /// Time until `cost` fits, zero if it fits now.
    fn wait_for(&self, cost: f64) -> Duration {
        if self.window == Window::FixedMinute {
            return if cost <= self.minute.level {
                Duration::ZERO
            } else {
                self.until_next_minute()
            };
        }
        let slice_needed = cost.min(self.slice.capacity);
        let short = (cost - self.minute.level).max(slice_needed - self.slice.level);
        if short <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(short / self.net_rate(self.last).max(1e-9))
        }
    }

    /// Time from the last check to the start of the next clock minute.
    fn until_next_minute(&self) -> Duration {
        Duration::from_secs_f64((self.minute_index + 1) as f64 * MINUTE - self.last.as_secs_f64())
    }

    fn take(&mut self, cost: f64) {
        self.minute.level -= cost;
        self.slice.level -= cost;
    }

    fn give_back(&mut self, amount: f64) {
        for bucket in [&mut self.minute, &mut self.slice] {
            bucket.level = (bucket.level + amount).min(bucket.capacity);
        }
    }

    fn view(&self) -> BudgetView {
        let remaining = self.minute.level.max(0.0);
        let reset = match self.window {
            Window::Rolling => {
                let missing = self.minute.capacity - remaining;
                Duration::from_secs_f64(missing / self.rate_per_sec)
            }
            Window::FixedMinute => self.until_next_minute(),
        };
        BudgetView {
            limit: self.limit,
            remaining: remaining.floor() as u64,
            reset,
        }
    }
}

/// Requests-per-minute and tokens-per-minute admission. See the module docs.
/// Every budget, each kept apart; a request must fit them all.
#[derive(Debug, Clone)]
pub struct Limiter {
    /// Indexed as [`LimitKind::ALL`].
    budgets: [Option<Budget>; 4],
    limits: RateLimits,
}

impl Limiter {
    /// A limiter for `limits`.
    pub fn new(limits: &RateLimits) -> Self {
        let budget = |limit: Option<NonZeroU64>, external| {
            limit.map(|l| {
                Budget::new(
                    l,
                    limits.burst,
                    limits.window,
                    external,
                    limits.external_from,
                )
            })
        };
        Limiter {
            budgets: [
                budget(limits.rpm, limits.external_load),
                budget(limits.tpm, 0),
                budget(limits.itpm, 0),
                budget(limits.otpm, 0),
            ],
            limits: *limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Changes the per-minute limits at `now`, as a provider raises a key's tier or
    /// another job's use shrinks what is left: a budget that stays limited keeps what it
    /// used, a budget newly limited starts full, one no longer limited is dropped.
    pub fn set_limits(&mut self, now: Duration, change: LimitChange) {
        let burst = self.limits.burst;
        for (i, wanted) in change.each() {
            let Some(wanted) = wanted else { continue };
            match (&mut self.budgets[i], wanted) {
                (Some(b), Some(limit)) => b.set_limit(now, limit, burst),
                (slot @ None, Some(limit)) => {
                    let external = if i == 0 { self.limits.external_load } else { 0 };
                    let mut b = Budget::new(
                        limit,
                        burst,
                        self.limits.window,
                        external,
                        self.limits.external_from,
                    );
                    b.last = now;
                    *slot = Some(b);
                }
                (slot, None) => *slot = None,
            }
        }
        self.limits.rpm = change.rpm.unwrap_or(self.limits.rpm);
        self.limits.tpm = change.tpm.unwrap_or(self.limits.tpm);
        self.limits.itpm = change.itpm.unwrap_or(self.limits.itpm);
        self.limits.otpm = change.otpm.unwrap_or(self.limits.otpm);
    }

    /// True when no budget is limited.
    pub fn is_unlimited(&self) -> bool {
        self.budgets.iter().all(Option::is_none)
    }

    /// Admits a request costing `charge` (one request and its tokens) at time `now`, or
    /// says which budget is short and for how long.
    pub fn check(&mut self, now: Duration, charge: impl Into<Charge>) -> Decision {
        let charge = charge.into();
        let costs = [1, charge.tokens, charge.input, charge.output];
        for ((budget, cost), kind) in self.budgets.iter().zip(costs).zip(LimitKind::ALL) {
            if let Some(b) = budget
                && cost > b.limit
            {
                return Decision::TooLarge {
                    kind,
                    limit: b.limit,
                    requested: cost,
                };
            }
        }
        for budget in self.budgets.iter_mut().flatten() {
            budget.refill(now);
        }
        let (wait, kind) = self
            .budgets
            .iter()
            .zip(costs)
            .zip(LimitKind::ALL)
            .map(|((b, cost), kind)| {
                (
                    b.as_ref()
                        .map_or(Duration::ZERO, |b| b.wait_for(cost as f64)),
                    kind,
                )
            })
            // The longest wait; on a tie the first budget (requests before tokens).
            .fold((Duration::ZERO, LimitKind::Requests), |best, next| {
                if next.0 > best.0 { next } else { best }
            });
        if !wait.is_zero() {
            return Decision::Refused {
                kind,
                retry_after: wait,
                view: self.view(),
            };
        }
        for (budget, cost) in self.budgets.iter_mut().zip(costs) {
            if let Some(b) = budget {
                b.take(cost as f64);
            }
        }
        Decision::Admitted(self.view())
    }

    /// Gives back output tokens a request was charged for and did not use.
    pub fn refund_output(&mut self, unused: u64) {
        if let Some(b) = &mut self.budgets[3] {
            b.give_back(unused as f64);
        }
    }

    /// Every budget's state now.
    pub fn view(&self) -> LimitView {
        let view = |i: usize| self.budgets[i].as_ref().map(Budget::view);
        LimitView {
            requests: view(0),
            tokens: view(1),
            input_tokens: view(2),
            output_tokens: view(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(rpm: Option<u64>, tpm: Option<u64>) -> RateLimits {
        RateLimits {
            rpm: rpm.and_then(NonZeroU64::new),
            tpm: tpm.and_then(NonZeroU64::new),
            burst: Duration::from_secs(1),
            ..RateLimits::default()
        }
    }

    #[test]
    fn a_fixed_minute_passes_its_whole_count_then_refuses_until_the_minute_turns() {
        let mut l = Limiter::new(&RateLimits {
            rpm: NonZeroU64::new(30),
            window: Window::FixedMinute,
            external_load: 10,
            ..RateLimits::default()
        });
        let at = |s: f64| Duration::from_secs_f64(s);
        // Another client used 10 of the first minute's 30.
        let admitted = (0..30)
            .filter(|_| matches!(l.check(at(5.0), 0), Decision::Admitted(_)))
            .count();
        assert_eq!(admitted, 20);
        let Decision::Refused {
            retry_after, view, ..
        } = l.check(at(5.0), 0)
        else {
            panic!("the minute is spent");
        };
        assert_eq!(retry_after, at(55.0));
        assert_eq!(view.requests.unwrap().remaining, 0);
        assert!(matches!(l.check(at(59.9), 0), Decision::Refused { .. }));
        let Decision::Admitted(view) = l.check(at(60.0), 0) else {
            panic!("a new minute");
        };
        assert_eq!(view.requests.unwrap().remaining, 19);
    }

    #[test]
    fn external_load_slows_a_rolling_refill() {
        let mut l = Limiter::new(&RateLimits {
            rpm: NonZeroU64::new(60),
            external_load: 30,
            ..RateLimits::default()
        });
        assert!(matches!(l.check(Duration::ZERO, 0), Decision::Admitted(_)));
        let Decision::Refused { retry_after, .. } = l.check(Duration::ZERO, 0) else {
            panic!("the slice is spent");
        };
        assert_eq!(
            retry_after,
            Duration::from_secs(2),
            "half the refill is the other client's"
        );
    }

    #[test]
    fn refuses_a_whole_minute_at_once() {
        let mut l = Limiter::new(&limits(Some(600), None));
        let admitted = (0..600)
            .filter(|_| matches!(l.check(Duration::ZERO, 0), Decision::Admitted(_)))
            .count();
        // One second's worth (10) passes at t = 0, not the minute's 600.
        assert_eq!(admitted, 10);
    }

    #[test]
    fn refusal_says_when_to_come_back_and_that_is_enough() {
        let mut l = Limiter::new(&limits(Some(60), None));
        assert!(matches!(l.check(Duration::ZERO, 0), Decision::Admitted(_)));
        let Decision::Refused {
            kind, retry_after, ..
        } = l.check(Duration::ZERO, 0)
        else {
            panic!("second request at t=0 must be refused at 60 rpm");
        };
        assert_eq!(kind, LimitKind::Requests);
        assert_eq!(retry_after, Duration::from_secs(1));
        assert!(matches!(l.check(retry_after, 0), Decision::Admitted(_)));
    }

    #[test]
    fn headers_view_counts_down_from_the_minute_limit() {
        let mut l = Limiter::new(&limits(Some(600), Some(60_000)));
        let Decision::Admitted(view) = l.check(Duration::ZERO, 300) else {
            panic!("first request must pass");
        };
        let r = view.requests.unwrap();
        assert_eq!((r.limit, r.remaining), (600, 599));
        assert_eq!(r.reset, Duration::from_millis(100));
        let t = view.tokens.unwrap();
        assert_eq!((t.limit, t.remaining), (60_000, 59_700));
        assert_eq!(t.reset, Duration::from_millis(300));
    }

    #[test]
    fn token_refusal_is_typed_tokens() {
        let mut l = Limiter::new(&limits(Some(6000), Some(6000)));
        assert!(matches!(
            l.check(Duration::ZERO, 100),
            Decision::Admitted(_)
        ));
        let Decision::Refused { kind, .. } = l.check(Duration::ZERO, 50) else {
            panic!("slice of 100 tokens is spent");
        };
        assert_eq!(kind, LimitKind::Tokens);
    }

    #[test]
    fn a_request_larger_than_the_minute_can_never_pass() {
        let mut l = Limiter::new(&limits(None, Some(1000)));
        assert_eq!(
            l.check(Duration::ZERO, 1001),
            Decision::TooLarge {
                kind: LimitKind::Tokens,
                limit: 1000,
                requested: 1001
            }
        );
    }

    #[test]
    fn input_and_output_budgets_are_kept_apart_and_unused_output_comes_back() {
        // 6,000 input and 600 output tokens a minute: slices of 100 and 10 a second.
        let mut l = Limiter::new(&RateLimits {
            itpm: NonZeroU64::new(6000),
            otpm: NonZeroU64::new(600),
            ..RateLimits::default()
        });
        let ask = |input, output| Charge {
            tokens: input + output,
            input,
            output,
        };
        let t0 = Duration::ZERO;
        assert!(matches!(l.check(t0, ask(50, 10)), Decision::Admitted(_)));
        // The output slice is spent though input remains.
        let Decision::Refused { kind, .. } = l.check(t0, ask(10, 10)) else {
            panic!("the output budget is spent");
        };
        assert_eq!(kind, LimitKind::OutputTokens);
        // The answer used 2 of its 10: 8 come back, and a request reserving 8 passes.
        l.refund_output(8);
        assert!(matches!(l.check(t0, ask(10, 8)), Decision::Admitted(_)));
        let Decision::Refused { kind, .. } = l.check(t0, ask(50, 0)) else {
            panic!("the input slice is spent");
        };
        assert_eq!(kind, LimitKind::InputTokens);
        let Decision::TooLarge { kind, .. } = l.check(t0, ask(10, 601)) else {
            panic!("more output than a minute allows");
        };
        assert_eq!(kind, LimitKind::OutputTokens);
        let view = l.view();
        assert!(view.requests.is_none() && view.tokens.is_none());
        assert_eq!(view.output_tokens.map(|b| b.limit), Some(600));
    }

    #[test]
    fn a_request_larger_than_a_slice_passes_when_the_slice_is_full() {
        let mut l = Limiter::new(&limits(None, Some(6000))); // 100 tokens a second
        assert!(matches!(
            l.check(Duration::ZERO, 500),
            Decision::Admitted(_)
        ));
        // The slice is now 400 in debt: 5 s until it can take anything again.
        let Decision::Refused { retry_after, .. } = l.check(Duration::from_secs(1), 1) else {
            panic!("slice in debt");
        };
        assert_eq!(retry_after, Duration::from_secs_f64(3.01));
    }

    proptest! {
        /// In any window of 1 s or 60 s (t = 0 included), admitted requests and tokens never
        /// exceed `limit * w / 60` plus one slice plus the largest single cost.
        #[test]
        fn admitted_never_exceeds_the_limit_in_any_window(
            rpm in 1u64..5000,
            tpm in 100u64..200_000,
            arrivals in proptest::collection::vec((0u64..3_000, 1u64..400), 1..400),
        ) {
            let mut l = Limiter::new(&limits(Some(rpm), Some(tpm)));
            let mut now_ms = 0;
            let mut admitted: Vec<(u64, u64)> = Vec::new();
            let mut max_cost = 0;
            for (gap_ms, cost) in arrivals {
                now_ms += gap_ms;
                let cost = cost.min(tpm);
                if let Decision::Admitted(_) = l.check(Duration::from_millis(now_ms), cost) {
                    admitted.push((now_ms, cost));
                    max_cost = max_cost.max(cost);
                }
            }
            for window_ms in [1_000u64, 60_000] {
                let w = window_ms as f64 / 60_000.0;
                let req_bound = rpm as f64 * w + (rpm as f64 / 60.0).max(1.0) + 1.0;
                let tok_bound = tpm as f64 * w + (tpm as f64 / 60.0).max(1.0) + max_cost as f64;
                for (i, &(start, _)) in admitted.iter().enumerate() {
                    let in_window = admitted[i..].iter().take_while(|(t, _)| *t < start + window_ms);
                    let (n, toks) = in_window.fold((0u64, 0u64), |(n, s), (_, c)| (n + 1, s + c));
                    prop_assert!(n as f64 <= req_bound + 1e-6, "{n} requests in {window_ms} ms > {req_bound}");
                    prop_assert!(toks as f64 <= tok_bound + 1e-6, "{toks} tokens in {window_ms} ms > {tok_bound}");
                }
            }
        }
    }
}
