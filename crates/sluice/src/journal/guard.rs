//! What must hold before a run touches its files: no other run writes the same output, no
//! two of input, output, errors and state are the same file, the output is not a directory,
//! and leftovers of a crash (temporary state files) are gone.
//!
//! The lock is `flock` on a small file beside the output (`results.sluice-lock`): the
//! kernel releases it when the process dies, `kill -9` included, so a crashed run never
//! leaves a stale lock. The file stays; deleting a lock file races with the next locker.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The part a file plays in a run, for messages and for the same-file check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The requests.
    Input,
    /// Successful results (`-o`).
    Output,
    /// Failures (`--errors`).
    Errors,
    /// The run's state file.
    State,
    /// The statistics file.
    Stats,
}

impl Role {
    /// How people call it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Input => "the input",
            Role::Output => "the output",
            Role::Errors => "the errors file",
            Role::State => "the state file",
            Role::Stats => "the statistics file",
        }
    }
}

/// An exclusive hold on a run's output; released when dropped or when the process dies.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a run's files cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// Another process holds the run's lock.
    #[error(
        "another sluice run{} is writing {output} (lock {lock}); wait for it to finish, stop it, or write elsewhere",
        pid.map(|p| format!(" (process {p})")).unwrap_or_default()
    )]
    Locked {
        /// The process that holds it, if it said.
        pid: Option<u32>,
        /// The output.
        output: String,
        /// The lock file.
        lock: String,
    },
    /// Two roles point at one file.
    #[error("{} and {} are the same file ({path}); give each its own path", a.name(), b.name())]
    SameFile {
        /// One role.
        a: Role,
        /// The other.
        b: Role,
        /// The file.
        path: String,
    },
    /// A path that must be a file is a directory.
    #[error(
        "{path} is a directory, but {} must be a file; give a file name such as {example}",
        role.name()
    )]
    IsDirectory {
        /// Which file.
        role: Role,
        /// The path given.
        path: String,
        /// A path that would work.
        example: String,
    },
    /// A file could not be read or written (the cause is the error's source, not repeated
    /// in its message).
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> GuardError + '_ {
    move |source| GuardError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Takes the lock at `lock_path` for the run writing `output`, writing this process's id
/// into it. A holder that lets go within a moment (a `sluice status` looking) is waited
/// for; a run is not.
pub fn lock(lock_path: &Path, output: &Path) -> Result<RunLock, GuardError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)
        .map_err(io_at(lock_path))?;
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(GuardError::Locked {
                    pid: holder(&mut file),
                    output: output.display().to_string(),
                    lock: lock_path.display().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_at(lock_path)(e)),
        }
    }
    let write_pid = |f: &mut File| -> io::Result<()> {
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        writeln!(f, "{}", std::process::id())
    };
    write_pid(&mut file).map_err(io_at(lock_path))?;
    Ok(RunLock {
        _file: file,
        path: lock_path.to_owned(),
    })
}

/// The process id written in a lock file.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether a run holds the lock at `lock_path` now, and its process id if it said.
/// `None` when no run holds it.
pub fn running(lock_path: &Path) -> io::Result<Option<Option<u32>>> {
    let mut file = match File::open(lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => Ok(Some(holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Refuses a directory where a file is needed, and any two roles that name one file:
/// compared by device and inode where both exist, else by their absolute paths.
pub fn distinct(files: &[(Role, &Path)]) -> Result<(), GuardError> {
    for &(role, path) in files {
        if role != Role::Input && path.is_dir() {
            return Err(GuardError::IsDirectory {
                role,
                path: path.display().to_string(),
                example: path.join("results.jsonl").display().to_string(),
            });
        }
    }
    let keys: Vec<(Role, &Path, FileKey)> = files
        .iter()
        .filter(|(_, p)| *p != Path::new("-"))
        .map(|&(role, path)| (role, path, FileKey::of(path)))
        .collect();
    for (i, (a, path, ka)) in keys.iter().enumerate() {
        for (b, _, kb) in &keys[i + 1..] {
            if ka == kb {
                return Err(GuardError::SameFile {
                    a: *a,
                    b: *b,
                    path: path.display().to_string(),
                });
            }
        }
    }
    Ok(())
}

/// A file's identity: its inode if it exists, else its absolute path.
#[derive(Debug, PartialEq, Eq)]
enum FileKey {
    Inode(u64, u64),
    Path(PathBuf),
}

impl FileKey {
    fn of(path: &Path) -> FileKey {
        if let Ok(m) = std::fs::metadata(path) {
            return FileKey::Inode(m.dev(), m.ino());
        }
        // Not created yet: the canonical directory and the name.
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = parent.canonicalize().unwrap_or_else(|_| parent.to_owned());
        FileKey::Path(dir.join(path.file_name().unwrap_or_default()))
    }
}

/// Removes the temporary files that an atomic replacement of `path` leaves when the
/// process dies between writing and renaming (`.NAME.tmp-PID`). Returns how many.
pub fn remove_leftover_temps(path: &Path) -> io::Result<u64> {
    let Some(name) = path.file_name() else {
        return Ok(0);
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Makes an existing file private (0600) if it was readable by others. Returns whether it
/// changed anything.
pub fn make_private(path: &Path) -> io::Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.permissions().mode() & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-guard-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let d = dir("lock");
        let out = d.join("out.jsonl");
        let first = lock(&d.join("out.sluice-lock"), &out).unwrap();
        assert_eq!(
            running(first.path()).unwrap(),
            Some(Some(std::process::id()))
        );
        match lock(&d.join("out.sluice-lock"), &out) {
            Err(GuardError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert_eq!(running(&d.join("out.sluice-lock")).unwrap(), None);
        lock(&d.join("out.sluice-lock"), &out).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn same_files_by_inode_link_or_path_are_refused() {
        let d = dir("same");
        let input = d.join("in.jsonl");
        std::fs::write(&input, "x\n").unwrap();
        let link = d.join("link.jsonl");
        std::fs::hard_link(&input, &link).unwrap();
        let new = d.join("new.jsonl");
        let sub = d.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let via_dotdot = sub.join("../new.jsonl");
        let same = |a: &Path, b: &Path| {
            matches!(
                distinct(&[(Role::Input, a), (Role::Output, b)]),
                Err(GuardError::SameFile { .. })
            )
        };
        assert!(same(&input, &input));
        assert!(same(&input, &link));
        assert!(same(&new, &via_dotdot));
        assert!(!same(&input, &new));
        assert!(matches!(
            distinct(&[(Role::Output, &sub)]),
            Err(GuardError::IsDirectory {
                role: Role::Output,
                ..
            })
        ));
        assert!(distinct(&[(Role::Input, Path::new("-")), (Role::Output, &new)]).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn leftover_temps_are_removed_and_wide_modes_tightened() {
        let d = dir("temps");
        let state = d.join("out.sluice-state.json");
        std::fs::write(d.join(".out.sluice-state.json.tmp-123"), "{").unwrap();
        std::fs::write(d.join(".other.tmp-1"), "{").unwrap();
        assert_eq!(remove_leftover_temps(&state).unwrap(), 1);
        assert!(d.join(".other.tmp-1").exists());
        let out = d.join("out.jsonl");
        std::fs::write(&out, "").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(make_private(&out).unwrap());
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!make_private(&out).unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
