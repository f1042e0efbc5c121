//! `sluice plan`: figures of a small hand-computed file, and the problems it finds in
//! bodies that would cost money later. Nothing is sent: no server runs in these tests.

use std::process::Command;

use serde_json::{Value, json};

mod common;
use common::{Dir, SLUICE};

fn chat(id: &str, model: &str, content: &str, max_tokens: u64) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}})
    .to_string()
}

fn plan(dir: &Dir, lines: &[String], extra: &[&str]) -> (Value, std::process::Output) {
    let text: String = lines.iter().map(|l| l.clone() + "\n").collect();
    std::fs::write(dir.path("in.jsonl"), text).unwrap();
    let o = Command::new(SLUICE)
        .arg("plan")
        .arg(dir.path("in.jsonl"))
        .args(extra)
        .arg("--json")
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (v, o)
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-12
}

#[test]
fn plan_figures_match_a_hand_computed_file() {
    let dir = Dir::new("plan-figures");
    let lines = vec![
        // "hello world" is 2 tokens; a chat message adds 3, its role 1, the reply's
        // priming 3: 9 prompt tokens.
        chat("a", "gpt-4o-mini", "hello world", 100),
        json!({"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 100, "n": 2}})
        .to_string(),
        json!({"custom_id": "c", "method": "POST", "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": "hello world"}})
        .to_string(),
        chat("d", "my-model", "hello world", 10),
        "{\"custom_id\":\"e\", oops".to_owned(),
        chat("a", "gpt-4o-mini", "hello world", 100),
    ];
    // No API key is needed: nothing is sent.
    let (v, o) = plan(&dir, &lines, &["--rpm", "1", "--tpm", "1000"]);
    assert_eq!(o.status.code(), Some(3), "problems found: exit 3");
    assert_eq!(v["schema"], "sluice.plan/1");
    assert_eq!(v["lines"], 6);
    assert_eq!(v["requests"], 4);
    let group = |model: &str| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["model"] == model)
            .unwrap_or_else(|| panic!("{model} in {v}"))
            .clone()
    };
    let mini = group("gpt-4o-mini");
    assert_eq!(mini["endpoint"], "/v1/chat/completions");
    assert_eq!(mini["requests"], 2);
    assert_eq!(mini["prompt_tokens"], 18);
    assert_eq!(mini["max_output_tokens"], 300, "max_tokens times n");
    let emb = group("text-embedding-3-small");
    assert_eq!(
        (emb["requests"].as_u64(), emb["prompt_tokens"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(group("my-model")["cost_min_usd"], Value::Null);
    // gpt-4o-mini: $0.15 in, $0.60 out a million; text-embedding-3-small: $0.02.
    let min = (18.0 * 0.15 + 2.0 * 0.02) / 1e6;
    let max = min + 300.0 * 0.60 / 1e6;
    assert!(close(&v["cost"]["min_usd"], min), "{}", v["cost"]);
    assert!(close(&v["cost"]["max_usd"], max), "{}", v["cost"]);
    assert_eq!(v["cost"]["unpriced_requests"], 1);
    // Admission charges 18 + 300 + 2 + (9 + 10) = 339 tokens: 0.339 min at 1000 TPM;
    // 4 requests at 1 RPM take 4 min, so requests bind.
    assert_eq!(v["duration"]["binding"], "requests_per_minute");
    assert!(close(&v["duration"]["minimum_s"], 240.0));
    assert_eq!(v["duration"]["budgets"][0]["tokens"], 339);
    assert_eq!(v["invalid"]["total"], 2);
    assert_eq!(v["invalid"]["by_kind"]["invalid_json"], 1);
    assert_eq!(v["invalid"]["by_kind"]["duplicate_custom_id"], 1);
    assert_eq!(v["invalid"]["examples"][0]["line"], 5);

    // A tighter TPM budget binds instead.
    let (v, _) = plan(&dir, &lines, &["--rpm", "60", "--tpm", "60"]);
    assert_eq!(v["duration"]["binding"], "tokens_per_minute");
    assert!(close(&v["duration"]["minimum_s"], 339.0));

    // Input and output budgets apart: the prompts are 18 + 2 + 9 = 29 tokens, the output
    // allowances 300 + 10 = 310; at 10 output tokens a minute the output binds (31 min).
    let (v, _) = plan(&dir, &lines, &["--itpm", "29", "--otpm", "10"]);
    assert_eq!(v["duration"]["binding"], "output_tokens_per_minute");
    assert!(close(&v["duration"]["minimum_s"], 31.0 * 60.0));
    let main = &v["duration"]["budgets"][0];
    assert_eq!(
        (
            main["prompt_tokens"].as_u64(),
            main["output_tokens"].as_u64()
        ),
        (Some(29), Some(310))
    );
    assert!(close(&main["minutes_by_itpm"], 1.0));
}

#[test]
fn plan_reports_bodies_that_would_cost_money_later() {
    let dir = Dir::new("plan-problems");
    let long = "hello ".repeat(17_000);
    let lines = vec![
        json!({"custom_id": "no-messages", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "max_tokens": 5}})
        .to_string(),
        json!({"custom_id": "no-model", "method": "POST", "url": "/v1/chat/completions",
            "body": {"messages": [{"role": "user", "content": "hi"}]}})
        .to_string(),
        chat("too-many-out", "gpt-4o-mini", "hi", 20_000),
        // gpt-3.5-turbo's window is 16,385 tokens.
        chat("too-long", "gpt-3.5-turbo", &long, 10),
        chat(
            "too-long-with-output",
            "gpt-3.5-turbo",
            &"hello ".repeat(15_000),
            4_000,
        ),
        chat("fine", "gpt-4o-mini", "hi", 10),
    ];
    let (v, o) = plan(&dir, &lines, &[]);
    assert_eq!(o.status.code(), Some(3));
    let p = &v["problems"];
    assert_eq!(p["missing_messages"]["lines"], json!([1]), "{p}");
    assert_eq!(p["missing_model"]["lines"], json!([2]));
    assert_eq!(p["max_tokens_above_model_limit"]["lines"], json!([3]));
    assert_eq!(p["prompt_above_context_window"]["lines"], json!([4]));
    assert_eq!(
        p["prompt_plus_max_tokens_above_context_window"]["lines"],
        json!([5])
    );
    assert_eq!(v["duration"]["binding"], Value::Null, "no limits given");

    // A clean file plans with exit 0, and the text form names the binding limit.
    let clean = vec![chat("x", "gpt-4o-mini", "hi", 10)];
    let (_, o) = plan(&dir, &clean, &[]);
    assert_eq!(o.status.code(), Some(0));
    let text = Command::new(SLUICE)
        .args(["plan"])
        .arg(dir.path("in.jsonl"))
        .args(["--rpm", "10"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("requests-per-minute budget binds"), "{text}");
}
