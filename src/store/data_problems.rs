//! Known data problems: per user, attribute and target system, the fingerprint of values
//! that could not be written, with the target's explanation and when it was first found.

use super::*;
use crate::reconcile::DataProblem;

impl Store {
    /// Every known data problem, by user and attribute.
    pub fn data_problems(&self) -> Result<Vec<DataProblem>> {
        let rows: Vec<(DataProblem, String)> = self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT okta_id, ext_id, email, attr, system, fingerprint, code, explanation, since
                     FROM data_problems ORDER BY email, attr, system",
            )?;
            let rows = stmt.query_map([], |r| {
                let system: String = r.get(4)?;
                Ok((
                    DataProblem {
                        okta_id: r.get::<_, Option<String>>(0)?.map(OktaId),
                        ext_id: r.get::<_, Option<String>>(1)?.map(ExtId),
                        email: r.get(2)?,
                        attr: r.get(3)?,
                        system: System::Okta,
                        field: String::new(),
                        value: None,
                        fingerprint: r.get(5)?,
                        code: r.get(6)?,
                        explanation: r.get(7)?,
                        since: r.get(8)?,
                    },
                    system,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|(mut d, system)| {
                d.system = System::parse(&system).ok_or_else(|| Error::Corrupt {
                    path: self.path.clone(),
                    message: format!("data problem of {} names system {system:?}", d.email),
                })?;
                Ok(d)
            })
            .collect()
    }

    /// Records data problems (replacing earlier ones for the same user, attribute and
    /// system); one first found keeps its `since`.
    pub fn put_data_problems(&self, problems: &[DataProblem]) -> Result<()> {
        self.tx(|tx| put(tx, problems))
    }

    /// After a pass planned: the data problems of its users are what the plan found. A whole
    /// pass (`users` = `None`) replaces them all; a targeted one those of the users it read.
    pub fn replace_data_problems(
        &self,
        users: Option<&[&OktaId]>,
        problems: &[DataProblem],
    ) -> Result<()> {
        self.tx(|tx| {
            let kept: Vec<String> = problems.iter().map(DataProblem::user_key).collect();
            let mut stmt = tx.prepare("SELECT user_key, attr, system FROM data_problems")?;
            let stored: Vec<(String, String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            drop(stmt);
            for (key, attr, system) in stored {
                let in_pass = users.is_none_or(|u| u.iter().any(|id| id.0 == key));
                let still = problems.iter().zip(&kept).any(|(p, k)| {
                    *k == key && p.attr == attr && p.system.as_str() == system
                });
                if in_pass && !still {
                    tx.execute(
                        "DELETE FROM data_problems WHERE user_key = ?1 AND attr = ?2 AND system = ?3",
                        params![key, attr, system],
                    )?;
                }
            }
            put(tx, problems)
        })
    }

    /// Forgets one user's data problem: the value was written after all.
    pub fn clear_data_problem(&self, user_key: &str, attr: &str, system: System) -> Result<()> {
        self.run(|c| {
            c.execute(
                "DELETE FROM data_problems WHERE user_key = ?1 AND attr = ?2 AND system = ?3",
                params![user_key, attr, system.as_str()],
            )?;
            Ok(())
        })
    }

    /// Forgets every data problem (`sync --retry-quarantined`: all are tried again).
    pub fn clear_data_problems(&self) -> Result<usize> {
        self.run(|c| c.execute("DELETE FROM data_problems", []))
    }
}

fn put(tx: &rusqlite::Transaction<'_>, problems: &[DataProblem]) -> rusqlite::Result<()> {
    let ts = now();
    for d in problems {
        tx.execute(
            "INSERT INTO data_problems (user_key, okta_id, ext_id, email, attr, system,
                fingerprint, code, explanation, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (user_key, attr, system) DO UPDATE SET okta_id = excluded.okta_id,
                ext_id = excluded.ext_id, email = excluded.email, code = excluded.code,
                explanation = excluded.explanation,
                since = CASE WHEN data_problems.fingerprint = excluded.fingerprint
                             THEN data_problems.since ELSE excluded.since END,
                fingerprint = excluded.fingerprint",
            params![
                d.user_key(),
                d.okta_id.as_ref().map(|o| o.0.clone()),
                d.ext_id.as_ref().map(|e| e.0.clone()),
                d.email,
                d.attr,
                d.system.as_str(),
                d.fingerprint,
                d.code,
                d.explanation,
                ts
            ],
        )?;
    }
    Ok(())
}
