//! The simulator over real HTTP on 127.0.0.1: shapes, limits, headers, faults, stats.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_sim::content::{prompt_fingerprint, reply_marker};
use sluice_sim::{Fault, Latency, QuotaMode, Sim, SimHandle};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn spawn(builder: sluice_sim::SimBuilder) -> SimHandle {
    builder.build().unwrap().spawn().await.unwrap()
}

fn chat_body(text: &str, max_tokens: u64) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens})
}

async fn post(
    c: &reqwest::Client,
    sim: &SimHandle,
    path: &str,
    body: &Value,
    id: Option<&str>,
) -> reqwest::Response {
    let mut req = c.post(format!("{}{path}", sim.base_url())).json(body);
    if let Some(id) = id {
        req = req.header("X-Client-Request-Id", id);
    }
    req.send().await.unwrap()
}

fn nz(n: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(n)
}

/// True for Go-style durations as OpenAI writes them: `12ms`, `1s`, `6m0s`, `4m12.172s`.
fn is_openai_duration(s: &str) -> bool {
    if let Some(ms) = s.strip_suffix("ms") {
        return !ms.is_empty() && ms.chars().all(|c| c.is_ascii_digit());
    }
    let Some(body) = s.strip_suffix('s') else {
        return false;
    };
    let (rest, secs) = match body.rsplit_once('m') {
        Some((mins, secs)) => (Some(mins), secs),
        None => (None, body),
    };
    let secs_ok = {
        let (int, frac) = secs.split_once('.').unwrap_or((secs, "0"));
        !int.is_empty()
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.chars().all(|c| c.is_ascii_digit())
    };
    let mins_ok = rest.is_none_or(|m| {
        let m = m.rsplit_once('h').map_or(m, |(_, m)| m);
        !m.is_empty() && m.chars().all(|c| c.is_ascii_digit())
    });
    secs_ok && mins_ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_has_openai_shape_usage_and_quotes_the_request() {
    let sim = spawn(Sim::builder()).await;
    let c = client();
    let body = chat_body("hello world", 20);
    let r = post(&c, &sim, "/chat/completions", &body, Some("req-1")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let marker = reply_marker(Some("req-1"), prompt_fingerprint(&body["messages"]));
    assert!(content.starts_with(&marker), "{content}");
    // "hello world" is 2 tokens; "user" 1; 3 per message; 3 to prime the reply.
    assert_eq!(v["usage"]["prompt_tokens"], 9);
    let completion = v["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(completion <= 20 && completion > 0);
    assert_eq!(v["usage"]["total_tokens"].as_u64().unwrap(), 9 + completion);
    // Deterministic: the same request gets the same answer.
    let again: Value = post(&c, &sim, "/chat/completions", &body, Some("req-1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["choices"], v["choices"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_caps_output_and_n_multiplies_it() {
    let sim = spawn(Sim::builder().output_tokens(Some(50))).await;
    let c = client();
    let mut body = chat_body("count", 5);
    body["n"] = json!(3);
    let v: Value = post(&c, &sim, "/chat/completions", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"].as_array().unwrap().len(), 3);
    assert_eq!(v["usage"]["completion_tokens"], 15);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let mut body = chat_body("count", 500);
    body["max_completion_tokens"] = json!(7);
    let v: Value = post(&c, &sim, "/chat/completions", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["usage"]["completion_tokens"], 7,
        "max_completion_tokens wins"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chat_sends_chunks_then_usage_then_done() {
    let sim = spawn(Sim::builder().output_tokens(Some(12))).await;
    let c = client();
    let mut body = chat_body("stream me", 100);
    body["stream"] = json!(true);
    let r = post(&c, &sim, "/chat/completions", &body, Some("s-1")).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(*events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.starts_with(&reply_marker(
        Some("s-1"),
        prompt_fingerprint(&body["messages"])
    )));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 12);
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_embeddings_responses_and_models_have_their_shapes() {
    let sim = spawn(Sim::builder()).await;
    let c = client();

    let v: Value = post(
        &c,
        &sim,
        "/completions",
        &json!({"model": "gpt-3.5-turbo-instruct", "prompt": "hello world", "max_tokens": 4}),
        Some("c1"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(v["choices"][0]["text"].as_str().unwrap().contains("id=c1"));
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    assert_eq!(v["usage"]["completion_tokens"], 4);

    let v: Value = post(
        &c,
        &sim,
        "/embeddings",
        &json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let e0: Vec<f64> = serde_json::from_value(data[0]["embedding"].clone()).unwrap();
    assert_eq!(e0.len(), 1536);
    let norm: f64 = e0.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(v["usage"]["prompt_tokens"], 2);

    let v: Value = post(&c, &sim, "/embeddings", &json!({"model": "text-embedding-3-small", "input": "a", "dimensions": 8, "encoding_format": "base64"}), None)
        .await.json().await.unwrap();
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(b64.len(), 44, "8 f32 = 32 bytes = 44 base64 characters");

    let v: Value = post(&c, &sim, "/responses", &json!({"model": "gpt-4.1-mini", "input": "hello world", "instructions": "be brief", "max_output_tokens": 30}), Some("r1"))
        .await.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert!(
        v["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("id=r1")
    );
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 2);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() <= 30);

    let v: Value = c
        .get(format!("{}/models", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert!(!v["data"].as_array().unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_report_limits_in_openai_format() {
    let sim = spawn(Sim::builder().rpm(nz(600)).tpm(nz(100_000))).await;
    let c = client();
    let r = post(
        &c,
        &sim,
        "/chat/completions",
        &chat_body("hello world", 100),
        None,
    )
    .await;
    let h = r.headers();
    assert_eq!(h["x-ratelimit-limit-requests"], "600");
    assert_eq!(h["x-ratelimit-remaining-requests"], "599");
    assert_eq!(h["x-ratelimit-limit-tokens"], "100000");
    // 9 prompt tokens + max_tokens 100 = 109 charged.
    assert_eq!(h["x-ratelimit-remaining-tokens"], "99891");
    for name in ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"] {
        let v = h[name].to_str().unwrap();
        assert!(is_openai_duration(v), "{name}: {v}");
    }
    sim.shutdown().await;

    let quiet = spawn(Sim::builder().rpm(nz(600)).send_headers(false)).await;
    let r = post(&c, &quiet, "/chat/completions", &chat_body("hi", 1), None).await;
    assert!(
        r.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("x-ratelimit"))
    );
    quiet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_budget_gets_429_with_retry_after_then_recovers() {
    // 120 rpm: 2 a second, so the slice holds 2 requests.
    let sim = spawn(Sim::builder().rpm(nz(120))).await;
    let c = client();
    let body = chat_body("hi", 1);
    for _ in 0..2 {
        assert_eq!(
            post(&c, &sim, "/chat/completions", &body, None)
                .await
                .status(),
            200
        );
    }
    let r = post(&c, &sim, "/chat/completions", &body, None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let ms: u64 = r.headers()["retry-after-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let secs: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ms > 0 && ms <= 500, "{ms}");
    assert_eq!(secs, ms.div_ceil(1000));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v["error"]["type"], "requests");
    tokio::time::sleep(Duration::from_millis(ms + 5)).await;
    assert_eq!(
        post(&c, &sim, "/chat/completions", &body, None)
            .await
            .status(),
        200
    );
    let stats = sim.stats();
    assert_eq!(stats.rate_limited("requests"), 1);
    assert_eq!(stats.status(429), 1);
    assert_eq!(stats.status(200), 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_budget_refuses_with_type_tokens_and_too_large_requests() {
    // 6000 tpm: 100 tokens a second.
    let sim = spawn(Sim::builder().tpm(nz(6000))).await;
    let c = client();
    assert_eq!(
        post(&c, &sim, "/chat/completions", &chat_body("hi", 80), None)
            .await
            .status(),
        200
    );
    let r = post(&c, &sim, "/chat/completions", &chat_body("hi", 80), None).await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "tokens");
    let r = post(&c, &sim, "/chat/completions", &chat_body("hi", 7000), None).await;
    assert_eq!(r.status(), 429);
    assert!(
        r.headers().get("retry-after").is_none(),
        "waiting cannot help a too-large request"
    );
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Request too large")
    );
    assert_eq!(sim.stats().rate_limited("too_large"), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_minute_burst_at_once_is_refused() {
    let sim = spawn(Sim::builder().rpm(nz(600))).await;
    let c = client();
    let body = chat_body("burst", 1);
    let sends = (0..600).map(|_| post(&c, &sim, "/chat/completions", &body, None));
    let statuses: Vec<StatusCode> = futures::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    // One second's worth (10) plus what refills while the burst is served.
    assert!((10..=30).contains(&ok), "{ok} of 600 admitted at once");
    let stats = sim.stats();
    assert_eq!(stats.status(429) as usize, 600 - ok);
    assert!(stats.peak.requests_1s as usize <= ok);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhausted_answers_insufficient_quota() {
    let sim = spawn(Sim::builder().quota(QuotaMode::Exhausted)).await;
    let r = post(
        &client(),
        &sim,
        "/chat/completions",
        &chat_body("hi", 1),
        None,
    )
    .await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "insufficient_quota");
    assert_eq!(v["error"]["type"], "insufficient_quota");
    assert_eq!(sim.stats().rate_limited("insufficient_quota"), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_invalid_and_oversized_requests_get_openai_errors() {
    let sim = spawn(Sim::builder().models(["gpt-4o-mini"]).max_body_bytes(1024)).await;
    let c = client();
    let url = format!("{}/chat/completions", sim.base_url());
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "could not parse"),
        (b"[1,2]".to_vec(), 400, "JSON object"),
        (br#"{"messages":[{"role":"user","content":"x"}]}"#.to_vec(), 400, "'model'"),
        (br#"{"model":"gpt-4o-mini"}"#.to_vec(), 400, "'messages'"),
        (br#"{"model":"gpt-4o-mini","messages":[]}"#.to_vec(), 400, "empty"),
        (br#"{"model":"gpt-4o-mini","messages":[{"content":"x"}]}"#.to_vec(), 400, "role"),
        (br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"max_tokens":"lots"}"#.to_vec(), 400, "max_tokens"),
        (br#"{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}"#.to_vec(), 404, "does not exist"),
        (vec![b' '; 4096], 413, "larger than"),
        (vec![0xff, 0xfe, 0x00], 400, "could not parse"),
    ];
    for (body, status, needle) in cases {
        let r = c.post(&url).body(body.clone()).send().await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        let v: Value = r.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message} lacks {needle}");
        assert!(v["error"]["type"].is_string());
    }
    // Still serving.
    assert_eq!(
        post(&c, &sim, "/chat/completions", &chat_body("x", 1), None)
            .await
            .status(),
        200
    );
    let stats = sim.stats();
    assert_eq!(stats.status(400), 8);
    assert_eq!(stats.status(404), 1);
    assert_eq!(stats.status(413), 1);
    assert_eq!(stats.received, 11);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_requests_statuses_attempts_and_tokens_exactly() {
    let sim = spawn(Sim::builder().output_tokens(Some(10))).await;
    let c = client();
    for i in 0..30 {
        let id = format!("id-{}", i % 10);
        post(
            &c,
            &sim,
            "/chat/completions",
            &chat_body("hello world", 100),
            Some(&id),
        )
        .await;
    }
    let stats = sim.stats();
    assert_eq!(stats.received, 30);
    assert_eq!(stats.admitted, 30);
    assert_eq!(stats.status(200), 30);
    assert_eq!(stats.attempts.len(), 10);
    assert!(
        stats
            .attempts
            .values()
            .all(|a| a.len() == 3 && a.windows(2).all(|w| w[0] <= w[1]))
    );
    assert_eq!(stats.prompt_tokens, 30 * 9);
    assert_eq!(stats.completion_tokens, 30 * 10);
    assert_eq!(stats.charged_tokens, 30 * 109);
    assert_eq!(stats.peak.requests_60s, 30);
    // The same numbers over HTTP.
    let over_http: sluice_sim::SimStats = c
        .get(format!("http://{}/sim/stats", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http.received, 30);
    assert_eq!(over_http.attempts, stats.attempts);
    sim.shutdown().await;
}

/// Sends `n` chat requests one at a time and classifies what the client saw.
async fn observe(
    sim: &SimHandle,
    n: usize,
    timeout: Duration,
) -> std::collections::BTreeMap<String, usize> {
    let c = reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..n {
        let r = c
            .post(format!("{}/chat/completions", sim.base_url()))
            .header("X-Client-Request-Id", format!("f{i}"))
            .json(&chat_body("fault?", 20))
            .send()
            .await;
        let kind = match r {
            Err(e) if e.is_timeout() => "timeout".to_owned(),
            Err(_) => "transport".to_owned(),
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Err(e) if e.is_timeout() => "timeout".to_owned(),
                    Err(_) => "body-cut".to_owned(),
                    Ok(b) => match serde_json::from_slice::<Value>(&b) {
                        Err(_) => "bad-json".to_owned(),
                        Ok(_) => status.to_string(),
                    },
                }
            }
        };
        *seen.entry(kind).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fires_at_its_rate_is_seen_by_the_client_and_never_crashes_the_server() {
    const N: usize = 200;
    for fault in Fault::all() {
        if fault == Fault::Hang {
            continue; // Own test: every occurrence costs a client timeout.
        }
        let build = || {
            Sim::builder()
                .fault(fault, 0.25)
                .seed(42)
                .trickle_interval(Duration::from_millis(1))
        };
        let sim = spawn(build()).await;
        let seen = observe(&sim, N, Duration::from_secs(5)).await;
        let stats = sim.stats();
        let fired = stats.fault(fault) as usize;
        // Binomial(200, 0.25): mean 50, sd 6.1; 4 sd either side.
        assert!(
            (25..=75).contains(&fired),
            "{fault}: fired {fired} times in {N}"
        );
        let expected_kind = match fault {
            Fault::Status(s) => s.to_string(),
            Fault::BadRequest => "400".to_owned(),
            Fault::Overloaded => "503".to_owned(),
            Fault::Reset => "transport".to_owned(),
            Fault::CloseMidBody => "body-cut".to_owned(),
            Fault::MalformedJson => "bad-json".to_owned(),
            Fault::Trickle => "200".to_owned(),
            Fault::Hang => unreachable!(),
        };
        let observed = seen.get(&expected_kind).copied().unwrap_or(0);
        if fault == Fault::Trickle {
            assert_eq!(
                observed, N,
                "{fault}: a trickled body is still a whole answer: {seen:?}"
            );
        } else {
            assert_eq!(
                observed, fired,
                "{fault}: client saw {seen:?}, server fired {fired}"
            );
            assert_eq!(
                seen.get("200").copied().unwrap_or(0),
                N - fired,
                "{fault}: {seen:?}"
            );
        }
        sim.shutdown().await;
        // Determinism: the same seed fires the same number of times.
        let again = spawn(build()).await;
        observe(&again, N, Duration::from_secs(5)).await;
        assert_eq!(
            again.stats().fault(fault) as usize,
            fired,
            "{fault} with the same seed"
        );
        again.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_never_answers_and_shutdown_still_completes() {
    let sim = spawn(Sim::builder().fault(Fault::Hang, 0.5).seed(3)).await;
    let seen = observe(&sim, 20, Duration::from_millis(200)).await;
    let hung = sim.stats().fault(Fault::Hang) as usize;
    assert!(hung > 0);
    assert_eq!(seen.get("timeout").copied().unwrap_or(0), hung, "{seen:?}");
    assert_eq!(seen.get("200").copied().unwrap_or(0), 20 - hung);
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown drops hung connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_body_arrives_slowly_in_pieces() {
    let sim = spawn(
        Sim::builder()
            .fault(Fault::Trickle, 1.0)
            .trickle_interval(Duration::from_millis(5)),
    )
    .await;
    let start = Instant::now();
    let r = post(
        &client(),
        &sim,
        "/chat/completions",
        &chat_body("slow", 10),
        None,
    )
    .await;
    let body = r.bytes().await.unwrap();
    let pieces = body.len().div_ceil(16) as u32;
    assert!(start.elapsed() >= Duration::from_millis(5) * (pieces - 1));
    serde_json::from_slice::<Value>(&body).unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_model_applies_ttft_and_per_token_time() {
    let sim = spawn(
        Sim::builder()
            .latency(Latency {
                ttft: Duration::from_millis(100),
                per_token: Duration::from_millis(5),
                jitter: 0.0,
            })
            .output_tokens(Some(21)),
    )
    .await;
    let c = client();
    post(&c, &sim, "/models", &json!({}), None).await; // warm the connection
    let start = Instant::now();
    post(&c, &sim, "/chat/completions", &chat_body("slow", 100), None)
        .await
        .bytes()
        .await
        .unwrap();
    let took = start.elapsed();
    // 100 ms + 20 tokens * 5 ms = 200 ms.
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_mode_queues_instead_of_refusing() {
    let sim = spawn(Sim::builder().max_concurrency(Some(4)).latency(Latency {
        ttft: Duration::from_millis(50),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }))
    .await;
    let c = client();
    let body = chat_body("queue", 5);
    let start = Instant::now();
    let sends = (0..16).map(|_| post(&c, &sim, "/chat/completions", &body, None));
    let responses = futures::future::join_all(sends).await;
    assert!(responses.iter().all(|r| r.status() == 200));
    // 16 requests, 4 at a time, 50 ms each: at least 4 rounds.
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    let stats = sim.stats();
    assert!(stats.max_in_flight <= 4, "{}", stats.max_in_flight);
    assert_eq!(stats.status(429), 0);
    sim.shutdown().await;
}
