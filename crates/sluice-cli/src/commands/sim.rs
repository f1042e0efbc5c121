//! `sluice sim`: the simulator as a standalone server.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sluice_sim::{FaultSpec, FaultWindow, Latency, QuotaMode, Sim, Window};

#[derive(Debug, Args)]
#[command(
    after_help = "Faults: --fault KIND=PROBABILITY, repeatable. KIND is one of \
    408, 429, 500, 502, 503, 504, 529, reset, close-mid-body, hang, trickle, malformed-json, \
    bad-request, overloaded (a 503 that says so, as Gemini sends it).\n\nEndpoints: \
    /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, the same four under \
    /openai/deployments/NAME/...?api-version=... (Azure), and /v1/messages (Anthropic, \
    with its headers, errors and 529s).\n\nExample:\n  sluice sim --rpm 600 --tpm 200000 --ttft-ms 200 \
    --ms-per-token 10 --jitter 0.2 --fault 503=0.01 --fault reset=0.005 --seed 7"
)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Requests per minute (unlimited when absent).
    #[arg(long)]
    rpm: Option<NonZeroU64>,
    /// Tokens per minute: prompt tokens plus max_tokens times n (unlimited when absent).
    #[arg(long)]
    tpm: Option<NonZeroU64>,
    /// Input tokens per minute, as Anthropic limits them (unlimited when absent).
    #[arg(long)]
    itpm: Option<NonZeroU64>,
    /// Output tokens per minute, as Anthropic limits them: max_tokens charged at
    /// admission, the unused part given back (unlimited when absent).
    #[arg(long)]
    otpm: Option<NonZeroU64>,
    /// Seconds of the per-minute budget that may be spent at once (sub-minute enforcement).
    #[arg(long, default_value_t = 1.0)]
    burst_secs: f64,
    /// How the per-minute limits are counted: `rolling` (refilled continuously, enforced
    /// over sub-minute slices, as OpenAI does) or `fixed-minute` (a count per clock minute
    /// that resets at once, as many gateways do).
    #[arg(long, default_value = "rolling")]
    window: Window,
    /// Another client's requests a minute, counted against --rpm (spread evenly with a
    /// rolling window; at the start of each minute with a fixed one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    external_load: u64,
    /// Seconds after the start at which that other client begins (a limit that shrinks
    /// mid-run).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    external_load_after: f64,
    /// Send no x-ratelimit-* headers, like servers that have none.
    #[arg(long)]
    no_headers: bool,
    /// Send a 429's delay only as P-retry-after (seconds), as a proxy that renames the
    /// upstream's header does, instead of retry-after and retry-after-ms.
    #[arg(long, value_name = "P")]
    retry_after_prefix: Option<String>,
    /// Answer every request with 429 insufficient_quota (not to be retried).
    #[arg(long)]
    quota_exhausted: bool,
    /// Time to first token, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    ttft_ms: f64,
    /// Time per output token, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    ms_per_token: f64,
    /// Relative latency jitter, 0 to 1 (0.2 = ±20 %).
    #[arg(long, default_value_t = 0.0)]
    jitter: f64,
    /// Serve at most this many requests at once and queue the rest (a self-hosted server).
    #[arg(long)]
    max_concurrency: Option<usize>,
    /// Inject a fault into a share of requests: KIND=PROBABILITY (repeatable).
    #[arg(long = "fault", value_name = "KIND=P")]
    faults: Vec<FaultSpec>,
    /// Inject a fault into a share of the requests received between two instants, in
    /// seconds from the start: KIND=P@FROM-UNTIL, e.g. 529=0.3@20-30 (repeatable).
    #[arg(long = "fault-window", value_name = "KIND=P@FROM-UNTIL")]
    fault_windows: Vec<FaultWindow>,
    /// Seed for faults and jitter.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Accept only these models (comma-separated); any model when absent.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Request bodies above this many bytes get 413.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Output tokens per reply (capped by max_tokens); 16 to 64 from the prompt when absent.
    #[arg(long)]
    output_tokens: Option<u32>,
    /// Milliseconds between the pieces of a trickled body.
    #[arg(long, default_value_t = 20)]
    trickle_ms: u64,
    /// Do not keep per-request-id attempt times in /sim/stats (for very long runs).
    #[arg(long)]
    no_id_stats: bool,
    /// Require this API key; any other gets 401 echoing the key it sent (as OpenAI does).
    #[arg(long, value_name = "KEY")]
    require_key: Option<String>,
}

fn millis(ms: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(ms / 1000.0)
        .with_context(|| format!("{flag} must be a non-negative number of milliseconds"))
}

impl SimArgs {
    /// The simulator these flags describe.
    pub fn build(&self) -> anyhow::Result<Sim> {
        let burst = Duration::try_from_secs_f64(self.burst_secs)
            .context("--burst-secs must be a positive number of seconds")?;
        let mut builder = Sim::builder()
            .rpm(self.rpm)
            .tpm(self.tpm)
            .itpm(self.itpm)
            .otpm(self.otpm)
            .burst(burst)
            .window(self.window)
            .external_load(self.external_load)
            .external_from(
                Duration::try_from_secs_f64(self.external_load_after)
                    .context("--external-load-after must be a non-negative number of seconds")?,
            )
            .send_headers(!self.no_headers)
            .retry_after_prefix(self.retry_after_prefix.clone())
            .quota(if self.quota_exhausted {
                QuotaMode::Exhausted
            } else {
                QuotaMode::Available
            })
            .latency(Latency {
                ttft: millis(self.ttft_ms, "--ttft-ms")?,
                per_token: millis(self.ms_per_token, "--ms-per-token")?,
                jitter: self.jitter,
            })
            .max_concurrency(self.max_concurrency)
            .seed(self.seed)
            .models(self.models.iter().cloned())
            .max_body_bytes(self.max_body_bytes)
            .output_tokens(self.output_tokens)
            .trickle_interval(Duration::from_millis(self.trickle_ms))
            .record_ids(!self.no_id_stats)
            .api_key(self.require_key.clone());
        for spec in &self.faults {
            builder = builder.fault(spec.fault, spec.probability);
        }
        for window in &self.fault_windows {
            builder = builder.fault_window(*window);
        }
        Ok(builder.build()?)
    }
}

pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let sim = args.build()?;
    let handle = sim
        .spawn_on(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("sluice sim listening on {}", handle.base_url());
    eprintln!(
        "sluice sim: statistics at http://{}/sim/stats; Ctrl-C to stop",
        handle.addr()
    );
    wait_for_signal().await;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
