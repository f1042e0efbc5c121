//! The admission gate: request and token budgets, one pause shared by every worker, and
//! the model of the server that decides what a refusal means (docs/ADAPTIVE.md).
//!
//! Its decisions are a function of its state, the event and the `now` it is given: an
//! admission asks the buckets; an answer's headers set the ceilings and cap what remains;
//! a refusal is weighed by [`Evidence`] and acted on here (pause everyone and slow,
//! slow once to test, undo a test, or leave it to the refused request alone). After a
//! pause both buckets start empty, so requests resume at the steady rate instead of all
//! waiting requests bursting out at once.

use std::num::NonZeroU64;
use std::time::Duration;

use tokio::time::Instant;

use super::adaptive::RateController;
use super::evidence::{Evidence, Judgement, Stated};
use super::headers::{BudgetHeaders, RateHeaders};
use super::{Algorithm, RateLimiter, limiter};
use crate::estimate::Estimate;

/// One per-minute budget: none, a known limit, or one to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Budget {
    /// No limit is kept (the server's headers may still state one, which is then kept).
    #[default]
    Unlimited,
    /// Kept under this many a minute; backs off on 429s and climbs back to it.
    Fixed(NonZeroU64),
    /// Found from the traffic: starts low, doubles each second until the first refusal,
    /// then follows AIMD; never above `ceiling`, if given.
    Auto {
        /// The most it may reach.
        ceiling: Option<NonZeroU64>,
    },
}

impl Budget {
    /// `n` a minute, or [`Budget::Unlimited`] for 0.
    pub fn per_minute(n: u64) -> Self {
        NonZeroU64::new(n).map_or(Budget::Unlimited, Budget::Fixed)
    }

    /// A limit to find, with no ceiling.
    pub fn auto() -> Self {
        Budget::Auto { ceiling: None }
    }

    /// The configured limit: the fixed one, or an auto budget's ceiling.
    pub fn limit(self) -> Option<NonZeroU64> {
        match self {
            Budget::Unlimited => None,
            Budget::Fixed(n) => Some(n),
            Budget::Auto { ceiling } => ceiling,
        }
    }

    /// Whether it is kept at all.
    pub fn is_limited(self) -> bool {
        self != Budget::Unlimited
    }
}

impl From<Option<NonZeroU64>> for Budget {
    /// `None` is unlimited, `Some(n)` a fixed limit.
    fn from(n: Option<NonZeroU64>) -> Self {
        n.map_or(Budget::Unlimited, Budget::Fixed)
    }
}

/// The budgets to keep within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Budget,
    /// Tokens per minute (prompt plus reserved output, as providers count at admission).
    pub tpm: Budget,
    /// Input tokens per minute (the prompt), as Anthropic limits them apart.
    pub itpm: Budget,
    /// Output tokens per minute: `max_tokens` (times `n`) is reserved at admission and what
    /// the answer did not use is given back, as Anthropic counts them.
    pub otpm: Budget,
    /// How much of a minute's budget may go at once. Half a second by default: below the
    /// one-second slices providers enforce, leaving room for network jitter.
    pub burst: Duration,
    /// The admission algorithm.
    pub algorithm: Algorithm,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rpm: Budget::Unlimited,
            tpm: Budget::Unlimited,
            itpm: Budget::Unlimited,
            otpm: Budget::Unlimited,
            burst: Duration::from_millis(500),
            algorithm: Algorithm::TokenBucket,
        }
    }
}

/// Before the server has answered once, and with no request budget given, at most this
/// many requests go: a server with an unknown limit of L a minute enforces slices of
/// L/60 a second, and 16 fit every limit from 960 a minute up; the first answer's
/// headers then set the budget (charged with what is already in flight).
pub const INITIAL_FLIGHT: u32 = 16;
/// The longest the initial flight waits for a first answer (a server that never answers
/// must not hold the rest back for ever).
const INITIAL_WAIT: Duration = Duration::from_secs(1);
/// How often admission looks again while the initial flight waits.
const INITIAL_POLL: Duration = Duration::from_millis(10);

/// Where an `auto` request rate starts: conservative, and found within seconds above.
const AUTO_START_RPM: f64 = 60.0;
/// Where an `auto` token rate starts.
const AUTO_START_TPM: f64 = 20_000.0;

/// One budget: its bucket and the controller that sets the bucket's rate.
#[derive(Debug)]
struct BudgetState {
    bucket: Box<dyn RateLimiter>,
    control: RateController,
    configured: Option<f64>,
    /// The controller as it was before a probe's decrease, to go back to if the probe
    /// shows the refusals were not about the rate.
    before_probe: Option<RateController>,
    /// Created by a probe where no budget was kept: dropped again if the probe undoes.
    probe_made: bool,
}

impl BudgetState {
    fn new(budget: Budget, auto_start: f64, limits: &Limits, now: Instant) -> Option<Self> {
        let (control, configured) = match budget {
            Budget::Unlimited => return None,
            Budget::Fixed(limit) => {
                let limit = limit.get() as f64;
                (RateController::fixed(limit), Some(limit))
            }
            Budget::Auto { ceiling } => {
                let ceiling = ceiling.map(|c| c.get() as f64);
                (RateController::auto(auto_start, ceiling), ceiling)
            }
        };
        let start = NonZeroU64::new(control.rate().round().max(1.0) as u64).expect("at least 1");
        Some(BudgetState {
            bucket: limiter(limits.algorithm, start, limits.burst, now),
            control,
            configured,
            before_probe: None,
            probe_made: false,
        })
    }

    /// A budget learned from the server's headers when none was configured.
    fn learned(limit: u64, algorithm: Algorithm, burst: Duration, now: Instant) -> Self {
        let mut control = RateController::fixed(limit as f64);
        control.learn_limit(limit as f64, None);
        BudgetState {
            bucket: limiter(
                algorithm,
                NonZeroU64::new(limit.max(1)).expect("at least 1"),
                burst,
                now,
            ),
            control,
            configured: None,
            before_probe: None,
            probe_made: false,
        }
    }

    fn apply(&mut self, now: Instant) {
        let rate = self.control.rate();
        if (rate - self.bucket.limit() as f64).abs() >= 1.0 {
            self.bucket.retune(now, rate);
        }
    }

    fn observe(&mut self, now: Instant, h: &BudgetHeaders, in_flight: u64) {
        if let Some(limit) = h.limit {
            self.control.learn_limit(limit as f64, self.configured);
        }
        self.apply(now);
        if let Some(remaining) = h.remaining {
            self.bucket
                .cap_remaining(remaining as f64 - in_flight as f64);
        }
    }

    /// A probe lowers the rate once (if its episode allows): returns whether it did.
    fn probe(&mut self, now: Instant, sent: Instant) -> bool {
        let saved = self.control.clone();
        if !self.control.on_limited(now, sent) {
            return false;
        }
        self.before_probe.get_or_insert(saved);
        self.apply(now);
        true
    }

    /// A probe ended: `undo` puts the rate back where it was (the ceiling learned since
    /// stays); either way the probe is over.
    fn end_probe(&mut self, now: Instant, undo: bool) {
        let saved = self.before_probe.take();
        if undo && let Some(mut saved) = saved {
            if let Some(ceiling) = self.control.ceiling() {
                saved.learn_limit(ceiling, self.configured);
            }
            self.control = saved;
            self.apply(now);
        }
        self.probe_made = false;
    }
}

/// What the gate says to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitDecision {
    /// Admitted; its cost was taken.
    Now,
    /// Not before this instant.
    Wait(Instant),
    /// Never: the cost is above the whole per-minute token budget.
    Never {
        /// The token limit.
        limit: u64,
    },
}

/// What a 429 (or 529) was, for the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The rate is too high for the server (its headers say a budget is spent, or
    /// refusals are a storm): everyone pauses; `decreased` says whether this refusal
    /// began a new episode (and lowered the rate).
    Congestion {
        /// The rate went down.
        decreased: bool,
    },
    /// The rate was lowered (a probe, to see whether the share of refusals falls with
    /// it, or an overload the share shows), but nothing says the budget is spent: nobody
    /// pauses; the refused request waits its own delay.
    Slowed,
    /// A refusal that is not about this run's rate (the evidence says so, or is still
    /// being gathered): only the refused request waits; nobody pauses and the rate stays.
    Isolated,
}

/// How many admissions a second, over the last few seconds: one counter a second.
#[derive(Debug)]
struct Throughput {
    origin: Instant,
    /// `(second since origin, admissions in it)`, the newest last.
    seconds: std::collections::VecDeque<(u64, u32)>,
}

/// Seconds of admissions kept.
const THROUGHPUT_SECS: u64 = 5;

impl Throughput {
    fn new(now: Instant) -> Self {
        Throughput {
            origin: now,
            seconds: std::collections::VecDeque::with_capacity(THROUGHPUT_SECS as usize + 1),
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    fn add(&mut self, now: Instant) {
        let s = self.second(now);
        match self.seconds.back_mut() {
            Some((last, n)) if *last == s => *n += 1,
            _ => {
                self.seconds.push_back((s, 1));
                while self
                    .seconds
                    .front()
                    .is_some_and(|(first, _)| first + THROUGHPUT_SECS <= s)
                {
                    self.seconds.pop_front();
                }
            }
        }
    }

    /// Admissions a minute over the last few seconds (at least a quarter second's span, so
    /// a burst at the start is not taken for an endless rate, while a budget learned in the
    /// first second is not a fraction of the rate really sent).
    fn per_minute(&self, now: Instant) -> f64 {
        let s = self.second(now);
        let count: u32 = self
            .seconds
            .iter()
            .filter(|(second, _)| second + THROUGHPUT_SECS > s)
            .map(|(_, n)| n)
            .sum();
        let span = now
            .saturating_duration_since(self.origin)
            .as_secs_f64()
            .clamp(0.25, THROUGHPUT_SECS as f64);
        f64::from(count) * 60.0 / span
    }
}

/// Request and token budgets and the shared pause.
#[derive(Debug)]
pub struct Admission {
    requests: Option<BudgetState>,
    tokens: Option<BudgetState>,
    input: Option<BudgetState>,
    output: Option<BudgetState>,
    paused_until: Option<Instant>,
    burst: Duration,
    algorithm: Algorithm,
    throughput: Throughput,
    /// What refusals have shown about the rate.
    evidence: Evidence,
    /// What the last refused admission waited on.
    last_wait: crate::Binding,
    /// Admitted before the server's first answer (counted only while none came), and when
    /// the first of them went.
    initial: Option<(u32, Instant)>,
}

impl Admission {
    /// A gate for `limits`, opening at `now`.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Admission {
            requests: BudgetState::new(limits.rpm, AUTO_START_RPM, limits, now),
            tokens: BudgetState::new(limits.tpm, AUTO_START_TPM, limits, now),
            input: BudgetState::new(limits.itpm, AUTO_START_TPM, limits, now),
            output: BudgetState::new(limits.otpm, AUTO_START_TPM, limits, now),
            paused_until: None,
            burst: limits.burst,
            algorithm: limits.algorithm,
            throughput: Throughput::new(now),
            evidence: Evidence::new(now),
            last_wait: crate::Binding::Idle,
            initial: Some((0, now)),
        }
    }

    /// The server answered (anything, with or without headers): the initial flight is over.
    pub fn on_answer(&mut self) {
        self.initial = None;
    }

    /// What refusals have shown: the share found not to depend on the rate, if any.
    pub fn background_share(&self) -> Option<f64> {
        self.evidence.background()
    }

    /// Whether a token budget is set (estimates are only worth computing then).
    pub fn limits_tokens(&self) -> bool {
        self.tokens.is_some() || self.input.is_some() || self.output.is_some()
    }

    /// Every budget that is kept.
    fn each_budget(&mut self) -> impl Iterator<Item = &mut BudgetState> {
        [
            &mut self.requests,
            &mut self.tokens,
            &mut self.input,
            &mut self.output,
        ]
        .into_iter()
        .flatten()
    }

    /// Every budget with what `estimate` costs it and what waiting on it is called, in
    /// the order ties are reported.
    fn budgets(
        &mut self,
        estimate: Estimate,
    ) -> [(&mut Option<BudgetState>, u64, crate::Binding); 4] {
        [
            (&mut self.requests, 1, crate::Binding::Requests),
            (&mut self.tokens, estimate.cost(), crate::Binding::Tokens),
            (
                &mut self.input,
                estimate.prompt,
                crate::Binding::InputTokens,
            ),
            (
                &mut self.output,
                estimate.reserved_output,
                crate::Binding::OutputTokens,
            ),
        ]
    }

    /// Asks to admit one request costing `estimate` at `now`: one request, its prompt
    /// plus reserved output against the token budget, its prompt against the input budget
    /// and its reserved output against the output budget.
    pub fn try_admit(&mut self, now: Instant, estimate: impl Into<Estimate>) -> AdmitDecision {
        let estimate = estimate.into();
        for (budget, cost, _) in self.budgets(estimate).into_iter().skip(1) {
            if let Some(ceiling) = budget.as_ref().and_then(|b| b.control.ceiling())
                && cost as f64 > ceiling
            {
                return AdmitDecision::Never {
                    limit: ceiling as u64,
                };
            }
        }
        if let Some(until) = self.paused_until {
            if now < until {
                self.last_wait = crate::Binding::Paused;
                return AdmitDecision::Wait(until);
            }
            self.paused_until = None;
            for b in self.each_budget() {
                b.bucket.restart_at(until);
            }
        }
        if self.requests.is_none()
            && let Some((sent, first)) = &mut self.initial
        {
            if *sent == 0 {
                *first = now;
            }
            let deadline = *first + INITIAL_WAIT;
            if *sent >= INITIAL_FLIGHT && now < deadline {
                self.last_wait = crate::Binding::Requests;
                return AdmitDecision::Wait((now + INITIAL_POLL).min(deadline));
            }
        }
        let mut longest = (Duration::ZERO, crate::Binding::Requests);
        for (budget, cost, binding) in self.budgets(estimate) {
            let wait = budget
                .as_mut()
                .map_or(Duration::ZERO, |b| b.bucket.wait_for(now, cost));
            if wait > longest.0 {
                longest = (wait, binding);
            }
        }
        if !longest.0.is_zero() {
            self.last_wait = longest.1;
            return AdmitDecision::Wait(now + longest.0);
        }
        for (budget, cost, _) in self.budgets(estimate) {
            if let Some(b) = budget {
                b.bucket.take(now, cost);
            }
        }
        self.throughput.add(now);
        if let Some((sent, _)) = &mut self.initial {
            *sent += 1;
        }
        AdmitDecision::Now
    }

    /// Corrects the token budgets once the answer's usage is known: the token and input
    /// budgets by the prompt tokens counted against the estimate (the input budget without
    /// cache reads, which Anthropic does not count), the output budget by the reserved
    /// output the answer did not use.
    pub fn correct_tokens(&mut self, estimate: Estimate, usage: &crate::Usage) {
        let prompt_delta = usage.prompt_tokens as i64 - estimate.prompt as i64;
        if let Some(b) = &mut self.tokens {
            b.bucket.correct(prompt_delta);
        }
        if let Some(b) = &mut self.input {
            let counted = usage.prompt_tokens.saturating_sub(usage.cached_tokens);
            b.bucket.correct(counted as i64 - estimate.prompt as i64);
        }
        if let Some(b) = &mut self.output
            && estimate.reserved_output > 0
        {
            let used = usage.completion_tokens.min(estimate.reserved_output);
            b.bucket
                .correct(used as i64 - estimate.reserved_output as i64);
        }
    }

    /// Pauses admission for everyone until `until` (a later pause extends an earlier one).
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A request sent at `sent` succeeded at `now`: adaptive rates grow, and the answer is
    /// evidence for a probe under way (which may end with it).
    pub fn on_success(&mut self, now: Instant, sent: Instant) {
        self.initial = None;
        self.evidence.on_success(now, sent);
        let held = self.evidence.probing();
        for b in self.each_budget() {
            if held {
                b.control.on_success_held(now);
            } else {
                b.control.on_success(now);
            }
            b.apply(now);
        }
        if let Some(judgement) = self.evidence.settle_probe() {
            tracing::debug!(?judgement, rates = ?self.rates(), evidence = ?self.evidence, "probe settled");
            self.act(now, sent, judgement);
        }
    }

    /// A 429 or 529 at `now` for a request sent at `sent`, whose own headers state
    /// `stated`: what it means for everyone (see [`Refusal`] and docs/ADAPTIVE.md). The
    /// judgement is [`Evidence`]'s; here it is carried out on the budgets. Where no
    /// request budget was given, the first decrease creates one at the rate admitted over
    /// the last few seconds, so a limit is always learned and no request retries on its
    /// own clock against a saturated server.
    pub fn on_limited(&mut self, now: Instant, sent: Instant, stated: Stated) -> Refusal {
        self.initial = None;
        let judgement = self.evidence.on_refusal(now, sent, stated);
        if judgement != Judgement::Isolated {
            tracing::debug!(?judgement, ?stated, rates = ?self.rates(), evidence = ?self.evidence, "refusal judged");
        }
        self.act(now, sent, judgement)
    }

    /// Carries out a judgement on the budgets.
    fn act(&mut self, now: Instant, sent: Instant, judgement: Judgement) -> Refusal {
        match judgement {
            Judgement::Isolated => Refusal::Isolated,
            Judgement::Congestion => Refusal::Congestion {
                decreased: self.slow_down(now, sent, judgement),
            },
            Judgement::Overload => {
                if self.slow_down(now, sent, judgement) {
                    Refusal::Slowed
                } else {
                    Refusal::Isolated
                }
            }
            Judgement::Probe => {
                self.learn_request_budget(now, true);
                let mut decreased = false;
                for b in self.each_budget() {
                    decreased |= b.probe(now, sent);
                }
                if decreased {
                    self.evidence.rate_changed(now, judgement);
                    Refusal::Slowed
                } else {
                    Refusal::Isolated
                }
            }
            Judgement::Background | Judgement::Confirmed => {
                let undo = judgement == Judgement::Background;
                // A budget the probe made where none was kept goes with the probe.
                let made = undo && self.requests.as_ref().is_some_and(|b| b.probe_made);
                for b in self.each_budget() {
                    b.end_probe(now, undo);
                }
                if made {
                    self.requests = None;
                }
                self.evidence.rate_changed(now, judgement);
                Refusal::Isolated
            }
        }
    }

    /// Congestion or overload: any probe is over with its lower rate kept, and every
    /// budget slows once per episode (a request budget is made where none is kept).
    /// Returns whether a rate went down (a new epoch then begins).
    fn slow_down(&mut self, now: Instant, sent: Instant, judgement: Judgement) -> bool {
        self.learn_request_budget(now, false);
        let mut decreased = false;
        for b in self.each_budget() {
            b.end_probe(now, false);
            decreased |= b.control.on_limited(now, sent);
            b.apply(now);
        }
        if decreased {
            self.evidence.rate_changed(now, judgement);
        }
        decreased
    }

    /// Where no request budget is kept, one at the rate admitted over the last few
    /// seconds; `by_probe` marks it as a probe's, to drop if the probe undoes.
    fn learn_request_budget(&mut self, now: Instant, by_probe: bool) {
        if self.requests.is_some() {
            return;
        }
        let rate = self.throughput.per_minute(now);
        let mut control = RateController::learned(rate, None);
        control.on_success(now);
        let start = NonZeroU64::new(rate.round().max(1.0) as u64).expect("at least 1");
        self.requests = Some(BudgetState {
            bucket: limiter(self.algorithm, start, self.burst, now),
            control,
            configured: None,
            before_probe: None,
            probe_made: by_probe,
        });
    }

    /// Learns from the server's rate-limit headers: a stated limit caps the rate (and
    /// creates a budget where none was configured), and what remains caps the burst,
    /// less the `in_flight` requests the server may not have counted yet. A request
    /// budget made from the headers starts charged with those in flight, up to one
    /// second's worth of the limit: they went before it existed, and the server counts
    /// them.
    pub fn observe(&mut self, now: Instant, headers: &RateHeaders, in_flight: u64) {
        self.initial = None;
        let (burst, algorithm) = (self.burst, self.algorithm);
        for (budget, h, in_flight) in [
            (&mut self.requests, &headers.requests, in_flight),
            (&mut self.tokens, &headers.tokens, 0),
            (&mut self.input, &headers.input_tokens, 0),
            (&mut self.output, &headers.output_tokens, 0),
        ] {
            match budget {
                Some(b) => b.observe(now, h, in_flight),
                None => {
                    if let Some(limit) = h.limit {
                        let mut b = BudgetState::learned(limit, algorithm, burst, now);
                        // The flight already sent is charged up to one second's worth of
                        // the stated limit: a server enforcing per-second slices counted
                        // that much of it; one that allows more said so in what remains.
                        let second = (limit / 60).max(1);
                        b.bucket.take(now, in_flight.min(second));
                        b.observe(now, h, in_flight);
                        *budget = Some(b);
                    }
                }
            }
        }
    }

    /// What the last admission that had to wait waited on: the requests or tokens budget,
    /// or a pause.
    pub fn last_wait(&self) -> crate::Binding {
        self.last_wait
    }

    /// The request and token limits in force: the configured ones, those the server's
    /// headers state, or those learned, per minute.
    pub fn ceilings(&self) -> (Option<f64>, Option<f64>) {
        (
            self.requests.as_ref().and_then(|b| b.control.ceiling()),
            self.tokens.as_ref().and_then(|b| b.control.ceiling()),
        )
    }

    /// The request and token rates in force, per minute.
    pub fn rates(&self) -> (Option<f64>, Option<f64>) {
        (
            self.requests.as_ref().map(|b| b.control.rate()),
            self.tokens.as_ref().map(|b| b.control.rate()),
        )
    }

    /// The end of the current pause, if paused at `now`.
    pub fn paused_at(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|&p| p > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: u64, tpm: u64) -> Limits {
        Limits {
            rpm: NonZeroU64::new(rpm).into(),
            tpm: NonZeroU64::new(tpm).into(),
            burst: Duration::from_secs(1),
            ..Limits::default()
        }
    }

    #[test]
    fn both_budgets_must_agree_and_only_then_are_charged() {
        let t0 = Instant::now();
        let mut a = Admission::new(&limits(60, 6000), t0);
        // 1 request and 100 tokens of burst.
        assert_eq!(a.try_admit(t0, 50), AdmitDecision::Now);
        let AdmitDecision::Wait(_) = a.try_admit(t0, 10) else {
            panic!("request budget is spent");
        };
        // Two seconds later, the request bucket refilled (59/60 a second); tokens too.
        assert_eq!(
            a.try_admit(t0 + Duration::from_secs(2), 10),
            AdmitDecision::Now
        );
    }

    #[test]
    fn a_request_above_the_whole_tpm_is_never_admitted() {
        let t0 = Instant::now();
        let mut a = Admission::new(&limits(0, 1000), t0);
        assert_eq!(a.try_admit(t0, 1001), AdmitDecision::Never { limit: 1000 });
        assert_eq!(a.try_admit(t0, 1000), AdmitDecision::Now);
    }

    #[test]
    fn a_pause_holds_everyone_and_resumes_without_a_burst() {
        let t0 = Instant::now();
        let mut a = Admission::new(&limits(6000, 0), t0);
        let until = t0 + Duration::from_secs(30);
        a.pause_until(until);
        a.pause_until(t0 + Duration::from_secs(5)); // an earlier end does not shorten it
        assert_eq!(
            a.try_admit(t0 + Duration::from_secs(10), 1),
            AdmitDecision::Wait(until)
        );
        // At the end of the pause the bucket is empty: the first request waits one interval.
        let AdmitDecision::Wait(at) = a.try_admit(until, 1) else {
            panic!("no burst right after a pause");
        };
        assert!(at > until && at - until < Duration::from_millis(20));
        assert_eq!(a.try_admit(at, 1), AdmitDecision::Now);
    }

    /// Drives the gate the way the scheduler does, on tokio's paused clock: wait until
    /// the instant it names, ask again.
    async fn admit_all(gate: &mut Admission, n: usize, cost: u64) -> Vec<Instant> {
        let mut times = Vec::with_capacity(n);
        while times.len() < n {
            match gate.try_admit(Instant::now(), cost) {
                AdmitDecision::Now => times.push(Instant::now()),
                AdmitDecision::Wait(at) => tokio::time::sleep_until(at).await,
                AdmitDecision::Never { .. } => panic!("never"),
            }
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn paced_at_the_limit_on_a_paused_clock() {
        let t0 = Instant::now();
        let mut gate = Admission::new(
            &Limits {
                rpm: NonZeroU64::new(600).into(),
                burst: Duration::from_millis(500),
                ..Limits::default()
            },
            t0,
        );
        let times = admit_all(&mut gate, 105, 0).await;
        // 5 at once (half a second of 600 rpm), then 595 every 60.5 s.
        assert!(times[..5].iter().all(|t| *t == t0));
        let expected = Duration::from_secs_f64(100.0 * 60.5 / 595.0);
        let took = times[104] - t0;
        assert!(
            took.abs_diff(expected) < Duration::from_millis(20),
            "{took:?} vs {expected:?}"
        );
        // Never two admissions closer than the interval after the burst.
        let interval = Duration::from_secs_f64(60.5 / 595.0);
        for w in times[5..].windows(2) {
            assert!(
                w[1] - w[0] >= interval - Duration::from_millis(1),
                "{:?}",
                w[1] - w[0]
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_30_second_pause_releases_no_herd_on_a_paused_clock() {
        let t0 = Instant::now();
        let limits = Limits {
            rpm: NonZeroU64::new(6000).into(),
            tpm: NonZeroU64::new(600_000).into(),
            burst: Duration::from_millis(500),
            ..Limits::default()
        };
        let mut gate = Admission::new(&limits, t0);
        admit_all(&mut gate, 50, 10).await;
        let until = Instant::now() + Duration::from_secs(30);
        gate.pause_until(until);
        let times = admit_all(&mut gate, 300, 10).await;
        assert!(times[0] > until);
        // In any second after the pause: at most 100 (6000/60), with no burst on top.
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 100,
                "{in_window} in the second after {:?}",
                *t - until
            );
        }
    }

    #[test]
    fn unlimited_admits_the_initial_flight_then_everything_once_answered() {
        let t0 = Instant::now();
        let mut a = Admission::new(&Limits::default(), t0);
        for _ in 0..INITIAL_FLIGHT {
            assert_eq!(a.try_admit(t0, 1_000_000), AdmitDecision::Now);
        }
        assert!(matches!(a.try_admit(t0, 1), AdmitDecision::Wait(_)));
        a.on_answer();
        for _ in 0..10_000 {
            assert_eq!(a.try_admit(t0, 1_000_000), AdmitDecision::Now);
        }
    }

    #[test]
    fn a_server_that_never_answers_holds_the_initial_flight_for_at_most_its_wait() {
        let t0 = Instant::now();
        let mut a = Admission::new(&Limits::default(), t0);
        for _ in 0..INITIAL_FLIGHT {
            assert_eq!(a.try_admit(t0, 1), AdmitDecision::Now);
        }
        assert!(matches!(
            a.try_admit(t0 + Duration::from_millis(999), 1),
            AdmitDecision::Wait(_)
        ));
        assert_eq!(a.try_admit(t0 + INITIAL_WAIT, 1), AdmitDecision::Now);
    }
}
