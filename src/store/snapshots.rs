//! The latest snapshot of each side: replaced by a whole pass, merged by a targeted one (only
//! changed rows rewritten), read back by incremental passes and `status`.

use super::*;

impl Store {
    /// Stores both snapshots just read, in one transaction. The Okta snapshot is replaced
    /// (an incremental pass has merged its changed users into it already); the TELUS one is
    /// merged: a record is rewritten only when it changed, and records gone from the listing
    /// are removed, so a pass that changes little writes little.
    pub fn save_snapshots(&self, okta: &[OktaUser], telus: &[TelusUser]) -> Result<()> {
        self.tx(|tx| {
            tx.execute("DELETE FROM okta_users", [])?;
            self.put_okta_users(tx, okta)?;
            tx.execute(
                "CREATE TEMP TABLE IF NOT EXISTS listed (id TEXT PRIMARY KEY) WITHOUT ROWID",
                [],
            )?;
            tx.execute("DELETE FROM temp.listed", [])?;
            self.put_telus_users(tx, telus)?;
            let mut listed = tx.prepare("INSERT OR IGNORE INTO temp.listed (id) VALUES (?1)")?;
            for u in telus {
                listed.execute([&u.id.0])?;
            }
            tx.execute(
                "DELETE FROM telus_users WHERE id NOT IN (SELECT id FROM temp.listed)",
                [],
            )?;
            tx.execute("DELETE FROM temp.listed", [])?;
            Ok(())
        })
    }

    /// Stores the users a targeted pass read over their stored copies, in one transaction;
    /// every other stored user stays as it was.
    pub fn merge_snapshots(&self, okta: &[OktaUser], telus: &[TelusUser]) -> Result<()> {
        self.tx(|tx| {
            self.put_okta_users(tx, okta)?;
            self.put_telus_users(tx, telus)
        })
    }

    /// Writes Okta users over their stored copies.
    fn put_okta_users(
        &self,
        tx: &rusqlite::Transaction<'_>,
        okta: &[OktaUser],
    ) -> rusqlite::Result<()> {
        let mut names = self.names.borrow_mut();
        let mut put = tx.prepare(
            "INSERT OR REPLACE INTO okta_users (id, status, last_updated, profile, provider)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for u in okta {
            let profile = names.encode(tx, u.profile.iter())?;
            let status = u.status.as_str();
            put.execute(params![u.id.0, status, u.last_updated, profile, u.provider])?;
        }
        Ok(())
    }

    /// Writes TELUS users, each only where it changed.
    fn put_telus_users(
        &self,
        tx: &rusqlite::Transaction<'_>,
        telus: &[TelusUser],
    ) -> rusqlite::Result<()> {
        let mut names = self.names.borrow_mut();
        let mut upsert = tx.prepare(
            "INSERT INTO telus_users (id, status, fields, directory_ref, in_directory)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, fields = excluded.fields,
                directory_ref = excluded.directory_ref, in_directory = excluded.in_directory
             WHERE telus_users.status IS NOT excluded.status
                OR telus_users.fields IS NOT excluded.fields
                OR telus_users.directory_ref IS NOT excluded.directory_ref
                OR telus_users.in_directory IS NOT excluded.in_directory",
        )?;
        for u in telus {
            let fields = names.encode(tx, u.fields.iter())?;
            let reference = u.directory_ref.as_ref().map(|r| r.0.as_str());
            upsert.execute(params![
                u.id.0,
                u.status.as_str(),
                fields,
                reference,
                u.in_directory
            ])?;
        }
        Ok(())
    }

    /// How many users each stored snapshot holds (Okta, TELUS).
    pub fn snapshot_counts(&self) -> Result<(usize, usize)> {
        self.run(|c| {
            let count = |table: &str| {
                c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as usize)
            };
            Ok((count("okta_users")?, count("telus_users")?))
        })
    }

    /// A stored field list (either encoding) as any collection of name → value; a row that
    /// cannot be read is reported as corrupt, naming `what`.
    pub(super) fn decode_fields<T: FromIterator<(String, String)>>(
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
            [],
            "okta user",
            okta_user,
        )
    }

    /// The stored copies of these Okta users (those the store has).
    pub fn load_okta_ids(&self, ids: &[&OktaId]) -> Result<Vec<OktaUser>> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.load_users(
                "SELECT id, status, last_updated, provider, profile FROM okta_users WHERE id = ?1",
                [&id.0],
                "okta user",
                okta_user,
            )?);
        }
        Ok(out)
    }

    /// The stored TELUS snapshot whole (the store's tests read it back).
    #[cfg(test)]
    pub(super) fn load_telus(&self) -> Result<Vec<TelusUser>> {
        self.load_users(
            "SELECT id, status, CAST(in_directory AS TEXT), directory_ref, fields FROM telus_users
             ORDER BY id",
            [],
            "telus user",
            |id, status, in_directory, directory_ref, fields| TelusUser {
                id: ExtId(id),
                status: TelusStatus::parse(&status),
                directory_ref: directory_ref.map(OktaId),
                fields,
                in_directory: in_directory.as_deref() != Some("0"),
            },
        )
    }

    /// Rows of (id, status, last updated, one more optional column, stored fields) made into
    /// users by `make`.
    fn load_users<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        what: &str,
        make: impl Fn(String, String, Option<String>, Option<String>, crate::model::Fields) -> T,
    ) -> Result<Vec<T>> {
        type Raw = (String, String, Option<String>, Option<String>, String);
        let rows: Vec<Raw> = self.run(|c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map(params, |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect()
        })?;
        let mut out = Vec::new();
        for (id, status, last_updated, extra, fields) in rows {
            let fields = self.decode_fields(&fields, || format!("{what} {id}"))?;
            out.push(make(id, status, last_updated, extra, fields));
        }
        Ok(out)
    }
}

fn okta_user(
    id: String,
    status: String,
    last_updated: Option<String>,
    provider: Option<String>,
    profile: crate::model::Fields,
) -> OktaUser {
    OktaUser {
        id: OktaId(id),
        status: OktaStatus::parse(&status),
        last_updated,
        provider,
        profile,
    }
}
