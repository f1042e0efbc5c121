//! What refusals say about the rate: the part of the server model that weighs each 429
//! (or 529) as evidence, so that one rule serves every server (docs/ADAPTIVE.md).
//!
//! Answers are counted by the *epoch* their request was sent in; an epoch begins at every
//! deliberate change of rate (a decrease, or undoing one). A refusal is then judged by
//! what its own headers state and by the share of refusals against the rate:
//!
//! - the headers say a budget is **spent**, or refusals are a **storm** (at least half
//!   of the last second's answers): congestion; everyone pauses and slows.
//! - otherwise, while the share of refusals is not known to be unrelated to the rate,
//!   a refusal the headers do not vouch for (or too many refusals despite them) starts a
//!   **probe**: the rate is lowered once, and the answers to requests sent after that are
//!   compared with those before. A share that falls with the rate is congestion (the
//!   lower rate stays, AIMD carries on); a share that does not fall is **background**:
//!   refusals that cost only their own request's wait, and the rate goes back.
//! - a refusal while a probe gathers its evidence, or within the background share, is
//!   **isolated**: only that request waits.
//!
//! Nothing here reads a clock: every function is given `now` and the send time.

use std::time::Duration;

use tokio::time::Instant;

/// What a refusal's own rate-limit headers state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stated {
    /// A budget it names is used up (nothing, or less than the request, remains).
    Spent,
    /// Budget remains: the refusal was not for the budget the headers describe.
    Remains,
    /// No remaining budget is stated.
    Silent,
}

/// What the evidence says of one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Not about the rate: only the refused request waits.
    Isolated,
    /// Perhaps the rate: lower it once and compare (no pause).
    Probe,
    /// The rate is too high for the server: everyone pauses and slows.
    Congestion,
    /// A probe showed the share of refusals does not fall with the rate: the decrease is
    /// undone and only this request waits.
    Background,
    /// A probe showed the share falls with the rate: the lower rate stays.
    Confirmed,
    /// Refusals are too large a share to be worth retrying, whatever their cause (above
    /// [`MAX_BACKGROUND`] beyond chance), or their share rose after a probe's decrease:
    /// lower the rate again, without pausing everyone.
    Overload,
}

/// What the refusals so far have shown of their relation to the rate: the belief a new
/// refusal is weighed against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Belief {
    /// Nothing yet.
    Unknown,
    /// Their share falls when the rate does (or the budget was spent, or they were too
    /// many): each refusal in a new epoch is suspect.
    Rate,
    /// Their share (this one) held when the rate fell: refusals within it are isolated.
    Background(f64),
}

/// Refusals make a storm when they are at least this share of the last second's answers
/// (and at least [`STORM_MIN`]): a server whose budget is shut refuses nearly everything,
/// and no background share that high is worth running into.
pub const STORM_SHARE: f64 = 0.25;
/// The fewest refusals that make a storm.
pub const STORM_MIN: u32 = 10;
/// A probe decides once the epoch after its decrease has this many answers and, at the
/// share before it, at least [`PROBE_REFUSALS`] refusals would be expected: enough that a
/// share which did not fall is told from one that did (docs/ADAPTIVE.md, "Probes").
pub const PROBE_ANSWERS: u32 = 100;
/// See [`PROBE_ANSWERS`].
pub const PROBE_REFUSALS: f64 = 20.0;
/// A share that did not fall beyond chance is background only if it also held to at
/// least this part of the share before: a share that fell, if not yet beyond chance,
/// (two jobs on one key, one of them speeding up as the other slows) waits for more.
pub const BACKGROUND_HOLDS: f64 = 0.75;
/// The highest share of refusals taken for background: above it, retrying every refused
/// request costs more than a lower rate would, so the lower rate stays. (The scattered
/// 429s of real providers are a few per cent; the matrix plays up to 10 %.)
pub const MAX_BACKGROUND: f64 = 0.15;
/// The fewest answers an epoch needs before its share can show an overload (the normal
/// approximation of [`OVERLOAD_Z`] is poor below it).
pub const OVERLOAD_ANSWERS: u32 = 20;
/// The fewest answers at the current rate before a refusal can start a probe: the
/// baseline the probe compares with.
pub const BASELINE_ANSWERS: u32 = 100;
/// The z above which an epoch's share is taken to be over [`MAX_BACKGROUND`].
pub const OVERLOAD_Z: f64 = 2.33;
/// The most answers a probe waits for; undecided by then, the lower rate stays.
pub const PROBE_MAX_ANSWERS: u32 = 1000;
/// One-sided z above which a lower share after a decrease counts as a fall (5 %).
pub const FALL_Z: f64 = 2.33;
/// Where the server vouches that budget remains, a probe starts only once refusals are
/// more than this share of an epoch's answers (over at least [`PROBE_ANSWERS`]).
pub const VOUCHED_SUSPECT: f64 = 0.1;

/// Answers to the requests sent within one epoch.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    since: Instant,
    answers: u32,
    refused: u32,
}

impl Epoch {
    fn new(since: Instant) -> Self {
        Epoch {
            since,
            answers: 0,
            refused: 0,
        }
    }

    fn share(&self) -> f64 {
        if self.answers == 0 {
            0.0
        } else {
            f64::from(self.refused) / f64::from(self.answers)
        }
    }
}

/// The refusal evidence of one admission gate.
#[derive(Debug, Clone)]
pub struct Evidence {
    origin: Instant,
    current: Epoch,
    /// The epoch before a probe's decrease, while the probe runs.
    before: Option<Epoch>,
    /// What the refusals so far have shown of their relation to the rate.
    belief: Belief,
    /// Answers and refusals by the second they came in: this one and the one before.
    recent: [(u64, u32, u32); 2],
}

impl Evidence {
    /// No evidence yet, at `now`.
    pub fn new(now: Instant) -> Self {
        Evidence {
            origin: now,
            current: Epoch::new(now),
            before: None,
            belief: Belief::Unknown,
            recent: [(0, 0, 0); 2],
        }
    }

    /// The share of refusals known not to depend on the rate, if a probe found one.
    pub fn background(&self) -> Option<f64> {
        match self.belief {
            Belief::Background(b) => Some(b),
            _ => None,
        }
    }

    /// What the refusals so far have shown of their relation to the rate.
    pub fn belief(&self) -> Belief {
        self.belief
    }

    /// Whether a probe is gathering its evidence.
    pub fn probing(&self) -> bool {
        self.before.is_some()
    }

    /// A success of a request sent at `sent`, answered at `now`.
    pub fn on_success(&mut self, now: Instant, sent: Instant) {
        self.count(now, sent, false);
    }

    /// A refusal of a request sent at `sent`, answered at `now`, whose headers state
    /// `stated`: what it means. The caller acts on the judgement and, for every one but
    /// `Isolated`, tells [`Evidence::rate_changed`] when it changed the rate.
    pub fn on_refusal(&mut self, now: Instant, sent: Instant, stated: Stated) -> Judgement {
        let storm = self.count(now, sent, true);
        if stated == Stated::Spent || storm {
            return Judgement::Congestion;
        }
        if let Some(before) = self.before {
            return self.resolve(before).unwrap_or(Judgement::Isolated);
        }
        if overloaded(self.current) {
            return Judgement::Overload;
        }
        // Where refusals are known to follow the rate, a short baseline is enough.
        let baseline = if self.belief == Belief::Rate {
            OVERLOAD_ANSWERS
        } else {
            BASELINE_ANSWERS
        };
        if self.current.answers < baseline {
            // Too few answers at this rate to compare a lower one with: a probe would
            // learn nothing (a storm or a spent budget still counts, above).
            return Judgement::Isolated;
        }
        let suspect = match (self.belief, stated) {
            // Nothing vouches for it and nothing is known: the classic decrease, tested.
            (Belief::Unknown, Stated::Silent) => true,
            (Belief::Unknown, _) => self.exceeds(VOUCHED_SUSPECT),
            // Refusals were found to follow the rate: each new one is suspect (one per
            // epoch, since a probe opens a new one).
            (Belief::Rate, _) => true,
            (Belief::Background(b), _) => self.exceeds(excess_limit(b)),
        };
        if suspect {
            Judgement::Probe
        } else {
            Judgement::Isolated
        }
    }

    /// Whether a success at this point settles a running probe: a decision can come with
    /// any answer, not only a refusal (a share that fell to nothing brings none).
    pub fn settle_probe(&mut self) -> Option<Judgement> {
        let before = self.before?;
        self.resolve(before)
    }

    /// The caller changed the rate at `now` for `judgement`: a new epoch begins.
    pub fn rate_changed(&mut self, now: Instant, judgement: Judgement) {
        if matches!(
            judgement,
            Judgement::Confirmed | Judgement::Overload | Judgement::Congestion
        ) {
            self.belief = Belief::Rate;
        }
        match judgement {
            Judgement::Probe => self.before = Some(self.current),
            Judgement::Congestion
            | Judgement::Overload
            | Judgement::Confirmed
            | Judgement::Background => self.before = None,
            Judgement::Isolated => return,
        }
        self.current = Epoch::new(now);
        self.recent = [(0, 0, 0); 2];
    }

    /// Whether the current epoch's share of refusals is above `limit`, over enough
    /// answers to tell.
    fn exceeds(&self, limit: f64) -> bool {
        self.current.answers >= PROBE_ANSWERS && self.current.share() > limit
    }

    /// A probe's verdict, once the epoch after its decrease holds enough answers.
    fn resolve(&mut self, before: Epoch) -> Option<Judgement> {
        let after = self.current;
        let (p_before, p_after) = (before.share(), after.share());
        let expected = f64::from(after.answers) * p_before;
        // A share that rose after the decrease: the rate is still too high (the decrease
        // was not enough), which is congestion, decided as soon as it is clear.
        let rose = after.answers >= BASELINE_ANSWERS
            && after.refused >= STORM_MIN
            && z_fall(after, before) >= FALL_Z;
        if rose || overloaded(after) {
            // The probe is over whether or not the caller can decrease again now.
            self.before = None;
            return Some(Judgement::Overload);
        }
        let fell = z_fall(before, after) >= FALL_Z;
        // A share that fell to half or less is a fall as soon as it is seen over the
        // probe's answers; otherwise the test needs the refusals it expects.
        let decided = after.answers >= PROBE_ANSWERS
            && (expected >= PROBE_REFUSALS || (fell && p_after <= 0.5 * p_before));
        if decided && fell {
            return Some(Judgement::Confirmed);
        }
        let pooled = f64::from(before.refused + after.refused)
            / f64::from((before.answers + after.answers).max(1));
        if decided && p_after >= BACKGROUND_HOLDS * p_before && pooled <= MAX_BACKGROUND {
            // Pooled over both epochs: neither rate changed the share.
            self.belief = Belief::Background(pooled);
            return Some(Judgement::Background);
        }
        // Neither clearly: keep gathering, and past the longest probe keep the lower
        // rate (the side of caution: never faster than the server allows).
        (after.answers >= PROBE_MAX_ANSWERS).then_some(Judgement::Confirmed)
    }

    /// Counts an answer in its epoch (by when it was sent) and, if it belongs to the
    /// current epoch, in the recent seconds (by when it came); says whether the current
    /// epoch's recent refusals are a storm. (Refusals of requests sent at a rate already
    /// lowered are not evidence against the lower rate: one storm is one decrease.)
    fn count(&mut self, now: Instant, sent: Instant, refused: bool) -> bool {
        if sent < self.current.since {
            if let Some(b) = self.before.as_mut().filter(|b| sent >= b.since) {
                b.answers += 1;
                b.refused += u32::from(refused);
            }
            return false;
        }
        self.current.answers += 1;
        self.current.refused += u32::from(refused);
        let second = now.saturating_duration_since(self.origin).as_secs();
        let [previous, current] = &mut self.recent;
        if current.0 != second {
            *previous = if current.0 + 1 == second {
                *current
            } else {
                (0, 0, 0)
            };
            *current = (second, 0, 0);
        }
        current.1 += 1;
        current.2 += u32::from(refused);
        // The last second: all of this one and the part of the one before that falls in it.
        let into = now.saturating_duration_since(self.origin + Duration::from_secs(second));
        let weight = 1.0 - into.as_secs_f64().min(1.0);
        let answers = f64::from(current.1) + weight * f64::from(previous.1);
        let refusals = f64::from(current.2) + weight * f64::from(previous.2);
        refusals >= f64::from(STORM_MIN) && refusals >= STORM_SHARE * answers
    }
}

/// With a background share `b`, how high the share may go before the rate is suspected
/// again: half as much again and two points, about two standard errors of a fair sample
/// of the background over [`PROBE_ANSWERS`] answers, so its noise is not taken for a
/// change while a limit met on top of it soon is.
fn excess_limit(b: f64) -> f64 {
    (1.5 * b + 0.02).min(STORM_SHARE)
}

/// Whether an epoch's refusals are above [`MAX_BACKGROUND`] beyond chance (one-sided at
/// [`OVERLOAD_Z`], about 1 %: the test is repeated as answers come).
fn overloaded(e: Epoch) -> bool {
    if e.refused < STORM_MIN || e.answers < OVERLOAD_ANSWERS {
        return false;
    }
    let n = f64::from(e.answers);
    let se = (MAX_BACKGROUND * (1.0 - MAX_BACKGROUND) / n).sqrt();
    (e.share() - MAX_BACKGROUND) / se >= OVERLOAD_Z
}

/// How far the share of refusals in `after` is below that in `before`, in standard errors
/// (a two-proportion z statistic; 0 where either is empty or neither has a refusal).
/// Compared with [`FALL_Z`], a one-sided test at 5 %.
fn z_fall(before: Epoch, after: Epoch) -> f64 {
    let (n1, n2) = (f64::from(before.answers), f64::from(after.answers));
    if n1 == 0.0 || n2 == 0.0 {
        return 0.0;
    }
    let pooled = f64::from(before.refused + after.refused) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return 0.0;
    }
    (before.share() - after.share()) / se
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// `answers` answers sent and answered at 1 ms steps from `from`, every `every`-th
    /// refused (0: none), with `stated` headers.
    fn feed(
        e: &mut Evidence,
        t0: Instant,
        from: u64,
        answers: u64,
        every: u64,
        stated: Stated,
    ) -> Vec<Judgement> {
        let mut out = Vec::new();
        for i in 0..answers {
            let t = at(t0, from + i);
            if every > 0 && i % every == every - 1 {
                out.push(e.on_refusal(t, t, stated));
            } else {
                e.on_success(t, t);
                if let Some(j) = e.settle_probe() {
                    e.rate_changed(t, j);
                    out.push(j);
                }
            }
        }
        out
    }

    #[test]
    fn a_silent_refusal_starts_a_probe_and_a_steady_share_is_found_to_be_background() {
        let t0 = Instant::now();
        let mut e = Evidence::new(t0);
        // 5 % refused, whatever the rate: 1 in 20, spread out.
        // The first refusals are isolated until a baseline of answers is in.
        let first = feed(&mut e, t0, 0, BASELINE_ANSWERS as u64, 20, Stated::Silent);
        assert_eq!(first.last(), Some(&Judgement::Probe), "{first:?}");
        assert!(
            first[..first.len() - 1]
                .iter()
                .all(|j| *j == Judgement::Isolated)
        );
        let from = BASELINE_ANSWERS as u64;
        e.rate_changed(at(t0, from), Judgement::Probe);
        let after = feed(&mut e, t0, from, 2000, 20, Stated::Silent);
        let decision = after.iter().find(|j| **j != Judgement::Isolated);
        assert_eq!(decision, Some(&Judgement::Background), "{after:?}");
        assert!((e.background().unwrap() - 0.05).abs() < 0.01);
    }

    #[test]
    fn a_share_that_falls_with_the_rate_is_confirmed_as_congestion() {
        let t0 = Instant::now();
        let mut e = Evidence::new(t0);
        // 20 % refused before the decrease, none after.
        feed(&mut e, t0, 0, 200, 5, Stated::Remains);
        assert_eq!(
            e.on_refusal(at(t0, 200), at(t0, 200), Stated::Remains),
            Judgement::Probe
        );
        e.rate_changed(at(t0, 201), Judgement::Probe);
        let after = feed(&mut e, t0, 201, 200, 0, Stated::Remains);
        assert_eq!(after, [Judgement::Confirmed]);
        assert!(!e.probing() && e.background().is_none());
    }

    #[test]
    fn vouched_refusals_are_isolated_until_they_are_a_large_share() {
        let t0 = Instant::now();
        let mut e = Evidence::new(t0);
        let sparse = feed(&mut e, t0, 0, 1000, 20, Stated::Remains);
        assert!(
            sparse.iter().all(|j| *j == Judgement::Isolated),
            "{sparse:?}"
        );
        let mut e = Evidence::new(t0);
        let dense = feed(&mut e, t0, 0, 1000, 8, Stated::Remains);
        assert_eq!(
            dense.iter().find(|j| **j != Judgement::Isolated),
            Some(&Judgement::Probe),
            "{dense:?}"
        );
    }

    #[test]
    fn a_share_far_above_any_background_is_an_overload_without_a_probe() {
        let t0 = Instant::now();
        let mut e = Evidence::new(t0);
        // Five answers a second, one in three refused: too slow for a storm.
        let judged: Vec<_> = (0..40u64)
            .map(|i| {
                let t = at(t0, i * 200);
                if i % 3 == 2 {
                    e.on_refusal(t, t, Stated::Remains)
                } else {
                    e.on_success(t, t);
                    Judgement::Isolated
                }
            })
            .collect();
        let first = judged.iter().position(|j| *j != Judgement::Isolated);
        assert_eq!(
            first.map(|i| judged[i]),
            Some(Judgement::Overload),
            "{judged:?}"
        );
        assert!(first.unwrap() >= OVERLOAD_ANSWERS as usize - 1);
    }

    #[test]
    fn spent_budgets_and_storms_are_congestion_whatever_is_known() {
        let t0 = Instant::now();
        let mut e = Evidence::new(t0);
        assert_eq!(e.on_refusal(t0, t0, Stated::Spent), Judgement::Congestion);
        let mut e = Evidence::new(t0);
        for i in 0..20 {
            e.on_success(at(t0, i), at(t0, i));
        }
        let judged: Vec<_> = (0..STORM_MIN as u64)
            .map(|i| e.on_refusal(at(t0, 20 + i), at(t0, 20 + i), Stated::Remains))
            .collect();
        assert_eq!(judged.last(), Some(&Judgement::Congestion), "{judged:?}");
        assert!(
            judged[..judged.len() - 1]
                .iter()
                .all(|j| *j != Judgement::Congestion)
        );
    }

    #[test]
    fn answers_to_requests_sent_before_a_decrease_count_for_the_epoch_before() {
        let t0 = Instant::now();
        let mut e = Evidence::new(t0);
        feed(&mut e, t0, 0, 100, 0, Stated::Silent);
        assert_eq!(
            e.on_refusal(at(t0, 100), at(t0, 100), Stated::Silent),
            Judgement::Probe
        );
        e.rate_changed(at(t0, 101), Judgement::Probe);
        // Refusals of requests sent earlier come back after the decrease: not evidence
        // about the lower rate.
        for i in 0..10 {
            assert_eq!(
                e.on_refusal(at(t0, 2000 + i * 1500), at(t0, 50), Stated::Silent),
                Judgement::Isolated
            );
        }
        assert_eq!(e.current.answers, 0);
    }
}
