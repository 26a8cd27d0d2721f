//! Passes: begun, finished, read back for `status` and the metrics.

use super::*;

impl Store {
    pub fn begin_pass(&self, kind: PassKind) -> Result<i64> {
        self.run(|c| {
            c.execute(
                "INSERT INTO passes (kind, started_at) VALUES (?1, ?2)",
                params![kind.as_str(), now()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Marks a pass as the application of a saved plan (`history --plan` lists its rows).
    pub fn set_pass_plan(&self, id: i64, plan_id: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE passes SET plan_id = ?2 WHERE id = ?1",
                params![id, plan_id],
            )?;
            Ok(())
        })
    }

    pub fn finish_pass(&self, id: i64, s: &PassSummary) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE passes SET finished_at = ?2, outcome = ?3, okta_read = ?4, telus_read = ?5,
                     planned = ?6, applied = ?7, failed = ?8, failed_users = ?9, message = ?10
                     WHERE id = ?1",
                params![
                    id,
                    now(),
                    s.outcome.map(PassOutcome::as_str),
                    s.okta_read as i64,
                    s.telus_read as i64,
                    s.planned as i64,
                    s.applied as i64,
                    s.failed as i64,
                    s.failed_users as i64,
                    s.message
                ],
            )?;
            Ok(())
        })
    }

    pub fn recent_passes(&self, limit: usize) -> Result<Vec<PassRow>> {
        self.passes_where("1", limit)
    }

    /// The last full or incremental pass (targeted passes read only a few users: an
    /// incremental read continues from the last pass that read a whole directory).
    pub fn last_whole_pass(&self) -> Result<Option<PassRow>> {
        Ok(self
            .passes_where("kind != 'targeted'", 1)?
            .into_iter()
            .next())
    }

    /// When the last full pass that ended well (`ok` or `users-failed`) finished.
    pub fn last_good_full_pass_end(&self) -> Result<Option<String>> {
        Ok(self
            .passes_where(
                "kind = 'full' AND outcome IN ('ok', 'users-failed') AND finished_at IS NOT NULL",
                1,
            )?
            .into_iter()
            .next()
            .and_then(|p| p.finished_at))
    }

    fn passes_where(&self, condition: &str, limit: usize) -> Result<Vec<PassRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT id, kind, started_at, finished_at, outcome, okta_read, telus_read, planned,
                            applied, failed, failed_users, message
                     FROM passes WHERE {condition} ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(PassRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    started_at: r.get(2)?,
                    finished_at: r.get(3)?,
                    summary: PassSummary {
                        outcome: r.get(4)?,
                        okta_read: r.get::<_, i64>(5)? as usize,
                        telus_read: r.get::<_, i64>(6)? as usize,
                        planned: r.get::<_, i64>(7)? as usize,
                        applied: r.get::<_, i64>(8)? as usize,
                        failed: r.get::<_, i64>(9)? as usize,
                        failed_users: r.get::<_, i64>(10)? as usize,
                        message: r.get(11)?,
                    },
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    /// The users a pass wrote to (changes journalled `applied`): Okta ids, extension ids.
    pub fn written_in_pass(&self, pass_id: i64) -> Result<(Vec<String>, Vec<String>)> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT system, okta_id, ext_id FROM journal
                     WHERE pass_id = ?1 AND outcome = 'applied'",
            )?;
            let mut okta = Vec::new();
            let mut telus = Vec::new();
            let rows = stmt.query_map([pass_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            for row in rows {
                match row? {
                    (system, Some(id), _) if system == "okta" => okta.push(id),
                    (system, _, Some(id)) if system == "telus" => telus.push(id),
                    _ => {}
                }
            }
            Ok((okta, telus))
        })
    }

    /// Journalled changes of one pass, counted by direction and outcome.
    pub fn pass_change_counts(&self, pass_id: i64) -> Result<Vec<(String, Outcome, u64)>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT direction, outcome, count(*) FROM journal WHERE pass_id = ?1
                     GROUP BY direction, outcome ORDER BY direction, outcome",
            )?;
            let rows = stmt.query_map([pass_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }
}
