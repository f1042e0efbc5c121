//! Adaptive control against the simulator in memory, on paused time: header sync, AIMD, two
//! jobs on one key, pacing, priorities, adaptive concurrency.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

mod common;

use common::{arrivals_in_memory, arrivals_with_prefix, in_memory, retry_after_client};
use futures::StreamExt;
use serde_json::json;
use sluice::{Backoff, BatchResult, Client, Limits, Request, RetryPolicy};
use sluice_sim::{InMemorySim, Latency, Sim, SimBuilder};

fn nz(n: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(n)
}

/// The simulator in memory: these tests run on paused time, exact and fast.
fn simulator(b: SimBuilder) -> InMemorySim {
    b.build().unwrap().in_memory()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: NonZeroU32::new(30).unwrap(),
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2)).unwrap(),
        ..RetryPolicy::default()
    }
}

fn requests(prefix: &str, n: usize) -> Vec<Request> {
    (0..n)
        .map(|i| {
            Request::chat(
                format!("{prefix}-{i}"),
                &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("q {i}")}], "max_tokens": 4}),
            )
        })
        .collect()
}

async fn run(client: &Client, reqs: Vec<Request>) -> Vec<BatchResult> {
    client.run(futures::stream::iter(reqs)).collect().await
}

/// Requests a second between `from` and `to` seconds after the first arrival.
fn rate_between(times: &[f64], from: f64, to: f64) -> f64 {
    let start = times[0];
    times
        .iter()
        .filter(|t| **t - start >= from && **t - start < to)
        .count() as f64
        / (to - from)
}

#[tokio::test(start_paused = true)]
async fn told_twice_the_limit_it_follows_the_headers_with_no_429_after_the_first_responses() {
    // Real: 12,000 rpm (200/s). Told: 24,000.
    let sim = simulator(Sim::builder().rpm(nz(12_000)).latency(Latency {
        ttft: Duration::from_millis(10),
        per_token: Duration::ZERO,
        jitter: 0.3,
    }));
    let client = in_memory(&sim)
        .retry(policy())
        .concurrency(NonZeroUsize::new(32).unwrap())
        .limits(Limits {
            rpm: nz(24_000).into(),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let results = run(&client, requests("w", 1500)).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let stats = sim.stats();
    // 429s can only come from the opening burst, before the first answer told the limit.
    assert!(stats.total_429() <= 32, "{} 429s", stats.total_429());
    let times = arrivals_in_memory(&sim);
    let steady = rate_between(&times, 1.0, times.last().unwrap() - times[0]);
    assert!(steady >= 0.95 * 200.0, "{steady:.1} requests/s of 200");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_limit_without_headers_is_found_by_aimd() {
    // Hidden: 3,000 rpm (50/s), no headers.
    let sim = simulator(
        Sim::builder()
            .rpm(nz(3000))
            .send_headers(false)
            .latency(Latency {
                ttft: Duration::from_millis(10),
                per_token: Duration::ZERO,
                jitter: 0.3,
            }),
    );
    let client = in_memory(&sim)
        .retry(policy())
        .concurrency(NonZeroUsize::new(32).unwrap())
        .limits(Limits {
            rpm: sluice::limits::Budget::auto(),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let n = 1000;
    let results = run(&client, requests("u", n)).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let stats = sim.stats();
    let share_429 = stats.total_429() as f64 / stats.received as f64;
    assert!(
        share_429 < 0.02,
        "{} 429s of {} ({:.1}%)",
        stats.total_429(),
        stats.received,
        share_429 * 100.0
    );
    let times = arrivals_in_memory(&sim);
    let end = times.last().unwrap() - times[0];
    let converged = rate_between(&times, end / 2.0, end);
    assert!(
        converged >= 0.9 * 50.0,
        "{converged:.1} requests/s of 50 in the second half"
    );
}

#[tokio::test(start_paused = true)]
async fn two_jobs_on_one_key_stay_within_the_limit_and_neither_starves() {
    // 6,000 rpm (100/s) shared; each job believes it has all of it.
    let sim = simulator(Sim::builder().rpm(nz(6000)).latency(Latency {
        ttft: Duration::from_millis(10),
        per_token: Duration::ZERO,
        jitter: 0.3,
    }));
    let job = |name: &'static str| {
        let client = in_memory(&sim)
            .retry(policy())
            .concurrency(NonZeroUsize::new(16).unwrap())
            .limits(Limits {
                rpm: nz(6000).into(),
                ..Limits::default()
            })
            .build()
            .unwrap();
        async move {
            let started = tokio::time::Instant::now();
            let results = run(&client, requests(name, 500)).await;
            (results, started.elapsed())
        }
    };
    let ((a, ta), (b, tb)) = tokio::join!(job("a"), job("b"));
    assert!(a.iter().chain(b.iter()).all(|r| r.outcome.is_ok()));
    let stats = sim.stats();
    let share_429 = stats.total_429() as f64 / stats.received as f64;
    // Each job is told the whole key's limit, so their opening second goes at twice it
    // (about 260 requests where the server's slice allows 200), and the server's headers
    // say most of the minute remains: those refusals are not a spent budget, so nobody
    // pauses, and each job slows by the evidence of its own share. Measured: 7-13 %.
    assert!(
        share_429 < 0.15,
        "{} 429s of {}",
        stats.total_429(),
        stats.received
    );
    // Together at most the limit: 1,000 requests need at least ~10 s at 100/s.
    let slower = ta.max(tb).as_secs_f64();
    assert!(slower >= 9.0, "{slower:.1} s for 1,000 requests at 100/s");
    // Neither starves: the faster takes at least 45 % of the slower's time (the slower
    // runs its tail alone, at the rate it had come down to while sharing).
    let (fast, slow) = (ta.min(tb).as_secs_f64(), slower);
    eprintln!(
        "two jobs: {fast:.1} s and {slow:.1} s, {:.1} % 429s",
        100.0 * share_429
    );
    assert!(fast >= 0.45 * slow, "{fast:.1} s against {slow:.1} s");
}

#[tokio::test(start_paused = true)]
async fn the_sliding_window_limiter_keeps_every_second_within_its_share() {
    // 30,000 rpm = 500 a second, and no burst on top with the sliding window.
    let sim = simulator(Sim::builder().rpm(nz(30_000)).latency(Latency {
        ttft: Duration::from_millis(5),
        per_token: Duration::ZERO,
        jitter: 0.5,
    }));
    let client = in_memory(&sim)
        .retry(policy())
        .concurrency(NonZeroUsize::new(32).unwrap())
        .limits(Limits {
            rpm: nz(30_000).into(),
            algorithm: sluice::limits::Algorithm::SlidingWindow,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let results = run(&client, requests("s", 1500)).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let stats = sim.stats();
    assert_eq!(stats.total_429(), 0);
    // On its own clock each second holds at most 500 (the property test proves it); at the
    // server, arrivals shifted by scheduling delay get 10 %. A token bucket's burst would
    // show as 750 here.
    assert!(stats.peak.requests_1s <= 550, "{:?}", stats.peak);
    let times = arrivals_in_memory(&sim);
    assert!(
        times.last().unwrap() - times[0] >= 2.0,
        "1,500 requests at 500 a second take at least 2 s"
    );
}

#[tokio::test(start_paused = true)]
async fn per_model_budgets_admit_each_model_against_its_own_limit() {
    let sim = simulator(Sim::builder());
    // gpt-4o: 600 rpm (10 a second after a burst of 5); everything else: unlimited.
    let client = in_memory(&sim)
        .retry(policy())
        .concurrency(NonZeroUsize::new(16).unwrap())
        .model_limits(
            "gpt-4o",
            Limits {
                rpm: nz(600).into(),
                ..Limits::default()
            },
        )
        .build()
        .unwrap();
    let mut reqs = Vec::new();
    for i in 0..25 {
        reqs.push(Request::chat(
            format!("slow-{i}"),
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}),
        ));
    }
    for i in 0..300 {
        reqs.push(Request::chat(
            format!("fast-{i}"),
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}),
        ));
    }
    let results = run(&client, reqs).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let slow = arrivals_with_prefix(&sim, "slow-");
    let fast = arrivals_with_prefix(&sim, "fast-");
    // 25 gpt-4o requests at 10 a second after a burst of 5: about 2 s.
    let slow_span = slow.last().unwrap() - slow[0];
    assert!(
        slow_span >= 1.8,
        "gpt-4o took {slow_span:.2} s: its budget was not applied"
    );
    // The other model is not held behind gpt-4o's budget, though it came later in the input.
    assert!(
        fast.last().unwrap() < &(slow[0] + 1.0),
        "gpt-4o-mini waited behind gpt-4o"
    );
}

#[tokio::test(start_paused = true)]
async fn adaptive_concurrency_fills_a_queueing_server_without_letting_latency_run_away() {
    // A self-hosted server: 32 at once, 20 ms each, the rest queue; no 429s.
    let sim = simulator(Sim::builder().max_concurrency(Some(32)).latency(Latency {
        ttft: Duration::from_millis(20),
        per_token: Duration::ZERO,
        jitter: 0.1,
    }));
    let throughput = |client: Client, n: usize| async move {
        let started = tokio::time::Instant::now();
        let results = run(&client, requests("c", n)).await;
        assert!(results.iter().all(|r| r.outcome.is_ok()));
        (n as f64 / started.elapsed().as_secs_f64(), client.stats())
    };
    let mut best: f64 = 0.0;
    let mut no_load = Duration::MAX;
    for c in [8, 16, 32, 64, 128] {
        let client = in_memory(&sim)
            .concurrency(NonZeroUsize::new(c).unwrap())
            .build()
            .unwrap();
        let (rps, stats) = throughput(client, 640).await;
        best = best.max(rps);
        if c == 8 {
            // The same percentile at a load the server serves without queueing, measured on
            // the same noisy machine.
            no_load = stats.latency(0.99);
        }
    }
    let client = in_memory(&sim)
        .concurrency_auto(NonZeroUsize::new(512).unwrap())
        .build()
        .unwrap();
    let (rps, stats) = throughput(client, 4000).await;
    assert!(
        rps >= 0.9 * best,
        "auto: {rps:.0} requests/s; best fixed: {best:.0}"
    );
    let p99 = stats.latency(0.99);
    assert!(
        p99 <= no_load * 2,
        "p99 {p99:?} against no-load {no_load:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn library_submissions_with_priority_go_ahead_of_a_running_batch() {
    let sim = simulator(Sim::builder().latency(Latency::fixed(Duration::from_millis(3))));
    let client = in_memory(&sim)
        .concurrency(NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    // A batch of 300 normal requests, and a channel for urgent calls made while it runs.
    let (urgent_tx, urgent_rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
    let urgent = futures::stream::unfold(urgent_rx, |mut rx| async move {
        rx.recv().await.map(|r| (r, rx))
    });
    let batch = futures::stream::iter(requests("bulk", 300));
    let mut results = client.run(Box::pin(futures::stream::select(batch, urgent)));
    let mut done = 0;
    let mut urgent_done_at = Vec::new();
    while let Some(r) = results.next().await {
        done += 1;
        if done == 50 {
            for i in 0..5 {
                let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "now"}]});
                urgent_tx
                    .send(Request::chat(format!("urgent-{i}"), &body).with_priority(10))
                    .unwrap();
            }
        }
        if r.custom_id.starts_with("urgent-") {
            urgent_done_at.push(done);
        }
        if done == 305 {
            break;
        }
    }
    drop(urgent_tx);
    assert_eq!(urgent_done_at.len(), 5);
    // Submitted after 50 results, they finish among the next dozen, not after the other
    // 250: each goes ahead of everything queued as soon as it is pulled in (the merged
    // stream hands out urgent and bulk requests in turn, one per free slot in the queue).
    assert!(
        urgent_done_at.iter().all(|&n| n <= 50 + 2 * 5 + 3),
        "{urgent_done_at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_30_second_pause_no_herd_reaches_the_server() {
    // The first request is told to come back in 30 s; every other one succeeds.
    let (client, times) = retry_after_client("retry-after", || "30".to_owned());
    // 6,000 rpm: 100 a second, with a burst of half a second (50).
    let client = client
        .retry(policy())
        .concurrency(NonZeroUsize::new(64).unwrap())
        .limits(Limits {
            rpm: nz(6000).into(),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let results = run(&client, requests("p", 600)).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let t = times.lock().unwrap().clone();
    let refused_at = t[0];
    let after: Vec<f64> = t
        .iter()
        .map(|x| x.saturating_duration_since(refused_at).as_secs_f64())
        .filter(|s| *s >= 29.0)
        .collect();
    assert!(
        !after.is_empty() && after[0] >= 30.0,
        "nothing may arrive before the 30 s are up"
    );
    // In every second after the pause: at most 100 plus the burst of 50 (5 % for arrival jitter).
    for (i, start) in after.iter().enumerate() {
        let in_second = after[i..].iter().take_while(|s| **s - start < 1.0).count();
        assert!(
            in_second as f64 <= (100.0 + 50.0) * 1.05,
            "{in_second} requests in the second from {start:.2} s"
        );
    }
}
