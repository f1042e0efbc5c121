//! Several endpoints as one client, in memory on paused time: three simulators with their
//! own limits behind one client; one dies half way; every request is answered exactly
//! once, the dead one's share moves to the others, and the live ones see no 429 at their
//! known limits.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use sluice::fleet::EndpointSpec;
use sluice::limits::Budget;
use sluice::{
    Backoff, BatchResult, Client, Concurrency, ErrorKind, Limits, Provider, Request, RetryPolicy,
};
use sluice_sim::{InMemorySim, Sim, SimBuilder};

fn sim(b: SimBuilder) -> InMemorySim {
    b.build().unwrap().in_memory()
}

/// One endpoint: `host`'s simulator, `rpm` a minute, serving `models` (all if empty).
fn endpoint(host: &str, rpm: u64, models: &[&str]) -> EndpointSpec {
    let mut e = EndpointSpec::new(host, Provider::OpenAi, Some(format!("http://{host}/v1")));
    e.limits = Limits {
        rpm: Budget::per_minute(rpm),
        ..Limits::default()
    };
    e.concurrency = Concurrency::Fixed(NonZeroUsize::new(16).unwrap());
    e.models = models.iter().map(|m| m.to_string()).collect();
    e
}

/// A client over `sims` by host; a host in `dead` refuses connections once its flag is
/// set.
fn fleet(
    sims: &HashMap<&'static str, InMemorySim>,
    endpoints: Vec<EndpointSpec>,
    dead: Option<(&'static str, Arc<AtomicBool>)>,
) -> Client {
    let sims = sims.clone();
    Client::builder()
        .endpoints(endpoints)
        .seed(2)
        .retry(RetryPolicy {
            max_attempts: NonZeroU32::new(20).unwrap(),
            backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(200)).unwrap(),
            budget_ratio: 10.0,
            budget_min_per_sec: 1000.0,
            ..RetryPolicy::default()
        })
        .service(move |request: http::Request<bytes::Bytes>| {
            let host = request.uri().host().unwrap_or_default().to_owned();
            let down = dead
                .as_ref()
                .is_some_and(|(h, flag)| *h == host && flag.load(Ordering::Relaxed));
            let server = sims.get(host.as_str()).cloned();
            async move {
                let refused = || {
                    sluice::transport::TransportError::new(ErrorKind::Connect, "connection refused")
                };
                match server {
                    Some(s) if !down => s.call(request).await.map_err(|_| refused()),
                    _ => Err(refused()),
                }
            }
        })
        .build()
        .unwrap()
}

/// Successes `host`'s simulator answered.
fn served(sims: &HashMap<&'static str, InMemorySim>, host: &str) -> u64 {
    sims[host]
        .stats()
        .by_status
        .get("200")
        .copied()
        .unwrap_or(0)
}

fn chat(i: usize, model: &str) -> Request {
    Request::chat(
        format!("r{i}"),
        &json!({"model": model, "messages": [{"role": "user", "content": format!("q{i}")}], "max_tokens": 8}),
    )
    .with_tag(i as u64)
}

#[tokio::test(start_paused = true)]
async fn three_endpoints_one_dies_half_way_every_request_done_once_its_share_moved() {
    const N: usize = 900;
    let sims: HashMap<&'static str, InMemorySim> = [
        ("a.invalid", sim(Sim::builder().rpm(NonZeroU64::new(600)))),
        ("b.invalid", sim(Sim::builder().rpm(NonZeroU64::new(1200)))),
        ("c.invalid", sim(Sim::builder().rpm(NonZeroU64::new(1200)))),
    ]
    .into_iter()
    .collect();
    let dead = Arc::new(AtomicBool::new(false));
    let client = fleet(
        &sims,
        vec![
            endpoint("a.invalid", 600, &[]),
            endpoint("b.invalid", 1200, &[]),
            endpoint("c.invalid", 1200, &[]),
        ],
        Some(("c.invalid", dead.clone())),
    );
    let mut run = client.run(futures::stream::iter(
        (0..N).map(|i| chat(i, "gpt-4o-mini")),
    ));
    let mut results: Vec<BatchResult> = Vec::new();
    let mut c_at_death = 0;
    while let Some(r) = run.next().await {
        results.push(r);
        if results.len() == N / 3 && !dead.swap(true, Ordering::Relaxed) {
            c_at_death = served(&sims, "c.invalid");
        }
    }
    // Every request answered, once.
    assert_eq!(results.len(), N);
    let mut tags: Vec<u64> = results.iter().map(|r| r.tag).collect();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len(), N);
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let ok = |host: &str| served(&sims, host);
    assert_eq!(
        ok("a.invalid") + ok("b.invalid") + ok("c.invalid"),
        N as u64
    );
    // The dead endpoint served its share until it died, then nothing.
    assert!(c_at_death > 50, "c served {c_at_death} before it died");
    assert_eq!(ok("c.invalid"), c_at_death);
    // The others took the rest, in proportion to their limits, and none was refused.
    assert!(ok("b.invalid") > ok("a.invalid"));
    for host in ["a.invalid", "b.invalid"] {
        assert_eq!(sims[host].stats().total_429(), 0, "{host}");
    }
    // The split is reported, and the dead one was taken out.
    let split = client.endpoints();
    assert_eq!(split.len(), 3);
    assert_eq!(
        split[0].succeeded + split[1].succeeded + split[2].succeeded,
        N as u64
    );
    assert!(split[2].ejections >= 1, "{split:?}");
    assert!(split[2].failed >= 5);
}

#[tokio::test(start_paused = true)]
async fn requests_go_only_to_endpoints_serving_their_model() {
    let sims: HashMap<&'static str, InMemorySim> = [
        ("mini.invalid", sim(Sim::builder())),
        ("big.invalid", sim(Sim::builder())),
    ]
    .into_iter()
    .collect();
    let client = fleet(
        &sims,
        vec![
            endpoint("mini.invalid", 60_000, &["gpt-4o-mini"]),
            endpoint("big.invalid", 60_000, &["gpt-4o"]),
        ],
        None,
    );
    let requests = (0..40).map(|i| chat(i, if i % 4 == 0 { "gpt-4o" } else { "gpt-4o-mini" }));
    let mut results: Vec<BatchResult> = client
        .run(futures::stream::iter(requests.chain([chat(99, "o3")])))
        .collect()
        .await;
    results.sort_by_key(|r| r.tag);
    let unserved = results.pop().unwrap();
    assert_eq!(unserved.outcome.unwrap_err().kind, ErrorKind::NotFound);
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let ok = |host: &str| served(&sims, host);
    assert_eq!((ok("mini.invalid"), ok("big.invalid")), (30, 10));
}

#[tokio::test(start_paused = true)]
async fn a_key_one_endpoint_refuses_sends_the_request_to_another() {
    let sims: HashMap<&'static str, InMemorySim> = [
        (
            "locked.invalid",
            sim(Sim::builder().api_key(Some("other".into()))),
        ),
        ("open.invalid", sim(Sim::builder())),
    ]
    .into_iter()
    .collect();
    let mut locked = endpoint("locked.invalid", 60_000, &[]);
    locked.api_key = Some(sluice::ApiKey::new("wrong"));
    let client = fleet(
        &sims,
        vec![locked, endpoint("open.invalid", 60_000, &[])],
        None,
    );
    let results: Vec<BatchResult> = client
        .run(futures::stream::iter(
            (0..60).map(|i| chat(i, "gpt-4o-mini")),
        ))
        .collect()
        .await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    assert!(
        sims["locked.invalid"]
            .stats()
            .by_status
            .get("401")
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(sims["open.invalid"].stats().by_status.get("200"), Some(&60));
    assert!(client.endpoints()[0].ejections >= 1);
    // A request the endpoint refused never went back to it.
    assert!(
        sims["locked.invalid"].stats().retried_ids().is_empty(),
        "{:?}",
        sims["locked.invalid"].stats().retried_ids()
    );
}

#[tokio::test(start_paused = true)]
async fn a_fleet_of_queueing_servers_finds_each_ones_concurrency() {
    // Two vLLM-like servers: no limits, no 429s; each serves 4 at once and queues the rest.
    let latency = sluice_sim::Latency {
        ttft: Duration::from_millis(100),
        per_token: Duration::from_millis(5),
        jitter: 0.0,
    };
    let queueing = || {
        sim(Sim::builder()
            .max_concurrency(Some(4))
            .latency(latency)
            .output_tokens(Some(20)))
    };
    let sims: HashMap<&'static str, InMemorySim> =
        [("v1.invalid", queueing()), ("v2.invalid", queueing())]
            .into_iter()
            .collect();
    let auto = |host: &str| {
        let mut e = EndpointSpec::new(host, Provider::OpenAi, Some(format!("http://{host}/v1")));
        e.concurrency = Concurrency::Auto {
            ceiling: NonZeroUsize::new(256).unwrap(),
        };
        e
    };
    let client = fleet(&sims, vec![auto("v1.invalid"), auto("v2.invalid")], None);
    let results: Vec<BatchResult> = client
        .run(futures::stream::iter((0..600).map(|i| chat(i, "m"))))
        .collect()
        .await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let split = client.endpoints();
    for (e, host) in split.iter().zip(["v1.invalid", "v2.invalid"]) {
        assert!(served(&sims, host) > 200, "{split:?}");
        // Each endpoint's controller settled near what its server serves at once, far
        // below the ceiling: queueing there only adds latency.
        assert!(e.concurrency < 32, "{split:?}");
        assert!(sims[host].stats().max_in_flight <= 4);
    }
}

#[tokio::test(start_paused = true)]
async fn an_endpoints_key_echoed_back_in_an_error_is_redacted() {
    // The simulator echoes a wrong key in its 401, as OpenAI does.
    let sims: HashMap<&'static str, InMemorySim> = [
        (
            "locked.invalid",
            sim(Sim::builder().api_key(Some("right".into()))),
        ),
        ("open.invalid", sim(Sim::builder())),
    ]
    .into_iter()
    .collect();
    let mut locked = endpoint("locked.invalid", 60_000, &["only-here"]);
    locked.api_key = Some(sluice::ApiKey::new("sk-fleet-secret-7731"));
    let client = fleet(
        &sims,
        vec![locked, endpoint("open.invalid", 60_000, &["gpt-4o-mini"])],
        None,
    );
    let e = client.send(&chat(0, "only-here")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    let body = String::from_utf8_lossy(e.body.as_deref().unwrap_or_default()).into_owned();
    assert!(body.contains("Incorrect API key"), "{body}");
    for text in [e.full_message().into_owned(), body, format!("{e:?}")] {
        assert!(!text.contains("sk-fleet-secret-7731"), "{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn each_endpoints_token_budget_is_kept() {
    // Tokens bind, not requests: each request charges its prompt plus 200 reserved output
    // tokens, and each simulator allows 60,000 or 30,000 such tokens a minute.
    let sims: HashMap<&'static str, InMemorySim> = [
        (
            "t1.invalid",
            sim(Sim::builder().tpm(NonZeroU64::new(60_000))),
        ),
        (
            "t2.invalid",
            sim(Sim::builder().tpm(NonZeroU64::new(30_000))),
        ),
    ]
    .into_iter()
    .collect();
    let with_tpm = |host: &str, tpm: u64| {
        let mut e = endpoint(host, 100_000, &[]);
        e.limits.tpm = Budget::per_minute(tpm);
        e
    };
    let client = fleet(
        &sims,
        vec![
            with_tpm("t1.invalid", 60_000),
            with_tpm("t2.invalid", 30_000),
        ],
        None,
    );
    let requests = (0..300).map(|i| {
        Request::chat(
            format!("r{i}"),
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("q{i}")}], "max_tokens": 200}),
        )
    });
    let results: Vec<BatchResult> = client.run(futures::stream::iter(requests)).collect().await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    for host in ["t1.invalid", "t2.invalid"] {
        assert_eq!(
            sims[host].stats().total_429(),
            0,
            "{host}: {:?}",
            sims[host].stats().rate_limited
        );
        assert!(served(&sims, host) > 50, "{host}");
    }
}
