//! SIGINT and SIGTERM as a stream: the first asks for a graceful stop, the second for an
//! immediate one. Installing the handlers keeps either signal from killing the process
//! before the files are consistent.

use std::fmt;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// A signal that asks sluice to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ctrl-C.
    Interrupt,
    /// `kill` (SIGTERM).
    Terminate,
}

impl StopSignal {
    /// 128 + the signal number, the shell's convention.
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }
}

impl StopSignal {
    /// The signal's name.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Signals received, in order.
pub struct Signals {
    rx: mpsc::UnboundedReceiver<StopSignal>,
}

impl Signals {
    /// Starts listening for SIGINT and SIGTERM.
    pub fn install() -> anyhow::Result<Self> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    Some(()) = int.recv() => StopSignal::Interrupt,
                    Some(()) = term.recv() => StopSignal::Terminate,
                    else => return,
                };
                if tx.send(got).is_err() {
                    return;
                }
            }
        });
        Ok(Signals { rx })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Option<StopSignal> {
        self.rx.recv().await
    }
}
