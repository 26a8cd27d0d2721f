//! Small state kept across runs: key/value meta (pacing, penalties, pruning), the TELUS token pair, and known Okta refusals.

use super::*;

/// Meta keys of the change-event channels: the System Log cursor (the `next` link polling
/// continues from), and each channel's state line the daemon writes for `status`.
pub const OKTA_CURSOR: &str = "events.okta.cursor";
pub const OKTA_CURSOR_AT: &str = "events.okta.cursor_at";
pub const OKTA_EVENTS_STATE: &str = "events.okta.state";
pub const TELUS_EVENTS_STATE: &str = "events.telus.state";

impl Store {
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.run(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    pub fn delete_meta(&self, key: &str) -> Result<()> {
        self.run(|c| {
            c.execute("DELETE FROM meta WHERE key = ?1", [key])?;
            Ok(())
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }

    /// The Okta attributes Okta refused for one user, with what each refusal depended on.
    pub fn okta_refusals(&self) -> Result<Vec<KnownRefusal>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT okta_id, attr, email, last_updated, provider, master, explanation
                     FROM okta_refusals ORDER BY email, attr",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(KnownRefusal {
                    okta_id: OktaId(r.get(0)?),
                    attr: r.get(1)?,
                    email: r.get(2)?,
                    last_updated: r.get(3)?,
                    provider: r.get(4)?,
                    master: r.get(5)?,
                    explanation: r.get(6)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    /// Records refusals (replacing earlier ones for the same user and attribute).
    pub fn put_okta_refusals(&self, refusals: &[KnownRefusal], code: &str) -> Result<()> {
        self.tx(|tx| {
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
                ?;
            }
            Ok(())
        })
    }

    /// Forgets refusals of these attributes of one user: Okta took them after all.
    pub fn clear_okta_refusals(&self, okta_id: &OktaId, attrs: &[&str]) -> Result<()> {
        self.run(|c| {
            for attr in attrs {
                c.execute(
                    "DELETE FROM okta_refusals WHERE okta_id = ?1 AND attr = ?2",
                    params![okta_id.0, attr],
                )?;
            }
            Ok(())
        })
    }

    /// Forgets every known refusal (`sync --retry-quarantined`: all are tried again).
    pub fn clear_all_okta_refusals(&self) -> Result<usize> {
        self.run(|c| c.execute("DELETE FROM okta_refusals", []))
    }

    /// Saves a token pair for `system` (replacing the previous one) in one statement.
    pub fn save_credentials(&self, system: &str, t: &TokenPair) -> Result<()> {
        self.run(|c| {
            use secrecy::ExposeSecret as _;
            c
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
                ?;
            restrict_mode(Path::new(&self.path));
            Ok(())
        })
    }

    pub fn credentials(&self, system: &str) -> Result<Option<TokenPair>> {
        self.run(|c| {
            c.query_row(
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
        })
    }
}
