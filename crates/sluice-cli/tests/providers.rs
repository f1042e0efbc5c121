//! `sluice run` for providers other than OpenAI: an Anthropic Message Batches file runs
//! against Anthropic's dialect with no `--provider` (its lines say so), with its key and
//! base URL from Anthropic's variables and separate input and output budgets; Azure needs
//! its deployment's URL.

mod common;

use common::{Dir, SLUICE, output, records, spawn, stderr};
use serde_json::json;
use sluice_sim::Sim;
use std::num::NonZeroU64;
use std::process::{Command, Stdio};

#[tokio::test]
async fn an_anthropic_batch_file_runs_on_anthropics_dialect_without_a_provider_flag() {
    let sim = spawn(
        Sim::builder()
            .api_key(Some("sk-ant-cli".into()))
            .itpm(NonZeroU64::new(100_000))
            .otpm(NonZeroU64::new(20_000))
            .output_tokens(Some(12)),
    )
    .await;
    let dir = Dir::new("anthropic-batch");
    let lines: String = (0..30)
        .map(|i| {
            json!({"custom_id": format!("a{i}"), "params": {"model": "claude-haiku-4-5",
                "max_tokens": 100, "messages": [{"role": "user", "content": format!("Question {i}")}]}})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(dir.path("in.jsonl"), lines).unwrap();
    let mut cmd = Command::new(SLUICE);
    cmd.arg("run")
        .arg(dir.path("in.jsonl"))
        .arg("-o")
        .arg(dir.path("out.jsonl"))
        .args(["--itpm", "100000", "--otpm", "20000", "--burst-secs", "0.5"])
        .env("ANTHROPIC_BASE_URL", sim.base_url())
        .env("ANTHROPIC_API_KEY", "sk-ant-cli")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = output(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let records = records(&dir.path("out.jsonl"));
    assert_eq!(records.len(), 30);
    for r in &records {
        assert_eq!(r["response"]["status_code"], 200, "{r}");
        assert_eq!(r["response"]["body"]["type"], "message");
        assert_eq!(r["response"]["body"]["usage"]["output_tokens"], 12);
    }
    let stats = sim.stats();
    assert_eq!(stats.by_status.get("200"), Some(&30));
    assert_eq!(stats.total_429(), 0, "{:?}", stats.rate_limited);
}

#[tokio::test]
async fn azure_without_a_deployment_url_is_a_usage_error_before_anything_is_sent() {
    let dir = Dir::new("azure-no-url");
    common::write_input(&dir.path("in.jsonl"), &common::ids(2));
    let mut cmd = Command::new(SLUICE);
    cmd.arg("run")
        .arg(dir.path("in.jsonl"))
        .arg("-o")
        .arg(dir.path("out.jsonl"))
        .args(["--provider", "azure"])
        .env("AZURE_OPENAI_API_KEY", "k")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!dir.path("out.jsonl").exists());
}

#[tokio::test]
async fn an_endpoints_file_spreads_one_run_over_two_servers_within_their_limits() {
    let slow = spawn(Sim::builder().rpm(NonZeroU64::new(1200))).await;
    let fast = spawn(
        Sim::builder()
            .rpm(NonZeroU64::new(2400))
            .api_key(Some("sk-fast".into())),
    )
    .await;
    let dir = Dir::new("endpoints-file");
    common::write_input(&dir.path("in.jsonl"), &common::ids(150));
    let file = format!(
        "[[endpoint]]\nname = \"slow\"\nbase_url = \"{}\"\nno_auth = true\nrpm = 1200\nconcurrency = 8\n\n\
         [[endpoint]]\nname = \"fast\"\nbase_url = \"{}\"\nkey_env = \"FAST_KEY\"\nrpm = 2400\nconcurrency = 8\n",
        slow.base_url(),
        fast.base_url()
    );
    std::fs::write(dir.path("endpoints.toml"), file).unwrap();
    let mut cmd = Command::new(SLUICE);
    cmd.arg("run")
        .arg(dir.path("in.jsonl"))
        .arg("-o")
        .arg(dir.path("out.jsonl"))
        .arg("--endpoints")
        .arg(dir.path("endpoints.toml"))
        .args(["--burst-secs", "0.5"])
        .arg("--events")
        .arg(dir.path("events.jsonl"))
        .args(["--progress-every", "0.2"])
        .env("FAST_KEY", "sk-fast")
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = output(cmd).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let written = records(&dir.path("out.jsonl"));
    assert_eq!(written.len(), 150);
    assert!(written.iter().all(|r| r["response"]["status_code"] == 200));
    let served = |s: &sluice_sim::SimHandle| s.stats().by_status.get("200").copied().unwrap_or(0);
    assert_eq!(served(&slow) + served(&fast), 150);
    assert!(
        served(&slow) > 0 && served(&fast) > served(&slow),
        "{} {}",
        served(&slow),
        served(&fast)
    );
    assert_eq!(slow.stats().total_429() + fast.stats().total_429(), 0);
    // The summary shows the split, one line per endpoint.
    assert!(err.contains("slow:") && err.contains("fast:"), "{err}");
    // So does the JSON progress: the last object's split adds up to every success.
    let events = records(&dir.path("events.jsonl"));
    let last = events
        .iter()
        .rev()
        .find(|e| e.get("endpoints").is_some())
        .expect("progress objects with the split");
    let split = last["endpoints"].as_array().unwrap();
    assert_eq!(split.len(), 2);
    assert_eq!(split[0]["name"], "slow");
    let ok: u64 = split.iter().map(|e| e["ok"].as_u64().unwrap()).sum();
    assert_eq!(ok, 150, "{last}");
    // Limits given both ways are refused before anything is sent.
    let mut both = Command::new(SLUICE);
    both.arg("run")
        .arg(dir.path("in.jsonl"))
        .arg("-o")
        .arg(dir.path("other.jsonl"))
        .arg("--endpoints")
        .arg(dir.path("endpoints.toml"))
        .args(["--rpm", "100"])
        .env("FAST_KEY", "sk-fast")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    assert_eq!(output(both).await.status.code(), Some(2));
}

#[tokio::test]
async fn anthropic_output_format_writes_batch_result_lines_that_resume_and_export() {
    let sim = spawn(
        Sim::builder()
            .fault(sluice_sim::Fault::BadRequest, 0.2)
            .seed(8),
    )
    .await;
    let dir = Dir::new("anthropic-output");
    let lines: String = (0..40)
        .map(|i| {
            json!({"custom_id": format!("a{i}"), "params": {"model": "claude-haiku-4-5",
                "max_tokens": 20, "messages": [{"role": "user", "content": format!("Q{i}")}]}})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(dir.path("in.jsonl"), lines).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(SLUICE);
        cmd.arg("run")
            .arg(dir.path("in.jsonl"))
            .arg("-o")
            .arg(dir.path("out.jsonl"))
            .args(["--output-format", "anthropic", "--backoff-base", "0.01"])
            .args(extra)
            .env("ANTHROPIC_BASE_URL", sim.base_url())
            .env("ANTHROPIC_API_KEY", "k")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let out = output(run(&[])).await;
    // Exit 3: some requests failed (the injected 400s).
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let ok = records(&dir.path("out.jsonl"));
    let failed = records(&dir.path("out.errors.jsonl"));
    assert_eq!(ok.len() + failed.len(), 40);
    assert!(!failed.is_empty(), "the test needs failures");
    for r in &ok {
        assert_eq!(r["result"]["type"], "succeeded", "{r}");
        assert_eq!(r["result"]["message"]["type"], "message");
        assert!(r.get("response").is_none());
    }
    for r in &failed {
        assert_eq!(r["result"]["type"], "errored", "{r}");
        assert_eq!(
            r["result"]["error"]["error"]["type"],
            "invalid_request_error"
        );
    }
    // Resuming reads these records: nothing is sent again, nothing written twice.
    let before = sim.stats().received;
    let again = output(run(&[])).await;
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert_eq!(sim.stats().received, before);
    assert_eq!(records(&dir.path("out.jsonl")).len(), ok.len());
    // The table reads the messages' text.
    let mut export = Command::new(SLUICE);
    export
        .arg("export")
        .arg(dir.path("out.jsonl"))
        .arg("-o")
        .arg(dir.path("table.jsonl"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let exported = output(export).await;
    assert!(exported.status.success(), "{}", stderr(&exported));
    let rows = records(&dir.path("table.jsonl"));
    assert_eq!(rows.len(), 40);
    let with_text = rows
        .iter()
        .filter(|r| r["text"].as_str().is_some_and(|t| t.contains("sim-reply")))
        .count();
    assert_eq!(with_text, ok.len());
}
