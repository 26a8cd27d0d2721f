//! The one-writer lock: an exclusive `flock` on a file beside the store, held by whichever
//! process runs a pass (the daemon, `sync`, `sync --approve`, `sync --retry-quarantined`) for
//! the whole pass. The kernel releases it when the process dies, so a crash never leaves a
//! stale lock. The file names its holder (pid, since when) for the refusal message. No SQL.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held for a pass; dropping it releases the lock (the file stays: deleting a lock file
/// races with a process that has just opened it).
#[derive(Debug)]
pub struct PassLock {
    file: File,
    path: PathBuf,
}

/// Who holds the lock, as it wrote itself into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub since: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.pid, &self.since) {
            (Some(pid), Some(since)) => write!(f, "process {pid}, since {since}"),
            (Some(pid), None) => write!(f, "process {pid}"),
            _ => write!(f, "another process"),
        }
    }
}

/// The lock file for a store file: `<store>.lock`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl PassLock {
    /// Takes the lock if it is free; otherwise says who holds it.
    pub fn try_acquire(store: &Path) -> std::io::Result<Result<PassLock, Holder>> {
        let path = lock_path(store);
        let mut file = super::files::open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.rewind()?;
                writeln!(
                    file,
                    "{} {}",
                    std::process::id(),
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )?;
                file.flush()?;
                Ok(Ok(PassLock { file, path }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(Err(read_holder(&mut file))),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Takes the lock, waiting up to `wait` for it (checking a few times a second).
    pub async fn acquire_within(
        store: &Path,
        wait: Duration,
    ) -> std::io::Result<Result<PassLock, Holder>> {
        let deadline = Instant::now() + wait;
        let mut announced = false;
        loop {
            match PassLock::try_acquire(store)? {
                Ok(lock) => return Ok(Ok(lock)),
                Err(holder) if Instant::now() >= deadline => return Ok(Err(holder)),
                Err(holder) => {
                    if !announced {
                        announced = true;
                        tracing::info!(holder = %holder, wait_s = wait.as_secs(), "another pass holds the store; waiting for it");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PassLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.take(256).read_to_string(&mut text);
    let mut parts = text.split_whitespace();
    Holder {
        pid: parts.next().and_then(|p| p.parse().ok()),
        since: parts.next().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_and_told_the_holder_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.db");
        let first = PassLock::try_acquire(&store).unwrap().unwrap();
        let holder = PassLock::try_acquire(&store).unwrap().unwrap_err();
        assert_eq!(holder.pid, Some(std::process::id()));
        assert!(holder.since.is_some());
        assert!(holder.to_string().contains("since"));
        drop(first);
        assert!(PassLock::try_acquire(&store).unwrap().is_ok());
    }
}
