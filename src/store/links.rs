//! Links between Okta users and TELUS extensions, and the baseline (last synced values).

use super::*;

impl Store {
    pub fn links(&self) -> Result<Vec<Link>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT okta_id, ext_id FROM links ORDER BY okta_id")?;
            let rows = stmt.query_map([], |r| {
                Ok(Link {
                    okta_id: OktaId(r.get(0)?),
                    ext_id: ExtId(r.get(1)?),
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    /// Records links made by hand or from elsewhere (`init --links`), with where they came
    /// from; a link replaces any older one on either end.
    pub fn add_links_from(&self, links: &[Link], origin: &str) -> Result<()> {
        self.add_links(links)?;
        self.tx(|tx| {
            for l in links {
                tx.execute(
                    "UPDATE links SET origin = ?2 WHERE okta_id = ?1",
                    params![l.okta_id.0, origin],
                )?;
            }
            Ok(())
        })
    }

    /// One Okta user's link: the extension, when it was made, and where it came from (`None`:
    /// matched or created by a pass).
    pub fn link_of(&self, okta_id: &OktaId) -> Result<Option<(ExtId, String, Option<String>)>> {
        self.run(|c| {
            c.query_row(
                "SELECT ext_id, linked_at, origin FROM links WHERE okta_id = ?1",
                [&okta_id.0],
                |r| Ok((ExtId(r.get(0)?), r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
    }

    /// How many links each origin made (`None`: matched by a pass).
    pub fn link_origins(&self) -> Result<Vec<(Option<String>, usize)>> {
        self.run(|c| {
            let mut stmt =
                c.prepare("SELECT origin, count(*) FROM links GROUP BY origin ORDER BY origin")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
            rows.collect()
        })
    }

    /// Records new links; a link replaces any older one on either end.
    pub fn add_links(&self, links: &[Link]) -> Result<()> {
        self.tx(|tx| {
            for l in links {
                tx.execute(
                    "DELETE FROM links WHERE okta_id = ?1 OR ext_id = ?2",
                    params![l.okta_id.0, l.ext_id.0],
                )?;
                tx.execute(
                    "INSERT INTO links (okta_id, ext_id, linked_at) VALUES (?1, ?2, ?3)",
                    params![l.okta_id.0, l.ext_id.0, now()],
                )?;
            }
            Ok(())
        })
    }

    pub fn baseline(&self) -> Result<Baseline> {
        let rows: Vec<(String, String)> = self.run(|c| {
            let mut stmt = c.prepare("SELECT okta_id, attrs FROM baseline_users")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let mut out = Baseline::new();
        for (id, attrs) in rows {
            let attrs: crate::model::Fields =
                self.decode_fields(&attrs, || format!("baseline of {id}"))?;
            out.set_user(OktaId(id), attrs);
        }
        Ok(out)
    }

    /// Sets (or with `None`, forgets) baseline values, in one transaction.
    pub fn set_baseline(&self, values: &[Agreed]) -> Result<()> {
        self.tx(|tx| {
            apply_baseline(tx, &mut self.names.borrow_mut(), values)?;
            Ok(())
        })
    }
}
