//! Durable runs, driven through the binary: kill -9 and resume, graceful signals, changed
//! input, --restart, --retry-failed, hostile input lines, and the secret canary.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_sim::{Fault, Latency, Sim};

mod common;
use common::{
    Dir, SLUICE, assert_exactly_once, attempts, batch_line, ids, records, run_cmd, signal, spawn,
    wait, write_input,
};

/// The run command these tests use (see [`common::run_cmd`]).
fn command(dir: &Dir, base_url: &str, extra: &[&str]) -> Command {
    run_cmd(dir, base_url, extra)
}

async fn run_to_end(cmd: Command) -> Output {
    common::output(cmd).await
}

/// Complete records so far (a run may be writing): only lines ending in a newline.
fn recorded_ids(dir: &Dir) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for f in ["out.jsonl", "out.errors.jsonl"] {
        let text = std::fs::read_to_string(dir.path(f)).unwrap_or_default();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let v: Value = serde_json::from_str(line).unwrap();
            if let Some(id) = v["custom_id"].as_str() {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

/// A small deterministic RNG for kill points (xorshift).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_then_resume_gives_exactly_one_record_per_request() {
    const ITERATIONS: u64 = 25;
    let mut total_duplicates = 0;
    let mut total_kills = 0;
    for iteration in 0..ITERATIONS {
        let sim = spawn(
            Sim::builder()
                .latency(Latency {
                    ttft: Duration::from_millis(8),
                    per_token: Duration::ZERO,
                    jitter: 0.9,
                })
                .fault(Fault::Status(503), 0.02)
                .seed(iteration),
        )
        .await;
        let dir = Dir::new(&format!("kill-{iteration}"));
        let expected = ids(300);
        write_input(&dir.path("in.jsonl"), &expected);
        let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (iteration + 1);
        // Ids that had a record at each kill, and how often the server had seen them then.
        let mut frozen: BTreeMap<String, usize> = BTreeMap::new();
        let mut finished = false;
        for round in 0..30 {
            let mut child = command(&dir, &sim.base_url(), &["--sync", "always"])
                .spawn()
                .unwrap();
            if round >= 4 {
                // Enough kills for this iteration: let it finish.
                let out = wait(child).await;
                assert!(
                    matches!(out.status.code(), Some(0 | 3)),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                finished = true;
                break;
            }
            let kill_after = Duration::from_millis(10 + next(&mut rng) % 200);
            tokio::time::sleep(kill_after).await;
            if child.try_wait().unwrap().is_some() {
                let out = wait(child).await;
                assert!(
                    matches!(out.status.code(), Some(0 | 3)),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                finished = true;
                break;
            }
            child.kill().unwrap(); // SIGKILL
            let _ = wait(child).await;
            total_kills += 1;
            let seen = attempts(&sim);
            for id in recorded_ids(&dir) {
                frozen
                    .entry(id.clone())
                    .or_insert_with(|| seen.get(&id).copied().unwrap_or(0));
            }
        }
        assert!(finished, "iteration {iteration} never finished");
        assert_exactly_once(&dir, &expected);
        let seen = attempts(&sim);
        for (id, then) in &frozen {
            assert_eq!(
                seen[id], *then,
                "iteration {iteration}: {id} had a record and was sent again"
            );
        }
        // Calls made more than once (in flight at a kill, or retried after a 503).
        let retried_503 = sim.stats().fault(Fault::Status(503)) as usize;
        let extra: usize = seen.values().map(|n| n - 1).sum();
        total_duplicates += extra.saturating_sub(retried_503);
        sim.shutdown().await;
    }
    eprintln!(
        "{ITERATIONS} iterations, {total_kills} kills, {total_duplicates} calls repeated because they were in flight at a kill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_in_flight_work_exits_130_and_resume_sends_only_the_rest() {
    let sim = spawn(Sim::builder().latency(Latency {
        ttft: Duration::from_millis(300),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }))
    .await;
    let dir = Dir::new("sigint");
    let expected = ids(60);
    write_input(&dir.path("in.jsonl"), &expected);
    let child = command(&dir, &sim.base_url(), &[]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let in_flight_at_signal = sim.stats().in_flight;
    assert!(
        in_flight_at_signal > 0,
        "requests must be in flight when the signal comes"
    );
    signal(&child, "INT").await;
    let out = wait(child).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("run {} -o", dir.path("in.jsonl").display())),
        "the command that resumes is printed: {stderr}"
    );
    // The drain finished what was in flight: everything the server saw has its record.
    let sent: BTreeSet<String> = attempts(&sim).keys().cloned().collect();
    let recorded = recorded_ids(&dir);
    assert_eq!(sent, recorded, "drained requests all have records");
    assert!(
        recorded.len() < expected.len(),
        "the signal stopped the run early"
    );
    // Resume: only the rest is sent, each once.
    let out = run_to_end(command(&dir, &sim.base_url(), &[])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming"));
    assert_exactly_once(&dir, &expected);
    assert!(
        attempts(&sim).values().all(|&n| n == 1),
        "graceful stop and resume sent nothing twice"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_143_and_a_second_signal_stops_at_once_with_consistent_files() {
    let sim = spawn(Sim::builder().latency(Latency {
        ttft: Duration::from_secs(5),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }))
    .await;
    let dir = Dir::new("sigterm");
    let expected = ids(20);
    write_input(&dir.path("in.jsonl"), &expected);
    let child = command(&dir, &sim.base_url(), &[]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = Instant::now();
    signal(&child, "TERM").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, "TERM").await;
    let out = wait(child).await;
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the second signal must not wait for the 5 s answers"
    );
    assert!(recorded_ids(&dir).is_empty());
    records(&dir.path("out.jsonl"));
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.path("out.sluice-state.json")).unwrap()).unwrap();
    assert_eq!(state["complete"], false);
    assert!(
        !state["in_flight"].as_array().unwrap().is_empty(),
        "the abandoned requests are remembered"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_input_is_refused_and_restart_starts_over() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("changed");
    let first = ids(10);
    write_input(&dir.path("in.jsonl"), &first);
    assert_eq!(
        run_to_end(command(&dir, &sim.base_url(), &[]))
            .await
            .status
            .code(),
        Some(0)
    );
    // Same input again: nothing left to send.
    let out = run_to_end(command(&dir, &sim.base_url(), &[])).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sim.stats().received, 10);

    let second = ids(12);
    write_input(&dir.path("in.jsonl"), &second);
    let out = run_to_end(command(&dir, &sim.base_url(), &[])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("changed since the run")
            && stderr.contains("--restart")
            && stderr.contains("size"),
        "{stderr}"
    );
    assert_eq!(sim.stats().received, 10, "nothing sent for a changed input");

    let out = run_to_end(command(&dir, &sim.base_url(), &["--restart"])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&dir, &second);
    for f in ["out.jsonl", "out.errors.jsonl", "out.sluice-state.json"] {
        let mode = std::fs::metadata(dir.path(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    // Results without state are not overwritten silently.
    std::fs::remove_file(dir.path("out.sluice-state.json")).unwrap();
    let out = run_to_end(command(&dir, &sim.base_url(), &[])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no "),
        "explains the missing state"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_sends_the_permanent_failures_again() {
    let flaky = spawn(Sim::builder().fault(Fault::BadRequest, 0.3).seed(4)).await;
    let dir = Dir::new("retry-failed");
    let expected = ids(40);
    let mut text: String = expected.iter().map(|id| batch_line(id) + "\n").collect();
    text.push_str("not json\n");
    std::fs::write(dir.path("in.jsonl"), text).unwrap();
    let out = run_to_end(command(&dir, &flaky.base_url(), &[])).await;
    assert_eq!(out.status.code(), Some(3));
    let failed_before = records(&dir.path("out.errors.jsonl")).len();
    assert!(failed_before > 1);
    flaky.shutdown().await;

    let healthy = spawn(Sim::builder()).await;
    let out = run_to_end(command(&dir, &healthy.base_url(), &["--retry-failed"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The invalid line is read again and stays failed; the 400s are sent again and succeed.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(healthy.stats().received as usize, failed_before - 1);
    let errors = records(&dir.path("out.errors.jsonl"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["error"]["code"], "invalid_input");
    assert_eq!(records(&dir.path("out.jsonl")).len(), 40);
    healthy.shutdown().await;
}

/// Runs sluice over `content` (against an instant simulator) and returns (ok ids, error records).
async fn run_content(
    name: &str,
    content: &[u8],
    extra: &[&str],
) -> (Vec<String>, Vec<Value>, String) {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new(name);
    std::fs::write(dir.path("in.jsonl"), content).unwrap();
    let out = run_to_end(command(&dir, &sim.base_url(), extra)).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(matches!(out.status.code(), Some(0 | 3)), "{stderr}");
    let ok = records(&dir.path("out.jsonl"))
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap().to_owned())
        .collect();
    let errors = records(&dir.path("out.errors.jsonl"));
    sim.shutdown().await;
    (ok, errors, stderr)
}

/// A good line, the hostile line, a good line: the hostile one is reported at line 2 with
/// `needle` in its message, and both good lines are sent.
async fn hostile(name: &str, bad: &[u8], needle: &str, extra: &[&str]) {
    let mut content = (batch_line("first") + "\n").into_bytes();
    content.extend_from_slice(bad);
    content.push(b'\n');
    content.extend_from_slice((batch_line("last") + "\n").as_bytes());
    let (mut ok, errors, stderr) = run_content(name, &content, extra).await;
    ok.sort();
    assert_eq!(ok, vec!["first", "last"], "{stderr}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("in.jsonl:2: "), "{message}");
    assert!(message.contains(needle), "{message} lacks {needle}");
    assert_eq!(errors[0]["line"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_a_line_longer_than_the_limit() {
    let long = format!(
        r#"{{"custom_id":"long","method":"POST","url":"/v1/chat/completions","body":{{"x":"{}"}}}}"#,
        "y".repeat(5000)
    );
    hostile(
        "long",
        long.as_bytes(),
        "--max-line-bytes",
        &["--max-line-bytes", "1000"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_invalid_utf8() {
    hostile(
        "utf8",
        b"{\"custom_id\":\"bad\xff\xfe\",\"url\":\"/v1/chat/completions\",\"body\":{}}",
        "invalid UTF-8",
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_invalid_json() {
    hostile("json", b"{\"custom_id\": \"x\", oops}", "invalid JSON", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_blank_line() {
    hostile("blank", b"   ", "blank line", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_wrong_method() {
    hostile(
        "method",
        br#"{"custom_id":"m","method":"GET","url":"/v1/chat/completions","body":{}}"#,
        "method `GET`",
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_wrong_url() {
    hostile(
        "url",
        br#"{"custom_id":"u","method":"POST","url":"/v1/fine_tuning/jobs","body":{}}"#,
        "unsupported url",
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_body_not_an_object() {
    hostile(
        "body",
        br#"{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":[1,2]}"#,
        "`body` must be a JSON object",
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_duplicate_custom_id() {
    let (ok, errors, _) = run_content(
        "dup",
        (batch_line("same") + "\n" + &batch_line("same") + "\n").as_bytes(),
        &[],
    )
    .await;
    assert_eq!(ok, vec!["same"]);
    assert_eq!(errors[0]["error"]["code"], "duplicate_custom_id");
    assert_eq!(errors[0]["line"], 2);
    assert!(
        errors[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in.jsonl:2:"),
        "the message names the file and the line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bom_crlf_and_a_last_line_without_newline_are_accepted() {
    let content = format!(
        "\u{feff}{}\r\n{}\r\n{}",
        batch_line("a"),
        batch_line("b"),
        batch_line("c")
    );
    let (mut ok, errors, stderr) = run_content("bom", content.as_bytes(), &[]).await;
    ok.sort();
    assert_eq!(ok, vec!["a", "b", "c"], "{stderr}");
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_checks_a_file_without_sending_and_summarizes_by_kind() {
    let dir = Dir::new("validate");
    let content = format!(
        "{}\nnot json\n\n{}\n{}\n",
        batch_line("a"),
        batch_line("a"),
        batch_line("b")
    );
    std::fs::write(dir.path("in.jsonl"), content).unwrap();
    let out = run_to_end({
        let mut c = Command::new(SLUICE);
        c.args(["validate", dir.path("in.jsonl").to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("2 valid lines, 3 invalid"), "{stdout}");
    for kind in ["invalid_json: 1", "blank_line: 1", "duplicate_custom_id: 1"] {
        assert!(stdout.contains(kind), "{stdout} lacks {kind}");
    }
    assert!(
        stderr.contains("in.jsonl:2: ") && stderr.contains("in.jsonl:4: "),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_done_failed_and_pending() {
    let sim = spawn(Sim::builder().fault(Fault::BadRequest, 0.5).seed(2)).await;
    let dir = Dir::new("status");
    write_input(&dir.path("in.jsonl"), &ids(20));
    run_to_end(command(&dir, &sim.base_url(), &[])).await;
    let out = run_to_end({
        let mut c = Command::new(SLUICE);
        c.args(["status", dir.path("out.jsonl").to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    })
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bad = sim.stats().fault(Fault::BadRequest);
    assert!(
        stdout.contains(&format!("done     {} ok, {bad} failed", 20 - bad)),
        "{stdout}"
    );
    assert!(
        stdout.contains("pending  0") && stdout.contains("complete"),
        "{stdout}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_never_appears_anywhere_even_when_the_server_echoes_it() {
    const CANARY: &str = "sk-canary-7f3a9c1e55d0";
    // The server wants another key and echoes the one it got, as OpenAI's 401 does.
    let sim = spawn(Sim::builder().api_key(Some("sk-the-right-one".into()))).await;
    let dir = Dir::new("canary");
    write_input(&dir.path("in.jsonl"), &ids(5));
    let mut cmd = command(&dir, &sim.base_url(), &[]);
    cmd.env("OPENAI_API_KEY", CANARY).env("RUST_LOG", "trace");
    let out = run_to_end(cmd).await;
    // Every request refused: the run stops early and prints what the server said.
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[REDACTED]"));
    // Faults and retries with the right key, at trace level too.
    let sim2 = spawn(
        Sim::builder()
            .api_key(Some(CANARY.into()))
            .fault(Fault::Status(503), 0.3)
            .fault(Fault::Reset, 0.2)
            .seed(3),
    )
    .await;
    let dir2 = Dir::new("canary2");
    write_input(&dir2.path("in.jsonl"), &ids(10));
    let mut cmd = command(&dir2, &sim2.base_url(), &[]);
    cmd.env("OPENAI_API_KEY", CANARY).env("RUST_LOG", "trace");
    let out2 = run_to_end(cmd).await;
    assert_eq!(
        out2.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    assert!(out2.stderr.len() > 1000, "trace logging produced output");
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("stdout".into(), out.stdout),
        ("stderr".into(), out.stderr),
        ("stdout 2".into(), out2.stdout),
        ("stderr 2".into(), out2.stderr),
    ];
    for d in [&dir, &dir2] {
        for entry in std::fs::read_dir(&d.0).unwrap() {
            let p = entry.unwrap().path();
            haystacks.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    for (name, bytes) in haystacks {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(CANARY), "the key leaked into {name}");
    }
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_holds_across_the_whole_file_fifo_within_a_class() {
    let sim = spawn(Sim::builder().latency(Latency {
        ttft: Duration::from_millis(2),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }))
    .await;
    let dir = Dir::new("priority");
    let line = |id: &str, priority: Option<&str>| {
        let mut v: Value = serde_json::from_str(&batch_line(id)).unwrap();
        if let Some(p) = priority {
            v["priority"] = json!(p);
        }
        v.to_string() + "\n"
    };
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&line(&format!("low-{i:02}"), Some("low")));
    }
    for i in 0..200 {
        text.push_str(&line(&format!("normal-{i:03}"), None));
    }
    for i in 0..20 {
        text.push_str(&line(&format!("high-{i:02}"), Some("high")));
    }
    std::fs::write(dir.path("in.jsonl"), text).unwrap();
    // One at a time, so arrival order is dispatch order.
    let mut cmd = Command::new(SLUICE);
    cmd.arg("run")
        .arg(dir.path("in.jsonl"))
        .arg("-o")
        .arg(dir.path("out.jsonl"))
        .args(["--base-url", &sim.base_url(), "--concurrency", "1"])
        .env("OPENAI_API_KEY", "sk-test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_to_end(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut order: Vec<(u64, String)> = sim
        .stats()
        .attempts
        .into_iter()
        .map(|(id, t)| (t[0], id))
        .collect();
    order.sort();
    let ids: Vec<&str> = order.iter().map(|(_, id)| id.as_str()).collect();
    let expected_high: Vec<String> = (0..20).map(|i| format!("high-{i:02}")).collect();
    assert_eq!(
        ids[..20],
        expected_high.iter().map(String::as_str).collect::<Vec<_>>()[..],
        "high first, in file order"
    );
    assert!(ids[20..220].iter().all(|id| id.starts_with("normal-")));
    assert!(
        ids[20..220].windows(2).all(|w| w[0] < w[1]),
        "normal lines in file order"
    );
    assert!(
        ids[220..].iter().all(|id| id.starts_with("low-")),
        "low last"
    );
    assert_exactly_once(
        &dir,
        &order.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_deep_into_a_large_file_starts_reading_near_the_first_line_left() {
    // 30,000 lines of about 150 bytes: several of the first pass's buffers, so the resume
    // starts reading at a line start it noted rather than at the top.
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("deep-resume");
    let all = ids(30_000);
    write_input(&dir.path("in.jsonl"), &all);
    let o = run_to_end(command(
        &dir,
        &sim.base_url(),
        &["--concurrency", "32", "--progress", "off"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    // Keep the first 25,000 records written (completion order, so the lines done are not
    // a prefix of the file) and resume.
    let text = std::fs::read_to_string(dir.path("out.jsonl")).unwrap();
    let kept: String = text.split_inclusive('\n').take(25_000).collect();
    std::fs::write(dir.path("out.jsonl"), kept).unwrap();
    let before = sim.stats().received;
    let o = run_to_end(command(&dir, &sim.base_url(), &["--progress", "off"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert_eq!(
        sim.stats().received - before,
        5_000,
        "only the lines left are sent"
    );
    assert_exactly_once(&dir, &all);
    let lines: BTreeSet<u64> = records(&dir.path("out.jsonl"))
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        (1..=30_000).collect(),
        "every line has its own record"
    );
}
