//! The library face against the simulator in memory, on paused time: the chat builder,
//! typed calls, embeddings, batches in input order with progress and cancellation,
//! priorities.

use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::in_memory;
use futures::StreamExt;
use serde_json::json;
use sluice::types::{ChatRequest, EmbeddingRequest, Message};
use sluice::{Client, ErrorKind, Priority, Request};
use sluice_sim::{Fault, InMemorySim, Latency, Sim};
use tokio_util::sync::CancellationToken;

fn sim(builder: sluice_sim::SimBuilder) -> InMemorySim {
    builder.build().unwrap().in_memory()
}

fn latency(ms: u64, jitter: f64) -> Latency {
    Latency {
        ttft: Duration::from_millis(ms),
        per_token: Duration::ZERO,
        jitter,
    }
}

fn prompt(i: usize) -> Request {
    Request::chat(
        format!("p{i}"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("question {i}")}], "max_tokens": 5}),
    )
    .with_tag(1000 + i as u64)
}

#[tokio::test(start_paused = true)]
async fn the_chat_builder_sends_what_it_reads_and_returns_the_text() {
    let sim = sim(Sim::builder());
    let client = in_memory(&sim).build().unwrap();
    let success = client
        .chat("gpt-4o-mini")
        .system("You are terse.")
        .user("Why is the sky blue?")
        .max_tokens(12)
        .temperature(0.0)
        .param("seed", json!(7))
        .id("sky")
        .send()
        .await
        .unwrap();
    let text = success.text().unwrap();
    // The simulator's reply starts with a marker derived from the id and the messages.
    assert!(!text.is_empty());
    let stats = sim.stats();
    assert_eq!(stats.received, 1);
    assert!(stats.attempts.contains_key("sky"), "sent under its id");
    // The typed reading of the same kind of call.
    let response = client
        .chat("gpt-4o-mini")
        .user("hi")
        .response()
        .await
        .unwrap();
    assert_eq!(response.choices.len(), 1);
    assert!(response.text().is_some());
    assert!(response.usage.unwrap().prompt_tokens > 0);
}

#[tokio::test(start_paused = true)]
async fn typed_calls_round_trip_unknown_fields_and_read_typed_answers() {
    let sim = sim(Sim::builder());
    let client = in_memory(&sim).build().unwrap();
    let mut body = ChatRequest::new("gpt-4o-mini");
    body.messages.push(Message::user("hello"));
    body.max_tokens = Some(4);
    body.extra.insert("user".into(), json!("me"));
    let serialized = serde_json::to_value(&body).unwrap();
    assert_eq!(
        serialized["user"], "me",
        "extra fields are sent as they are"
    );
    let answer = client.call(&body).await.unwrap();
    assert!(answer.text().is_some());
    assert!(!answer.model.is_empty());
    // A field nobody named is kept in `extra` when reading.
    assert!(answer.extra.contains_key("object") || answer.extra.contains_key("created"));
    let embedded = client
        .call(&EmbeddingRequest::new(
            "text-embedding-3-small",
            vec!["a".into(), "b".into()],
        ))
        .await
        .unwrap();
    assert_eq!(embedded.data.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn embed_returns_one_vector_per_input_in_input_order_across_requests() {
    let sim = sim(Sim::builder().latency(latency(20, 0.9)));
    let client = in_memory(&sim).build().unwrap();
    let inputs: Vec<String> = (0..(sluice::EMBED_CHUNK + 5))
        .map(|i| format!("document {i}"))
        .collect();
    let vectors = client
        .embed("text-embedding-3-small", inputs.iter().cloned())
        .await
        .unwrap();
    assert_eq!(vectors.len(), inputs.len());
    assert_eq!(sim.stats().received, 2, "chunks of {}", sluice::EMBED_CHUNK);
    // The simulator derives each vector from its input: the same input, the same vector.
    let again = client
        .embed(
            "text-embedding-3-small",
            [inputs[2050].clone(), inputs[7].clone()],
        )
        .await
        .unwrap();
    assert_eq!(again[0], vectors[2050]);
    assert_eq!(again[1], vectors[7]);
}

#[tokio::test(start_paused = true)]
async fn in_order_results_keep_input_order_within_a_bounded_window() {
    // Latency jitter finishes requests far out of order; 5 % fail once and retry.
    let sim = sim(Sim::builder()
        .latency(latency(50, 1.0))
        .fault(Fault::Status(503), 0.05)
        .seed(4));
    let client = in_memory(&sim)
        .concurrency(NonZeroUsize::new(16).unwrap())
        .build()
        .unwrap();
    let held_most = Arc::new(AtomicU64::new(0));
    let window = NonZeroUsize::new(24).unwrap();
    let mut results = client
        .batch(futures::stream::iter((0..400).map(prompt)))
        .in_order(window);
    let mut ids = Vec::new();
    while let Some(r) = results.next().await {
        held_most.fetch_max(results.held() as u64, Ordering::Relaxed);
        assert!(r.outcome.is_ok());
        assert_eq!(
            r.tag,
            1000 + ids.len() as u64,
            "the caller's tag comes back"
        );
        ids.push(r.custom_id);
    }
    let expected: Vec<String> = (0..400).map(|i| format!("p{i}")).collect();
    assert_eq!(ids, expected);
    let held = held_most.load(Ordering::Relaxed);
    assert!(held > 0, "results did come out of order");
    assert!(held < window.get() as u64, "{held} held");
    assert!(sim.stats().fault(Fault::Status(503)) > 0);
}

#[tokio::test(start_paused = true)]
async fn progress_is_reported_after_every_result_and_cancel_drains() {
    let sim = sim(Sim::builder().latency(latency(100, 0.0)));
    let client = in_memory(&sim)
        .concurrency(NonZeroUsize::new(4).unwrap())
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let token = CancellationToken::new();
    let mut results = client
        .batch(futures::stream::iter((0..100).map(prompt)))
        .total(100)
        .on_progress(move |p| log.lock().unwrap().push((p.done, p.total)))
        .cancel_on(token.clone())
        .start();
    let mut got = 0;
    while let Some(r) = results.next().await {
        assert!(r.outcome.is_ok());
        got += 1;
        if got == 10 {
            token.cancel();
        }
    }
    // What was in flight when it was cancelled finishes (at most the 4 permits' worth, plus
    // results already waiting to be read); nothing more is sent.
    assert!((10..=10 + 2 * 4).contains(&got), "{got}");
    assert_eq!(sim.stats().received, got as u64);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), got);
    assert_eq!(seen.last(), Some(&(got as u64, Some(100))));
}

#[tokio::test(start_paused = true)]
async fn high_priority_goes_before_normal_and_low_fifo_within_each() {
    let sim = sim(Sim::builder().latency(latency(10, 0.0)));
    let client = in_memory(&sim)
        .concurrency(NonZeroUsize::new(1).unwrap())
        .limits(sluice::Limits {
            rpm: NonZeroU64::new(600).into(),
            ..sluice::Limits::default()
        })
        .build()
        .unwrap();
    let levels = [Priority::Low, Priority::Normal, Priority::High];
    let requests: Vec<Request> = (0..30)
        .map(|i| prompt(i).with_priority(levels[i % 3]))
        .collect();
    let order: Vec<String> = client
        .run(futures::stream::iter(requests))
        .map(|r| r.custom_id)
        .collect()
        .await;
    let level_of = |id: &str| id[1..].parse::<usize>().unwrap() % 3;
    // After the first (sent before the others arrived), high, then normal, then low.
    let rest: Vec<usize> = order[1..].iter().map(|id| level_of(id)).collect();
    let mut sorted = rest.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(rest, sorted, "{order:?}");
    for level in 0..3 {
        let within: Vec<usize> = order[1..]
            .iter()
            .filter(|id| level_of(id) == level)
            .map(|id| id[1..].parse().unwrap())
            .collect();
        assert!(within.is_sorted(), "FIFO within a level: {within:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn from_env_reads_the_key_and_fails_without_it() {
    // One test touches the environment, so no other can race it.
    // SAFETY: no other thread of this test binary reads or writes these variables.
    unsafe {
        std::env::remove_var("OPENAI_API_KEY");
    }
    assert!(matches!(
        Client::from_env(),
        Err(sluice::ConfigError::MissingEnv("OPENAI_API_KEY"))
    ));
    unsafe {
        std::env::set_var("OPENAI_API_KEY", "sk-test");
        std::env::set_var("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
    }
    assert!(Client::from_env().is_ok());
    unsafe {
        std::env::set_var("OPENAI_BASE_URL", "not a url");
    }
    assert!(matches!(
        Client::from_env(),
        Err(sluice::ConfigError::BadBaseUrl(_))
    ));
    unsafe {
        std::env::remove_var("OPENAI_API_KEY");
        std::env::remove_var("OPENAI_BASE_URL");
    }
    let _ = ErrorKind::Auth;
}
