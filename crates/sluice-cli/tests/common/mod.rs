//! Helpers shared by the tests that drive the `sluice` binary: a scratch directory, the
//! simulator, Batch lines, the run command, and readers of the files a run leaves.

#![allow(dead_code)] // each test file uses its own share of these

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};
use sluice_sim::{SimBuilder, SimHandle};

pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// A scratch directory, removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sluice-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn spawn(b: SimBuilder) -> SimHandle {
    b.build().unwrap().spawn().await.unwrap()
}

pub fn batch_line(id: &str) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("question {id}")}], "max_tokens": 8}})
    .to_string()
}

pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("id-{i:04}")).collect()
}

pub fn write_input(path: &Path, ids: &[String]) {
    let text: String = ids.iter().map(|id| batch_line(id) + "\n").collect();
    std::fs::write(path, text).unwrap();
}

/// `sluice run in.jsonl -o out.jsonl` against `base_url` with a test key and, unless
/// `extra` sets them, concurrency 8 and a quick backoff.
pub fn run_cmd(dir: &Dir, base_url: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(SLUICE);
    cmd.arg("run")
        .arg(dir.path("in.jsonl"))
        .arg("-o")
        .arg(dir.path("out.jsonl"))
        .args(["--base-url", base_url]);
    for (flag, value) in [
        ("--concurrency", "8"),
        ("--backoff-base", "0.01"),
        ("--backoff-max", "0.05"),
    ] {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra)
        .env("OPENAI_API_KEY", "sk-test")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to the end, off the async runtime (the simulator lives on it).
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Waits for a spawned child, off the async runtime.
pub async fn wait(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Sends signal `name` (`INT`, `TERM`, `KILL`) to `child`.
pub async fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Complete records of a file, parsed; a torn or unparsable line fails the test: one must
/// never be left behind.
pub fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends with a torn line",
        path.display()
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// Every id exactly once across both files; returns the ids of each file.
pub fn assert_exactly_once(dir: &Dir, expected: &[String]) -> (Vec<String>, Vec<String>) {
    let ok: Vec<String> = records(&dir.path("out.jsonl"))
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap().to_owned())
        .collect();
    let failed: Vec<String> = records(&dir.path("out.errors.jsonl"))
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap_or("?").to_owned())
        .collect();
    let mut all: Vec<&String> = ok.iter().chain(failed.iter()).collect();
    all.sort();
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(
        all, want,
        "every custom_id exactly once across output and errors"
    );
    (ok, failed)
}

/// Attempts the simulator saw, by `custom_id`.
pub fn attempts(sim: &SimHandle) -> BTreeMap<String, usize> {
    sim.stats()
        .attempts
        .into_iter()
        .map(|(k, v)| (k, v.len()))
        .collect()
}
