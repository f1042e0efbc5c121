//! Rate limits as real servers and gateways enforce them, on tokio's paused clock (the
//! simulator and the client share it, so a fixed clock minute passes in milliseconds):
//! a gateway whose minute is already used, sparse 429s, the silence after a pause, and
//! the recovery after a decrease.

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use sluice::limits::{Admission, AdmitDecision, Limits, Refusal, Stated};
use sluice::{BatchResult, Client, Request, RetryPolicy};
use sluice_sim::{Fault, Latency, Sim, SimBuilder, SimHandle, Window};
use tokio::time::Instant;

mod common;
use common::arrivals;

async fn spawn(b: SimBuilder) -> SimHandle {
    b.build().unwrap().spawn().await.unwrap()
}

fn requests(n: usize) -> Vec<Request> {
    (0..n)
        .map(|i| {
            Request::chat(
                format!("r{i}"),
                &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("q {i}")}], "max_tokens": 4}),
            )
        })
        .collect()
}

async fn run(client: &Client, n: usize) -> (Vec<BatchResult>, Duration) {
    let start = Instant::now();
    let results: Vec<BatchResult> = client
        .run(futures::stream::iter(requests(n)))
        .collect()
        .await;
    (results, start.elapsed())
}

fn latency(ms: u64) -> Latency {
    Latency {
        ttft: Duration::from_millis(ms),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }
}

#[tokio::test(start_paused = true)]
async fn a_gateway_minute_already_used_loses_nothing_and_learns_a_limit() {
    // Limit 30 a clock minute, 20 of each minute used by another client; no rate-limit
    // headers and the delay only as a prefixed header. No limit given to sluice.
    let sim = spawn(
        Sim::builder()
            .rpm(NonZeroU64::new(30))
            .window(Window::FixedMinute)
            .external_load(20)
            .send_headers(false)
            .retry_after_prefix(Some("x-upstream".into()))
            .latency(latency(20)),
    )
    .await;
    let client = Client::builder().base_url(sim.base_url()).build().unwrap();
    let n = 30;
    let (results, took) = run(&client, n).await;
    let lost = results.iter().filter(|r| r.outcome.is_err()).count();
    assert_eq!(lost, 0, "no request is written off as rate-limited");
    assert_eq!(results.len(), n);
    let refused = sim.stats().total_429() as usize;
    assert!(refused < 3 * n, "{refused} 429s for {n} requests");
    // 10 a minute are free: the last 10 can go in the third minute (at 120 s).
    let ideal = Duration::from_secs(120);
    assert!(
        took <= ideal + Duration::from_secs(90),
        "{took:?}, ideal {ideal:?}"
    );
    let learned = client.stats();
    assert_eq!(learned.ok as usize, n);
}

#[tokio::test(start_paused = true)]
async fn a_request_refused_for_longer_than_the_rate_limited_wait_is_written_off() {
    let sim = spawn(
        Sim::builder()
            .rpm(NonZeroU64::new(30))
            .window(Window::FixedMinute)
            .external_load(30)
            .latency(latency(5)),
    )
    .await;
    let client = Client::builder()
        .base_url(sim.base_url())
        .retry(RetryPolicy {
            max_attempts: std::num::NonZeroU32::new(2).unwrap(),
            max_rate_limited_wait: Duration::from_secs(150),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let (results, took) = run(&client, 3).await;
    assert!(results.iter().all(|r| {
        r.outcome
            .as_ref()
            .is_err_and(|e| e.kind == sluice::ErrorKind::RateLimited)
    }));
    // 429s have their own allowance: past the 2 attempts errors get, and while a refusal
    // shuts the window for everyone, one request at a time probes it.
    assert!(results.iter().any(|r| r.attempts > 2));
    assert!(
        sim.stats().total_429() < 20,
        "{} 429s",
        sim.stats().total_429()
    );
    assert!(
        took >= Duration::from_secs(150) && took < Duration::from_secs(240),
        "{took:?}"
    );
}

/// Requests a second a run achieves against a server with `faults`: 3,000 a minute
/// allowed, about 600 a minute sent (four at a time, 400 ms each).
async fn throughput(faults: f64) -> f64 {
    let mut b = Sim::builder()
        .rpm(NonZeroU64::new(3000))
        .latency(latency(400));
    if faults > 0.0 {
        b = b.fault(Fault::Status(429), faults).seed(11);
    }
    let sim = spawn(b).await;
    let client = Client::builder()
        .base_url(sim.base_url())
        .concurrency(NonZeroUsize::new(4).unwrap())
        .build()
        .unwrap();
    let n = 300;
    let (results, took) = run(&client, n).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    if faults > 0.0 {
        assert!(sim.stats().rate_limited("injected") > 5, "faults fired");
    }
    n as f64 / took.as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn sparse_429s_do_not_collapse_the_rate() {
    let clean = throughput(0.0).await;
    let sparse = throughput(0.05).await;
    assert!(
        sparse >= 0.85 * clean,
        "{sparse:.2} requests/s with 5 % 429s, {clean:.2} without"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_allows_a_minute_burst_is_paced_at_its_stated_rate_without_429s() {
    // 30 a minute, a whole minute's burst allowed. Told nothing, the run sends its first
    // flight, learns the limit from the first answer's headers (charged with what is in
    // flight) and keeps to it: no opening burst that spends the stated remaining budget,
    // no 429, and no silence longer than one interval at the stated rate.
    let sim = spawn(
        Sim::builder()
            .rpm(NonZeroU64::new(30))
            .burst(Duration::from_secs(60))
            .latency(latency(10)),
    )
    .await;
    let client = Client::builder().base_url(sim.base_url()).build().unwrap();
    let (results, _) = run(&client, 60).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    assert_eq!(sim.stats().total_429(), 0);
    let times = arrivals(&sim);
    let widest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    let interval = 60.0 / 30.0;
    assert!(
        widest <= interval + 0.1,
        "a gap of {widest:.2} s in sending"
    );
    // Paced, not burst: the 60 take at least the 44 intervals after the first flight.
    let span = times.last().unwrap() - times[0];
    assert!(span >= 40.0 * interval, "{span:.1} s for 60 at 30 a minute");
}

#[tokio::test(start_paused = true)]
async fn after_a_forced_decrease_the_rate_is_back_at_90_percent_within_10_s() {
    let t0 = Instant::now();
    let mut gate = Admission::new(
        &Limits {
            rpm: NonZeroU64::new(600).into(),
            ..Limits::default()
        },
        t0,
    );
    let mut admitted = Vec::new();
    let mut forced = None;
    while Instant::now() < t0 + Duration::from_secs(30) {
        let now = Instant::now();
        if forced.is_none() && now >= t0 + Duration::from_secs(10) {
            let refusal = gate.on_limited(now, now, Stated::Spent);
            assert_eq!(refusal, Refusal::Congestion { decreased: true });
            gate.pause_until(now + Duration::from_secs(1));
            forced = Some(now + Duration::from_secs(1));
        }
        match gate.try_admit(now, 0) {
            AdmitDecision::Now => {
                admitted.push(now);
                gate.on_success(now, now);
            }
            AdmitDecision::Wait(at) => tokio::time::sleep_until(at).await,
            AdmitDecision::Never { .. } => unreachable!(),
        }
    }
    let resumed = forced.expect("forced");
    let rate_at = |from: Instant| {
        admitted
            .iter()
            .filter(|t| **t >= from && **t < from + Duration::from_secs(1))
            .count() as f64
    };
    let full = 600.0 / 60.0;
    let back = (0..10)
        .map(|s| resumed + Duration::from_secs(s))
        .find(|&from| rate_at(from) >= 0.9 * full);
    assert!(
        back.is_some(),
        "not back at 90 % within 10 s of the pause's end"
    );
}

/// Time a run of `n` requests takes against a server that allows a whole minute's burst
/// (60 a minute), told `rpm` or nothing, and the 429s it drew.
async fn against_a_minute_burst_server(rpm: Option<u64>, n: usize) -> (Duration, u64) {
    let sim = spawn(
        Sim::builder()
            .rpm(NonZeroU64::new(60))
            .burst(Duration::from_secs(60))
            .latency(latency(20)),
    )
    .await;
    let client = Client::builder()
        .base_url(sim.base_url())
        .limits(Limits {
            rpm: rpm.and_then(NonZeroU64::new).into(),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let (results, took) = run(&client, n).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    (took, sim.stats().total_429())
}

#[tokio::test(start_paused = true)]
async fn told_the_right_limit_a_run_keeps_to_it_and_takes_at_most_a_minute_longer() {
    let (told, told_429) = against_a_minute_burst_server(Some(60), 100).await;
    let (untold, _) = against_a_minute_burst_server(None, 100).await;
    assert_eq!(told_429, 0, "a stated limit draws no 429");
    // Kept to one a second from the first request: 100 take about 100 s, where the
    // server would have allowed its minute's burst at once (accepted: at most a minute
    // more than a run told nothing).
    assert!(told >= Duration::from_secs(95), "{told:?}");
    assert!(
        told <= untold + Duration::from_secs(60),
        "told: {told:?}, untold: {untold:?}"
    );
}
