//! The library's durable run, against the simulator in memory on paused time: stopped part
//! way, then run again, it leaves exactly one record per input line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

mod common;

use common::in_memory;
use sluice::durable::{DurableOptions, DurableRun, RunControl};
use sluice_sim::{Fault, Latency, Sim};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-durable-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// custom_id (or line, for records without one) to its number of records.
fn records(dir: &std::path::Path) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for file in ["results.jsonl", "results.errors.jsonl"] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = v["custom_id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("line {}", v["line"]));
            *seen.entry(key).or_default() += 1;
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn a_stopped_run_resumes_to_exactly_one_record_per_line() {
    let dir = scratch("resume");
    let input = dir.join("requests.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    for i in 0..300 {
        writeln!(
            f,
            r#"{{"custom_id": "r{i}", "method": "POST", "url": "/v1/chat/completions", "body": {{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "q{i}"}}], "max_tokens": 5}}}}"#
        )
        .unwrap();
    }
    writeln!(f, "not json").unwrap();
    writeln!(
        f,
        r#"{{"custom_id": "r7", "method": "POST", "url": "/v1/chat/completions", "body": {{"model": "gpt-4o-mini", "messages": []}}}}"#
    )
    .unwrap();
    drop(f);
    let output = dir.join("results.jsonl");

    let sim = Sim::builder()
        .latency(Latency {
            ttft: Duration::from_millis(100),
            per_token: Duration::ZERO,
            jitter: 0.5,
        })
        .fault(Fault::Status(503), 0.05)
        .seed(2)
        .build()
        .unwrap()
        .in_memory();
    let client = in_memory(&sim)
        .concurrency(std::num::NonZeroUsize::new(8).unwrap())
        .build()
        .unwrap();

    // First run: stopped after a second of (paused) time.
    let run = DurableRun::open(DurableOptions::new(&input, &output)).unwrap();
    assert!(!run.recovered().resumed);
    let control = RunControl::default();
    let stop = control.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.cancel();
    });
    let first = run.run(&client, control).await.unwrap();
    assert!(first.stopped);
    let after_first = records(&dir);
    let done_first: u32 = after_first.values().sum();
    assert!(
        done_first > 10 && done_first < 300,
        "stopped part way: {done_first}"
    );
    assert!(after_first.values().all(|n| *n == 1));

    // Second run: resumes, sends only what has no record.
    let received_before = sim.stats().received;
    let run = DurableRun::open(DurableOptions::new(&input, &output)).unwrap();
    assert!(run.recovered().resumed);
    assert_eq!(run.recovered().done.len() as u32, done_first);
    let second = run.run(&client, RunControl::default()).await.unwrap();
    assert!(!second.stopped);
    let all = records(&dir);
    // 300 requests, the unparseable line, and the duplicate r7 (a second record of r7).
    assert_eq!(
        all.len(),
        301,
        "{:?}",
        all.keys().take(5).collect::<Vec<_>>()
    );
    assert_eq!(all["r7"], 2, "r7 and its duplicate line");
    assert!(all.iter().filter(|(k, _)| *k != "r7").all(|(_, n)| *n == 1));
    assert_eq!(second.invalid_lines, 2);
    // Nothing done in the first run was sent again, besides retries of the second's own.
    let sent_again = sim.stats().received - received_before;
    let requests_left = 300 - (u64::from(done_first) - first.invalid_lines);
    assert!(
        sent_again >= requests_left && sent_again < requests_left + 40,
        "{sent_again} sent for {requests_left} left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
