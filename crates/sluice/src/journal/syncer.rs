//! Forcing records to disk on a thread of its own.
//!
//! An `fsync` takes milliseconds, sometimes tens of them. Done where the results are
//! written, it would stop the whole run for that long: with one runtime thread, no answer
//! is read and no request sent while the disk works. The journal hands its buffered
//! records to the operating system itself (a `write`, which does not wait for the disk),
//! then asks this thread to force them to disk and to replace the state file after them.
//! A request made while one is running waits for it and replaces any other waiting, so
//! syncs never pile up: under `--sync always` the files are forced to disk back to back.
//! An error is kept and reported at the journal's next request, and by [`Syncer::drain`].

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::files::replace_atomically;

/// The thread, and how to reach it.
#[derive(Debug)]
pub(crate) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    /// Signalled when there is work, or the syncer is closing.
    work: Condvar,
    /// Signalled when a sync finished.
    done: Condvar,
}

#[derive(Debug, Default)]
struct Slot {
    /// The state file's next contents, once the files are on disk.
    pending: Option<Vec<u8>>,
    running: bool,
    closing: bool,
    error: Option<io::Error>,
}

impl Shared {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Syncer {
    /// Starts the thread for `files` (handles of their own, from `File::try_clone`) and the
    /// state file at `state`.
    pub(crate) fn start(files: [File; 2], state: PathBuf) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-sync".to_owned())
            .spawn(move || run(&worker, &files, &state))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for the files to be forced to disk, then the state file replaced by `state`.
    /// Returns at once; an error of an earlier sync comes back here.
    pub(crate) fn request(&self, state: Vec<u8>) -> io::Result<()> {
        let mut slot = self.shared.slot();
        if let Some(e) = slot.error.take() {
            return Err(e);
        }
        slot.pending = Some(state);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Waits until every request made so far is done; returns the first error.
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut slot = self.shared.slot();
        while slot.pending.is_some() || slot.running {
            slot = self
                .shared
                .done
                .wait(slot)
                .unwrap_or_else(|e| e.into_inner());
        }
        slot.error.take().map_or(Ok(()), Err)
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.slot().closing = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            // Finishes the sync under way and any waiting: what was asked is done.
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, files: &[File; 2], state_path: &std::path::Path) {
    loop {
        let state = {
            let mut slot = shared.slot();
            loop {
                if let Some(state) = slot.pending.take() {
                    slot.running = true;
                    break state;
                }
                if slot.closing {
                    return;
                }
                slot = shared.work.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
        };
        let outcome = files
            .iter()
            .try_for_each(File::sync_data)
            .and_then(|()| replace_atomically(state_path, &state));
        let mut slot = shared.slot();
        slot.running = false;
        if let Err(e) = outcome
            && slot.error.is_none()
        {
            slot.error = Some(e);
        }
        shared.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-syncer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_last_state_asked_for_is_written_after_the_files() {
        let dir = temp_dir("order");
        let out = File::create(dir.join("out")).unwrap();
        let err = File::create(dir.join("err")).unwrap();
        let state = dir.join("state.json");
        let syncer = Syncer::start([out, err], state.clone()).unwrap();
        for i in 0..50 {
            syncer
                .request(format!("{{\"n\":{i}}}").into_bytes())
                .unwrap();
        }
        syncer.drain().unwrap();
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "{\"n\":49}");
        syncer.request(b"{\"n\":50}".to_vec()).unwrap();
        drop(syncer);
        assert_eq!(
            std::fs::read_to_string(&state).unwrap(),
            "{\"n\":50}",
            "dropping finishes what was asked"
        );
    }

    #[test]
    fn an_error_is_reported_by_the_next_request_or_drain() {
        let dir = temp_dir("error");
        let out = File::create(dir.join("out")).unwrap();
        let err = File::create(dir.join("err")).unwrap();
        // The state file's directory does not exist: replacing it fails.
        let syncer = Syncer::start([out, err], dir.join("missing").join("state.json")).unwrap();
        syncer.request(b"{}".to_vec()).unwrap();
        assert!(syncer.drain().is_err(), "drain reports it");
        // This one fails in the background; a later request says so.
        syncer.request(b"{}".to_vec()).unwrap();
        let mut reported = false;
        for _ in 0..100 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            if syncer.request(b"{}".to_vec()).is_err() {
                reported = true;
                break;
            }
        }
        assert!(reported, "a later request reports the failed sync");
    }
}
