//! The engine against the simulator: in memory on paused `tokio::time` (exact, and
//! milliseconds long), and over real HTTP on 127.0.0.1 for what only a socket shows (resets,
//! bodies cut off, timeouts).

use std::collections::{BTreeMap, HashSet};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::{Duration, Instant};

mod common;

use common::{first_refused_client, in_memory, retry_after_client};
use futures::StreamExt;
use serde_json::{Value, json};
use sluice::estimate::estimate;
use sluice::retry::GiveUp;
use sluice::{
    Backoff, BatchResult, Client, ClientBuilder, Endpoint, ErrorKind, Limits, Request, RetryPolicy,
};
use sluice_sim::content::{prompt_fingerprint, reply_marker};
use sluice_sim::{Fault, InMemorySim, Latency, QuotaMode, Sim, SimBuilder, SimHandle};

fn nz(n: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(n)
}

/// The simulator on 127.0.0.1, for the tests of the transport itself.
async fn spawn(b: SimBuilder) -> SimHandle {
    b.build().unwrap().spawn().await.unwrap()
}

/// The simulator in memory: the engine's tests run on paused time, exact and fast.
fn simulator(b: SimBuilder) -> InMemorySim {
    b.build().unwrap().in_memory()
}

/// Fast retries, so fault tests take milliseconds.
fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: NonZeroU32::new(max_attempts).unwrap(),
        backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(20)).unwrap(),
        budget_ratio: 10.0,
        budget_min_per_sec: 1000.0,
        ..RetryPolicy::default()
    }
}

fn client(sim: &InMemorySim) -> ClientBuilder {
    in_memory(sim).seed(1).retry(quick_retries(8))
}

fn http_client(sim: &SimHandle) -> ClientBuilder {
    Client::builder()
        .base_url(sim.base_url())
        .seed(1)
        .retry(quick_retries(8))
}

fn chat(i: usize, max_tokens: u64) -> Request {
    Request::chat(
        format!("req-{i}"),
        &json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": format!("Question number {i}: what is {i} squared?")}
        ], "max_tokens": max_tokens}),
    )
}

async fn run_all(client: &Client, requests: Vec<Request>) -> Vec<BatchResult> {
    client.run(futures::stream::iter(requests)).collect().await
}

/// The content a result carries, for any endpoint.
fn content_of(body: &Value) -> String {
    body["choices"][0]["message"]["content"]
        .as_str()
        .or(body["choices"][0]["text"].as_str())
        .or(body["output"][0]["content"][0]["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_matches_its_request_exactly_once_despite_faults() {
    let sim = spawn(
        Sim::builder()
            .fault(Fault::Status(503), 0.05)
            .fault(Fault::Reset, 0.03)
            .fault(Fault::MalformedJson, 0.03)
            .fault(Fault::CloseMidBody, 0.03)
            .seed(11),
    )
    .await;
    let c = http_client(&sim)
        .concurrency(NonZeroUsize::new(16).unwrap())
        .build()
        .unwrap();
    let mut requests: Vec<Request> = (0..300).map(|i| chat(i, 20)).collect();
    requests.push(Request::new(
        "cmp",
        Endpoint::Completions,
        &json!({"model": "gpt-3.5-turbo-instruct", "prompt": "say hi"}),
    ));
    requests.push(Request::new(
        "rsp",
        Endpoint::Responses,
        &json!({"model": "gpt-4.1-mini", "input": "say hi"}),
    ));
    let prompts: BTreeMap<String, Value> = requests
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let prompt = body
                .get("messages")
                .or(body.get("prompt"))
                .or(body.get("input"))
                .unwrap()
                .clone();
            (r.custom_id.clone(), prompt)
        })
        .collect();
    let results = run_all(&c, requests).await;
    assert_eq!(results.len(), prompts.len());
    let mut seen = HashSet::new();
    for r in &results {
        assert!(seen.insert(r.custom_id.clone()), "{} twice", r.custom_id);
        let ok = r
            .outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", r.custom_id));
        let body: Value = serde_json::from_slice(&ok.body).unwrap();
        let marker = reply_marker(
            Some(&r.custom_id),
            prompt_fingerprint(&prompts[&r.custom_id]),
        );
        assert!(
            content_of(&body).starts_with(&marker),
            "{} got {}",
            r.custom_id,
            content_of(&body)
        );
    }
    let stats = sim.stats();
    assert!(
        !stats.retried_ids().is_empty(),
        "faults must have caused retries"
    );
    assert_eq!(c.stats().ok, prompts.len() as u64);
    assert_eq!(c.stats().attempts, stats.received);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn known_limits_give_zero_429s_and_no_window_over_the_limit() {
    // 30,000 rpm = 500/s; 1,500,000 tpm = 25,000/s. Each request costs about 30 + 40 tokens,
    // so both budgets bind at about the same rate: 2,000 requests take some 4 s.
    let (rpm, tpm) = (30_000u64, 1_500_000u64);
    let sim = simulator(Sim::builder().rpm(nz(rpm)).tpm(nz(tpm)).latency(Latency {
        ttft: Duration::from_millis(5),
        per_token: Duration::ZERO,
        jitter: 0.5,
    }));
    let burst = Duration::from_millis(500);
    let c = client(&sim)
        .concurrency(NonZeroUsize::new(64).unwrap())
        .limits(Limits {
            rpm: nz(rpm).into(),
            tpm: nz(tpm).into(),
            burst,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let requests: Vec<Request> = (0..2000).map(|i| chat(i, 40)).collect();
    let max_cost = requests
        .iter()
        .map(|r| estimate(r.endpoint, &r.body).cost())
        .max()
        .unwrap();
    let results = run_all(&c, requests).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let stats = sim.stats();
    assert_eq!(stats.total_429(), 0, "{:?}", stats.rate_limited);
    assert_eq!(stats.received, 2000, "no request was sent twice");
    let per_sec = |limit: u64| limit as f64 / 60.0;
    let burst_of = |limit: u64| per_sec(limit) * burst.as_secs_f64();
    // sluice admits at most a second's worth plus its burst in any second of its own clock;
    // the server sees arrivals shifted by scheduling and network delay, allowed here as
    // 50 ms of extra rate.
    let jitter = 1.05;
    assert!(
        stats.peak.requests_1s as f64 <= per_sec(rpm) * jitter + burst_of(rpm),
        "{:?}",
        stats.peak
    );
    assert!(
        stats.peak.tokens_1s as f64 <= per_sec(tpm) * jitter + burst_of(tpm) + max_cost as f64,
        "{:?}",
        stats.peak
    );
    assert!(
        stats.peak.requests_60s <= rpm && stats.peak.tokens_60s <= tpm,
        "{:?}",
        stats.peak
    );
}

#[tokio::test(start_paused = true)]
async fn retryable_faults_are_retried_until_they_succeed() {
    let retryable = [
        Fault::Status(408),
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(504),
        Fault::Status(529),
        Fault::Reset,
        Fault::CloseMidBody,
        Fault::MalformedJson,
    ];
    for fault in retryable {
        let sim = simulator(Sim::builder().fault(fault, 0.3).seed(5));
        let c = client(&sim)
            .concurrency(NonZeroUsize::new(8).unwrap())
            .build()
            .unwrap();
        let results = run_all(&c, (0..60).map(|i| chat(i, 5)).collect()).await;
        let failed: Vec<String> = results
            .iter()
            .filter_map(|r| r.outcome.as_ref().err().map(|e| e.to_string()))
            .collect();
        assert!(failed.is_empty(), "{fault}: {failed:?}");
        let stats = sim.stats();
        let fired = stats.fault(fault);
        assert!(fired > 0, "{fault} never fired");
        assert_eq!(stats.received, 60 + fired, "{fault}: one retry per fault");
        assert_eq!(c.stats().retries, fired, "{fault}");
    }
}

#[tokio::test(start_paused = true)]
async fn bad_request_and_insufficient_quota_are_never_retried() {
    let sim = simulator(Sim::builder().fault(Fault::BadRequest, 0.5).seed(9));
    let c = client(&sim).build().unwrap();
    let results = run_all(&c, (0..40).map(|i| chat(i, 5)).collect()).await;
    let bad = sim.stats().fault(Fault::BadRequest) as usize;
    let failed: Vec<&BatchResult> = results.iter().filter(|r| r.outcome.is_err()).collect();
    assert_eq!(failed.len(), bad);
    for r in &failed {
        let e = r.outcome.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(e.status, Some(400));
        assert_eq!(r.attempts, 1);
    }
    assert_eq!(sim.stats().received, 40, "nothing was sent twice");

    let broke = simulator(Sim::builder().quota(QuotaMode::Exhausted));
    let c = client(&broke).build().unwrap();
    let results = run_all(&c, (0..10).map(|i| chat(i, 5)).collect()).await;
    assert!(results.iter().all(|r| {
        r.outcome
            .as_ref()
            .is_err_and(|e| e.kind == ErrorKind::InsufficientQuota)
    }));
    assert_eq!(broke.stats().received, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_request_times_out_and_is_retried_then_given_up() {
    let sim = spawn(Sim::builder().fault(Fault::Hang, 1.0)).await;
    let c = http_client(&sim)
        .timeout(Duration::from_millis(150))
        .retry(quick_retries(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = c.send(&chat(1, 5)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert_eq!(err.attempts, 2);
    assert_eq!(err.gave_up, Some(GiveUp::Attempts { attempts: 2 }));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(sim.stats().attempts["req-1"].len(), 2);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_larger_than_the_whole_tpm_fails_at_once_unsent() {
    let sim = simulator(Sim::builder());
    let c = client(&sim)
        .limits(Limits {
            tpm: nz(1000).into(),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let results = run_all(&c, vec![chat(1, 5000), chat(2, 10)]).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let too_large = results.iter().find(|r| r.custom_id == "req-1").unwrap();
    let e = too_large.outcome.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert!(
        results
            .iter()
            .find(|r| r.custom_id == "req-2")
            .unwrap()
            .outcome
            .is_ok()
    );
    assert_eq!(sim.stats().received, 1);
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_slows_a_storm_of_failures() {
    let sim = simulator(Sim::builder().fault(Fault::Status(503), 1.0));
    let stingy = RetryPolicy {
        budget_ratio: 0.2,
        budget_min_per_sec: 50.0,
        ..quick_retries(3)
    };
    let c = client(&sim)
        .retry(stingy)
        .concurrency(NonZeroUsize::new(64).unwrap())
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let results = run_all(&c, (0..100).map(|i| chat(i, 5)).collect()).await;
    let took = started.elapsed();
    assert!(results.iter().all(|r| {
        r.outcome
            .as_ref()
            .is_err_and(|e| e.kind == ErrorKind::Server && r.attempts == 3)
    }));
    // 200 retries; the budget grants 50 (a second's allowance) + 100 * 0.2 at once and 50 a
    // second after that: 130 more take 2.6 s. Without a budget they take milliseconds.
    assert!(
        took >= Duration::from_secs(2),
        "{took:?}: retries were not held back"
    );
    assert_eq!(sim.stats().received, 300);
}

#[tokio::test(start_paused = true)]
async fn the_tpm_estimate_is_within_5_percent_of_the_servers_count_on_a_mixed_corpus() {
    let sim = simulator(Sim::builder().output_tokens(Some(1)));
    let c = client(&sim).build().unwrap();
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(40);
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]);
    let corpus = vec![
        Request::chat(
            "plain",
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there, how are you today?"}]}),
        ),
        Request::chat(
            "system",
            &json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "You translate English to French."}, {"role": "user", "content": "Where is the library?"}]}),
        ),
        Request::chat(
            "multi",
            &json!({"model": "gpt-4", "messages": [
            {"role": "user", "content": "Name three rivers."}, {"role": "assistant", "content": "Nile, Amazon, Yangtze."},
            {"role": "user", "content": "Which is longest?", "name": "alice"}]}),
        ),
        Request::chat(
            "long",
            &json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": long}]}),
        ),
        Request::chat(
            "parts",
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture? Describe it in detail."},
            {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}}]}]}),
        ),
        Request::chat(
            "tools",
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the weather in Paris and in Rome this weekend?"}], "tools": tools}),
        ),
        Request::chat(
            "unicode",
            &json!({"model": "gpt-5-mini", "messages": [{"role": "user", "content": "日本語の文章を英語に翻訳してください。こんにちは、世界！"}]}),
        ),
        Request::new(
            "completion",
            Endpoint::Completions,
            &json!({"model": "gpt-3.5-turbo-instruct", "prompt": ["Once upon a time", "In a galaxy far away"]}),
        ),
        Request::new(
            "embed",
            Endpoint::Embeddings,
            &json!({"model": "text-embedding-3-small", "input": ["first document about cats", "second about dogs"]}),
        ),
        Request::new(
            "responses",
            Endpoint::Responses,
            &json!({"model": "gpt-4.1-mini", "instructions": "Answer in one word.", "input": "What colour is the sky on a clear day?"}),
        ),
    ];
    let estimates: BTreeMap<String, u64> = corpus
        .iter()
        .map(|r| (r.custom_id.clone(), estimate(r.endpoint, &r.body).prompt))
        .collect();
    let results = run_all(&c, corpus).await;
    let (mut est_total, mut real_total) = (0u64, 0u64);
    for r in &results {
        let real = r.outcome.as_ref().unwrap().usage.prompt_tokens;
        let est = estimates[&r.custom_id];
        est_total += est;
        real_total += real;
        let off = (est as f64 - real as f64).abs() / real as f64;
        assert!(
            off <= 0.15,
            "{}: estimate {est}, server {real}",
            r.custom_id
        );
    }
    let off = (est_total as f64 - real_total as f64).abs() / real_total as f64;
    assert!(
        off <= 0.05,
        "corpus: estimate {est_total}, server {real_total} ({:.1}% off)",
        off * 100.0
    );
}

/// A header name, a function making its value, and the least wait it asks for.
type RetryAfterForm = (&'static str, fn() -> String, Duration);

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_in_all_three_forms() {
    let forms: [RetryAfterForm; 3] = [
        (
            "retry-after-ms",
            || "400".to_owned(),
            Duration::from_millis(400),
        ),
        (
            "retry-after",
            || "0.4".to_owned(),
            Duration::from_millis(400),
        ),
        // An HTTP date has whole seconds: two seconds ahead is at least one second away.
        (
            "retry-after",
            || httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2)),
            Duration::from_secs(1),
        ),
    ];
    for (header, value, at_least) in forms {
        let (builder, times) = retry_after_client(header, value);
        let c = builder.seed(1).retry(quick_retries(3)).build().unwrap();
        c.send(&chat(1, 5)).await.unwrap();
        let t = times.lock().unwrap().clone();
        assert_eq!(t.len(), 2);
        assert!(
            t[1] - t[0] >= at_least,
            "{header}: came back after {:?}, asked {at_least:?}",
            t[1] - t[0]
        );
    }
}

/// Five requests paced 100 ms apart (600 rpm, a burst of one) whose first answer is a 429
/// with retry-after-ms 400 and headers saying `remaining` of 600 requests remain: every
/// arrival time, after checking all five were answered with one retry.
async fn five_paced_after_one_429(remaining: u32) -> Vec<tokio::time::Instant> {
    let (builder, times) = first_refused_client(move || {
        vec![
            ("retry-after-ms", "400".to_owned()),
            ("x-ratelimit-limit-requests", "600".to_owned()),
            ("x-ratelimit-remaining-requests", remaining.to_string()),
        ]
    });
    let c = builder
        .seed(1)
        .retry(quick_retries(3))
        .concurrency(NonZeroUsize::new(8).unwrap())
        .limits(Limits {
            rpm: nz(600).into(),
            burst: Duration::from_millis(1),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let results = run_all(&c, (0..5).map(|i| chat(i, 5)).collect()).await;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    assert_eq!(c.stats().rate_limited, 1);
    let t = times.lock().unwrap().clone();
    assert_eq!(t.len(), 6, "5 requests and one retry");
    t
}

#[tokio::test(start_paused = true)]
async fn a_429_that_says_the_budget_is_spent_pauses_every_worker() {
    // Without a shared pause the next would arrive ~100 ms after the first; with it,
    // nothing arrives for 400 ms.
    let t = five_paced_after_one_429(0).await;
    assert!(
        t[1] - t[0] >= Duration::from_millis(400),
        "second arrival {:?} after the 429",
        t[1] - t[0]
    );
    // After the pause the pace resumes gradually: no two arrivals at once.
    for w in t[1..].windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(80),
            "{:?}",
            w[1] - w[0]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_whose_headers_say_budget_remains_holds_only_its_own_request() {
    // Nearly the whole budget remains: the others go on at their pace (~100 ms apart)
    // while the refused one waits its 400 ms.
    let t = five_paced_after_one_429(590).await;
    assert!(
        t[1] - t[0] < Duration::from_millis(200),
        "second arrival {:?} after the 429: everyone paused",
        t[1] - t[0]
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_above_the_cap_fails_as_rate_limited() {
    let (builder, times) = retry_after_client("retry-after", || "300".to_owned());
    let c = builder.retry(quick_retries(3)).build().unwrap();
    let err = c.send(&chat(1, 5)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(matches!(err.gave_up, Some(GiveUp::AskedTooLong { .. })));
    assert_eq!(err.attempts, 1, "not retried");
    assert_eq!(times.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn send_shares_the_clients_limits_and_reports_usage() {
    let sim = simulator(Sim::builder().output_tokens(Some(3)));
    let c = client(&sim).build().unwrap();
    let ok = c.send(&chat(7, 10)).await.unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.usage.completion_tokens, 3);
    assert!(ok.request_id.is_some());
    // The answer read for the caller, and the body as the caller's own type.
    assert!(!ok.text().expect("a chat answer has text").is_empty());
    assert!(ok.answer().finish_reason.is_some());
    #[derive(serde::Deserialize)]
    struct Mine {
        model: String,
    }
    assert_eq!(ok.json::<Mine>().unwrap().model, "gpt-4o-mini");
    #[derive(serde::Serialize)]
    struct Body<'a> {
        model: &'a str,
        messages: Vec<serde_json::Value>,
        max_tokens: u64,
    }
    let typed = Request::json(
        "typed",
        Endpoint::ChatCompletions,
        &Body {
            model: "gpt-4o-mini",
            messages: vec![json!({"role": "user", "content": "hi"})],
            max_tokens: 4,
        },
    )
    .unwrap();
    assert_eq!(c.send(&typed).await.unwrap().status, 200);
    assert!(Request::json("x", Endpoint::ChatCompletions, &[1, 2]).is_err());
    assert_eq!(c.stats().ok, 2);
}

#[tokio::test(start_paused = true)]
async fn a_spend_cap_holds_for_single_calls_and_batches_alike() {
    use sluice::cost::{CapStop, Price, PriceTable, SpendCap};
    let sim = simulator(Sim::builder());
    let mut prices = PriceTable::empty();
    // A dollar a token: each request below costs its tokens in dollars.
    prices.set("gpt-4o-mini", Price::new(1e6, 1e6, 1e6));
    let cap = 200.0;
    let c = client(&sim)
        .prices(prices.clone())
        .spend_cap(SpendCap::new(cap, 0.0))
        .build()
        .unwrap();
    // One call at a time: each reserves its most and settles for what it cost.
    let mut spent = 0.0;
    let mut refused = None;
    for i in 0..50 {
        match c.send(&chat(i, 8)).await {
            Ok(s) => spent += s.cost.expect("a priced model"),
            Err(e) => {
                refused = Some(e.kind);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(ErrorKind::SpendCap),
        "the cap stopped the calls"
    );
    assert!(spent <= cap && spent > 0.0, "{spent}");
    assert!((c.stats().cost - spent).abs() < 1e-6);

    // A batch on a fresh client: stops admitting, ends early, says why.
    let c = client(&sim)
        .prices(prices)
        .spend_cap(SpendCap::new(cap, 0.0))
        .concurrency(NonZeroUsize::new(4).unwrap())
        .build()
        .unwrap();
    let mut run = c.run(futures::stream::iter((0..50).map(|i| chat(i, 8))));
    let mut results = Vec::new();
    while let Some(r) = run.next().await {
        results.push(r);
    }
    assert!(matches!(run.cap_stop(), Some(CapStop::Reached { .. })));
    assert!(!results.is_empty() && results.len() < 50);
    let cost: f64 = results
        .iter()
        .map(|r| r.outcome.as_ref().unwrap().cost.unwrap())
        .sum();
    assert!(cost <= cap, "{cost}");
}

#[tokio::test(start_paused = true)]
async fn a_single_call_reports_the_same_events_as_a_batch() {
    use std::sync::{Arc, Mutex};
    let sim = simulator(Sim::builder().fault(Fault::Status(503), 0.5).seed(3));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let c = client(&sim)
        .observer(Arc::new(move |e: &sluice::Event<'_>| {
            let name = match e {
                sluice::Event::Sent { .. } => "sent",
                sluice::Event::Retrying { .. } => "retrying",
                sluice::Event::Finished { .. } => "finished",
                _ => return,
            };
            log.lock().unwrap().push(name.to_owned());
        }))
        .build()
        .unwrap();
    for i in 0..6 {
        c.send(&chat(i, 5)).await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let count = |n: &str| seen.iter().filter(|s| *s == n).count();
    assert_eq!(count("finished"), 6, "{seen:?}");
    assert_eq!(count("sent"), 6 + count("retrying"), "{seen:?}");
    assert!(count("retrying") > 0, "the 503s were retried: {seen:?}");
    assert_eq!(c.stats().ok, 6);
}

#[tokio::test(start_paused = true)]
async fn a_single_call_with_a_refused_key_fails_instead_of_stopping_early() {
    let sim = simulator(Sim::builder().fault(Fault::Status(401), 1.0));
    let c = client(&sim).build().unwrap();
    let err = c.send(&chat(1, 5)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert_eq!(c.stats().failed_total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_any_answer_keeps_its_source_chain() {
    // A port nothing listens on: the connection is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .retry(quick_retries(1))
        .build()
        .unwrap();
    let err = c.send(&chat(1, 5)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connect);
    let mut depth = 0;
    let mut next = std::error::Error::source(&err);
    while let Some(cause) = next {
        depth += 1;
        next = cause.source();
    }
    assert!(
        depth >= 2,
        "the HTTP client's error and its causes: {depth}"
    );
}

/// A client whose server answers its first request 429 with `headers` and `body`, and
/// every later one 200; and the (paused-clock) arrival times.
fn refused_once(
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> (
    Client,
    std::sync::Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
) {
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = times.clone();
    let client = Client::builder()
        .base_url("http://in-memory.invalid/v1")
        .retry(quick_retries(3))
        .service(move |_request: http::Request<bytes::Bytes>| {
            let n = {
                let mut t = log.lock().unwrap();
                t.push(tokio::time::Instant::now());
                t.len()
            };
            async move {
                let mut answer = http::Response::builder();
                if n == 1 {
                    answer = answer.status(429);
                    for (name, value) in headers {
                        answer = answer.header(*name, *value);
                    }
                    return Ok(answer
                        .body(bytes::Bytes::from_static(body.as_bytes()))
                        .unwrap());
                }
                Ok(answer
                    .status(200)
                    .body(bytes::Bytes::from_static(
                        br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
                    ))
                    .unwrap())
            }
        })
        .build()
        .unwrap();
    (client, times)
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_waits_for_the_spent_budgets_reset() {
    // Azure's 429 may name no delay; its headers say the requests budget is spent until 2 s.
    let (c, times) = refused_once(
        &[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
        ],
        r#"{"error":{"code":"429","message":"Requests to the deployment have exceeded the rate limit."}}"#,
    );
    c.send(&chat(1, 5)).await.unwrap();
    let t = times.lock().unwrap().clone();
    assert_eq!(t.len(), 2);
    assert!(t[1] - t[0] >= Duration::from_secs(2), "{:?}", t[1] - t[0]);
}

#[tokio::test(start_paused = true)]
async fn geminis_retry_info_in_the_body_is_honoured() {
    let (c, times) = refused_once(
        &[],
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Resource has been exhausted.","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}"#,
    );
    c.send(&chat(1, 5)).await.unwrap();
    let t = times.lock().unwrap().clone();
    assert_eq!(t.len(), 2);
    assert!(t[1] - t[0] >= Duration::from_secs(26), "{:?}", t[1] - t[0]);
}

#[tokio::test(start_paused = true)]
async fn a_batch_takes_the_permit_a_single_call_gives_back_at_once() {
    // Every answer takes 10 s. A single call holds one of the two permits from t = 0 to 10;
    // a batch of two starts at t = 5: its first request takes the free permit, its second
    // must go as soon as the single call ends (t = 10), not when the first ends (t = 15).
    let sim = simulator(Sim::builder().latency(Latency::fixed(Duration::from_secs(10))));
    let c = client(&sim)
        .concurrency(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let single = {
        let c = c.clone();
        tokio::spawn(async move { c.send(&chat(100, 4)).await })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let results = run_all(&c, vec![chat(0, 4), chat(1, 4)]).await;
    assert!(single.await.unwrap().is_ok());
    assert!(results.iter().all(|r| r.outcome.is_ok()), "{results:?}");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(20),
        "the second request went at t = 10"
    );
}
