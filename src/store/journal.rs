//! The journal of every change: planned before its call, applied or failed after; settled after a crash; pruned.

use super::*;

impl Store {
    /// Journals one action's changes as `planned`, in one transaction, before its call;
    /// returns the row ids in order.
    pub fn journal_planned(&self, entries: &[JournalEntry<'_>]) -> Result<Vec<i64>> {
        self.journal_planned_in(entries, None)
    }

    /// `journal_planned`, for changes going in a bulk-update task (`task`: its id, or
    /// `PENDING_TASK` before the request names one).
    pub fn journal_planned_in(
        &self,
        entries: &[JournalEntry<'_>],
        task: Option<&str>,
    ) -> Result<Vec<i64>> {
        self.tx(|tx| {
                    let ts = now();
            let mut ids = Vec::with_capacity(entries.len());
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO journal (pass_id, time, direction, system, okta_id, ext_id, user_email,
                         attribute, field, old, new, rule, outcome, task_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'planned', ?13)",
                    )
                    ?;
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
                            e.rule.as_str(),
                            task
                        ])
                        ?,
                    );
                }
            }
            Ok(ids)
        })
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
        self.tx(|tx| {
                    let ts = now();
            for id in ids {
                tx.execute(
                    "UPDATE journal SET outcome = ?2, error_code = ?3, explanation = ?4, time = ?5 WHERE id = ?1",
                    params![id, outcome.as_str(), error_code, explanation, ts],
                )
                ?;
            }
            apply_baseline(tx, &mut self.names.borrow_mut(), baseline)?;
            Ok(())
        })
    }

    /// Journals changes that were not sent, as `skipped` with why (a saved plan's stale
    /// changes: `code` "stale", the explanation naming the value found).
    pub fn journal_skipped(
        &self,
        entries: &[JournalEntry<'_>],
        code: &str,
        explanation: &str,
    ) -> Result<()> {
        let ids = self.journal_planned(entries)?;
        self.journal_outcome(&ids, Outcome::Skipped, Some(code), Some(explanation), &[])
    }

    /// Sets the Okta user an import's rows created (unknown when they were journalled).
    pub fn set_journal_okta_id(&self, ids: &[i64], okta_id: &OktaId) -> Result<()> {
        self.tx(|tx| {
            let mut stmt = tx.prepare_cached("UPDATE journal SET okta_id = ?2 WHERE id = ?1")?;
            for id in ids {
                stmt.execute(params![id, okta_id.0])?;
            }
            Ok(())
        })
    }

    /// Sets the explanation of applied rows (how they landed).
    pub fn note_applied(&self, ids: &[i64], explanation: &str) -> Result<()> {
        self.tx(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE journal SET explanation = ?2 WHERE id = ?1 AND outcome = 'applied'",
            )?;
            for id in ids {
                stmt.execute(params![id, explanation])?;
            }
            Ok(())
        })
    }

    /// Journal rows, oldest first, filtered.
    pub fn history(&self, f: &HistoryFilter) -> Result<Vec<JournalRow>> {
        self.run(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, pass_id, time, direction, system, okta_id, ext_id, user_email, attribute,
                            field, old, new, rule, outcome, error_code, explanation
                     FROM journal
                     WHERE (?1 IS NULL OR time >= ?1)
                       AND (?2 IS NULL OR lower(user_email) = lower(?2))
                       AND (?3 IS NULL OR attribute = ?3)
                       AND (?4 IS NULL OR pass_id IN (SELECT id FROM passes WHERE plan_id = ?4))
                       AND outcome != 'planned'
                     ORDER BY id",
                )
                ?;
            let rows = stmt
                .query_map(params![f.since, f.user_email, f.attribute, f.plan_id], journal_row)
                ?;
            rows.collect::<rusqlite::Result<Vec<_>>>()

        })
    }

    /// Rows left `planned` by a run that stopped before recording their outcome.
    pub fn unfinished(&self) -> Result<Vec<JournalRow>> {
        self.run(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, pass_id, time, direction, system, okta_id, ext_id, user_email, attribute,
                            field, old, new, rule, outcome, error_code, explanation
                     FROM journal WHERE outcome = 'planned' ORDER BY id",
                )
                ?;
            let rows = stmt.query_map([], journal_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()

        })
    }

    /// Marks journalled changes as sent in a bulk-update task: its id, or `PENDING_TASK`
    /// just before the request goes (its answer, with the id, may be lost).
    /// `None` takes the mark away: the change is settled by a read, or goes one by one.
    pub fn set_task(&self, ids: &[i64], task: Option<&str>) -> Result<()> {
        self.tx(|tx| {
            let mut stmt = tx.prepare_cached("UPDATE journal SET task_id = ?2 WHERE id = ?1")?;
            for id in ids {
                stmt.execute(params![id, task])?;
            }
            Ok(())
        })
    }

    /// Removes changes journalled for a request that was refused whole before it did
    /// anything (a bulk update the account does not offer): they are journalled again when
    /// sent another way, so that each change has one row.
    pub fn discard_unsent(&self, ids: &[i64]) -> Result<()> {
        self.tx(|tx| {
            let mut stmt =
                tx.prepare_cached("DELETE FROM journal WHERE id = ?1 AND outcome = 'planned'")?;
            for id in ids {
                stmt.execute([id])?;
            }
            Ok(())
        })
    }

    /// Unfinished changes sent in a bulk-update task: (row id, task id or `PENDING_TASK`,
    /// time journalled).
    pub fn unfinished_tasks(&self) -> Result<Vec<(i64, String, String)>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT id, task_id, time FROM journal
                 WHERE outcome = 'planned' AND task_id IS NOT NULL ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// Records how interrupted changes ended (with their baseline and links), atomically.
    /// Keeps the error a write's uncertain answer carried (`CMN-201`, say) on its `planned`
    /// rows, which the next read settles.
    pub fn note_unconfirmed(
        &self,
        ids: &[i64],
        code: Option<&str>,
        explanation: &str,
    ) -> Result<()> {
        self.tx(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE journal SET error_code = ?2, explanation = ?3 WHERE id = ?1 AND outcome = 'planned'",
            )?;
            for id in ids {
                stmt.execute(params![id, code, explanation])?;
            }
            Ok(())
        })
    }

    pub fn settle(&self, settlements: &[Settlement]) -> Result<()> {
        self.tx(|tx| {
                    let ts = now();
            for s in settlements {
                if s.landed {
                    tx.execute(
                        "UPDATE journal SET outcome = 'applied', explanation = ?2, time = ?3 WHERE id = ?1",
                        params![s.row_id, "confirmed after an interrupted run", ts],
                    )
                } else {
                    tx.execute(
                        "UPDATE journal SET outcome = 'failed', error_code = COALESCE(error_code, 'INTERRUPTED'),
                            explanation = CASE WHEN error_code IS NULL THEN ?2 ELSE explanation || ' It did not land and is planned again.' END,
                            time = ?3 WHERE id = ?1",
                        params![s.row_id, "the run stopped before this change was confirmed; it did not land and is planned again", ts],
                    )
                }
                ?;
                if let Some(a) = &s.baseline {
                    apply_baseline(tx, &mut self.names.borrow_mut(), std::slice::from_ref(a))
                        ?;
                }
                if let Some(l) = &s.link {
                    tx.execute(
                        "DELETE FROM links WHERE okta_id = ?1 OR ext_id = ?2",
                        params![l.okta_id.0, l.ext_id.0],
                    )
                    ?;
                    tx.execute(
                        "INSERT INTO links (okta_id, ext_id, linked_at) VALUES (?1, ?2, ?3)",
                        params![l.okta_id.0, l.ext_id.0, ts],
                    )
                    ?;
                }
            }
            Ok(())
        })
    }

    /// Deletes finished journal rows older than `cutoff` (RFC 3339); returns how many.
    pub fn prune_journal(&self, cutoff: &str) -> Result<usize> {
        self.run(|c| {
            c.execute(
                "DELETE FROM journal WHERE time < ?1 AND outcome != 'planned'",
                [cutoff],
            )
        })
    }

    /// Changes journalled as planned whose outcome was never recorded (a crash mid-call).
    /// When the oldest change not confirmed yet was journalled.
    pub fn oldest_unfinished_time(&self) -> Result<Option<String>> {
        self.run(|c| {
            c.query_row(
                "SELECT min(time) FROM journal WHERE outcome = 'planned'",
                [],
                |r| r.get(0),
            )
        })
    }

    pub fn unfinished_count(&self) -> Result<usize> {
        self.run(|c| {
            c.query_row(
                "SELECT count(*) FROM journal WHERE outcome = 'planned'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
        })
    }
}
