//! A run that fails well, driven through the binary: one run per output, bounded memory
//! against hostile servers and lines, the key in no output in any encoding, files that
//! cannot be confused, a damaged output repaired on resume, stopping early when nothing
//! can succeed, and flags that make no sense refused.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_sim::{Latency, Sim};

mod common;
use common::{
    Dir, SLUICE, assert_exactly_once, attempts, batch_line, ids, output, records, run_cmd, signal,
    spawn, stderr, wait, write_input,
};

/// Exit codes from the README's table.
const EXIT_OK: i32 = 0;
const EXIT_USAGE: i32 = 2;
const EXIT_FAILURES: i32 = 3;
const EXIT_HALTED: i32 = 4;
const EXIT_LOCKED: i32 = 5;
const EXIT_INCOMPLETE: i32 = 6;

/// Runs `cmd` and returns its exit code, its stderr and its peak resident memory in bytes.
/// The peak is the kernel's high-water mark of the process's own memory (`VmHWM`, which
/// starts anew at exec, unlike a child's rusage, which also counts the test process it was
/// forked from), read until the process exits.
async fn run_measured(mut cmd: Command, dir: &Dir) -> (i32, String, u64) {
    let err_path = dir.path("stderr.txt");
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let (code, peak) = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak = 0u64;
        loop {
            // Until exec, the child is a copy of this test process: count only sluice.
            if let Ok(text) = std::fs::read_to_string(&status_file)
                && text.lines().next() == Some("Name:\tsluice")
                && let Some(kb) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
            if let Some(status) = child.try_wait().unwrap() {
                return (status.code().unwrap_or(-1), peak);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await
    .unwrap();
    assert!(peak > 0, "the peak was read");
    (code, std::fs::read_to_string(err_path).unwrap(), peak)
}

/// A server on 127.0.0.1 that answers every request with `respond`, counting requests.
/// Each connection is served on its own thread until it closes.
struct RawServer {
    url: String,
    requests: Arc<AtomicU64>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl RawServer {
    fn start(respond: fn(n: u64, stream: &mut TcpStream)) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, log) = (requests.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (count, log) = (count.clone(), log.clone());
                std::thread::spawn(move || {
                    loop {
                        let Some(head) = read_request(&mut stream) else {
                            return;
                        };
                        log.lock().unwrap().push(head);
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        respond(n, &mut stream);
                    }
                });
            }
        });
        RawServer {
            url,
            requests,
            seen,
        }
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and body by content-length); `None` when the peer closed.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(head)
}

fn respond(stream: &mut TcpStream, status: &str, extra_headers: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra_headers}content-length: {}\r\n\r\n{body}",
        body.len()
    );
}

// ── one run per output ───────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_output_refuses_while_the_first_finishes_exactly_once() {
    let latency = Latency {
        ttft: Duration::from_millis(40),
        per_token: Duration::ZERO,
        jitter: 0.0,
    };
    let sim = spawn(Sim::builder().latency(latency)).await;
    let dir = Dir::new("two-runs");
    let want = ids(400);
    write_input(&dir.path("in.jsonl"), &want);
    let first = run_cmd(&dir, &sim.base_url(), &[]).spawn().unwrap();
    let first_pid = first.id();
    // Wait until the first run is sending.
    let started = Instant::now();
    while records(&dir.path("out.jsonl")).len() < 8 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "first run never wrote"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(
        second.status.code(),
        Some(EXIT_LOCKED),
        "{}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains(&first_pid.to_string()),
        "the refusal names the process that holds the output: {}",
        stderr(&second)
    );
    let mut status = Command::new(SLUICE);
    status.arg("status").arg(dir.path("out.jsonl"));
    let status = output(status).await;
    assert_eq!(status.status.code(), Some(EXIT_INCOMPLETE));
    assert!(String::from_utf8_lossy(&status.stdout).contains(&first_pid.to_string()));
    let first = wait(first).await;
    assert_eq!(first.status.code(), Some(EXIT_OK), "{}", stderr(&first));
    assert_exactly_once(&dir, &want);
    assert!(
        attempts(&sim).values().all(|&n| n == 1),
        "no request was sent twice"
    );
    assert_eq!(attempts(&sim).len(), want.len());
}

// ── bounded memory against any server and any line ───────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_gib_body_fails_unread_and_in_bounded_memory() {
    let server = RawServer::start(|_, stream| {
        // Claims 2 GiB and sends a little of it; sluice must not wait for or hold it.
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n{{\"choices\":["
        );
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..64 {
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let dir = Dir::new("huge-body");
    write_input(&dir.path("in.jsonl"), &ids(3));
    let (code, err, rss) = run_measured(run_cmd(&dir, &server.url, &[]), &dir).await;
    assert_eq!(code, EXIT_FAILURES, "{err}");
    assert!(rss < 100 << 20, "peak RSS {rss} bytes");
    let failures = records(&dir.path("out.errors.jsonl"));
    assert_eq!(failures.len(), 3);
    for f in &failures {
        assert_eq!(f["error"]["code"], "response_too_large");
    }
    assert_eq!(server.requests(), 3, "a body over the limit is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_body_is_cut_at_the_limit_and_only_a_prefix_is_kept() {
    let server = RawServer::start(|_, stream| {
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let chunk = vec![b'x'; 64 << 10];
        loop {
            let head = format!("{:x}\r\n", chunk.len());
            if stream.write_all(head.as_bytes()).is_err()
                || stream.write_all(&chunk).is_err()
                || stream.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
    });
    let dir = Dir::new("endless-body");
    write_input(&dir.path("in.jsonl"), &ids(2));
    let (code, err, rss) = run_measured(
        run_cmd(&dir, &server.url, &["--max-response-bytes", "8MiB"]),
        &dir,
    )
    .await;
    assert_eq!(code, EXIT_FAILURES, "{err}");
    assert!(rss < 100 << 20, "peak RSS {rss} bytes");
    let text = std::fs::read_to_string(dir.path("out.errors.jsonl")).unwrap();
    for line in text.lines() {
        assert!(
            line.len() < 4096,
            "the record keeps a short prefix, not the body"
        );
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["error"]["code"], "response_too_large");
    }
    assert_eq!(text.lines().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_far_over_the_limit_is_read_in_memory_bounded_by_the_limit() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("long-line");
    let mut input = batch_line("before") + "\n";
    input.push_str(&format!(
        "{{\"custom_id\":\"huge\",\"priority\":5,\"x\":\"{}\"}}\n",
        "x".repeat(64 << 20)
    ));
    input.push_str(&(batch_line("after") + "\n"));
    std::fs::write(dir.path("in.jsonl"), input).unwrap();
    let limit = ["--max-line-bytes", "1MiB"];
    let (code, err, rss) = run_measured(run_cmd(&dir, &sim.base_url(), &limit), &dir).await;
    assert_eq!(code, EXIT_FAILURES, "{err}");
    assert!(
        rss < 48 << 20,
        "run: peak RSS {rss} bytes for a 64 MiB line"
    );
    let ok: BTreeSet<String> = records(&dir.path("out.jsonl"))
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ok,
        BTreeSet::from(["before".to_owned(), "after".to_owned()])
    );
    let failed = records(&dir.path("out.errors.jsonl"));
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["line"], 2);
    let mut validate = Command::new(SLUICE);
    validate
        .arg("validate")
        .arg(dir.path("in.jsonl"))
        .args(limit);
    let (code, err, rss) = run_measured(validate, &dir).await;
    assert_eq!(code, EXIT_FAILURES, "{err}");
    assert!(
        rss < 48 << 20,
        "validate: peak RSS {rss} bytes for a 64 MiB line"
    );
}

// ── the key in no output, in any encoding ───────────────────────────────────────────

const CANARY: &str = "sk-canary-3f9a7c21-deadbeef/feed";
const HEADER_SECRET: &str = "hdr-secret-77aa-1234567890";

/// Every form of a secret a reader of the files might decode back into it.
fn leaks(text: &str, secret: &str) -> bool {
    use base64::Engine as _;
    let mut found = text.contains(secret);
    // Any JSON string in the text, decoded.
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            found |= v.to_string().contains(secret) || contains_decoded(&v, secret);
        }
    }
    found |= text.contains(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret)[..16]);
    found
}

fn contains_decoded(v: &Value, secret: &str) -> bool {
    match v {
        Value::String(s) => s.contains(secret),
        Value::Array(a) => a.iter().any(|x| contains_decoded(x, secret)),
        Value::Object(m) => m.values().any(|x| contains_decoded(x, secret)),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_and_credential_headers_appear_in_no_output_in_any_encoding() {
    // Echoes both secrets back: literally, JSON-escaped, percent-encoded and in base64;
    // 400 for the first requests (kept as failures), then 401 (the run stops early and
    // prints the command that resumes it).
    let server = RawServer::start(|n, stream| {
        use base64::Engine as _;
        let escaped = CANARY.replace('-', "\\u002d").replace('/', "\\/");
        let percent = CANARY.replace('-', "%2D").replace('/', "%2f");
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Bearer {CANARY}"));
        let hdr = HEADER_SECRET.replace('-', "\\u002D");
        let body = format!(
            r#"{{"error":{{"message":"bad key {escaped} / {percent} / {b64} / {CANARY} / {hdr}","type":"invalid_request_error"}}}}"#
        );
        let status = if n < 4 {
            "400 Bad Request"
        } else {
            "401 Unauthorized"
        };
        respond(stream, status, "", &body);
    });
    let dir = Dir::new("canary");
    write_input(&dir.path("in.jsonl"), &ids(10));
    let mut cmd = run_cmd(
        &dir,
        &server.url,
        &["--header", &format!("X-Api-Key: {HEADER_SECRET}")],
    );
    // Surrounding white space, as from a copy and paste: sent trimmed, redacted trimmed.
    cmd.env("OPENAI_API_KEY", format!(" \t{CANARY}\t\n"))
        .env("RUST_LOG", "trace");
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(EXIT_HALTED), "{}", stderr(&out));
    let seen = server.seen.lock().unwrap().join("");
    assert!(
        seen.to_ascii_lowercase()
            .contains(&format!("authorization: bearer {CANARY}\r\n")),
        "the key is sent trimmed"
    );
    // A 401 answered before a 400 is released as an ordinary failure by the 400 (the
    // halt rule holds back only what comes before any other outcome), so count the 400s.
    let failures: Vec<Value> = records(&dir.path("out.errors.jsonl"))
        .into_iter()
        .filter(|r| r["error"]["code"] == "invalid_request")
        .collect();
    assert_eq!(failures.len(), 4, "the 400s are recorded");
    assert!(
        failures[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad key"),
        "the message carries the server's words"
    );
    let mut texts = vec![
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
    ];
    for f in ["out.jsonl", "out.errors.jsonl", "out.sluice-state.json"] {
        texts.push(std::fs::read_to_string(dir.path(f)).unwrap_or_default());
    }
    for (i, text) in texts.iter().enumerate() {
        assert!(!leaks(text, CANARY), "output {i} leaks the key");
        assert!(
            !leaks(text, HEADER_SECRET),
            "output {i} leaks the header secret"
        );
    }
    assert!(
        stderr(&out).contains("X-Api-Key: [REDACTED]"),
        "the resume command keeps the header, not its value"
    );
}

// ── files that cannot be confused ───────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_two_of_input_output_errors_and_state_being_one_file_is_refused() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("same-file");
    write_input(&dir.path("in.jsonl"), &ids(5));
    let original = std::fs::read(dir.path("in.jsonl")).unwrap();
    std::fs::hard_link(dir.path("in.jsonl"), dir.path("link.jsonl")).unwrap();
    let (input, link) = (dir.path("in.jsonl"), dir.path("link.jsonl"));
    let (out, state) = (dir.path("out.jsonl"), dir.path("out.sluice-state.json"));
    let cases: Vec<Vec<&Path>> = vec![
        vec![Path::new("-o"), &input],
        vec![Path::new("-o"), &link],
        vec![Path::new("-o"), &out, Path::new("--errors"), &input],
        vec![Path::new("-o"), &out, Path::new("--errors"), &out],
        vec![Path::new("-o"), &out, Path::new("--errors"), &state],
    ];
    for case in cases {
        let mut cmd = Command::new(SLUICE);
        cmd.arg("run")
            .arg(&input)
            .args(&case)
            .args(["--base-url", &sim.base_url(), "--restart"])
            .env("OPENAI_API_KEY", "sk-test");
        let o = output(cmd).await;
        assert_eq!(
            o.status.code(),
            Some(EXIT_USAGE),
            "{case:?}: {}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read(&input).unwrap(),
            original,
            "{case:?}: the input is untouched"
        );
    }
    assert_eq!(sim.stats().received, 0, "nothing was sent");
    // An output that is a directory is explained, not an OS error.
    let o = output({
        let mut c = run_cmd(&dir, &sim.base_url(), &[]);
        c.args(["-o", dir.0.to_str().unwrap()]);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(EXIT_USAGE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_permissions_are_tightened_and_crash_leftovers_removed() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("modes");
    write_input(&dir.path("in.jsonl"), &ids(3));
    let first = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(first.status.code(), Some(EXIT_OK));
    std::fs::set_permissions(
        dir.path("out.jsonl"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let leftover = dir.path(".out.sluice-state.json.tmp-424242");
    std::fs::write(&leftover, "{").unwrap();
    let again = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(again.status.code(), Some(EXIT_OK), "{}", stderr(&again));
    let mode = std::fs::metadata(dir.path("out.jsonl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!leftover.exists());
}

// ── input: auto-detection, streaming, odd ids ────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_first_line_does_not_turn_a_batch_file_into_errors_and_validate_agrees() {
    let sim = spawn(Sim::builder()).await;
    let deep = format!("{{\"d\":{}{}}}", "[".repeat(300), "]".repeat(300));
    for (name, first) in [
        ("json", "{oops".to_owned()),
        (
            "no-id",
            r#"{"url":"/v1/chat/completions","body":{}}"#.to_owned(),
        ),
        ("deep", deep),
    ] {
        let dir = Dir::new(&format!("auto-{name}"));
        let mut text = first + "\n";
        for id in ids(3) {
            text.push_str(&(batch_line(&id) + "\n"));
        }
        std::fs::write(dir.path("in.jsonl"), text).unwrap();
        let run = output(run_cmd(&dir, &sim.base_url(), &[])).await;
        assert_eq!(run.status.code(), Some(EXIT_FAILURES), "{name}");
        assert_eq!(records(&dir.path("out.jsonl")).len(), 3, "{name}");
        assert_eq!(records(&dir.path("out.errors.jsonl")).len(), 1, "{name}");
        let mut validate = Command::new(SLUICE);
        validate.arg("validate").arg(dir.path("in.jsonl"));
        let v = output(validate).await;
        assert_eq!(v.status.code(), Some(EXIT_FAILURES), "{name}");
        assert!(
            String::from_utf8_lossy(&v.stdout).starts_with("3 valid lines, 1 invalid"),
            "{name}: {}",
            String::from_utf8_lossy(&v.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_line_is_rejected_up_front_and_never_sent() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("stream");
    let streamed = json!({"custom_id": "s", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": true}});
    std::fs::write(
        dir.path("in.jsonl"),
        format!("{streamed}\n{}\n", batch_line("plain")),
    )
    .unwrap();
    let o = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(o.status.code(), Some(EXIT_FAILURES));
    let failed = records(&dir.path("out.errors.jsonl"));
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["custom_id"], "s");
    assert_eq!(failed[0]["error"]["code"], "invalid_input");
    assert!(!attempts(&sim).contains_key("s"), "never sent");
}

// ── damaged output repaired on resume ───────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_block_in_the_output_is_reported_then_repaired_on_resume() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("nul");
    let want = ids(20);
    write_input(&dir.path("in.jsonl"), &want);
    let first = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(first.status.code(), Some(EXIT_OK));
    // A power loss: a block of NULs over the middle of the file, length unchanged.
    let path = dir.path("out.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let (from, to) = (bytes.len() / 3, bytes.len() / 2);
    bytes[from..to].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let mut status = Command::new(SLUICE);
    status.arg("status").arg(&path);
    let s = output(status).await;
    assert_eq!(
        s.status.code(),
        Some(EXIT_INCOMPLETE),
        "damage means not complete"
    );
    assert!(String::from_utf8_lossy(&s.stdout).contains("damaged"));
    let resumed = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(resumed.status.code(), Some(EXIT_OK), "{}", stderr(&resumed));
    let (ok, _) = assert_exactly_once(&dir, &want);
    assert_eq!(ok.len(), want.len());
    let sent_twice = attempts(&sim).values().filter(|&&n| n == 2).count();
    assert!(
        sent_twice > 0,
        "the damaged records' requests were sent again"
    );
    let mut status = Command::new(SLUICE);
    status.arg("status").arg(&path);
    assert_eq!(output(status).await.status.code(), Some(EXIT_OK));
}

// ── stop early, say why, resume ─────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_stops_the_run_at_once_and_the_fixed_run_resumes_everything() {
    let sim = spawn(Sim::builder().api_key(Some("sk-right".into()))).await;
    let dir = Dir::new("halt-401");
    let want = ids(300);
    write_input(&dir.path("in.jsonl"), &want);
    let mut wrong = run_cmd(&dir, &sim.base_url(), &[]);
    wrong.env("OPENAI_API_KEY", "sk-wrong");
    let started = Instant::now();
    let o = output(wrong).await;
    assert_eq!(o.status.code(), Some(EXIT_HALTED), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        sim.stats().received < 50,
        "stopped admitting: {}",
        sim.stats().received
    );
    assert!(
        records(&dir.path("out.errors.jsonl")).is_empty(),
        "the lines stay pending"
    );
    let mut right = run_cmd(&dir, &sim.base_url(), &[]);
    right.env("OPENAI_API_KEY", "sk-right");
    let o = output(right).await;
    assert_eq!(o.status.code(), Some(EXIT_OK), "{}", stderr(&o));
    let (ok, _) = assert_exactly_once(&dir, &want);
    assert_eq!(ok.len(), want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_stops_the_run_and_names_the_url() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("halt-404");
    let want = ids(100);
    write_input(&dir.path("in.jsonl"), &want);
    let wrong_url = format!("{}/oops", sim.base_url());
    let o = output(run_cmd(&dir, &wrong_url, &[])).await;
    assert_eq!(o.status.code(), Some(EXIT_HALTED), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/oops/chat/completions"),
        "{}",
        stderr(&o)
    );
    assert!(sim.stats().received < 30);
    let o = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(o.status.code(), Some(EXIT_OK), "{}", stderr(&o));
    assert_exactly_once(&dir, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_stops_the_run_after_the_unreachable_timeout() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = Dir::new("halt-closed");
    let want = ids(50);
    write_input(&dir.path("in.jsonl"), &want);
    let started = Instant::now();
    let o = output(run_cmd(
        &dir,
        &format!("http://{closed}/v1"),
        &["--unreachable-timeout", "1"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(EXIT_HALTED), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(records(&dir.path("out.errors.jsonl")).is_empty());
    let sim = spawn(Sim::builder()).await;
    let o = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(o.status.code(), Some(EXIT_OK), "{}", stderr(&o));
    assert_exactly_once(&dir, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_a_usage_error_before_anything_is_sent_unless_no_auth() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("no-key");
    write_input(&dir.path("in.jsonl"), &ids(3));
    let mut cmd = run_cmd(&dir, &sim.base_url(), &[]);
    cmd.env_remove("OPENAI_API_KEY");
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(EXIT_USAGE));
    assert_eq!(sim.stats().received, 0);
    let mut cmd = run_cmd(&dir, &sim.base_url(), &["--no-auth"]);
    cmd.env_remove("OPENAI_API_KEY");
    assert_eq!(output(cmd).await.status.code(), Some(EXIT_OK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_not_retried() {
    let server = RawServer::start(|_, stream| {
        respond(
            stream,
            "301 Moved Permanently",
            "location: https://elsewhere.invalid/v1/chat/completions\r\n",
            "",
        )
    });
    let dir = Dir::new("redirect");
    write_input(&dir.path("in.jsonl"), &ids(1));
    let o = output(run_cmd(&dir, &server.url, &[])).await;
    assert_eq!(o.status.code(), Some(EXIT_HALTED), "{}", stderr(&o));
    assert_eq!(server.requests(), 1, "sent once");
    assert!(stderr(&o).contains("https://elsewhere.invalid/v1/chat/completions"));
}

// ── errors that say what happened ───────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_records_carry_the_servers_words_and_the_summary_the_most_common() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("words");
    // No `messages`: the simulator answers 400 with OpenAI's error shape.
    let bad = json!({"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini"}});
    std::fs::write(
        dir.path("in.jsonl"),
        format!("{}\n{bad}\n", batch_line("good")),
    )
    .unwrap();
    let o = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(o.status.code(), Some(EXIT_FAILURES));
    let failed = records(&dir.path("out.errors.jsonl"));
    let server_said = failed[0]["response"]["body"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = failed[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains(&server_said), "{message} / {server_said}");
    assert!(stderr(&o).contains(&server_said), "the summary shows it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompts_file_without_model_says_so_and_retry_failed_then_sends_it() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("no-model");
    std::fs::write(dir.path("in.jsonl"), "first prompt\nsecond prompt\n").unwrap();
    let o = output(run_cmd(&dir, &sim.base_url(), &[])).await;
    assert_eq!(o.status.code(), Some(EXIT_FAILURES));
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
    let o = output(run_cmd(
        &dir,
        &sim.base_url(),
        &["--model", "gpt-4o-mini", "--retry-failed"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(EXIT_OK), "{}", stderr(&o));
    assert_eq!(records(&dir.path("out.jsonl")).len(), 2);
    assert!(records(&dir.path("out.errors.jsonl")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_values_that_make_no_sense_are_usage_errors_not_panics() {
    let dir = Dir::new("flags");
    write_input(&dir.path("in.jsonl"), &ids(1));
    for bad in [
        vec!["--threads", "100000"],
        vec!["--timeout", "NaN"],
        vec!["--timeout", "inf"],
        vec!["--timeout=-1"],
        vec!["--connect-timeout", "0"],
        vec!["--backoff-base", "2", "--backoff-max", "1"],
        vec!["--max-response-bytes", "0"],
        vec!["--drain-timeout", "1e300"],
    ] {
        let o = output(run_cmd(&dir, "http://127.0.0.1:9/v1", &bad)).await;
        assert_eq!(o.status.code(), Some(EXIT_USAGE), "{bad:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_non_zero_while_incomplete_or_with_failures() {
    let sim = spawn(Sim::builder()).await;
    let dir = Dir::new("status-codes");
    let bad = json!({"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini"}});
    std::fs::write(
        dir.path("in.jsonl"),
        format!("{}\n{bad}\n", batch_line("a")),
    )
    .unwrap();
    assert_eq!(
        output(run_cmd(&dir, &sim.base_url(), &[]))
            .await
            .status
            .code(),
        Some(EXIT_FAILURES)
    );
    let status = || {
        let mut c = Command::new(SLUICE);
        c.arg("status").arg(dir.path("out.jsonl"));
        c
    };
    assert_eq!(output(status()).await.status.code(), Some(EXIT_FAILURES));
    // Records lost (the output emptied by hand): their lines are pending again.
    std::fs::write(dir.path("out.jsonl"), "").unwrap();
    assert_eq!(output(status()).await.status.code(), Some(EXIT_INCOMPLETE));
    let seen: BTreeSet<String> = attempts(&sim).into_keys().collect();
    assert!(seen.contains("a"));
}

/// The numbers on the summary's `attempts N (R retries` line.
fn attempts_and_retries(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("attempts"))
        .expect("a summary");
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_counts_as_retries_only_the_retries_it_sent() {
    // Every answer is a 503 and the backoff is long: when the signal comes, every request
    // has failed once and waits for a retry that is never sent.
    let sim = spawn(Sim::builder().fault(sluice_sim::Fault::Status(503), 1.0)).await;
    let dir = Dir::new("interrupted-retries");
    write_input(&dir.path("in.jsonl"), &ids(20));
    let cmd = run_cmd(
        &dir,
        &sim.base_url(),
        &["--backoff-base", "30", "--backoff-max", "60"],
    );
    let mut cmd = cmd;
    let child = cmd.spawn().unwrap();
    let started = Instant::now();
    while sim.stats().received < 8 {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, "INT").await;
    let out = wait(child).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let (attempts, retries) = attempts_and_retries(&stderr(&out));
    let stats = sim.stats();
    assert_eq!(
        attempts, stats.received,
        "every attempt the server saw is counted"
    );
    let distinct = stats.attempts.len() as u64;
    assert_eq!(
        retries,
        stats.received - distinct,
        "retries are attempts after the first"
    );
    assert!(
        records(&dir.path("out.errors.jsonl")).is_empty(),
        "all pending, none failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_from_stdin_prints_no_resume_command_that_cannot_work() {
    let latency = Latency {
        ttft: Duration::from_millis(300),
        per_token: Duration::ZERO,
        jitter: 0.0,
    };
    let sim = spawn(Sim::builder().latency(latency)).await;
    let dir = Dir::new("stdin-hint");
    let mut cmd = Command::new(SLUICE);
    cmd.args(["run", "-", "-o"])
        .arg(dir.path("out.jsonl"))
        .args(["--base-url", &sim.base_url(), "--concurrency", "4"])
        .env("OPENAI_API_KEY", "sk-test-key-123")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let input: String = ids(40).iter().map(|id| batch_line(id) + "\n").collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let started = Instant::now();
    while sim.stats().received == 0 {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&child, "INT").await;
    let out = wait(child).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("run - -o"),
        "no command that reads stdin again: {}",
        stderr(&out)
    );
}
