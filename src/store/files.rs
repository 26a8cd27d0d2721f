//! The store's files on disk, which hold the TELUS tokens: the store is created 0600 before
//! SQLite opens it (SQLite gives `-wal` and `-shm` the database file's mode), a store whose
//! files another user owns or whose directory others can write is refused, and the lock
//! files are opened without following links and written only when they are this user's own
//! regular file. No SQL.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why the store's files cannot be trusted with the tokens, naming the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "{path} belongs to user {owner}, not to this user ({me}): another user may have made it to read the tokens. Remove it, or `chown {me} {path}` if it is really this service's"
    )]
    Owner { path: String, owner: u32, me: u32 },
    #[error(
        "the store's directory {dir} can be written by other users (mode {mode:o}): one of them could plant the store's files. `chmod go-w {dir}`, or put store.path in a directory of the service's own"
    )]
    OpenDirectory { dir: String, mode: u32 },
    #[error("{path} is not a regular file (a link, a directory or a device): refused")]
    NotAFile { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Refused + '_ {
    move |source| Refused::Io {
        path: path.display().to_string(),
        source,
    }
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail (POSIX).
    unsafe { libc::geteuid() }
}

/// The store file and the two SQLite makes beside it.
fn store_files(store: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut p = store.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [store.to_path_buf(), with("-wal"), with("-shm")]
}

/// Checks the store's directory and files before SQLite opens them, and creates the store
/// file 0600 if it is missing (without following a link planted at its name).
pub fn prepare(store: &Path) -> Result<(), Refused> {
    let dir = match store.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    // Sticky or not, a directory others can write lets them create `-wal` before we do.
    if meta.mode() & 0o022 != 0 {
        return Err(Refused::OpenDirectory {
            dir: dir.display().to_string(),
            mode: meta.mode() & 0o7777,
        });
    }
    let me = effective_uid();
    for path in store_files(store) {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_file() => {
                return Err(Refused::NotAFile {
                    path: path.display().to_string(),
                });
            }
            Ok(m) if m.uid() != me => {
                return Err(Refused::Owner {
                    path: path.display().to_string(),
                    owner: m.uid(),
                    me,
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
    }
    if !store.exists() {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(store)
        {
            Ok(_) => {}
            // Another process made it meanwhile: checked again by `restrict`.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(store)(e)),
        }
    }
    Ok(())
}

/// After SQLite has opened the store: each of its files is this user's and 0600. A chmod
/// that fails is an error, not a shrug: the tokens would stay readable.
pub fn restrict(store: &Path) -> Result<(), Refused> {
    let me = effective_uid();
    for path in store_files(store) {
        let m = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path)(e)),
        };
        if !m.file_type().is_file() {
            return Err(Refused::NotAFile {
                path: path.display().to_string(),
            });
        }
        if m.uid() != me {
            return Err(Refused::Owner {
                path: path.display().to_string(),
                owner: m.uid(),
                me,
            });
        }
        if m.mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Opens a lock file for reading and writing, creating it 0600; never through a link, and
/// only when it is this user's own regular file with one name (a hard link to the store
/// would otherwise be truncated when the pid is written).
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(format!(
                    "{} is a symbolic link: refused (remove it; the lock file is made anew)",
                    path.display()
                ))
            } else {
                e
            }
        })?;
    let m = file.metadata()?;
    let problem = if !m.file_type().is_file() {
        Some("is not a regular file")
    } else if m.uid() != effective_uid() {
        Some("belongs to another user")
    } else if m.nlink() != 1 {
        Some("has another name (a hard link)")
    } else {
        None
    };
    match problem {
        Some(p) => Err(std::io::Error::other(format!(
            "{} {p}: refused (remove it; the lock file is made anew)",
            path.display()
        ))),
        None => Ok(file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_is_created_0600_and_its_wal_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = super::super::Store::open(&path).unwrap();
        store.save_last_prune(chrono::Utc::now()).unwrap();
        for p in store_files(&path) {
            if let Ok(m) = std::fs::metadata(&p) {
                assert_eq!(m.mode() & 0o777, 0o600, "{}", p.display());
            }
        }
        assert!(store_files(&path)[1].exists(), "the WAL was written");
    }

    #[test]
    fn a_directory_others_can_write_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = super::super::Store::open(&dir.path().join("s.db"))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("chmod go-w"), "{err}");
        assert!(!dir.path().join("s.db").exists(), "nothing was created");
    }

    #[test]
    fn a_link_at_the_lock_files_name_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.path().join("s.db.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_lock_file(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let hard = dir.path().join("s.db.token.lock");
        std::fs::hard_link(&target, &hard).unwrap();
        let err = open_lock_file(&hard).unwrap_err().to_string();
        assert!(err.contains("hard link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    fn store_files_another_user_owns_are_refused() {
        if effective_uid() != 0 {
            eprintln!("not root: cannot make a file another user owns; nothing to check here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let wal = store_files(&path)[1].clone();
        std::fs::write(&wal, "").unwrap();
        std::os::unix::fs::chown(&wal, Some(65534), Some(65534)).unwrap();
        let err = super::super::Store::open(&path)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("belongs to user 65534"), "{err}");
        assert!(!path.exists(), "nothing was created");
    }
}
