//! What a person sees while a run goes: a live view on a terminal, a compact line every few
//! seconds elsewhere, or JSON objects for machines. All are readers of the same samples of
//! the engine's statistics and of its events; the engine never prints.

mod metrics;
mod render;
mod sample;
mod stats_file;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use sluice::{Binding, Client, Event, HaltReason};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use render::{dollars, duration};
use sample::Sampler;
pub use sample::{BindingShares, SeriesPoint};
pub use stats_file::{RunFigures, write_stats};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A live view on a terminal; a plain line every few seconds elsewhere, or with
    /// `NO_COLOR` or `TERM=dumb`.
    Auto,
    /// The live view.
    Live,
    /// One compact line every `--progress-every` seconds (10 by default).
    Plain,
    /// One JSON object every `--progress-every` seconds (1 by default) plus one per notable
    /// event; the schema is in docs/PROGRESS.md.
    Json,
    /// Nothing until the summary.
    Off,
}

/// Flags about progress.
#[derive(Debug, Args)]
pub struct ProgressArgs {
    /// How to show progress.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Seconds between progress lines or JSON objects [default: 10 plain, 1 json].
    #[arg(long, value_parser = crate::commands::positive_seconds)]
    progress_every: Option<Duration>,
    /// Write the JSON progress objects to this file instead of stderr (implies
    /// `--progress json` unless another mode is given).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Print only errors: no progress and no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics while the run goes (for example
    /// 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl ProgressArgs {
    /// The mode in force after `auto`, `--quiet` and `--events` are resolved.
    pub fn mode(&self) -> ProgressMode {
        if self.quiet {
            return ProgressMode::Off;
        }
        match self.progress {
            ProgressMode::Auto if self.events.is_some() => ProgressMode::Json,
            ProgressMode::Auto => {
                let plain_env = std::env::var_os("NO_COLOR").is_some()
                    || std::env::var("TERM").is_ok_and(|t| t == "dumb");
                if !plain_env && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    ProgressMode::Live
                } else {
                    ProgressMode::Plain
                }
            }
            other => other,
        }
    }

    fn every(&self, mode: ProgressMode) -> Duration {
        self.progress_every.unwrap_or(match mode {
            ProgressMode::Json => Duration::from_secs(1),
            _ => Duration::from_secs(10),
        })
    }
}

/// Something the engine or the run did that a JSON reader wants at once.
#[derive(Debug, Clone)]
pub enum Notable {
    /// Every worker pauses for this long.
    Paused(Duration),
    /// The batch stopped by itself.
    Halted(HaltReason),
    /// A signal: draining what is in flight.
    Stopping(&'static str),
    /// The spend cap stopped admission (`spend_cap` or `unpriced_model`).
    CapReached(&'static str),
}

/// What the run tells the progress task besides the engine's statistics.
#[derive(Debug, Default)]
pub struct Shared {
    /// Input lines, once counted (`u64::MAX` until then).
    total: AtomicU64,
    /// Lines an earlier run already did.
    resumed: AtomicU64,
    /// The first stop signal came: requests in flight are draining.
    draining: AtomicBool,
    notes: Mutex<Option<mpsc::UnboundedSender<Notable>>>,
    /// How often each binding held the run back so far (for the metrics).
    shares: Mutex<BindingShares>,
    /// Dollars earlier runs of this output spent, when known.
    earlier_cost: Mutex<Option<f64>>,
}

impl Shared {
    /// Records something notable (a JSON reader gets it at once).
    pub fn note(&self, n: Notable) {
        if let Some(tx) = self
            .notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = tx.send(n);
        }
    }

    /// The engine's events that matter to a display.
    pub fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Paused { duration } => self.note(Notable::Paused(*duration)),
            Event::Halted { reason } => self.note(Notable::Halted(*reason)),
            Event::CapReached { stop } => self.note(Notable::CapReached(stop.code())),
            _ => {}
        }
    }

    /// The first stop signal came.
    pub fn draining(&self, signal: &'static str) {
        self.draining.store(true, Ordering::Relaxed);
        self.note(Notable::Stopping(signal));
    }

    /// The input has this many lines.
    pub fn set_total(&self, lines: u64) {
        self.total.store(lines, Ordering::Relaxed);
    }

    /// Earlier runs of this output spent this much.
    pub fn set_earlier_cost(&self, dollars: f64) {
        *self.earlier_cost.lock().unwrap_or_else(|e| e.into_inner()) = Some(dollars);
    }

    /// What earlier runs spent, when known.
    pub fn earlier_cost(&self) -> Option<f64> {
        *self.earlier_cost.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An earlier run did this many lines.
    pub fn set_resumed(&self, lines: u64) {
        self.resumed.store(lines, Ordering::Relaxed);
    }

    fn shares(&self) -> BindingShares {
        self.shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Input lines, once counted.
    pub fn total(&self) -> Option<u64> {
        match self.total.load(Ordering::Relaxed) {
            u64::MAX => None,
            t => Some(t),
        }
    }
}

/// The running display; [`Progress::finish`] ends it and returns what it saw.
pub struct Progress {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Seen>>,
    metrics: Option<tokio::task::JoinHandle<()>>,
    /// For the run to report into.
    pub shared: Arc<Shared>,
}

/// What the display saw of a run.
#[derive(Debug, Default)]
pub struct Seen {
    /// How often each binding held the run back.
    pub shares: BindingShares,
    /// Counts every ten seconds.
    pub series: Vec<SeriesPoint>,
}

/// How often the live view and the binding samples are taken.
const TICK: Duration = Duration::from_millis(100);

impl Progress {
    /// A display for `args`; call [`Progress::start`] once the client exists.
    pub fn new() -> Self {
        let shared = Shared {
            total: AtomicU64::new(u64::MAX),
            ..Shared::default()
        };
        Progress {
            stop: CancellationToken::new(),
            task: None,
            metrics: None,
            shared: Arc::new(shared),
        }
    }

    /// Starts sampling `client` and showing it as `args` says (and serving metrics, if
    /// asked).
    pub async fn start(&mut self, args: &ProgressArgs, client: Client) -> anyhow::Result<()> {
        if let Some(addr) = args.metrics_addr {
            self.metrics = Some(
                metrics::serve_metrics(
                    addr,
                    client.clone(),
                    self.shared.clone(),
                    self.stop.clone(),
                )
                .await?,
            );
        }
        let mode = args.mode();
        let every = args.every(mode);
        let (tx, rx) = mpsc::unbounded_channel();
        *self.shared.notes.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let sink: Box<dyn Write + Send> = match &args.events {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
            )),
            None => Box::new(std::io::stderr()),
        };
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        self.task = Some(tokio::spawn(show(
            mode, every, client, shared, rx, sink, stop,
        )));
        Ok(())
    }

    /// Ends the display (the live view is cleared, a JSON stream gets its last object) and
    /// returns what it saw: how often each binding held the batch back, and the series.
    pub async fn finish(mut self) -> Seen {
        self.stop.cancel();
        if let Some(server) = self.metrics.take() {
            let _ = server.await;
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Seen::default(),
        }
    }
}

async fn show(
    mode: ProgressMode,
    every: Duration,
    client: Client,
    shared: Arc<Shared>,
    mut notes: mpsc::UnboundedReceiver<Notable>,
    mut sink: Box<dyn Write + Send>,
    stop: CancellationToken,
) -> Seen {
    let mut sampler = Sampler::new(client.concurrency().get());
    let live = (mode == ProgressMode::Live).then(render::live_bar);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_line = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(note) = notes.recv() => {
                if mode == ProgressMode::Json {
                    let _ = writeln!(sink, "{}", render::note_json(&note, sampler.elapsed()));
                    let _ = sink.flush();
                }
            }
            _ = tick.tick() => {
                let s = sampler.sample(&client, &shared);
                *shared.shares.lock().unwrap_or_else(|e| e.into_inner()) = sampler.shares();
                if let Some(bar) = &live {
                    render::update_live(bar, &s);
                } else if mode != ProgressMode::Off && last_line.elapsed() >= every {
                    last_line = tokio::time::Instant::now();
                    let line = if mode == ProgressMode::Json {
                        render::progress_json(&s).to_string()
                    } else {
                        render::plain_line(&s)
                    };
                    let _ = writeln!(sink, "{line}");
                    let _ = sink.flush();
                }
            }
        }
    }
    let s = sampler.sample(&client, &shared);
    if let Some(bar) = live {
        bar.finish_and_clear();
    }
    let shares = sampler.shares();
    if mode == ProgressMode::Json {
        let _ = writeln!(sink, "{}", render::end_json(&s, &shares));
        let _ = sink.flush();
    }
    Seen {
        series: sampler.series(&client),
        shares,
    }
}

/// The binding named in the summary: the share of the run each one held it back.
pub fn summary_line(shares: &BindingShares) -> Option<String> {
    let (binding, share) = shares.top()?;
    (binding != Binding::Idle).then(|| {
        format!(
            "  bound by     {} {:.0} % of the time",
            binding.describe(),
            share * 100.0
        )
    })
}
