//! Checks the mastering table against the live schemas of both sides (Okta's user profile
//! schema, the TELUS account's custom user fields) and lists what each side offers. Pure:
//! the schemas are fetched by the clients and passed in.

use crate::config::Problem;
use crate::model::{OktaSchemaAttr, System, TELUS_CUSTOM_PREFIX, TELUS_FIELDS, TelusCustomField};
use crate::reconcile::policy::{AttrRule, Master, Policy};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Whether a row writes to Okta (TELUS is its source, or it is a `latest` row).
fn writes_okta(rule: &AttrRule) -> bool {
    match &rule.master {
        Master::Priority(list) => list.first() == Some(&System::Telus),
        Master::Latest { .. } => true,
    }
}

/// Whether any row writes to Okta in this configuration (so a pass needs Okta's schema).
pub fn policy_writes_okta(policy: &Policy) -> bool {
    policy.features.write_back && policy.rules.iter().any(writes_okta)
}

/// Why Okta refuses this tool's writes to an attribute, with the suffix of the row key to
/// name: read-only (`.master`, TELUS cannot master it) or mastered by another profile source
/// (E0000023). `None` when Okta accepts them.
fn okta_refusal(attr: &OktaSchemaAttr) -> Option<(&'static str, String)> {
    if !attr.writable() {
        return Some((
            ".master",
            format!(
                "Okta's {} is {}: it cannot be written, so TELUS cannot master it",
                attr.name, attr.mutability
            ),
        ));
    }
    if !attr.refused_for_every_user() {
        return None;
    }
    let how = match &attr.master {
        crate::model::OktaMaster::Override { first, .. } => format!(
            "by a priority list led by {}",
            first.as_deref().unwrap_or("another source")
        ),
        crate::model::OktaMaster::Okta | crate::model::OktaMaster::ProfileMaster => String::new(),
    };
    Some((
        "",
        format!(
            "Okta's {} is mastered {how}: writes would be refused with E0000023. In Okta's Profile Editor set the attribute to \"Inherit from Okta\", or add this source to its priority",
            attr.name
        ),
    ))
}

/// The Okta attributes the mastering table writes that Okta refuses from this tool, each
/// with its row key and why: a pass leaves them out of its Okta writes instead of having
/// every user's update refused.
pub fn okta_refused_writes(
    policy: &Policy,
    okta: &[OktaSchemaAttr],
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    if !policy.features.write_back {
        return out;
    }
    for rule in policy.rules.iter().filter(|r| writes_okta(r)) {
        if let Some(attr) = okta.iter().find(|a| a.name == rule.okta_attr)
            && let Some((suffix, why)) = okta_refusal(attr)
        {
            out.insert(
                rule.okta_attr.clone(),
                format!("attributes.{}{suffix}: {why}", rule.okta_attr),
            );
        }
    }
    out
}

/// Every row checked against both live schemas; each problem names the row.
pub fn check_policy(
    policy: &Policy,
    okta: &[OktaSchemaAttr],
    telus_custom: &[TelusCustomField],
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |key: String, message: String| out.push(Problem { key, message });
    for rule in &policy.rules {
        let key = format!("attributes.{}", rule.okta_attr);
        match okta.iter().find(|a| a.name == rule.okta_attr) {
            None => push(
                key.clone(),
                format!(
                    "Okta's user profile has no attribute {:?} (neither base nor custom): add it in the Profile Editor or fix the row",
                    rule.okta_attr
                ),
            ),
            Some(attr) => {
                if writes_okta(rule) && policy.features.write_back {
                    if let Some((suffix, why)) = okta_refusal(attr) {
                        push(format!("{key}{suffix}"), why);
                    }
                    if matches!(attr.kind.as_str(), "integer" | "number" | "boolean") {
                        push(
                            key.clone(),
                            format!(
                                "type mismatch: Okta's {} is a {}, TELUS fields hold text",
                                attr.name, attr.kind
                            ),
                        );
                    }
                }
                if matches!(attr.kind.as_str(), "array" | "object") {
                    push(
                        key.clone(),
                        format!(
                            "type mismatch: Okta's {} is an {}, TELUS fields hold text",
                            attr.name, attr.kind
                        ),
                    );
                }
            }
        }
        for path in rule.telus.fields() {
            if let Some(name) = path.strip_prefix(TELUS_CUSTOM_PREFIX)
                && !telus_custom.iter().any(|f| f.display_name == name)
            {
                push(
                    format!("{key}.telus"),
                    format!("the TELUS account has no custom user field named {name:?}"),
                );
            }
        }
    }
    out
}

fn mapped_by(policy: &Policy, pred: impl Fn(&AttrRule) -> bool) -> Option<&str> {
    policy
        .rules
        .iter()
        .find(|r| pred(r))
        .map(|r| r.okta_attr.as_str())
}

/// Both sides' attributes, as one JSON document.
pub fn schema_json(
    policy: &Policy,
    okta: &[OktaSchemaAttr],
    telus_custom: &[TelusCustomField],
) -> Value {
    let okta_attrs: Vec<Value> = okta
        .iter()
        .map(|a| {
            json!({
                "name": a.name, "title": a.title, "type": a.kind, "custom": a.custom,
                "writable": a.writable(), "master": a.master_label(),
                "refused_for_every_user": a.refused_for_every_user(),
                "mapped": policy.rule(&a.name).is_some(),
            })
        })
        .collect();
    let mut telus_attrs: Vec<Value> = TELUS_FIELDS
        .iter()
        .map(|(path, writable)| {
            json!({
                "name": path, "type": "string", "custom": false, "writable": writable,
                "mapped_by": mapped_by(policy, |r| r.telus.fields().contains(path)),
            })
        })
        .collect();
    for f in telus_custom {
        let path = format!("{TELUS_CUSTOM_PREFIX}{}", f.display_name);
        telus_attrs.push(json!({
            "name": path, "id": f.id, "type": "string", "custom": true, "writable": true,
            "mapped_by": mapped_by(policy, |r| r.telus.fields().contains(&path.as_str())),
        }));
    }
    json!({
        "okta": okta_attrs,
        "telus": telus_attrs,
        "problems": check_policy(policy, okta, telus_custom)
            .iter()
            .map(|p| json!({"key": p.key, "message": p.message}))
            .collect::<Vec<_>>(),
    })
}

/// Both sides' attributes as text; `*` marks what the mastering table maps.
pub fn schema_text(
    policy: &Policy,
    okta: &[OktaSchemaAttr],
    telus_custom: &[TelusCustomField],
) -> String {
    let doc = schema_json(policy, okta, telus_custom);
    let mut out = String::from("Okta user profile (* mapped):\n");
    for a in doc["okta"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {} {:<24} {:<8} {:<7} {}{}",
            if a["mapped"] == json!(true) { "*" } else { " " },
            a["name"].as_str().unwrap_or(""),
            a["type"].as_str().unwrap_or(""),
            if a["custom"] == json!(true) {
                "custom"
            } else {
                "base"
            },
            if a["writable"] == json!(true) {
                "writable"
            } else {
                "read-only"
            },
            if a["refused_for_every_user"] == json!(true) {
                ", mastered elsewhere for every user"
            } else if a["master"] == json!("PROFILE_MASTER") {
                ", inherits from the profile source"
            } else {
                ""
            },
        );
    }
    out.push_str("\nTELUS user fields (* mapped):\n");
    for a in doc["telus"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {} {:<36} {:<7} {}{}",
            if a["mapped_by"].is_string() { "*" } else { " " },
            a["name"].as_str().unwrap_or(""),
            if a["custom"] == json!(true) {
                "custom"
            } else {
                "base"
            },
            if a["writable"] == json!(true) {
                "writable"
            } else {
                "read-only"
            },
            a["mapped_by"]
                .as_str()
                .map(|m| format!(" (by attributes.{m})"))
                .unwrap_or_default(),
        );
    }
    let problems = doc["problems"].as_array().cloned().unwrap_or_default();
    if !problems.is_empty() {
        out.push_str("\nProblems with the mastering table:\n");
        for p in problems {
            let _ = writeln!(
                out,
                "  {}: {}",
                p["key"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OktaMaster;
    use crate::reconcile::policy::TelusSide;

    fn attr(name: &str, kind: &str, mutability: &str, master: OktaMaster) -> OktaSchemaAttr {
        OktaSchemaAttr {
            name: name.into(),
            title: name.into(),
            kind: kind.into(),
            custom: false,
            mutability: mutability.into(),
            master,
        }
    }

    fn okta_schema() -> Vec<OktaSchemaAttr> {
        crate::reconcile::policy::DEFAULT_TABLE
            .iter()
            .map(|(n, ..)| attr(n, "string", "READ_WRITE", OktaMaster::ProfileMaster))
            .collect()
    }

    #[test]
    fn the_default_table_passes_a_plain_schema() {
        let p = crate::reconcile::policy::Policy::builtin();
        assert!(check_policy(&p, &okta_schema(), &[]).is_empty());
    }

    #[test]
    fn a_missing_attribute_and_a_missing_custom_field_are_named() {
        let mut p = crate::reconcile::policy::Policy::builtin();
        p.rules.push(AttrRule {
            okta_attr: "costCenter".into(),
            telus: TelusSide::Field {
                path: "customFields.Cost Centre".into(),
                writable: true,
            },
            master: Master::Priority(vec![System::Okta]),
            normalize: crate::reconcile::policy::Normalize::None,
            create_only: false,
        });
        let problems = check_policy(
            &p,
            &okta_schema(),
            &[TelusCustomField {
                id: "1".into(),
                display_name: "Cost Center".into(),
            }],
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["attributes.costCenter", "attributes.costCenter.telus"]
        );
    }

    /// Okta's default org: every attribute "Inherit from profile source". Written
    /// attributes are fine: only users sourced elsewhere refuse them, one by one.
    #[test]
    fn profile_master_the_default_is_not_a_problem() {
        let p = crate::reconcile::policy::Policy::builtin();
        let schema = okta_schema();
        assert!(schema.iter().all(|a| a.master == OktaMaster::ProfileMaster));
        assert!(check_policy(&p, &schema, &[]).is_empty());
        assert!(okta_refused_writes(&p, &schema).is_empty());
    }

    #[test]
    fn a_written_attribute_mastered_elsewhere_is_reported_with_the_fix() {
        let p = crate::reconcile::policy::Policy::builtin();
        let mut schema = okta_schema();
        schema
            .iter_mut()
            .find(|a| a.name == "primaryPhone")
            .unwrap()
            .master = OktaMaster::Override {
            first: Some("APP".into()),
            priority: vec![("APP".into(), Some("0oa1".into()))],
        };
        // Read by this tool only: mastering elsewhere does not matter.
        schema.iter_mut().find(|a| a.name == "city").unwrap().master = OktaMaster::Override {
            first: Some("APP".into()),
            priority: vec![("APP".into(), Some("0oa1".into()))],
        };
        let problems = check_policy(&p, &schema, &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "attributes.primaryPhone");
        assert!(problems[0].message.contains("Inherit from Okta"));
    }

    #[test]
    fn read_only_targets_and_type_mismatches_are_reported() {
        let p = crate::reconcile::policy::Policy::builtin();
        let mut schema = okta_schema();
        schema
            .iter_mut()
            .find(|a| a.name == "primaryPhone")
            .unwrap()
            .mutability = "READ_ONLY".into();
        schema
            .iter_mut()
            .find(|a| a.name == "department")
            .unwrap()
            .kind = "array".into();
        let keys: Vec<String> = check_policy(&p, &schema, &[])
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            vec!["attributes.department", "attributes.primaryPhone.master"]
        );
    }
}
