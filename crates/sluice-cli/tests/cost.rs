//! Money: the cost of a run in the summary and the stats file, a spend cap that stops
//! admission within one in-flight window of the cap and resumes with a higher one, models
//! without a price, and a bad prices file.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_sim::{Latency, Sim};

mod common;
use common::{Dir, assert_exactly_once, ids, output, records, run_cmd, spawn, stderr, write_input};

/// Dollars per million tokens that make each test request cost about a cent.
const PRICES: &str = "taken = \"2026-11-24\"\n[models.\"gpt-4o-mini\"]\ninput = 1000.0\ncached_input = 500.0\noutput = 1000.0\n";

fn latency() -> Latency {
    Latency {
        ttft: Duration::from_millis(20),
        per_token: Duration::ZERO,
        jitter: 0.0,
    }
}

fn stats(dir: &Dir) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.path("out.sluice-stats.json")).unwrap())
        .unwrap()
}

/// What the output's records cost at [`PRICES`], from their usage.
fn cost_of_records(dir: &Dir) -> f64 {
    records(&dir.path("out.jsonl"))
        .iter()
        .map(|r| {
            let u = &r["response"]["body"]["usage"];
            (u["prompt_tokens"].as_f64().unwrap() + u["completion_tokens"].as_f64().unwrap())
                * 1000.0
                / 1e6
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_stops_within_one_in_flight_window_and_a_higher_cap_goes_on() {
    let sim = spawn(Sim::builder().latency(latency())).await;
    let dir = Dir::new("max-cost");
    let all = ids(300);
    write_input(&dir.path("in.jsonl"), &all);
    std::fs::write(dir.path("prices.toml"), PRICES).unwrap();
    let prices = dir.path("prices.toml");
    let cap = 1.0;
    let flags = [
        "--prices",
        prices.to_str().unwrap(),
        "--max-cost",
        "1.00",
        "--progress",
        "off",
    ];
    let o = output(run_cmd(&dir, &sim.base_url(), &flags)).await;
    assert_eq!(
        o.status.code(),
        Some(7),
        "the spend cap's own exit code: {}",
        stderr(&o)
    );
    let first = records(&dir.path("out.jsonl"));
    assert!(
        !first.is_empty() && first.len() < all.len(),
        "stopped part way: {} of {}",
        first.len(),
        all.len()
    );
    // The most one request can cost: its prompt (under 20 tokens) and its max_tokens (8).
    let per_request_max = (20.0 + 8.0) * 1000.0 / 1e6;
    let spent = cost_of_records(&dir);
    assert!(spent <= cap + 1e-9, "spent {spent} stays within the cap");
    assert!(
        spent >= cap - 9.0 * per_request_max,
        "spent {spent} is within one in-flight window (8 requests) of the cap"
    );
    let s = stats(&dir);
    let reported = s["cost"]["usd"].as_f64().expect("a known cost");
    assert!(
        (reported - spent).abs() < 1e-9,
        "stats {reported} vs records {spent}"
    );
    assert_eq!(s["cost"]["prices_taken"], "2026-11-24");
    assert_eq!(
        sim.stats().received as usize,
        first.len(),
        "nothing was sent past the cap: {}",
        stderr(&o)
    );

    // The same cap again: earlier spend counts, so at most what is left fits.
    let o = output(run_cmd(&dir, &sim.base_url(), &flags)).await;
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let spent = cost_of_records(&dir);
    assert!(
        spent <= cap + 1e-9,
        "with earlier runs counted, {spent} stays within the cap"
    );
    assert!(records(&dir.path("out.jsonl")).len() < all.len());

    // A higher cap goes on from where it stopped.
    let mut higher = flags;
    higher[3] = "100";
    let o = output(run_cmd(&dir, &sim.base_url(), &higher)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_exactly_once(&dir, &all);
    let s = stats(&dir);
    let earlier = s["cost"]["earlier_runs_usd"].as_f64().unwrap();
    assert!(
        (earlier - spent).abs() < 1e-9,
        "earlier runs spent {spent}, said {earlier}"
    );
    let total = earlier + s["cost"]["usd"].as_f64().unwrap();
    assert!((total - cost_of_records(&dir)).abs() < 1e-9);
}

fn unknown_model_line(id: &str) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "my-finetune", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_a_price_has_unknown_cost_and_stops_a_capped_run() {
    let sim = spawn(Sim::builder().latency(latency())).await;
    let dir = Dir::new("unpriced");
    let text: String = (0..20)
        .map(|i| unknown_model_line(&format!("u{i}")) + "\n")
        .collect();
    std::fs::write(dir.path("in.jsonl"), text).unwrap();
    let o = output(run_cmd(&dir, &sim.base_url(), &["--progress", "off"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stats(&dir);
    assert!(s["cost"]["usd"].is_null(), "no guess: {}", s["cost"]);
    assert_eq!(s["cost"]["unpriced_results"], 20);
    assert!(
        s["tokens"]["prompt"].as_u64().unwrap() > 0,
        "tokens still counted"
    );

    let dir = Dir::new("unpriced-capped");
    let text: String = (0..20)
        .map(|i| unknown_model_line(&format!("u{i}")) + "\n")
        .collect();
    std::fs::write(dir.path("in.jsonl"), text).unwrap();
    let before = sim.stats().received;
    let o = output(run_cmd(
        &dir,
        &sim.base_url(),
        &["--max-cost", "5", "--progress", "off"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(
        sim.stats().received,
        before,
        "nothing sent that the cap cannot price"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_prices_file_is_a_usage_error_that_names_the_file() {
    let dir = Dir::new("bad-prices");
    write_input(&dir.path("in.jsonl"), &ids(3));
    std::fs::write(
        dir.path("prices.toml"),
        "[models.\"x\"]\ninput = \"cheap\"\n",
    )
    .unwrap();
    let prices = dir.path("prices.toml");
    let o = output(run_cmd(
        &dir,
        "http://127.0.0.1:9/v1",
        &["--prices", prices.to_str().unwrap()],
    ))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("prices.toml"), "{}", stderr(&o));
    assert!(!dir.path("out.jsonl").exists(), "nothing started");
}
