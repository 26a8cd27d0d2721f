//! The SQLite store: the only module with SQL. Holds passes, the latest snapshot of each
//! side, links, baseline values and the journal of every change (planned → applied | failed).

mod backup;
pub use backup::BackupState;
mod data_problems;
mod failures;
pub mod files;
mod imports;
pub use imports::StoredLookup;
mod journal;
mod links;
pub mod lock;
mod names;
mod passes;
mod schema;
mod snapshots;
pub mod state;

#[cfg(test)]
use crate::model::TelusStatus;
use crate::model::{ExtId, Link, OktaId, OktaStatus, OktaUser, System, TelusUser};
use crate::model::{PassKind, PassOutcome, TokenPair};
use crate::reconcile::retry::FailureRow;
use crate::reconcile::{Agreed, Baseline, KnownRefusal, Rule, Settlement};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store {path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store {path}: corrupt row: {message}")]
    Corrupt { path: String, message: String },
    #[error(
        "store {path}: schema version {found} is newer than this program knows ({known}); upgrade okta-telus-sync"
    )]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
    #[error("store: {0}")]
    Files(#[from] files::Refused),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads a stored name back as its enum; an unknown one is a corrupt row, never guessed.
fn parse_column<T>(
    value: rusqlite::types::ValueRef<'_>,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::types::FromSqlResult<T> {
    let text = value.as_str()?;
    parse(text).ok_or_else(|| {
        rusqlite::types::FromSqlError::Other(format!("unknown value {text:?}").into())
    })
}

impl rusqlite::types::FromSql for System {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_column(v, System::parse)
    }
}

impl rusqlite::types::FromSql for Rule {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_column(v, Rule::parse)
    }
}

impl rusqlite::types::FromSql for Outcome {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_column(v, Outcome::parse)
    }
}

impl rusqlite::types::FromSql for PassKind {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_column(v, PassKind::parse)
    }
}

impl rusqlite::types::FromSql for PassOutcome {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_column(v, PassOutcome::parse)
    }
}

/// The outcome of one journalled change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Planned,
    Applied,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Planned,
            Outcome::Applied,
            Outcome::Failed,
            Outcome::Skipped,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// A change about to be made, as recorded before the call.
#[derive(Debug, Clone)]
pub struct JournalEntry<'a> {
    pub pass_id: i64,
    pub system: System,
    pub okta_id: Option<&'a OktaId>,
    pub ext_id: Option<&'a ExtId>,
    pub user_email: &'a str,
    pub attribute: &'a str,
    pub field: &'a str,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
    pub rule: Rule,
}

/// A journal row as read back for `history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub id: i64,
    pub pass_id: i64,
    pub time: String,
    pub direction: String,
    /// The system written.
    pub system: System,
    pub okta_id: Option<String>,
    pub ext_id: Option<String>,
    pub user_email: String,
    pub attribute: String,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub rule: Rule,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    pub explanation: Option<String>,
}

/// What a finished pass records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassSummary {
    /// `None` while the pass runs (or when it was killed).
    pub outcome: Option<PassOutcome>,
    pub okta_read: usize,
    pub telus_read: usize,
    pub planned: usize,
    pub applied: usize,
    pub failed: usize,
    pub failed_users: usize,
    pub message: Option<String>,
}

/// A pass as read back for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassRow {
    pub id: i64,
    pub kind: PassKind,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub summary: PassSummary,
}

/// Filters for `history`.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub since: Option<String>,
    pub user_email: Option<String>,
    pub attribute: Option<String>,
    /// Only the changes applied (or skipped) from this saved plan (`sync --plan`).
    pub plan_id: Option<String>,
}

pub struct Store {
    conn: Connection,
    path: String,
    /// Field-name numbering for the compact encoding of stored field maps.
    names: std::cell::RefCell<names::Names>,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating if needed) the store file, in WAL mode, and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let label = path.display().to_string();
        files::prepare(path)?;
        let conn = Connection::open(path).map_err(|source| Error::Sql {
            path: label.clone(),
            source,
        })?;
        let store = Store {
            conn,
            path: label,
            names: Default::default(),
        };
        // Before anything else: another process may be creating or migrating the file.
        store
            .conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| store.err(e))?;
        store.wal_mode()?;
        store.init()?;
        files::restrict(path)?;
        Ok(store)
    }

    /// Switches a new file to WAL. SQLite answers `SQLITE_BUSY` at once, without the busy
    /// handler, while another connection creates or migrates the same file: wait and ask
    /// again, up to the busy timeout.
    fn wal_mode(&self) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            match self.conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other.map_err(|e| self.err(e)),
            }
        }
    }

    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory().map_err(|source| Error::Sql {
            path: ":memory:".into(),
            source,
        })?;
        let store = Store {
            conn,
            path: ":memory:".into(),
            names: Default::default(),
        };
        store.init()?;
        Ok(store)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.path)
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn init(&self) -> Result<()> {
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| self.err(e))?;
        // FULL: a power cut must not drop the last journal rows (a lost `planned` row is a
        // change nobody settles).
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        self.migrate()?;
        let names = names::Names::load(&self.conn).map_err(|e| self.err(e))?;
        *self.names.borrow_mut() = names;
        Ok(())
    }

    /// Applies the migrations newer than `user_version` in one exclusive transaction, the
    /// version read inside it: two processes opening a new store at once never both create
    /// its tables (the second waits, then finds nothing to do).
    pub fn migrate(&self) -> Result<()> {
        if self.schema_version()? == schema::MIGRATIONS.len() {
            return Ok(());
        }
        self.conn
            .execute_batch("BEGIN EXCLUSIVE")
            .map_err(|e| self.err(e))?;
        let result = (|| {
            let version = self.schema_version()?;
            if version > schema::MIGRATIONS.len() {
                return Err(Error::TooNew {
                    path: self.path.clone(),
                    found: version,
                    known: schema::MIGRATIONS.len(),
                });
            }
            for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version) {
                self.conn.execute_batch(sql).map_err(|e| self.err(e))?;
                self.conn
                    .pragma_update(None, "user_version", (i + 1) as i64)
                    .map_err(|e| self.err(e))?;
            }
            Ok(())
        })();
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.conn.execute_batch(end).map_err(|e| self.err(e));
        result.and(ended)
    }

    pub fn schema_version(&self) -> Result<usize> {
        self.run(|c| {
            c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                .map(|v| v.max(0) as usize)
        })
    }

    /// Copies the write-ahead log into the database and truncates it, so the files on disk
    /// stay the size of the data.
    pub fn checkpoint(&self) -> Result<()> {
        self.run(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
    }

    /// The database's size in bytes (pages in use).
    pub fn size_bytes(&self) -> Result<u64> {
        self.run(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok((pages * size).max(0) as u64)
        })
    }

    /// Runs `f` on the connection; an error names the store.
    fn run<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.conn).map_err(|e| self.err(e))
    }

    /// Runs `f` in one transaction, committed when it answers `Ok` (rolled back otherwise);
    /// an error names the store.
    fn tx<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let value = f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(value)
    }
}

/// Applies baseline changes, one read-modify-write per user touched.
fn apply_baseline(
    tx: &rusqlite::Transaction<'_>,
    names: &mut names::Names,
    values: &[Agreed],
) -> rusqlite::Result<()> {
    let mut by_user: BTreeMap<&str, Vec<&Agreed>> = BTreeMap::new();
    for a in values {
        by_user.entry(a.okta_id.0.as_str()).or_default().push(a);
    }
    let mut read = tx.prepare_cached("SELECT attrs FROM baseline_users WHERE okta_id = ?1")?;
    let mut write = tx.prepare_cached(
        "INSERT INTO baseline_users (okta_id, attrs) VALUES (?1, ?2)
         ON CONFLICT (okta_id) DO UPDATE SET attrs = excluded.attrs",
    )?;
    let mut delete = tx.prepare_cached("DELETE FROM baseline_users WHERE okta_id = ?1")?;
    for (id, changes) in by_user {
        let current: Option<String> = read.query_row([id], |r| r.get(0)).optional()?;
        let mut attrs: BTreeMap<String, String> = current
            .and_then(|c| names.decode(&c).ok())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        for a in changes {
            for (attr, value) in &a.values {
                match value {
                    Some(v) => attrs.insert(attr.to_string(), v.clone()),
                    None => attrs.remove(&**attr),
                };
            }
        }
        if attrs.is_empty() {
            delete.execute([id])?;
        } else {
            let encoded = names.encode(tx, attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            write.execute(params![id, encoded])?;
        }
    }
    Ok(())
}

fn journal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalRow> {
    Ok(JournalRow {
        id: r.get(0)?,
        pass_id: r.get(1)?,
        time: r.get(2)?,
        direction: r.get(3)?,
        system: r.get(4)?,
        okta_id: r.get(5)?,
        ext_id: r.get(6)?,
        user_email: r.get(7)?,
        attribute: r.get(8)?,
        field: r.get(9)?,
        old: r.get(10)?,
        new: r.get(11)?,
        rule: r.get(12)?,
        outcome: r.get(13)?,
        error_code: r.get(14)?,
        explanation: r.get(15)?,
    })
}

#[cfg(test)]
mod tests;
