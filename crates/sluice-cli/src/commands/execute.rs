//! A durable run under the command line's signals: the loop itself is the library's
//! [`sluice::DurableRun`]; this turns signals into its stop and abort, and its report into
//! the run's outcome and exit code.

use std::time::Duration;

use sluice::{Client, DurableRun, Halt, RunControl};

use super::signals::{Signals, StopSignal};
use super::{EXIT_FAILURES, EXIT_HALTED, EXIT_OK};
use crate::progress::Shared;

/// What a run came to.
#[derive(Debug)]
pub struct Outcome {
    /// Input lines that could not be sent (unusable or duplicate).
    pub invalid_lines: u64,
    /// Requests that failed for good.
    pub failed: u64,
    /// Time from start to the end.
    pub wall: Duration,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<StopSignal>,
    /// Why the run stopped by itself, if it did.
    pub halt: Option<Halt>,
    /// Why the spend cap stopped admission, if it did.
    pub cap_stop: Option<sluice::cost::CapStop>,
    /// How often each failure message was seen.
    pub messages: sluice::durable::Messages,
    /// Final results by the number of attempts they took.
    pub attempts: std::collections::BTreeMap<u32, u64>,
}

impl Outcome {
    /// The figures of the stats file this run's outcome gives, with what the caller knows
    /// beyond it.
    pub fn figures(
        &self,
        total_lines: Option<u64>,
        resumed: u64,
        earlier_cost: Option<f64>,
        prices_taken: &str,
    ) -> crate::progress::RunFigures {
        crate::progress::RunFigures {
            total_lines,
            resumed,
            invalid_lines: self.invalid_lines,
            attempts_histogram: self.attempts.clone(),
            wall: self.wall,
            earlier_cost,
            prices_taken: prices_taken.to_owned(),
        }
    }

    /// The process exit code (see the README's table), counting `earlier_failures` left in
    /// the errors file by earlier runs of the same output.
    pub fn exit_code(&self, earlier_failures: u64) -> u8 {
        match self.interrupted {
            Some(signal) => signal.exit_code(),
            None if self.halt.is_some() => EXIT_HALTED,
            None if self.cap_stop.is_some() => super::EXIT_SPEND_CAP,
            None if self.invalid_lines + self.failed + earlier_failures > 0 => EXIT_FAILURES,
            None => EXIT_OK,
        }
    }
}

/// Runs `run` through `client` to its end, turning the first SIGINT or SIGTERM into a
/// graceful stop (the display says it is draining) and the second into an immediate one.
pub async fn execute(
    client: &Client,
    run: DurableRun,
    signals: &mut Signals,
    drain_timeout: Duration,
    progress: &Shared,
) -> anyhow::Result<Outcome> {
    let mut control = RunControl::default();
    control.drain_timeout = drain_timeout;
    let (stop, abort) = (control.stop.clone(), control.abort.clone());
    let drive = run.run(client, control);
    tokio::pin!(drive);
    let mut interrupted = None;
    let report = loop {
        tokio::select! {
            biased;
            Some(signal) = signals.recv() => {
                if interrupted.is_some() {
                    abort.cancel(); // a second signal: stop now, abandoning what is in flight
                } else {
                    interrupted = Some(signal);
                    progress.draining(signal.name());
                    stop.cancel();
                }
            }
            report = &mut drive => break report?,
        }
    };
    Ok(Outcome {
        invalid_lines: report.invalid_lines,
        failed: report.failed,
        wall: report.wall,
        interrupted,
        halt: report.halt,
        cap_stop: report.cap_stop,
        messages: report.messages,
        attempts: report.attempts,
    })
}
