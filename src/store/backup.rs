//! Consistent copies of the store (`backup`) by SQLite's online backup API, safe beside a
//! running daemon; and the read-only look `status` and `check-config` take at when the last
//! copy was made.

use super::*;
use std::os::unix::fs::OpenOptionsExt as _;

/// Pages copied per step of the online backup, and the pause between steps: a daemon's
/// pass writing meanwhile waits at most one step.
const PAGES_PER_STEP: std::ffi::c_int = 256;
const STEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// When the store was last backed up and when its first pass began, as read by a
/// read-only connection (`None` for each when not known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupState {
    pub last_backup: Option<String>,
    pub first_pass: Option<String>,
}

impl Store {
    /// Writes a consistent copy of the store to `dest` (which must not exist), at mode 0600,
    /// checks its integrity, and records the time. A pass writing meanwhile is not stopped:
    /// the copy restarts over pages it changed, as SQLite's backup API does.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let label = dest.display().to_string();
        let mut name = dest.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let tmp = dest.with_file_name(name);
        let io = |source: std::io::Error| {
            Error::Files(files::Refused::Io {
                path: label.clone(),
                source,
            })
        };
        if dest.exists() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists: remove it or name another file",
            )));
        }
        let _ = std::fs::remove_file(&tmp);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io)?;
        let sql = |source: rusqlite::Error| Error::Sql {
            path: label.clone(),
            source,
        };
        let mut copy = Connection::open(&tmp).map_err(sql)?;
        {
            let b = rusqlite::backup::Backup::new(&self.conn, &mut copy).map_err(sql)?;
            b.run_to_completion(PAGES_PER_STEP, STEP_PAUSE, None)
                .map_err(sql)?;
        }
        // A copy of a WAL store is left in rollback mode: one file, nothing beside it.
        copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .map_err(sql)?;
        let check: String = copy
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(sql)?;
        drop(copy);
        if check != "ok" {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Corrupt {
                path: label,
                message: format!("the copy failed its integrity check: {check}"),
            });
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, dest).map_err(io)?;
        self.set_last_backup()
    }

    /// Whether the store passes SQLite's integrity check.
    pub fn integrity_ok(&self) -> Result<bool> {
        self.run(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)))
            .map(|s| s == "ok")
    }

    /// The backup state of the store at `path`, opened read-only (nothing created, migrated or
    /// chmodded); `Ok(None)` when there is no store there yet.
    pub fn backup_state_read_only(path: &Path) -> Result<Option<BackupState>> {
        if !path.exists() {
            return Ok(None);
        }
        let sql = |source: rusqlite::Error| Error::Sql {
            path: path.display().to_string(),
            source,
        };
        let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql)?;
        let meta = |key: &str| -> rusqlite::Result<Option<String>> {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        };
        let last_backup = meta(state::LAST_BACKUP).map_err(sql)?;
        let first_pass = c
            .query_row("SELECT min(started_at) FROM passes", [], |r| r.get(0))
            .map_err(sql)?;
        Ok(Some(BackupState {
            last_backup,
            first_pass,
        }))
    }
}
