//! `sluice export`: one row per input line in input order from records written in
//! completion order, joined with the input, in CSV and JSONL.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sluice_sim::{Fault, Latency, Sim};

mod common;
use common::{Dir, SLUICE, batch_line, ids, output, records, run_cmd, spawn, stderr, write_input};

fn export(dir: &Dir, to: &str, extra: &[&str]) -> std::process::Output {
    let o = Command::new(SLUICE)
        .arg("export")
        .arg(dir.path("out.jsonl"))
        .arg("-o")
        .arg(dir.path(to))
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_restores_input_order_and_joins_the_input() {
    // Jittered latency and 32 at once: results complete, and are written, out of order.
    let sim = spawn(
        Sim::builder()
            .latency(Latency {
                ttft: Duration::from_millis(5),
                per_token: Duration::from_millis(1),
                jitter: 0.9,
            })
            .fault(Fault::Status(400), 0.1)
            .seed(3),
    )
    .await;
    let dir = Dir::new("export");
    let all = ids(400);
    write_input(&dir.path("in.jsonl"), &all);
    let o = output(run_cmd(
        &dir,
        &sim.base_url(),
        &["--concurrency", "32", "--progress", "off"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(3), "some 400s fail: {}", stderr(&o));
    let written: Vec<u64> = records(&dir.path("out.jsonl"))
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert!(
        written.windows(2).any(|w| w[0] > w[1]),
        "the records were written out of input order"
    );
    let failures = records(&dir.path("out.errors.jsonl")).len();
    assert!(failures > 0);
    // Two lines the run never saw: pending in the export.
    let mut input = std::fs::read_to_string(dir.path("in.jsonl")).unwrap();
    input.push_str(&(batch_line("late-1") + "\n" + &batch_line("late-2") + "\n"));
    std::fs::write(dir.path("in.jsonl"), input).unwrap();
    let input_path = dir.path("in.jsonl");

    // JSONL, with a sort budget small enough to spill to disk several times.
    export(
        &dir,
        "answers.jsonl",
        &[
            "--with-input",
            input_path.to_str().unwrap(),
            "--sort-memory",
            "8KiB",
        ],
    );
    let rows: Vec<Value> = std::fs::read_to_string(dir.path("answers.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 402, "one row per input line");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["line"], i as u64 + 1, "input order");
    }
    for (row, id) in rows.iter().zip(&all) {
        assert_eq!(row["custom_id"], id.as_str());
        assert_eq!(
            row["input"],
            format!("question {id}"),
            "the prompt beside it"
        );
        match row["status"].as_str().unwrap() {
            "ok" => {
                assert!(!row["text"].as_str().unwrap().is_empty());
                assert!(row["finish_reason"].is_string());
                assert!(row["prompt_tokens"].as_u64().unwrap() > 0);
                assert!(
                    row["cost_usd"].as_f64().unwrap() > 0.0,
                    "gpt-4o-mini is priced"
                );
            }
            "failed" => assert_eq!(row["error_code"], "invalid_request"),
            other => panic!("status {other}"),
        }
    }
    let failed = rows.iter().filter(|r| r["status"] == "failed").count();
    assert_eq!(failed, failures);
    assert_eq!(rows[400]["status"], "pending");
    assert_eq!(rows[401]["input"], "question late-2");
    assert!(
        !std::fs::read_dir(&dir.0).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".sluice-export")),
        "temporary runs removed"
    );

    // CSV, in memory, without the input: the same rows.
    export(&dir, "answers.csv", &[]);
    let mut csv = csv::Reader::from_path(dir.path("answers.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    assert_eq!(&header[0], "line");
    assert_eq!(&header[3], "text");
    let lines: Vec<u64> = csv
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .collect();
    assert_eq!(lines, (1..=400).collect::<Vec<u64>>());
}

#[test]
fn export_refuses_an_unknown_extension_and_a_missing_output() {
    let dir = Dir::new("export-bad");
    std::fs::write(dir.path("out.jsonl"), "").unwrap();
    let o = Command::new(SLUICE)
        .args(["export"])
        .arg(dir.path("out.jsonl"))
        .arg("-o")
        .arg(dir.path("answers.xlsx"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(SLUICE)
        .args(["export"])
        .arg(dir.path("missing.jsonl"))
        .arg("-o")
        .arg(dir.path("answers.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
