//! The import queue as the last pass computed it (for `import list`, `status` and the
//! gauge, without a network call), each candidate's whole-org lookup with when it was made
//! (reused by later passes while the email is unchanged), and the emails the admin ignores.

use super::*;
use crate::model::Fields;
use crate::reconcile::import::{Candidate, Outcome};
use std::collections::{HashMap, HashSet};

/// A stored lookup: the email it was made for, when (RFC 3339), and the Okta users that
/// held that email or login then.
pub type StoredLookup = (String, String, Vec<OktaUser>);

impl Store {
    /// Every stored lookup, by extension.
    pub fn import_lookups(&self) -> Result<HashMap<ExtId, StoredLookup>> {
        let rows: Vec<(String, String, String, String)> = self.run(|c| {
            let mut stmt =
                c.prepare("SELECT ext_id, email, checked_at, holders FROM import_lookups")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(ext, email, at, holders)| {
                let holders = decode_holders(&holders).ok_or_else(|| Error::Corrupt {
                    path: self.path.clone(),
                    message: format!("import lookup of extension {ext} is unreadable"),
                })?;
                Ok((ExtId(ext), (email, at, holders)))
            })
            .collect()
    }

    /// Records lookups made now (replacing earlier ones of the same extensions).
    pub fn put_import_lookups(&self, lookups: &[(ExtId, String, Vec<OktaUser>)]) -> Result<()> {
        self.tx(|tx| {
            let ts = now();
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO import_lookups (ext_id, email, checked_at, holders) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (ext, email, holders) in lookups {
                stmt.execute(params![ext.0, email, ts, encode_holders(holders)])?;
            }
            Ok(())
        })
    }

    /// Forgets a lookup (a candidate confirmed or settled: the next pass looks again).
    pub fn forget_import_lookup(&self, ext: &ExtId) -> Result<()> {
        self.run(|c| c.execute("DELETE FROM import_lookups WHERE ext_id = ?1", [&ext.0]))?;
        Ok(())
    }

    /// The queue a whole pass computed replaces the stored one (lookups of extensions no
    /// longer in it are dropped with it).
    pub fn replace_import_queue(&self, queue: &[Candidate]) -> Result<()> {
        self.tx(|tx| {
            let ts = now();
            tx.execute("DELETE FROM import_queue", [])?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO import_queue (ext_id, email, first_name, last_name, outcome, okta_id, detail, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for c in queue {
                let detail = match &c.outcome {
                    Outcome::Partial { login, .. } => login.clone(),
                    Outcome::Conflict { why, .. } => why.clone(),
                    _ => String::new(),
                };
                stmt.execute(params![
                    c.ext_id.0,
                    c.email,
                    c.first_name,
                    c.last_name,
                    c.outcome.as_str(),
                    c.outcome.okta_id().map(|o| o.0.as_str()),
                    detail,
                    ts
                ])?;
            }
            drop(stmt);
            tx.execute(
                "DELETE FROM import_lookups WHERE ext_id NOT IN (SELECT ext_id FROM import_queue)",
                [],
            )?;
            Ok(())
        })
    }

    /// Takes candidates out of the stored queue (linked or created by a targeted pass).
    pub fn drop_from_import_queue(&self, exts: &[ExtId]) -> Result<()> {
        self.tx(|tx| {
            for e in exts {
                tx.execute("DELETE FROM import_queue WHERE ext_id = ?1", [&e.0])?;
                tx.execute("DELETE FROM import_lookups WHERE ext_id = ?1", [&e.0])?;
            }
            Ok(())
        })
    }

    /// The stored queue, by email, and when it was computed (`None`: never).
    pub fn import_queue(&self) -> Result<(Vec<Candidate>, Option<String>)> {
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            String,
            String,
        );
        let rows: Vec<Row> = self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT ext_id, email, first_name, last_name, outcome, okta_id, detail, updated_at
                 FROM import_queue ORDER BY email, ext_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?;
            rows.collect()
        })?;
        let at = rows.iter().map(|r| r.7.clone()).max();
        let mut out = Vec::with_capacity(rows.len());
        for (ext, email, first, last, outcome, okta, detail, _) in rows {
            let okta = okta.map(OktaId);
            let outcome = match (outcome.as_str(), okta) {
                ("new", _) => Outcome::New,
                ("unchecked", _) => Outcome::Unchecked,
                ("partial", Some(okta_id)) => Outcome::Partial {
                    okta_id,
                    login: detail,
                },
                ("conflict", Some(okta_id)) => Outcome::Conflict {
                    okta_id,
                    why: detail,
                },
                (other, _) => {
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        message: format!("import candidate {email} has outcome {other:?}"),
                    });
                }
            };
            out.push(Candidate {
                email,
                ext_id: ExtId(ext),
                first_name: first,
                last_name: last,
                outcome,
            });
        }
        Ok((out, at))
    }

    /// Emails the admin asked never to propose (normalized).
    pub fn ignored_imports(&self) -> Result<HashSet<String>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT email FROM import_ignored")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Ignores (or, with `ignore = false`, proposes again) these emails; answers how many
    /// changed.
    pub fn set_import_ignored(&self, emails: &[String], ignore: bool) -> Result<usize> {
        self.tx(|tx| {
            let ts = now();
            let mut n = 0;
            for e in emails {
                n += match ignore {
                    true => tx.execute(
                        "INSERT OR IGNORE INTO import_ignored (email, since) VALUES (?1, ?2)",
                        params![e, ts],
                    )?,
                    false => tx.execute("DELETE FROM import_ignored WHERE email = ?1", [e])?,
                };
                if ignore {
                    tx.execute("DELETE FROM import_queue WHERE email = ?1", [e])?;
                }
            }
            Ok(n)
        })
    }
}

/// Holders as one JSON array of `[id, status, profile]`: the store's own format.
fn encode_holders(holders: &[OktaUser]) -> String {
    let v: Vec<serde_json::Value> = holders
        .iter()
        .map(|u| serde_json::json!([u.id.0, u.status.as_str(), u.profile]))
        .collect();
    serde_json::Value::Array(v).to_string()
}

fn decode_holders(text: &str) -> Option<Vec<OktaUser>> {
    let rows: Vec<(String, String, Fields)> = serde_json::from_str(text).ok()?;
    Some(
        rows.into_iter()
            .map(|(id, status, profile)| OktaUser {
                id: OktaId(id),
                status: OktaStatus::parse(&status),
                last_updated: None,
                provider: None,
                profile,
            })
            .collect(),
    )
}
