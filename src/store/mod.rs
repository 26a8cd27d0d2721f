//! The SQLite store: the only module with SQL. Holds passes, the latest snapshot of each
//! side, links, baseline values and the journal of every change (planned → applied | failed).

pub mod lock;
mod names;
mod schema;

use crate::model::TokenPair;
use crate::model::{ExtId, Link, OktaId, OktaStatus, OktaUser, System, TelusStatus, TelusUser};
use crate::reconcile::retry::FailureRow;
use crate::reconcile::{Agreed, Baseline, KnownRefusal, Settlement};
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

/// The outcome of one journalled change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Planned,
    Applied,
    Failed,
    Skipped,
}

impl Outcome {
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
    pub rule: &'a str,
}

/// A journal row as read back for `history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub id: i64,
    pub pass_id: i64,
    pub time: String,
    pub direction: String,
    pub system: String,
    pub okta_id: Option<String>,
    pub ext_id: Option<String>,
    pub user_email: String,
    pub attribute: String,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub rule: String,
    pub outcome: String,
    pub error_code: Option<String>,
    pub explanation: Option<String>,
}

/// What a finished pass records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub outcome: String,
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
    pub kind: String,
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
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
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
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| v.max(0) as usize)
            .map_err(|e| self.err(e))
    }

    pub fn begin_pass(&self, kind: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO passes (kind, started_at) VALUES (?1, ?2)",
                params![kind, now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_pass(&self, id: i64, s: &PassSummary) -> Result<()> {
        self.conn
            .execute(
                "UPDATE passes SET finished_at = ?2, outcome = ?3, okta_read = ?4, telus_read = ?5,
                 planned = ?6, applied = ?7, failed = ?8, failed_users = ?9, message = ?10
                 WHERE id = ?1",
                params![
                    id,
                    now(),
                    s.outcome,
                    s.okta_read as i64,
                    s.telus_read as i64,
                    s.planned as i64,
                    s.applied as i64,
                    s.failed as i64,
                    s.failed_users as i64,
                    s.message
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn recent_passes(&self, limit: usize) -> Result<Vec<PassRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, kind, started_at, finished_at, outcome, okta_read, telus_read, planned,
                        applied, failed, failed_users, message
                 FROM passes ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(PassRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    started_at: r.get(2)?,
                    finished_at: r.get(3)?,
                    summary: PassSummary {
                        outcome: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        okta_read: r.get::<_, i64>(5)? as usize,
                        telus_read: r.get::<_, i64>(6)? as usize,
                        planned: r.get::<_, i64>(7)? as usize,
                        applied: r.get::<_, i64>(8)? as usize,
                        failed: r.get::<_, i64>(9)? as usize,
                        failed_users: r.get::<_, i64>(10)? as usize,
                        message: r.get(11)?,
                    },
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Replaces both snapshots with the ones just read, in one transaction.
    pub fn save_snapshots(&self, okta: &[OktaUser], telus: &[TelusUser]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM okta_users", [])
            .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM telus_users", [])
            .map_err(|e| self.err(e))?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO okta_users (id, status, last_updated, profile, provider) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| self.err(e))?;
            let mut names = self.names.borrow_mut();
            for u in okta {
                let profile = names
                    .encode(&tx, u.profile.iter())
                    .map_err(|e| self.err(e))?;
                ins.execute(params![
                    u.id.0,
                    u.status.as_str(),
                    u.last_updated,
                    profile,
                    u.provider
                ])
                .map_err(|e| self.err(e))?;
            }
            let mut ins = tx
                .prepare(
                    "INSERT INTO telus_users (id, status, fields, directory_ref) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.err(e))?;
            for u in telus {
                let fields = names
                    .encode(&tx, u.fields.iter())
                    .map_err(|e| self.err(e))?;
                ins.execute(params![
                    u.id.0,
                    u.status.as_str(),
                    fields,
                    u.directory_ref.as_ref().map(|r| r.0.as_str())
                ])
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// How many users each stored snapshot holds (Okta, TELUS).
    pub fn snapshot_counts(&self) -> Result<(usize, usize)> {
        let count = |table: &str| {
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as usize)
                .map_err(|e| self.err(e))
        };
        Ok((count("okta_users")?, count("telus_users")?))
    }

    /// A stored field list (either encoding) as any collection of name → value; a row that
    /// cannot be read is reported as corrupt, naming `what`.
    fn decode_fields<T: FromIterator<(String, String)>>(
        &self,
        text: &str,
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        self.names
            .borrow()
            .decode(text)
            .map(|v| v.into_iter().collect())
            .map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                message: format!("{}: {e}", what()),
            })
    }

    pub fn load_okta(&self) -> Result<Vec<OktaUser>> {
        self.load_users(
            "SELECT id, status, last_updated, provider, profile FROM okta_users ORDER BY id",
            "okta user",
            |id, status, last_updated, provider, profile| OktaUser {
                id: OktaId(id),
                status: OktaStatus::parse(&status),
                last_updated,
                provider,
                profile,
            },
        )
    }

    pub fn load_telus(&self) -> Result<Vec<TelusUser>> {
        self.load_users(
            "SELECT id, status, NULL, directory_ref, fields FROM telus_users ORDER BY id",
            "telus user",
            |id, status, _, directory_ref, fields| TelusUser {
                id: ExtId(id),
                status: TelusStatus::parse(&status),
                directory_ref: directory_ref.map(OktaId),
                fields,
            },
        )
    }

    /// Rows of (id, status, last updated, one more optional column, stored fields) made into
    /// users by `make`.
    fn load_users<T>(
        &self,
        sql: &str,
        what: &str,
        make: impl Fn(String, String, Option<String>, Option<String>, crate::model::Fields) -> T,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, status, last_updated, extra, fields) = row.map_err(|e| self.err(e))?;
            let fields = self.decode_fields(&fields, || format!("{what} {id}"))?;
            out.push(make(id, status, last_updated, extra, fields));
        }
        Ok(out)
    }

    pub fn links(&self) -> Result<Vec<Link>> {
        let mut stmt = self
            .conn
            .prepare("SELECT okta_id, ext_id FROM links ORDER BY okta_id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Link {
                    okta_id: OktaId(r.get(0)?),
                    ext_id: ExtId(r.get(1)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Records new links; a link replaces any older one on either end.
    pub fn add_links(&self, links: &[Link]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        for l in links {
            tx.execute(
                "DELETE FROM links WHERE okta_id = ?1 OR ext_id = ?2",
                params![l.okta_id.0, l.ext_id.0],
            )
            .map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO links (okta_id, ext_id, linked_at) VALUES (?1, ?2, ?3)",
                params![l.okta_id.0, l.ext_id.0, now()],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn baseline(&self) -> Result<Baseline> {
        let mut stmt = self
            .conn
            .prepare("SELECT okta_id, attrs FROM baseline_users")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Baseline::new();
        for row in rows {
            let (id, attrs) = row.map_err(|e| self.err(e))?;
            let attrs: crate::model::Fields =
                self.decode_fields(&attrs, || format!("baseline of {id}"))?;
            out.set_user(OktaId(id), attrs);
        }
        Ok(out)
    }

    /// Sets (or with `None`, forgets) baseline values, in one transaction.
    pub fn set_baseline(&self, values: &[Agreed]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        apply_baseline(&tx, &mut self.names.borrow_mut(), values).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Journals one action's changes as `planned`, in one transaction, before its call;
    /// returns the row ids in order.
    pub fn journal_planned(&self, entries: &[JournalEntry<'_>]) -> Result<Vec<i64>> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let ts = now();
        let mut ids = Vec::with_capacity(entries.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO journal (pass_id, time, direction, system, okta_id, ext_id, user_email,
                     attribute, field, old, new, rule, outcome)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'planned')",
                )
                .map_err(|e| self.err(e))?;
            for e in entries {
                let direction = match e.system {
                    System::Telus => "okta->telus",
                    System::Okta => "telus->okta",
                };
                ids.push(
                    stmt.insert(params![
                        e.pass_id,
                        ts,
                        direction,
                        e.system.as_str(),
                        e.okta_id.map(|i| i.0.as_str()),
                        e.ext_id.map(|i| i.0.as_str()),
                        e.user_email,
                        e.attribute,
                        e.field,
                        e.old,
                        e.new,
                        e.rule
                    ])
                    .map_err(|e| self.err(e))?,
                );
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(ids)
    }

    /// Records how journalled changes ended, and on success their new baseline, atomically.
    pub fn journal_outcome(
        &self,
        ids: &[i64],
        outcome: Outcome,
        error_code: Option<&str>,
        explanation: Option<&str>,
        baseline: &[Agreed],
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let ts = now();
        for id in ids {
            tx.execute(
                "UPDATE journal SET outcome = ?2, error_code = ?3, explanation = ?4, time = ?5 WHERE id = ?1",
                params![id, outcome.as_str(), error_code, explanation, ts],
            )
            .map_err(|e| self.err(e))?;
        }
        apply_baseline(&tx, &mut self.names.borrow_mut(), baseline).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Journal rows, oldest first, filtered.
    pub fn history(&self, f: &HistoryFilter) -> Result<Vec<JournalRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, pass_id, time, direction, system, okta_id, ext_id, user_email, attribute,
                        field, old, new, rule, outcome, error_code, explanation
                 FROM journal
                 WHERE (?1 IS NULL OR time >= ?1)
                   AND (?2 IS NULL OR lower(user_email) = lower(?2))
                   AND (?3 IS NULL OR attribute = ?3)
                   AND outcome != 'planned'
                 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![f.since, f.user_email, f.attribute], journal_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Rows left `planned` by a run that stopped before recording their outcome.
    pub fn unfinished(&self) -> Result<Vec<JournalRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, pass_id, time, direction, system, okta_id, ext_id, user_email, attribute,
                        field, old, new, rule, outcome, error_code, explanation
                 FROM journal WHERE outcome = 'planned' ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], journal_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Records how interrupted changes ended (with their baseline and links), atomically.
    pub fn settle(&self, settlements: &[Settlement]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let ts = now();
        for s in settlements {
            if s.landed {
                tx.execute(
                    "UPDATE journal SET outcome = 'applied', explanation = ?2, time = ?3 WHERE id = ?1",
                    params![s.row_id, "confirmed after an interrupted run", ts],
                )
            } else {
                tx.execute(
                    "UPDATE journal SET outcome = 'failed', error_code = 'INTERRUPTED', explanation = ?2, time = ?3 WHERE id = ?1",
                    params![s.row_id, "the run stopped before this change was confirmed; it did not land and is planned again", ts],
                )
            }
            .map_err(|e| self.err(e))?;
            if let Some(a) = &s.baseline {
                apply_baseline(&tx, &mut self.names.borrow_mut(), std::slice::from_ref(a))
                    .map_err(|e| self.err(e))?;
            }
            if let Some(l) = &s.link {
                tx.execute(
                    "DELETE FROM links WHERE okta_id = ?1 OR ext_id = ?2",
                    params![l.okta_id.0, l.ext_id.0],
                )
                .map_err(|e| self.err(e))?;
                tx.execute(
                    "INSERT INTO links (okta_id, ext_id, linked_at) VALUES (?1, ?2, ?3)",
                    params![l.okta_id.0, l.ext_id.0, ts],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Current failure records, by user key.
    pub fn failures(&self) -> Result<Vec<FailureRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT user_key, email, consecutive, last_code, last_error, last_failed_at,
                        next_retry_at, quarantined, data_hash
                 FROM user_failures ORDER BY email",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(FailureRow {
                    user_key: r.get(0)?,
                    email: r.get(1)?,
                    consecutive: r.get::<_, i64>(2)? as u32,
                    last_code: r.get(3)?,
                    last_error: r.get(4)?,
                    last_failed_at: r.get(5)?,
                    next_retry_at: r.get(6)?,
                    quarantined: r.get::<_, i64>(7)? != 0,
                    data_hash: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn put_failure(&self, f: &FailureRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO user_failures (user_key, email, consecutive, last_code, last_error,
                    last_failed_at, next_retry_at, quarantined, data_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (user_key) DO UPDATE SET email = excluded.email,
                    consecutive = excluded.consecutive, last_code = excluded.last_code,
                    last_error = excluded.last_error, last_failed_at = excluded.last_failed_at,
                    next_retry_at = excluded.next_retry_at, quarantined = excluded.quarantined,
                    data_hash = excluded.data_hash",
                params![
                    f.user_key,
                    f.email,
                    f.consecutive as i64,
                    f.last_code,
                    f.last_error,
                    f.last_failed_at,
                    f.next_retry_at,
                    f.quarantined as i64,
                    f.data_hash
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn clear_failure(&self, user_key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM user_failures WHERE user_key = ?1", [user_key])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Releases every quarantined user (`sync --retry-quarantined`); returns how many.
    pub fn release_quarantined(&self) -> Result<usize> {
        self.conn
            .execute("DELETE FROM user_failures WHERE quarantined = 1", [])
            .map_err(|e| self.err(e))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The Okta attributes Okta refused for one user, with what each refusal depended on.
    pub fn okta_refusals(&self) -> Result<Vec<KnownRefusal>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT okta_id, attr, email, last_updated, provider, master, explanation
                 FROM okta_refusals ORDER BY email, attr",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(KnownRefusal {
                    okta_id: OktaId(r.get(0)?),
                    attr: r.get(1)?,
                    email: r.get(2)?,
                    last_updated: r.get(3)?,
                    provider: r.get(4)?,
                    master: r.get(5)?,
                    explanation: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Records refusals (replacing earlier ones for the same user and attribute).
    pub fn put_okta_refusals(&self, refusals: &[KnownRefusal], code: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let ts = now();
        for k in refusals {
            tx.execute(
                "INSERT INTO okta_refusals (okta_id, attr, email, last_updated, provider, master,
                    error_code, explanation, refused_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (okta_id, attr) DO UPDATE SET email = excluded.email,
                    last_updated = excluded.last_updated, provider = excluded.provider,
                    master = excluded.master, error_code = excluded.error_code,
                    explanation = excluded.explanation, refused_at = excluded.refused_at",
                params![
                    k.okta_id.0,
                    k.attr,
                    k.email,
                    k.last_updated,
                    k.provider,
                    k.master,
                    code,
                    k.explanation,
                    ts
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Forgets refusals of these attributes of one user: Okta took them after all.
    pub fn clear_okta_refusals(&self, okta_id: &OktaId, attrs: &[&str]) -> Result<()> {
        for attr in attrs {
            self.conn
                .execute(
                    "DELETE FROM okta_refusals WHERE okta_id = ?1 AND attr = ?2",
                    params![okta_id.0, attr],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Deletes finished journal rows older than `cutoff` (RFC 3339); returns how many.
    pub fn prune_journal(&self, cutoff: &str) -> Result<usize> {
        self.conn
            .execute(
                "DELETE FROM journal WHERE time < ?1 AND outcome != 'planned'",
                [cutoff],
            )
            .map_err(|e| self.err(e))
    }

    /// Saves a token pair for `system` (replacing the previous one) in one statement.
    pub fn save_credentials(&self, system: &str, t: &TokenPair) -> Result<()> {
        use secrecy::ExposeSecret as _;
        self.conn
            .execute(
                "INSERT INTO credentials (system, access_token, access_expires_at, refresh_token,
                    refresh_expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (system) DO UPDATE SET access_token = excluded.access_token,
                    access_expires_at = excluded.access_expires_at, refresh_token = excluded.refresh_token,
                    refresh_expires_at = excluded.refresh_expires_at, updated_at = excluded.updated_at",
                params![
                    system,
                    t.access_token.expose_secret(),
                    t.access_expires_at,
                    t.refresh_token.as_ref().map(|r| r.expose_secret().to_string()),
                    t.refresh_expires_at,
                    now()
                ],
            )
            .map_err(|e| self.err(e))?;
        restrict_mode(Path::new(&self.path));
        Ok(())
    }

    pub fn credentials(&self, system: &str) -> Result<Option<TokenPair>> {
        self.conn
            .query_row(
                "SELECT access_token, access_expires_at, refresh_token, refresh_expires_at
                 FROM credentials WHERE system = ?1",
                [system],
                |r| {
                    Ok(TokenPair {
                        access_token: secrecy::SecretString::from(r.get::<_, String>(0)?),
                        access_expires_at: r.get(1)?,
                        refresh_token: r
                            .get::<_, Option<String>>(2)?
                            .map(secrecy::SecretString::from),
                        refresh_expires_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Journalled changes of one pass, counted by direction and outcome.
    pub fn pass_change_counts(&self, pass_id: i64) -> Result<Vec<(String, String, u64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT direction, outcome, count(*) FROM journal WHERE pass_id = ?1
                 GROUP BY direction, outcome ORDER BY direction, outcome",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([pass_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Copies the write-ahead log into the database and truncates it, so the files on disk
    /// stay the size of the data.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }

    /// The database's size in bytes (pages in use).
    pub fn size_bytes(&self) -> Result<u64> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok((pages * size).max(0) as u64)
    }

    /// Changes journalled as planned whose outcome was never recorded (a crash mid-call).
    pub fn unfinished_count(&self) -> Result<usize> {
        self.conn
            .query_row(
                "SELECT count(*) FROM journal WHERE outcome = 'planned'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
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
        let pass = s.begin_pass("full").unwrap();
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
                rule: "master",
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
        assert_eq!(h[0].outcome, "applied");
    }
}
