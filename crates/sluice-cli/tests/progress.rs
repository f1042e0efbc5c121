//! What a person sees during a run: plain lines off a terminal, JSON objects that follow
//! the documented schema, the binding limit named correctly, and the live view in a real
//! pseudo-terminal (tmux).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_sim::{Latency, Sim};

mod common;
use common::{Dir, SLUICE, output, run_cmd, spawn, stderr, write_input};

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("p-{i:05}")).collect()
}

fn latency(ms: u64) -> Latency {
    Latency {
        ttft: Duration::from_millis(ms),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_a_terminal_a_plain_line_comes_every_interval() {
    let sim = spawn(Sim::builder().latency(latency(50))).await;
    let dir = Dir::new("plain-progress");
    write_input(&dir.path("in.jsonl"), &ids(120));
    let o = output(run_cmd(
        &dir,
        &sim.base_url(),
        &["--concurrency", "4", "--progress-every", "0.3"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<(u64, u64)> = stderr(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("sluice: "))
        .filter_map(|l| {
            let (done, rest) = l.split_once('/')?;
            let total = rest.split_whitespace().next()?;
            // "12/120 done, ..."
            let total = total.trim_end_matches(',');
            Some((done.parse().ok()?, total.parse().ok()?))
        })
        .collect();
    assert!(lines.len() >= 3, "{} progress lines", lines.len());
    assert!(lines.iter().all(|&(_, total)| total == 120), "{lines:?}");
    assert!(
        lines.windows(2).all(|w| w[0].0 <= w[1].0),
        "done only grows: {lines:?}"
    );
    assert!(
        stderr(&o).contains("bound by"),
        "the summary names the binding"
    );
}

/// The progress objects of a run with `extra` flags, read from `--events`.
async fn events(name: &str, sim_latency: u64, n: usize, extra: &[&str]) -> Vec<Value> {
    let sim = spawn(Sim::builder().latency(latency(sim_latency))).await;
    let dir = Dir::new(name);
    write_input(&dir.path("in.jsonl"), &ids(n));
    let events = dir.path("events.jsonl");
    let mut flags = vec!["--events", events.to_str().unwrap()];
    flags.extend_from_slice(extra);
    let o = output(run_cmd(&dir, &sim.base_url(), &flags)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn number(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is a number in {v}"))
}

/// Checks one object against docs/PROGRESS.md.
fn check_schema(v: &Value) {
    assert_eq!(v["schema"], "sluice.progress/1", "{v}");
    assert!(number(v, "t") >= 0.0);
    match v["type"].as_str().expect("a type") {
        "progress" | "end" => {
            for field in [
                "done",
                "resumed",
                "ok",
                "failed",
                "retries",
                "rate_limited",
                "in_flight",
                "concurrency",
            ] {
                assert!(v[field].is_u64(), "{field} is a count in {v}");
            }
            for field in [
                "requests_per_s",
                "prompt_tokens_per_s",
                "completion_tokens_per_s",
            ] {
                assert!(number(v, field) >= 0.0);
            }
            assert!(v["total"].is_u64() || v["total"].is_null());
            assert!(v["eta_s"].is_f64() || v["eta_s"].is_null());
            assert!(v["failed_by_kind"].is_object());
            for budget in ["rpm", "tpm"] {
                for part in ["rate", "limit"] {
                    let x = &v[budget][part];
                    assert!(x.is_f64() || x.is_null(), "{budget}.{part} in {v}");
                }
            }
            let binding = v["binding"].as_str().expect("a binding");
            assert!(
                sluice::Binding::ALL.iter().any(|b| b.code() == binding),
                "{binding}"
            );
            assert!(v["draining"].is_boolean());
            for field in ["cost_usd", "cost_projected_usd"] {
                assert!(v[field].is_f64() || v[field].is_null(), "{field} in {v}");
            }
            assert!(v["unpriced"].is_u64());
            if v["type"] == "end" {
                let shares = v["binding_shares"].as_object().expect("shares");
                let sum: f64 = shares.values().map(|s| s.as_f64().unwrap()).sum();
                assert!(shares.is_empty() || (sum - 1.0).abs() < 1e-6, "{sum}");
            }
        }
        "pause" => assert!(number(v, "seconds") >= 0.0),
        "halt" => assert!(v["reason"].is_string()),
        "stop" => assert!(v["signal"].is_string()),
        "spend_cap" => assert!(v["reason"].is_string()),
        other => panic!("unknown type {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_events_follow_the_documented_schema() {
    let all = events(
        "json-schema",
        20,
        200,
        &["--concurrency", "8", "--progress-every", "0.2"],
    )
    .await;
    assert!(all.len() >= 3, "{} objects", all.len());
    for v in &all {
        check_schema(v);
    }
    let last = all.last().unwrap();
    assert_eq!(last["type"], "end");
    assert_eq!(last["done"], 200);
    assert_eq!(last["ok"], 200);
    let types: BTreeSet<&str> = all.iter().filter_map(|v| v["type"].as_str()).collect();
    assert!(types.contains("progress"));
}

/// The binding that held the run back longest, from the last JSON object.
async fn top_binding(name: &str, sim_latency: u64, n: usize, extra: &[&str]) -> String {
    let all = events(name, sim_latency, n, extra).await;
    let shares = all.last().unwrap()["binding_shares"]
        .as_object()
        .unwrap()
        .clone();
    let (top, _) = shares
        .iter()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .expect("some binding");
    top.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binding_limit_is_named_when_requests_tokens_or_concurrency_bind() {
    // Requests per minute: 600 a minute against an instant server, 64 at once.
    let rpm = top_binding("bind-rpm", 1, 60, &["--rpm", "600", "--burst-secs", "0.5"]).await;
    assert_eq!(rpm, "requests_per_minute");
    // Tokens per minute: each request costs about 20 tokens, 12,000 a minute allowed.
    let tpm = top_binding(
        "bind-tpm",
        1,
        60,
        &["--tpm", "12000", "--rpm", "100000", "--burst-secs", "0.5"],
    )
    .await;
    assert_eq!(tpm, "tokens_per_minute");
    // Concurrency: two at a time against a 100 ms server, no rate limits.
    let conc = top_binding("bind-conc", 100, 40, &["--concurrency", "2"]).await;
    assert_eq!(conc, "concurrency");
}

/// Whether tmux can be used here.
fn tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn capture(session: &str) -> String {
    let o = Command::new("tmux")
        .args(["capture-pane", "-p", "-t", session])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `done` count of the live view's line, if the pane shows one.
fn shown_done(pane: &str) -> Option<u64> {
    pane.lines()
        .find(|l| l.contains("req/s"))
        .and_then(|l| l.split('/').next())
        .and_then(|head| head.split_whitespace().last())
        .and_then(|n| n.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_in_a_terminal_shows_the_bar_the_rates_and_the_binding() {
    if !tmux() {
        eprintln!("SKIPPED: tmux is not installed, so the live view was not tested in a terminal");
        return;
    }
    let sim = spawn(Sim::builder().latency(latency(20))).await;
    let dir = Dir::new("live-view");
    write_input(&dir.path("in.jsonl"), &ids(400));
    let session = format!("sluice-live-{}", std::process::id());
    let script = format!(
        "OPENAI_API_KEY=sk-test-key-123 {SLUICE} run {} -o {} --base-url {} --rpm 1200 --burst-secs 0.5; sleep 30",
        dir.path("in.jsonl").display(),
        dir.path("out.jsonl").display(),
        sim.base_url()
    );
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "220",
            "-y",
            "12",
            &script,
        ])
        .status()
        .unwrap();
    assert!(started.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.len() < 2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let pane = capture(&session);
        if let Some(done) = shown_done(&pane)
            && seen.last().is_none_or(|(d, _)| *d < done)
        {
            seen.push((done, pane));
        }
    }
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    assert!(
        seen.len() >= 2,
        "the live view advanced at two moments: {seen:?}"
    );
    for (_, pane) in &seen {
        assert!(pane.contains('█') || pane.contains('░'), "a bar: {pane}");
        assert!(pane.contains("/400"), "done of total: {pane}");
        assert!(
            pane.contains("req/s") && pane.contains("tok/s"),
            "rates: {pane}"
        );
        assert!(
            pane.contains("rpm "),
            "the admitted rate and its limit: {pane}"
        );
        assert!(pane.contains("waiting on"), "the binding: {pane}");
        assert!(pane.contains('$'), "the cost so far: {pane}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_file_agrees_with_the_simulators_own_counts() {
    let sim = spawn(
        Sim::builder()
            .latency(latency(5))
            .fault(sluice_sim::Fault::Status(503), 0.1)
            .fault(sluice_sim::Fault::Status(429), 0.03)
            .seed(9),
    )
    .await;
    let dir = Dir::new("stats-file");
    write_input(&dir.path("in.jsonl"), &ids(150));
    let o = output(run_cmd(&dir, &sim.base_url(), &["--progress", "off"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("out.sluice-stats.json")).unwrap())
            .unwrap();
    let sim_stats = sim.stats();
    assert_eq!(stats["schema"], "sluice.stats/1");
    assert_eq!(stats["attempts"]["total"], sim_stats.received);
    assert_eq!(stats["attempts"]["rate_limited"], sim_stats.total_429());
    assert!(
        sim_stats.total_429() > 0 && sim_stats.status(503) > 0,
        "faults fired"
    );
    let records = common::records(&dir.path("out.jsonl"));
    assert_eq!(stats["requests"]["ok"], records.len() as u64);
    let prompt: u64 = records
        .iter()
        .map(|r| {
            r["response"]["body"]["usage"]["prompt_tokens"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(stats["tokens"]["prompt"], prompt);
    let per_request: u64 = stats["attempts"]["per_request"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(per_request, 150, "one final result per request");
    let retried: u64 = stats["attempts"]["per_request"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(n, _)| *n != "1")
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert!(retried > 0);
    assert_eq!(stats["lines"]["total"], 150);
    let series = stats["series"].as_array().unwrap();
    assert_eq!(series.last().unwrap()["finished"], 150);
    assert!(
        stats["latency_ms"]["p99"].as_f64().unwrap()
            >= stats["latency_ms"]["p50"].as_f64().unwrap()
    );
}

/// Parses Prometheus' text format: `name{labels}` to value, failing on any malformed line.
fn parse_metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("malformed: {l}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {l}"));
            (key.to_owned(), value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_are_served_during_the_run() {
    let sim = spawn(Sim::builder().latency(latency(30))).await;
    let dir = Dir::new("metrics");
    write_input(&dir.path("in.jsonl"), &ids(300));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let child = run_cmd(
        &dir,
        &sim.base_url(),
        &[
            "--concurrency",
            "4",
            "--rpm",
            "6000",
            "--metrics-addr",
            &addr,
        ],
    )
    .spawn()
    .unwrap();
    let url = format!("http://{addr}/metrics");
    let http = reqwest::Client::new();
    let mut scrapes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while scrapes.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(400)).await;
        if let Ok(r) = http.get(&url).send().await {
            let text = r.text().await.unwrap();
            let m = parse_metrics(&text);
            let ok = m.get(r#"sluice_requests_total{outcome="ok"}"#).copied();
            if ok.is_some_and(|n| n > 0.0 && n < 300.0) {
                scrapes.push(m);
            }
        }
    }
    let o = common::wait(child).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(scrapes.len(), 2, "scraped twice during the run");
    let (a, b) = (&scrapes[0], &scrapes[1]);
    let ok = r#"sluice_requests_total{outcome="ok"}"#;
    assert!(b[ok] > a[ok], "the counter grows");
    for name in [
        "sluice_attempts_total",
        "sluice_retries_total",
        "sluice_rate_limited_total",
        r#"sluice_tokens_total{kind="prompt"}"#,
        "sluice_in_flight_requests",
        "sluice_concurrency_limit",
        r#"sluice_rate_per_minute{budget="requests",value="limit"}"#,
        r#"sluice_request_duration_seconds_bucket{le="+Inf"}"#,
        "sluice_request_duration_seconds_count",
    ] {
        assert!(b.contains_key(name), "{name} is served");
    }
    assert_eq!(b["sluice_concurrency_limit"], 4.0);
    assert_eq!(
        b[r#"sluice_rate_per_minute{budget="requests",value="limit"}"#],
        6000.0
    );
    assert!(
        b.keys()
            .any(|k| k.starts_with("sluice_waiting_seconds_total{on="))
    );
    // Buckets are cumulative.
    let le = |s: &str| b[&format!(r#"sluice_request_duration_seconds_bucket{{le="{s}"}}"#)];
    assert!(le("0.05") <= le("0.1") && le("0.1") <= le("+Inf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_every_attempt_and_retry_and_never_the_key() {
    const KEY: &str = "sk-verbose-canary-0123456789";
    let sim = spawn(
        Sim::builder()
            .latency(latency(2))
            .fault(sluice_sim::Fault::Status(503), 0.2)
            .seed(5),
    )
    .await;
    let dir = Dir::new("verbose");
    write_input(&dir.path("in.jsonl"), &ids(30));
    let mut cmd = run_cmd(&dir, &sim.base_url(), &["-v", "--progress", "off"]);
    cmd.env("OPENAI_API_KEY", KEY).env_remove("RUST_LOG");
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let answered = err
        .lines()
        .filter(|l| l.contains("attempt answered") && l.contains("custom_id="))
        .count() as u64;
    assert_eq!(
        answered,
        sim.stats().received,
        "one line per attempt the server saw"
    );
    let retries = err.lines().filter(|l| l.contains("retry planned")).count() as u64;
    assert_eq!(retries, sim.stats().status(503), "one line per retry");
    assert!(!err.contains(KEY), "the key is never logged");
}
