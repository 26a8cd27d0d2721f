//! The `[attributes.*]` rows: the built-in mastering table, overridden row by row, checked
//! and made into typed rules.

use super::Problems;
use super::raw::{RawAttr, RawMaster};
use crate::model::System;
use crate::reconcile::policy::{
    AttrRule, DEFAULT_TABLE, Master, Normalize, OnConflict, TelusSide, parse_telus_side,
};
use std::collections::BTreeMap;

/// The built-in rows, each overridden key by key by the config's `[attributes.*]`, in the
/// built-in order and then the config's.
fn merged_rows(attrs: BTreeMap<String, RawAttr>) -> (BTreeMap<String, RawAttr>, Vec<String>) {
    let mut rows: BTreeMap<String, RawAttr> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (name, telus, master, normalize) in DEFAULT_TABLE {
        order.push(name.to_string());
        rows.insert(
            name.to_string(),
            RawAttr {
                telus: Some(telus.to_string()),
                master: Some(RawMaster::One(master.to_string())),
                on_conflict: None,
                normalize: Some(normalize.to_string()),
                apply: None,
                sync: None,
            },
        );
    }
    for (name, attr) in attrs {
        let row = rows.entry(name.clone()).or_insert_with(|| {
            order.push(name.clone());
            RawAttr::default()
        });
        if attr.telus.is_some() {
            row.telus = attr.telus;
        }
        if attr.master.is_some() {
            row.master = attr.master;
        }
        if attr.on_conflict.is_some() {
            row.on_conflict = attr.on_conflict;
        }
        if attr.normalize.is_some() {
            row.normalize = attr.normalize;
        }
        if attr.sync.is_some() {
            row.sync = attr.sync;
        }
        if attr.apply.is_some() {
            row.apply = attr.apply;
        }
    }

    (rows, order)
}

/// A row's `master` (and `on_conflict`); `None` after reporting a problem.
fn parse_master(p: &mut Problems, key: &str, row: &RawAttr) -> Option<Master> {
    match row.master.clone() {
        None => {
            p.push(format!("{key}.master"), "missing");
            None
        }
        Some(RawMaster::One(s)) if s == "latest" => {
            let on_conflict = match row.on_conflict.as_deref() {
                None | Some("skip") => OnConflict::Skip,
                Some(s) => match System::parse(s) {
                    Some(sys) => OnConflict::Prefer(sys),
                    None => {
                        p.push(
                            format!("{key}.on_conflict"),
                            format!("{s:?} is not \"okta\", \"telus\" or \"skip\""),
                        );
                        return None;
                    }
                },
            };
            Some(Master::Latest { on_conflict })
        }
        Some(m) => {
            let names = match m {
                RawMaster::One(s) => vec![s],
                RawMaster::Many(v) => v,
            };
            let mut list = Vec::new();
            for n in &names {
                match System::parse(n) {
                    Some(s) if !list.contains(&s) => list.push(s),
                    Some(_) => p.push(format!("{key}.master"), format!("{n:?} is listed twice")),
                    None => p.push(
                        format!("{key}.master"),
                        format!("{n:?} is not \"okta\", \"telus\" or \"latest\""),
                    ),
                }
            }
            if list.len() != names.len() {
                return None;
            }
            if list.is_empty() {
                p.push(format!("{key}.master"), "names no system");
                return None;
            }
            if row.on_conflict.is_some() {
                p.push(
                    format!("{key}.on_conflict"),
                    "only applies to master = \"latest\"",
                );
            }
            Some(Master::Priority(list))
        }
    }
}

/// A row's `apply`: whether it is written on create only; `None` after reporting a problem.
fn parse_apply(p: &mut Problems, key: &str, row: &RawAttr, master: &Master) -> Option<bool> {
    match row.apply.as_deref() {
        None | Some("always") => Some(false),
        Some("create") if matches!(master, Master::Priority(l) if l.first() == Some(&System::Okta)) => {
            Some(true)
        }
        Some("create") => {
            p.push(
                format!("{key}.apply"),
                "\"create\" (written when the TELUS user is created, never updated) needs a row Okta masters: master = \"okta\"",
            );
            None
        }
        Some(other) => {
            p.push(
                format!("{key}.apply"),
                format!("{other:?} is not \"always\" or \"create\""),
            );
            None
        }
    }
}

/// The mastering table: the built-in defaults, overridden row by row by `[attributes.*]`.
pub(super) fn build_rules(p: &mut Problems, attrs: BTreeMap<String, RawAttr>) -> Vec<AttrRule> {
    let (mut rows, order) = merged_rows(attrs);
    let mut rules = Vec::new();
    let mut targets: BTreeMap<String, String> = BTreeMap::new();
    for name in order {
        let Some(row) = rows.remove(&name) else {
            continue;
        };
        let key = format!("attributes.{name}");
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
            p.push(&key, "is not an Okta attribute name");
            continue;
        }
        if name == crate::reconcile::plan::STATUS_ATTR {
            p.push(
                &key,
                "`status` is reserved for the lifecycle (create, deactivate, reactivate)",
            );
            continue;
        }
        if row.sync == Some(false) {
            continue;
        }
        let Some(telus_raw) = row.telus.clone() else {
            p.push(format!("{key}.telus"), "missing");
            continue;
        };
        let telus = match parse_telus_side(&telus_raw) {
            Ok(t) => t,
            Err(e) => {
                p.push(format!("{key}.telus"), e);
                continue;
            }
        };
        let Some(master) = parse_master(p, &key, &row) else {
            continue;
        };
        // A template or read-only field can only ever be a source.
        let telus_is_target = match &master {
            Master::Latest { .. } => true,
            Master::Priority(list) => list.first() != Some(&System::Telus),
        };
        if telus_is_target && !telus.writable() {
            p.push(
                format!("{key}.master"),
                format!(
                    "TELUS side {telus_raw:?} is read-only (a template or a read-only field), so it can only be a source: set master = \"telus\""
                ),
            );
            continue;
        }
        let normalize = match row.normalize.as_deref() {
            None => Normalize::None,
            Some(s) => match Normalize::parse(s) {
                Some(n) => n,
                None => {
                    p.push(
                        format!("{key}.normalize"),
                        format!(
                            "{s:?} is not \"none\", \"email\", \"e164\", \"iso-subdivision\" or \"iso-country\""
                        ),
                    );
                    continue;
                }
            },
        };
        if let TelusSide::Field { path, .. } = &telus
            && let Some(other) = targets.insert(path.clone(), name.clone())
        {
            p.push(
                format!("{key}.telus"),
                format!("{path} is already mapped by attributes.{other}"),
            );
            continue;
        }
        let Some(create_only) = parse_apply(p, &key, &row, &master) else {
            continue;
        };
        rules.push(AttrRule {
            okta_attr: name,
            telus,
            master,
            normalize,
            create_only,
        });
    }
    // Each row's names are kept in a part of the process's field-name table that servers
    // cannot fill; a table this large is far beyond any directory, and is refused.
    if rules.len() > MAX_ROWS {
        p.push(
            "attributes",
            format!(
                "{} rows: at most {MAX_ROWS} attributes can be mapped",
                rules.len()
            ),
        );
    }
    rules
}

/// The most rows a mastering table may have: their names (about three per row) must fit in
/// the part of the field-name table kept for mapped names.
const MAX_ROWS: usize = crate::model::RESERVED_FOR_MAPPED / 4;
