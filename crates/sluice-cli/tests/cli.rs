//! The `sluice` binary, driven as a user would, against an in-process simulator on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sluice_sim::{Sim, SimHandle};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sim() -> SimHandle {
    Sim::builder().build().unwrap().spawn().await.unwrap()
}

/// Runs sluice with `args` off the async runtime (the simulator lives on it).
async fn sluice(args: Vec<String>, stdin: Option<Vec<u8>>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(SLUICE);
        cmd.args(&args)
            .env_remove("OPENAI_BASE_URL")
            .env("OPENAI_API_KEY", "sk-test-not-a-real-key")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn batch_line(id: &str) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("hello {id}")}], "max_tokens": 5}})
    .to_string()
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_reported_with_their_number_and_the_run_goes_on() {
    let sim = sim().await;
    let dir = temp_dir("bad-lines");
    let input = dir.join("in.jsonl");
    let mut text = String::new();
    text.push_str(&batch_line("a"));
    text.push('\n');
    text.push_str("{this is not json\n");
    text.push_str(
        r#"{"method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#,
    );
    text.push('\n');
    text.push_str(
        r#"{"custom_id":"img","method":"POST","url":"/v1/images/generations","body":{}}"#,
    );
    text.push('\n');
    text.push_str(&batch_line("b"));
    text.push('\n');
    std::fs::write(&input, text).unwrap();
    let output = dir.join("out.jsonl");
    let out = sluice(
        args(&[
            "run",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--base-url",
            &sim.base_url(),
        ]),
        None,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let ok = lines(&output);
    let errors = lines(&dir.join("out.errors.jsonl"));
    assert_eq!(ok.len(), 2);
    assert_eq!(errors.len(), 3);
    let by_line: BTreeMap<u64, &Value> = errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e))
        .collect();
    let message = |n: u64| by_line[&n]["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message(2).contains("in.jsonl:2: invalid JSON"),
        "{}",
        message(2)
    );
    assert!(
        message(3).contains("in.jsonl:3: missing `custom_id`"),
        "{}",
        message(3)
    );
    assert!(
        message(4).contains("in.jsonl:4: unsupported url"),
        "{}",
        message(4)
    );
    assert_eq!(by_line[&4]["custom_id"], "img");
    assert!(errors.iter().all(|e| e["error"]["code"] == "invalid_input"));
    assert!(stderr.contains("invalid_input 3"), "{stderr}");
    assert_eq!(sim.stats().received, 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_line_yields_exactly_one_record_and_files_are_private() {
    exactly_once_with_threads("1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_threads_give_the_same_records() {
    exactly_once_with_threads("3").await;
}

async fn exactly_once_with_threads(threads: &str) {
    let sim = sim().await;
    let dir = temp_dir(&format!("exactly-once-{threads}"));
    let input = dir.join("requests.jsonl");
    let ids: Vec<String> = (0..200).map(|i| format!("r{i}")).collect();
    std::fs::write(
        &input,
        ids.iter()
            .map(|id| batch_line(id) + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let output = dir.join("results.jsonl");
    let out = sluice(
        args(&[
            "run",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--base-url",
            &sim.base_url(),
            "--concurrency",
            "16",
            "--threads",
            threads,
        ]),
        None,
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = lines(&output);
    let mut seen: Vec<String> = results
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
    for r in &results {
        assert_eq!(r["response"]["status_code"], 200);
        assert!(r["id"].as_str().unwrap().starts_with("batch_req_"));
        assert_eq!(r["error"], Value::Null);
        let content = r["response"]["body"]["choices"][0]["message"]["content"]
            .as_str()
            .unwrap();
        assert!(content.contains(&format!("id={} ", r["custom_id"].as_str().unwrap())));
    }
    for file in [&output, &dir.join("results.errors.jsonl")] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in ["ok           200", "latency      p50", "requests/s"] {
        assert!(stderr.contains(needle), "summary lacks {needle}: {stderr}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_prompts_from_stdin_get_line_number_ids() {
    let sim = sim().await;
    let dir = temp_dir("prompts");
    let output = dir.join("out.jsonl");
    let out = sluice(
        args(&[
            "run",
            "-",
            "-o",
            output.to_str().unwrap(),
            "--base-url",
            &sim.base_url(),
            "--model",
            "gpt-4o-mini",
            "--system",
            "be brief",
            "--max-tokens",
            "12",
        ]),
        Some(b"what is rust?\nwhat is tokio?\n".to_vec()),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = lines(&output);
    let mut ids: Vec<&str> = results
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["1", "2"]);
    assert!(results.iter().all(|r| {
        r["response"]["body"]["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            <= 12
    }));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_missing_input_exits_1() {
    let dir = temp_dir("usage");
    let out = sluice(
        args(&[
            "run",
            "x",
            "-o",
            dir.join("o").to_str().unwrap(),
            "--format",
            "prompts",
        ]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"));
    let out = sluice(
        args(&[
            "run",
            "x",
            "-o",
            dir.join("o").to_str().unwrap(),
            "--concurrency",
            "0",
        ]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let missing = dir.join("missing.jsonl");
    let out = sluice(
        args(&[
            "run",
            missing.to_str().unwrap(),
            "-o",
            dir.join("o").to_str().unwrap(),
        ]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sluice: cannot open") && stderr.contains("missing.jsonl"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_command_prints_its_address_and_serves() {
    let mut child = Command::new(SLUICE)
        .args(["sim", "--listen", "127.0.0.1:0", "--rpm", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = first
        .trim()
        .strip_prefix("sluice sim listening on ")
        .expect(&first)
        .to_owned();
    let r = reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit-requests"], "600");
    child.kill().unwrap();
    child.wait().unwrap();
}
