//! The saved plan file (`plan --out`, `sync --plan`): the `plan --json` document with what
//! pins it (plan id, tool version, configuration hash, store identity, creation time, the
//! reviewer's approval) and an HMAC-SHA256 over all of it keyed by a secret kept in the
//! store; and the checks that refuse a file edited, stale or written elsewhere.

use crate::config::Config;
use crate::model::{ExtId, Link, OktaId, System};
use crate::reconcile::saved::SavedPlan;
use crate::reconcile::{Action, AttrChange, Plan, PlannedAction, Rule, UserRef};
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};
use sha2::Digest as _;

/// What the file says it is, so that nothing else is read as a plan.
pub const FORMAT: &str = "okta-telus-sync saved plan 1";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Why a plan file is refused whole (exit 6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is not a saved plan: {0}")]
    NotAPlan(String),
    #[error(
        "it was edited after `plan --out` wrote it (its signature does not match): write and review a new plan"
    )]
    Edited,
    #[error(
        "it was written by okta-telus-sync {0}, and this is {1}: write a new plan with this version"
    )]
    Version(String, String),
    #[error(
        "it was written under another configuration (mastering table, features, safety or scope changed): write a new plan"
    )]
    Config,
    #[error("it was written for another store ({0}), not this one ({1})")]
    Store(String, String),
    #[error("it is older than --max-age ({age}; the limit is {max}): write a new plan")]
    TooOld { age: String, max: String },
}

/// A digest of the effective configuration a plan depends on: the mastering table, the
/// features and import settings, the safety limits and the Okta scope. No secret is part
/// of it (none is in these sections), so the digest names none.
pub fn config_hash(config: &Config) -> String {
    let text = format!(
        "{:?}\n{:?}\n{:?}",
        config.policy, config.safety, config.okta.scope
    );
    hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// The signed document for `plan` (a dry run's) under `config`, for the store `store_id`.
pub fn document(
    plan: &Plan,
    config: &Config,
    (store_id, key): (&str, &[u8]),
    approve: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> (String, Value) {
    let plan_id = format!("plan-{}", hex(&rand::random::<[u8; 8]>()));
    let mut doc = crate::report::plan_json(plan);
    let fields = [
        ("format", json!(FORMAT)),
        ("plan_id", json!(plan_id)),
        ("version", json!(env!("CARGO_PKG_VERSION"))),
        ("config_hash", json!(config_hash(config))),
        ("store_id", json!(store_id)),
        ("created_at", json!(now.to_rfc3339())),
        ("approved", json!(approve && !plan.held.is_empty())),
    ];
    if let Value::Object(map) = &mut doc {
        for (k, v) in fields {
            map.insert(k.to_string(), v);
        }
    }
    let mac = sign(key, &doc);
    if let Value::Object(map) = &mut doc {
        map.insert("hmac".into(), json!(mac));
    }
    (plan_id, doc)
}

/// Reads a plan file and checks it against this configuration and store: its signature,
/// version, configuration, store and age (`max_age`).
pub fn read(
    text: &str,
    config: &Config,
    (store_id, key): (&str, &[u8]),
    max_age: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SavedPlan, Refusal> {
    let mut doc: Value =
        serde_json::from_str(text).map_err(|e| Refusal::NotAPlan(format!("not JSON ({e})")))?;
    if doc["format"] != FORMAT {
        return Err(Refusal::NotAPlan(format!("its format is not {FORMAT:?}")));
    }
    // Another store's plan would fail the signature too (its key is that store's): named
    // for what it is first.
    let store_of = doc["store_id"].as_str().unwrap_or_default().to_string();
    if store_of != store_id {
        return Err(Refusal::Store(store_of, store_id.to_string()));
    }
    let mac = match doc.as_object_mut().and_then(|m| m.remove("hmac")) {
        Some(Value::String(m)) => m,
        _ => return Err(Refusal::Edited),
    };
    if !verify(key, &doc, &mac) {
        return Err(Refusal::Edited);
    }
    let text_of = |k: &str| doc[k].as_str().unwrap_or_default().to_string();
    let version = text_of("version");
    if version != env!("CARGO_PKG_VERSION") {
        return Err(Refusal::Version(version, env!("CARGO_PKG_VERSION").into()));
    }
    if text_of("config_hash") != config_hash(config) {
        return Err(Refusal::Config);
    }
    let created = chrono::DateTime::parse_from_rfc3339(&text_of("created_at"))
        .map_err(|_| Refusal::NotAPlan("no creation time".into()))?;
    let age = now.signed_duration_since(created);
    if age.to_std().unwrap_or_default() > max_age {
        return Err(Refusal::TooOld {
            age: format!("{} min", age.num_minutes()),
            max: format!("{} min", max_age.as_secs() / 60),
        });
    }
    parse(&doc).map_err(Refusal::NotAPlan)
}

/// The plan the document holds.
fn parse(doc: &Value) -> Result<SavedPlan, String> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut actions = Vec::new();
    for a in doc["actions"].as_array().ok_or("no actions")? {
        let user = UserRef {
            email: text(&a["user"]).unwrap_or_default(),
            okta_id: text(&a["okta_id"]).map(OktaId),
            ext_id: text(&a["extension_id"]).map(ExtId),
        };
        let system = match a["system"].as_str() {
            Some("okta") => System::Okta,
            Some("telus") => System::Telus,
            other => return Err(format!("an action's system is {other:?}")),
        };
        let mut changes = Vec::new();
        for c in a["changes"].as_array().ok_or("an action has no changes")? {
            let rule = c["rule"].as_str().and_then(Rule::parse);
            changes.push(AttrChange {
                attr: text(&c["attribute"]).ok_or("a change has no attribute")?,
                field: text(&c["field"]).unwrap_or_default(),
                old: text(&c["old"]),
                new: text(&c["new"]),
                rule: rule.ok_or("a change has no known rule")?,
            });
        }
        let action = match (a["action"].as_str(), changes.len()) {
            (Some("update"), _) => Action::Update { changes },
            (Some("create"), _) => Action::Create {
                changes,
                then_sync: false,
            },
            (Some("import"), _) => Action::Import {
                changes,
                activate: false,
            },
            (Some("deactivate"), 1) => Action::Deactivate {
                change: changes.remove(0),
                reason: String::new(),
            },
            (Some("reactivate"), 1) => Action::Reactivate {
                change: changes.remove(0),
            },
            (other, _) => return Err(format!("an action is {other:?}")),
        };
        actions.push(PlannedAction {
            user,
            system,
            action,
        });
    }
    let new_links = doc["new_links"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter_map(|l| {
                    Some(Link {
                        okta_id: OktaId(text(&l["okta_id"])?),
                        ext_id: ExtId(text(&l["extension_id"])?),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let held = doc["held"]
        .as_array()
        .map(|h| h.iter().filter_map(text).collect())
        .unwrap_or_default();
    Ok(SavedPlan {
        id: text(&doc["plan_id"]).ok_or("no plan id")?,
        actions,
        new_links,
        held,
        approved: doc["approved"].as_bool().unwrap_or(false),
    })
}

fn sign(key: &[u8], doc: &Value) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(doc.to_string().as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn verify(key: &[u8], doc: &Value, mac: &str) -> bool {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(doc.to_string().as_bytes());
    let Some(bytes) = unhex(mac) else {
        return false;
    };
    // Constant-time comparison (`verify_slice`).
    m.verify_slice(&bytes).is_ok()
}

use crate::model::hex;

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len().is_multiple_of(2).then_some(())?;
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = "[okta]\nurl = \"https://example.okta.com\"\ntoken = \"t\"\n[telus]\nclient_id = \"c\"\nclient_secret = \"s\"\njwt = \"j\"\n";
        crate::config::from_toml_str(text, Vec::new(), std::path::Path::new("/tmp")).unwrap()
    }

    #[test]
    fn a_written_plan_reads_back_and_any_edit_is_refused() {
        let c = config();
        let plan = Plan {
            actions: vec![PlannedAction {
                user: UserRef {
                    email: "ana@x.ca".into(),
                    okta_id: Some(OktaId("00u1".into())),
                    ext_id: Some(ExtId("61".into())),
                },
                system: System::Telus,
                action: Action::Update {
                    changes: vec![AttrChange {
                        attr: "department".into(),
                        field: "contact.department".into(),
                        old: Some("Sales".into()),
                        new: Some("Legal".into()),
                        rule: Rule::Master,
                    }],
                },
            }],
            ..Plan::default()
        };
        let now = chrono::Utc::now();
        let key: &[u8] = b"0123456789abcdef0123456789abcdef";
        let (id, doc) = document(&plan, &c, ("store1", key), false, now);
        let text = doc.to_string();
        let day = std::time::Duration::from_secs(86_400);
        let saved = read(&text, &c, ("store1", key), day, now).unwrap();
        assert_eq!(saved.id, id);
        assert_eq!(saved.actions, plan.actions);
        assert!(!saved.approved);
        // An approval added by hand, a value changed: the signature no longer matches.
        for (from, to) in [
            ("\"approved\":false", "\"approved\":true"),
            ("Legal", "Sales"),
        ] {
            assert!(text.contains(from));
            let edited = text.replace(from, to);
            assert_eq!(
                read(&edited, &c, ("store1", key), day, now),
                Err(Refusal::Edited)
            );
        }
        assert!(matches!(
            read(&text, &c, ("store2", key), day, now),
            Err(Refusal::Store(..))
        ));
        assert_eq!(
            read(&text, &c, ("store1", b"another key"), day, now),
            Err(Refusal::Edited)
        );
        let later = now + chrono::Duration::hours(25);
        assert!(matches!(
            read(&text, &c, ("store1", key), day, later),
            Err(Refusal::TooOld { .. })
        ));
        let mut other = config();
        other.safety.max_creates += 1;
        assert_eq!(
            read(&text, &other, ("store1", key), day, now),
            Err(Refusal::Config)
        );
    }
}
