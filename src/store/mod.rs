//! The SQLite store: the only module with SQL. Holds passes, the latest snapshot of each
//! side, links, baseline values and the journal of every change (planned → applied | failed).

mod data_problems;
mod failures;
mod journal;
mod links;
pub mod lock;
mod names;
mod passes;
mod schema;
mod snapshots;
pub mod state;

use crate::model::{ExtId, Link, OktaId, OktaStatus, OktaUser, System, TelusStatus, TelusUser};
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
        store
            .conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| store.err(e))?;
        store.init()?;
        restrict_mode(path);
        Ok(store)
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

/// The store holds tokens: only its owner may read it (and its WAL files).
fn restrict_mode(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mut names = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            names.push(PathBuf::from(p));
        }
        for name in names {
            if let Ok(meta) = std::fs::metadata(&name)
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600));
            }
        }
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
mod tests {
    use super::*;

    fn okta(id: &str, email: &str) -> OktaUser {
        OktaUser {
            id: OktaId(id.into()),
            status: OktaStatus::Active,
            last_updated: Some("2026-01-01T00:00:00.000Z".into()),
            provider: None,
            profile: [("email".to_string(), email.to_string())].into(),
        }
    }

    #[test]
    fn migrations_run_twice_are_a_no_op() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len());
        s.migrate().unwrap();
        s.migrate().unwrap();
        assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len());
    }

    #[test]
    fn reopening_a_file_keeps_data_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = Store::open(&path).unwrap();
            s.add_links(&[Link {
                okta_id: OktaId("00u1".into()),
                ext_id: ExtId("7".into()),
            }])
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.links().unwrap().len(), 1);
        assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len());
    }

    #[cfg(unix)]
    #[test]
    fn the_store_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = Store::open(&path).unwrap();
        s.save_credentials(
            "telus",
            &TokenPair {
                access_token: secrecy::SecretString::from("at"),
                access_expires_at: 10,
                refresh_token: Some(secrecy::SecretString::from("rt")),
                refresh_expires_at: Some(20),
            },
        )
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = s.credentials("telus").unwrap().unwrap();
        assert_eq!(back.refresh_expires_at, Some(20));
    }

    #[test]
    fn the_per_attribute_baseline_migrates_to_per_user_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &schema::MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3i64).unwrap();
            conn.execute_batch(
                "INSERT INTO baseline VALUES ('o1', 'city', 'Victoria', 'x'), ('o1', 'state', 'BC', 'x'), ('o2', 'city', 'Regina', 'x');",
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let b = s.baseline().unwrap();
        assert_eq!(b.get(&OktaId("o1".into()), "state"), Some("BC"));
        assert_eq!(b.get(&OktaId("o2".into()), "city"), Some("Regina"));
        assert_eq!(b.users(), 2);
        s.set_baseline(&[Agreed::one(OktaId("o2".into()), "city", None)])
            .unwrap();
        assert_eq!(s.baseline().unwrap().users(), 1);
    }

    #[test]
    fn field_names_are_stored_once_and_snapshots_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut u = okta("a", "a@x.ca");
        u.profile.insert("department", "Ventes \"Est\" 🚀".into());
        {
            let s = Store::open(&path).unwrap();
            s.save_snapshots(&[u.clone(), okta("b", "b@x.ca")], &[])
                .unwrap();
            let raw: String = s
                .conn
                .query_row("SELECT profile FROM okta_users WHERE id = 'a'", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert!(
                !raw.contains("department") && raw.starts_with("[["),
                "{raw}"
            );
            let n: i64 = s
                .conn
                .query_row("SELECT count(*) FROM field_names", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 2, "email and department, once each");
        }
        // A new connection reads the numbering back.
        let s = Store::open(&path).unwrap();
        assert_eq!(s.load_okta().unwrap()[0], u);
        // Rows written by older versions (JSON objects) still read.
        s.conn
            .execute(
                "UPDATE okta_users SET profile = '{\"email\":\"old@x.ca\"}' WHERE id = 'b'",
                [],
            )
            .unwrap();
        assert_eq!(s.load_okta().unwrap()[1].email(), Some("old@x.ca"));
    }

    /// Several processes (here threads, each with its own connection) opening a new store at
    /// once: the migrations run once, inside an exclusive transaction, and every open works.
    #[test]
    fn concurrent_opens_of_a_new_store_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|s| s.schema_version().unwrap())
                })
            })
            .collect();
        for h in handles {
            let v = h.join().unwrap().unwrap();
            assert_eq!(v, schema::MIGRATIONS.len());
        }
    }

    /// Enums come back as enums: a value this program does not know is an error, never
    /// read as some other system or outcome.
    #[test]
    fn an_unknown_system_in_the_journal_is_an_error_not_a_guess() {
        let s = Store::open_in_memory().unwrap();
        let pass = s.begin_pass(PassKind::Full).unwrap();
        s.conn
            .execute(
                "INSERT INTO journal (pass_id, time, direction, system, user_email, attribute,
                 field, rule, outcome) VALUES (?1, 't', 'x', 'ldap', 'a@x.ca', 'a', 'f', 'r', 'applied')",
                [pass],
            )
            .unwrap();
        let err = s.history(&HistoryFilter::default()).unwrap_err();
        assert!(err.to_string().contains("ldap"), "{err}");
        assert_eq!(s.recent_passes(1).unwrap()[0].kind, PassKind::Full);
    }

    #[test]
    fn journal_commits_are_durable_across_a_power_cut() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let level: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 2, "synchronous = FULL");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(Store::open(&path), Err(Error::TooNew { .. })));
    }

    #[test]
    fn snapshots_replace_the_previous_ones() {
        let s = Store::open_in_memory().unwrap();
        s.save_snapshots(&[okta("a", "a@x.ca"), okta("b", "b@x.ca")], &[])
            .unwrap();
        s.save_snapshots(&[okta("b", "b@x.ca")], &[]).unwrap();
        let loaded = s.load_okta().unwrap();
        assert_eq!(loaded, vec![okta("b", "b@x.ca")]);
    }

    #[test]
    fn the_telus_snapshot_is_merged_changed_added_and_gone() {
        let t = |id: &str, dept: &str| TelusUser {
            id: ExtId(id.into()),
            in_directory: true,
            status: TelusStatus::Enabled,
            directory_ref: None,
            fields: [("contact.department", dept.to_string())].into(),
        };
        let s = Store::open_in_memory().unwrap();
        s.save_snapshots(&[], &[t("1", "Sales"), t("2", "Legal")])
            .unwrap();
        let mut moved = t("2", "Finance");
        moved.directory_ref = Some(OktaId("00u2".into()));
        s.save_snapshots(&[], &[moved.clone(), t("3", "Ops")])
            .unwrap();
        assert_eq!(s.load_telus().unwrap(), vec![moved, t("3", "Ops")]);
        assert_eq!(s.snapshot_counts().unwrap(), (0, 2));
    }

    #[test]
    fn a_user_left_out_of_the_directory_stays_so_in_the_snapshot() {
        let mut t = TelusUser {
            id: ExtId("1".into()),
            in_directory: false,
            status: TelusStatus::Enabled,
            directory_ref: None,
            fields: [("contact.department", "Sales".to_string())].into(),
        };
        let s = Store::open_in_memory().unwrap();
        s.save_snapshots(&[], std::slice::from_ref(&t)).unwrap();
        assert_eq!(s.load_telus().unwrap(), vec![t.clone()]);
        // Listed again, nothing else changed: the row is rewritten.
        t.in_directory = true;
        s.save_snapshots(&[], std::slice::from_ref(&t)).unwrap();
        assert_eq!(s.load_telus().unwrap(), vec![t]);
    }

    #[test]
    fn changes_in_a_bulk_task_are_found_by_it_and_unsent_ones_discarded() {
        let s = Store::open_in_memory().unwrap();
        let pass = s.begin_pass(PassKind::Full).unwrap();
        let entry = |attribute| JournalEntry {
            pass_id: pass,
            system: System::Telus,
            okta_id: None,
            ext_id: None,
            user_email: "a@x.ca",
            attribute,
            field: "contact.department",
            old: None,
            new: Some("Sales"),
            rule: Rule::Master,
        };
        let rows = s
            .journal_planned_in(&[entry("department"), entry("city")], Some("pending"))
            .unwrap();
        let tasks = |s: &Store| -> Vec<(i64, String)> {
            s.unfinished_tasks()
                .unwrap()
                .into_iter()
                .map(|(r, t, _)| (r, t))
                .collect()
        };
        assert_eq!(
            tasks(&s),
            vec![(rows[0], "pending".into()), (rows[1], "pending".into())]
        );
        s.set_task(&rows[..1], Some("task-9")).unwrap();
        s.set_task(&rows[1..], None).unwrap();
        assert_eq!(tasks(&s), vec![(rows[0], "task-9".into())]);
        // A finished change is never discarded; an unsent one is.
        s.journal_outcome(&rows[..1], Outcome::Applied, None, None, &[])
            .unwrap();
        s.discard_unsent(&rows).unwrap();
        assert_eq!(s.unfinished_count().unwrap(), 0);
        assert_eq!(s.history(&HistoryFilter::default()).unwrap().len(), 1);
    }

    #[test]
    fn a_new_link_replaces_an_old_one_on_either_end() {
        let s = Store::open_in_memory().unwrap();
        let l = |o: &str, e: &str| Link {
            okta_id: OktaId(o.into()),
            ext_id: ExtId(e.into()),
        };
        s.add_links(&[l("a", "1"), l("b", "2")]).unwrap();
        s.add_links(&[l("a", "2")]).unwrap();
        assert_eq!(s.links().unwrap(), vec![l("a", "2")]);
    }

    #[test]
    fn journal_outcome_sets_baseline_atomically() {
        let s = Store::open_in_memory().unwrap();
        let pass = s.begin_pass(PassKind::Full).unwrap();
        let id = OktaId("00u1".into());
        let rows = s
            .journal_planned(&[JournalEntry {
                pass_id: pass,
                system: System::Telus,
                okta_id: Some(&id),
                ext_id: None,
                user_email: "a@x.ca",
                attribute: "city",
                field: "contact.businessAddress.city",
                old: Some("Vancouver"),
                new: Some("Victoria"),
                rule: Rule::Master,
            }])
            .unwrap();
        let row = rows[0];
        assert_eq!(s.unfinished_count().unwrap(), 1);
        s.journal_outcome(
            &[row],
            Outcome::Applied,
            None,
            None,
            &[Agreed::one(id.clone(), "city", Some("Victoria".into()))],
        )
        .unwrap();
        assert_eq!(s.unfinished_count().unwrap(), 0);
        assert_eq!(s.baseline().unwrap().get(&id, "city"), Some("Victoria"));
        let h = s
            .history(&HistoryFilter {
                user_email: Some("A@X.CA".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].direction, "okta->telus");
        assert_eq!(h[0].outcome, Outcome::Applied);
    }
}
