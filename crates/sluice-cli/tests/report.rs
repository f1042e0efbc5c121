//! `sluice report`: the HTML page of a real run's statistics, loaded in headless Chromium
//! (Debian's `chromium`, installed by .ci/run): no console errors, every chart drawn, and
//! nothing fetched from a network. Without a browser the browser test says loudly that it
//! skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_sim::{Fault, Latency, Sim};

mod common;
use common::{Dir, SLUICE, ids, output, run_cmd, spawn, stderr, write_input};

const CHARTS: [&str; 6] = [
    "chart-throughput",
    "chart-tokens",
    "chart-binding",
    "chart-latency",
    "chart-errors",
    "chart-cost",
];

fn browser() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// A run against the simulator with 429s and 503s, and its report.
async fn report(dir: &Dir) -> PathBuf {
    let sim = spawn(
        Sim::builder()
            .latency(Latency {
                ttft: Duration::from_millis(10),
                per_token: Duration::ZERO,
                jitter: 0.5,
            })
            .fault(Fault::Status(429), 0.03)
            .fault(Fault::Status(503), 0.05)
            .seed(5),
    )
    .await;
    write_input(&dir.path("in.jsonl"), &ids(200));
    let o = output(run_cmd(dir, &sim.base_url(), &["--progress", "off"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = dir.path("report.html");
    let o = Command::new(SLUICE)
        .arg("report")
        .arg(dir.path("out.sluice-stats.json"))
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_one_self_contained_page() {
    let dir = Dir::new("report-page");
    let page = report(&dir).await;
    let html = std::fs::read_to_string(&page).unwrap();
    for chart in CHARTS {
        assert!(html.contains(&format!("id=\"{chart}\"")), "{chart}");
    }
    assert!(
        html.contains("\"schema\":\"sluice.stats/1\""),
        "the figures are embedded"
    );
    for fetch in [
        "src=\"http",
        "href=\"http",
        "@import",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(
            !html.contains(fetch),
            "nothing is fetched at view time: {fetch}"
        );
    }
}

#[test]
fn a_file_that_is_not_a_stats_file_is_refused() {
    let dir = Dir::new("report-bad");
    std::fs::write(dir.path("x.json"), "{\"schema\":\"other\"}").unwrap();
    let o = Command::new(SLUICE)
        .arg("report")
        .arg(dir.path("x.json"))
        .arg("-o")
        .arg(dir.path("r.html"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path("r.html").exists());
}

fn load(browser: &Path, page: &Path, profile: &Path) -> (String, String) {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_draws_every_chart_in_headless_chromium() {
    let Some(browser) = browser() else {
        eprintln!(
            "SKIPPED the_report_draws_every_chart_in_headless_chromium: no chromium on PATH \
             (.ci/run installs Debian's chromium package)"
        );
        return;
    };
    let dir = Dir::new("report-chromium");
    let page = report(&dir).await;
    let profile = dir.path("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let (dom, log) = tokio::task::spawn_blocking(move || load(&browser, &page, &profile))
        .await
        .unwrap();
    assert!(dom.contains("data-errors=\"0\""), "no script errors: {log}");
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("Error")))
        .collect();
    assert!(console_errors.is_empty(), "{console_errors:?}");
    for chart in CHARTS {
        let at = dom
            .find(&format!("id=\"{chart}\""))
            .unwrap_or_else(|| panic!("{chart} in the page"));
        let tag = &dom[at..at + dom[at..].find('>').unwrap()];
        assert!(tag.contains("data-drawn=\"1\""), "{chart} drawn: {tag}");
        let marks: u64 = tag
            .split("data-marks=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(marks > 0, "{chart} has marks: {tag}");
    }
    assert!(dom.contains("<svg"), "charts are SVG");
    assert!(
        dom.contains("<td>200</td>"),
        "the summary table shows the 200 ok"
    );
}
