//! Per-user failures: backoff and quarantine records.

use super::*;

impl Store {
    /// Current failure records, by user key.
    pub fn failures(&self) -> Result<Vec<FailureRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT user_key, email, consecutive, last_code, last_error, last_failed_at,
                            next_retry_at, quarantined, data_hash
                     FROM user_failures ORDER BY email",
            )?;
            let rows = stmt.query_map([], |r| {
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
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    pub fn put_failure(&self, f: &FailureRow) -> Result<()> {
        self.run(|c| {
            c.execute(
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
            )?;
            Ok(())
        })
    }

    pub fn clear_failure(&self, user_key: &str) -> Result<()> {
        self.run(|c| {
            c.execute("DELETE FROM user_failures WHERE user_key = ?1", [user_key])?;
            Ok(())
        })
    }

    /// Releases every quarantined user (`sync --retry-quarantined`); returns how many.
    pub fn release_quarantined(&self) -> Result<usize> {
        self.run(|c| c.execute("DELETE FROM user_failures WHERE quarantined = 1", []))
    }
}
