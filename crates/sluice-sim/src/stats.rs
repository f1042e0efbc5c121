//! What the simulator saw: counts by status, 429s by type, attempts per client request id,
//! the busiest 1 s and 60 s windows of admitted requests and tokens, and tokens counted.
//!
//! Tests read these (through [`crate::SimHandle::stats`] or `GET /sim/stats`) to prove a
//! client stayed within its limits and sent no duplicates.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::faults::Fault;

/// A snapshot of the simulator's statistics. Times are microseconds since the simulator
/// started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests received on the API endpoints (valid or not).
    pub received: u64,
    /// Responses by HTTP status (`"200"`, `"429"`...). A reset, a hang or a body cut off
    /// is not a status: see `faults`.
    pub by_status: BTreeMap<String, u64>,
    /// 429s by the budget that refused them (`requests`, `tokens`), plus
    /// `insufficient_quota` and `too_large`.
    pub rate_limited: BTreeMap<String, u64>,
    /// Faults injected, by kind (`503`, `reset`, `hang`...).
    pub faults: BTreeMap<String, u64>,
    /// Requests admitted past the rate limiter.
    pub admitted: u64,
    /// Prompt tokens counted in admitted requests.
    pub prompt_tokens: u64,
    /// Completion tokens generated.
    pub completion_tokens: u64,
    /// Tokens charged to the token budget (prompt plus `max_tokens` times `n`).
    pub charged_tokens: u64,
    /// The busiest windows of admitted requests and charged tokens.
    pub peak: PeakWindows,
    /// Receive times of each `X-Client-Request-Id` (microseconds since start); one entry
    /// per attempt. Empty when id recording is off.
    pub attempts: HashMap<String, Vec<u64>>,
    /// Requests in flight right now (admitted, not yet answered).
    pub in_flight: u64,
    /// The most requests in flight at once.
    pub max_in_flight: u64,
    /// Microseconds since the simulator started, when this snapshot was taken.
    #[serde(default)]
    pub uptime_us: u64,
    /// When the first request arrived (microseconds since start), if one has.
    #[serde(default)]
    pub first_received_us: Option<u64>,
}

impl SimStats {
    /// Responses with this status.
    pub fn status(&self, code: u16) -> u64 {
        self.by_status.get(&code.to_string()).copied().unwrap_or(0)
    }

    /// Injected faults of this kind.
    pub fn fault(&self, fault: Fault) -> u64 {
        self.faults.get(&fault.to_string()).copied().unwrap_or(0)
    }

    /// 429s of this type (`requests`, `tokens`, `insufficient_quota`, `too_large`).
    pub fn rate_limited(&self, kind: &str) -> u64 {
        self.rate_limited.get(kind).copied().unwrap_or(0)
    }

    /// All 429s.
    pub fn total_429(&self) -> u64 {
        self.status(429)
    }

    /// Client ids seen more than once, with their attempt counts.
    pub fn retried_ids(&self) -> BTreeMap<&str, usize> {
        self.attempts
            .iter()
            .filter(|(_, a)| a.len() > 1)
            .map(|(id, a)| (id.as_str(), a.len()))
            .collect()
    }
}

/// The most admitted in any sliding window ending at an admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PeakWindows {
    /// Requests in the busiest 1 s.
    pub requests_1s: u64,
    /// Tokens in the busiest 1 s.
    pub tokens_1s: u64,
    /// Requests in the busiest 60 s.
    pub requests_60s: u64,
    /// Tokens in the busiest 60 s.
    pub tokens_60s: u64,
}

/// Exact sliding-window sums over admissions: a queue of the last 60 s of
/// `(time, tokens)`, with a cursor where the last 1 s begins.
#[derive(Debug, Default)]
struct Windows {
    events: VecDeque<(Duration, u64)>,
    /// Index into `events` of the first event inside the 1 s window.
    one_s_start: usize,
    one_s: (u64, u64),
    sixty_s: (u64, u64),
    peak: PeakWindows,
}

impl Windows {
    const ONE_S: Duration = Duration::from_secs(1);
    const SIXTY_S: Duration = Duration::from_secs(60);

    /// Records an admission at `now` (non-decreasing) costing `tokens`.
    fn record(&mut self, now: Duration, tokens: u64) {
        self.events.push_back((now, tokens));
        self.one_s.0 += 1;
        self.one_s.1 += tokens;
        self.sixty_s.0 += 1;
        self.sixty_s.1 += tokens;
        // Windows are half-open, (now - w, now]: an event exactly w old has left.
        while let Some(&(t, tok)) = self.events.get(self.one_s_start) {
            if now.saturating_sub(t) < Self::ONE_S {
                break;
            }
            self.one_s.0 -= 1;
            self.one_s.1 -= tok;
            self.one_s_start += 1;
        }
        while let Some(&(t, tok)) = self.events.front() {
            if now.saturating_sub(t) < Self::SIXTY_S {
                break;
            }
            self.sixty_s.0 -= 1;
            self.sixty_s.1 -= tok;
            self.events.pop_front();
            self.one_s_start = self.one_s_start.saturating_sub(1);
        }
        let p = &mut self.peak;
        p.requests_1s = p.requests_1s.max(self.one_s.0);
        p.tokens_1s = p.tokens_1s.max(self.one_s.1);
        p.requests_60s = p.requests_60s.max(self.sixty_s.0);
        p.tokens_60s = p.tokens_60s.max(self.sixty_s.1);
    }
}

#[derive(Debug, Default)]
struct Guarded {
    by_status: BTreeMap<u16, u64>,
    rate_limited: BTreeMap<&'static str, u64>,
    faults: BTreeMap<Fault, u64>,
    windows: Windows,
    attempts: HashMap<String, Vec<u64>>,
}

/// The live recorder behind [`SimStats`]: counters on atomics, the rest behind one lock
/// held for a few instructions per request.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    received: AtomicU64,
    admitted: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    charged_tokens: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// One more than the first arrival's time in microseconds; 0 while none arrived.
    first_received_us: AtomicU64,
    guarded: Mutex<Guarded>,
}

impl Recorder {
    /// Counts a request on arrival and returns its arrival number (0-based).
    pub(crate) fn received(&self, now: Duration, client_id: Option<&str>, record_id: bool) -> u64 {
        let seq = self.received.fetch_add(1, Ordering::Relaxed);
        if seq == 0 {
            self.first_received_us
                .store(now.as_micros() as u64 + 1, Ordering::Relaxed);
        }
        if record_id && let Some(id) = client_id {
            let mut g = self.lock();
            match g.attempts.get_mut(id) {
                Some(times) => times.push(now.as_micros() as u64),
                None => {
                    g.attempts
                        .insert(id.to_owned(), vec![now.as_micros() as u64]);
                }
            }
        }
        seq
    }

    pub(crate) fn admitted(&self, now: Duration, prompt_tokens: u64, charged: u64) {
        self.admitted.fetch_add(1, Ordering::Relaxed);
        self.prompt_tokens
            .fetch_add(prompt_tokens, Ordering::Relaxed);
        self.charged_tokens.fetch_add(charged, Ordering::Relaxed);
        self.lock().windows.record(now, charged);
    }

    pub(crate) fn completion(&self, tokens: u64) {
        self.completion_tokens.fetch_add(tokens, Ordering::Relaxed);
    }

    pub(crate) fn status(&self, status: u16) {
        *self.lock().by_status.entry(status).or_default() += 1;
    }

    pub(crate) fn rate_limited(&self, why: &'static str) {
        let mut g = self.lock();
        *g.by_status.entry(429).or_default() += 1;
        *g.rate_limited.entry(why).or_default() += 1;
    }

    pub(crate) fn fault(&self, fault: Fault) {
        *self.lock().faults.entry(fault).or_default() += 1;
    }

    /// Marks a request in flight until the guard drops.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(self)
    }

    pub(crate) fn snapshot(&self, now: Duration) -> SimStats {
        let g = self.lock();
        SimStats {
            received: self.received.load(Ordering::Relaxed),
            by_status: g
                .by_status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            rate_limited: g
                .rate_limited
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            faults: g.faults.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            admitted: self.admitted.load(Ordering::Relaxed),
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.completion_tokens.load(Ordering::Relaxed),
            charged_tokens: self.charged_tokens.load(Ordering::Relaxed),
            peak: g.windows.peak,
            attempts: g.attempts.clone(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
            uptime_us: now.as_micros() as u64,
            first_received_us: match self.first_received_us.load(Ordering::Relaxed) {
                0 => None,
                t => Some(t - 1),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Guarded> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // that matters more than losing the statistics, so poisoning is ignored.
        self.guarded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Decrements the in-flight count when dropped, whatever path the request took.
pub(crate) struct InFlight<'a>(&'a Recorder);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn windows_find_the_busiest_second_exactly() {
        let mut w = Windows::default();
        for t in [0, 100, 200, 999, 1000, 1500, 1999] {
            w.record(ms(t), 10);
        }
        // (0.999, 1.999] holds 999, 1000, 1500, 1999 = 4; (0, 0.999] + 0 holds 4 too.
        assert_eq!(w.peak.requests_1s, 4);
        assert_eq!(w.peak.tokens_1s, 40);
        assert_eq!(w.peak.requests_60s, 7);
    }

    #[test]
    fn sixty_second_window_forgets_old_events() {
        let mut w = Windows::default();
        for s in 0..120 {
            w.record(Duration::from_secs(s), 1);
        }
        assert_eq!(w.peak.requests_60s, 60);
        assert_eq!(w.peak.requests_1s, 1);
        assert!(w.events.len() <= 61);
    }

    #[test]
    fn recorder_counts_attempts_per_id() {
        let r = Recorder::default();
        r.received(ms(1), Some("a"), true);
        r.received(ms(2), Some("a"), true);
        r.received(ms(3), Some("b"), true);
        r.received(ms(4), None, true);
        let s = r.snapshot(ms(5));
        assert_eq!(s.received, 4);
        assert_eq!(s.first_received_us, Some(1000));
        assert_eq!(s.uptime_us, 5000);
        assert_eq!(s.attempts["a"], vec![1000, 2000]);
        assert_eq!(s.retried_ids().get("a"), Some(&2));
        assert_eq!(s.retried_ids().get("b"), None);
    }
}
