//! Small state kept across runs, typed: the `meta` table's values (saved pacing, penalties,
//! the bulk refusal, the System Log cursor, channel lines, the last prune; their keys and
//! formats live here alone), the TELUS token pair, and known Okta refusals.

use super::*;

/// A change-event channel whose state line the daemon keeps for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Okta,
    Telus,
}

impl Channel {
    fn key(self) -> &'static str {
        match self {
            Channel::Okta => "events.okta.state",
            Channel::Telus => "events.telus.state",
        }
    }
}

/// The System Log cursor (the `next` link polling continues from) and when it was stored.
const OKTA_CURSOR: &str = "events.okta.cursor";
const OKTA_CURSOR_AT: &str = "events.okta.cursor_at";
const BULK_REFUSED: &str = "telus.bulk_refused";
const LAST_PRUNE: &str = "last_prune";
const BUILTIN_APP: &str = "okta.builtin_app";
/// This store's identity and the key its saved plans are signed with (both hex).
const STORE_ID: &str = "store.id";
const PLAN_KEY: &str = "plan.signing_key";
/// Under `safety.reviewed_only`: the last pass's planned changes, waiting for review.
const PENDING_REVIEW: &str = "review.pending";
/// What the daemon's notifications last announced (JSON of [`Announced`]).
const ANNOUNCED: &str = "notify.announced";
/// When `backup` last copied the store (RFC 3339).
pub(super) const LAST_BACKUP: &str = "store.last_backup";

/// The System Log cursor as stored: the link, and when it was stored (RFC 3339; `None` for
/// a store written before the time was kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCursor {
    pub next: String,
    pub stored_at: Option<String>,
}

/// The account refused bulk updates: until when (epoch seconds) and TELUS's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBulkRefusal {
    pub until_epoch_s: i64,
    pub reason: String,
}

/// An Okta rate-limit bucket as last seen: what was left, the limit, and the reset (epoch s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedBucket {
    pub remaining: u64,
    pub limit: u64,
    pub reset: u64,
}

/// What `[notify]` last announced, kept so that a restarted daemon does not announce it
/// again: the held pass's reasons, quarantined users, (email, attribute) problems, the
/// session's line while at risk, the built-in app's features still pushing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Announced {
    pub held: Vec<String>,
    pub quarantined: Vec<String>,
    pub problems: Vec<(String, String)>,
    pub session_at_risk: Option<String>,
    pub builtin_pushing: Vec<String>,
}

/// The typed state kept in the `meta` table. Each value's key and format live here alone.
impl Store {
    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.run(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    fn delete_meta(&self, key: &str) -> Result<()> {
        self.run(|c| {
            c.execute("DELETE FROM meta WHERE key = ?1", [key])?;
            Ok(())
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }

    /// A TELUS rate-limit group's budget as a process left it: (remaining, window end in
    /// epoch ms).
    pub fn telus_budget(&self, group: &str) -> Result<Option<(u64, i64)>> {
        Ok(self.meta(&format!("telus.budget.{group}"))?.and_then(|v| {
            let (remaining, until) = v.split_once(',')?;
            Some((remaining.parse().ok()?, until.parse().ok()?))
        }))
    }

    pub fn save_telus_budget(&self, group: &str, remaining: u64, until_ms: i64) -> Result<()> {
        self.set_meta(
            &format!("telus.budget.{group}"),
            &format!("{remaining},{until_ms}"),
        )
    }

    /// Until when (epoch ms) TELUS penalised a rate-limit group after a 429.
    pub fn telus_penalty(&self, group: &str) -> Result<Option<i64>> {
        Ok(self
            .meta(&format!("telus.penalty.{group}"))?
            .and_then(|v| v.parse().ok()))
    }

    pub fn save_telus_penalty(&self, group: &str, until_epoch_ms: i64) -> Result<()> {
        self.set_meta(
            &format!("telus.penalty.{group}"),
            &until_epoch_ms.to_string(),
        )
    }

    /// An Okta rate-limit bucket as a process left it.
    pub fn okta_bucket(&self, bucket: &str) -> Result<Option<SavedBucket>> {
        Ok(self.meta(&format!("okta.bucket.{bucket}"))?.and_then(|v| {
            let parts: Vec<u64> = v.split(',').filter_map(|p| p.parse().ok()).collect();
            match parts[..] {
                [remaining, limit, reset] => Some(SavedBucket {
                    remaining,
                    limit,
                    reset,
                }),
                _ => None,
            }
        }))
    }

    pub fn save_okta_bucket(&self, bucket: &str, b: SavedBucket) -> Result<()> {
        self.set_meta(
            &format!("okta.bucket.{bucket}"),
            &format!("{},{},{}", b.remaining, b.limit, b.reset),
        )
    }

    /// The remembered refusal of bulk updates (expired or not).
    pub fn bulk_refusal(&self) -> Result<Option<StoredBulkRefusal>> {
        Ok(self.meta(BULK_REFUSED)?.and_then(|v| {
            let (until, reason) = v.split_once('|')?;
            Some(StoredBulkRefusal {
                until_epoch_s: until.parse().ok()?,
                reason: reason.to_string(),
            })
        }))
    }

    pub fn save_bulk_refusal(&self, r: &StoredBulkRefusal) -> Result<()> {
        self.set_meta(
            BULK_REFUSED,
            &format!("{}|{}", r.until_epoch_s, r.reason.trim()),
        )
    }

    /// The System Log cursor polling resumes from.
    pub fn okta_cursor(&self) -> Result<Option<StoredCursor>> {
        Ok(self.meta(OKTA_CURSOR)?.map(|next| StoredCursor {
            next,
            stored_at: self.meta(OKTA_CURSOR_AT).ok().flatten(),
        }))
    }

    /// Stores the System Log cursor, stamped with now.
    pub fn save_okta_cursor(&self, next: &str) -> Result<()> {
        self.set_meta(OKTA_CURSOR, next)?;
        self.set_meta(OKTA_CURSOR_AT, &now())
    }

    /// Forgets the System Log cursor: polling starts again from now.
    pub fn forget_okta_cursor(&self) -> Result<()> {
        self.delete_meta(OKTA_CURSOR)
    }

    /// A channel's state line as the daemon last wrote it.
    pub fn channel_line(&self, channel: Channel) -> Result<Option<String>> {
        self.meta(channel.key())
    }

    pub fn save_channel_line(&self, channel: Channel, line: &str) -> Result<()> {
        self.set_meta(channel.key(), line)
    }

    /// When the journal was last pruned.
    /// What the last whole pass found of the built-in app (`okta.app_id`): its push features
    /// still on (empty: none), and when it looked.
    /// This store's identity and the key saved plans are signed with, made on first use
    /// (32 random bytes; kept only here, in a file only its owner can read).
    pub fn plan_signing(&self) -> Result<(String, Vec<u8>)> {
        let hex = crate::model::hex;
        let id = match self.meta(STORE_ID)? {
            Some(id) => id,
            None => {
                let id = hex(&rand::random::<[u8; 16]>());
                self.set_meta(STORE_ID, &id)?;
                id
            }
        };
        let key = match self.meta(PLAN_KEY)? {
            Some(k) => k,
            None => {
                let k = hex(&rand::random::<[u8; 32]>());
                self.set_meta(PLAN_KEY, &k)?;
                k
            }
        };
        // The key is its hex text (256 random bits either way).
        Ok((id, key.into_bytes()))
    }

    /// Records that a backup was just taken.
    pub fn set_last_backup(&self) -> Result<()> {
        self.set_meta(LAST_BACKUP, &now())
    }

    /// Under `safety.reviewed_only`: how many changes the last pass planned, and when.
    pub fn set_pending_review(&self, changes: usize) -> Result<()> {
        self.set_meta(PENDING_REVIEW, &format!("{} {changes}", now()))
    }

    /// The pending review (time, changes) the last reviewed-only pass left.
    pub fn pending_review(&self) -> Result<Option<(String, usize)>> {
        Ok(self.meta(PENDING_REVIEW)?.and_then(|v| {
            let (at, n) = v.split_once(' ')?;
            Some((at.to_string(), n.parse().ok()?))
        }))
    }

    pub fn builtin_app_pushing(&self) -> Result<Option<(Vec<String>, String)>> {
        Ok(self.meta(BUILTIN_APP)?.map(|v| {
            let (at, features) = v.split_once(' ').unwrap_or((v.as_str(), ""));
            let features = features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            (features, at.to_string())
        }))
    }

    pub fn save_builtin_app_pushing(&self, features: &[String]) -> Result<()> {
        self.set_meta(BUILTIN_APP, &format!("{} {}", now(), features.join(",")))
    }

    /// What the notifications last announced; empty for a store that never sent one (or
    /// whose record no longer reads: announcing again is the safe side).
    pub fn announced(&self) -> Result<Announced> {
        Ok(self
            .meta(ANNOUNCED)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    pub fn save_announced(&self, a: &Announced) -> Result<()> {
        // Strings, lists and pairs only: serializing cannot fail.
        self.set_meta(ANNOUNCED, &serde_json::to_string(a).unwrap_or_default())
    }

    pub fn last_prune(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self.meta(LAST_PRUNE)?.and_then(|t| {
            chrono::DateTime::parse_from_rfc3339(&t)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        }))
    }

    pub fn save_last_prune(&self, at: chrono::DateTime<chrono::Utc>) -> Result<()> {
        self.set_meta(LAST_PRUNE, &at.to_rfc3339())
    }
}

impl Store {
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
            // Checked and made 0600 at open; a WAL made since takes the store's own mode.
            let _ = files::restrict(Path::new(&self.path));
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
