//! Settling changes a crashed run journalled as `planned` but never finished, against a fresh
//! read of the target: a write that landed is marked applied (and becomes the baseline); one
//! that did not is marked failed, and this pass plans it again. A create whose user now
//! exists is linked, never created twice. Pure.

use super::diff::telus_value;
use super::normalize::normalize;
use super::plan::{Agreed, Rule, STATUS_ATTR};
use super::policy::{Normalize, Policy};
use crate::model::{ExtId, Link, OktaId, OktaUser, System, TelusUser};
use std::collections::HashMap;

/// A journal row left `planned` by an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub row_id: i64,
    pub system: System,
    pub okta_id: Option<OktaId>,
    pub ext_id: Option<ExtId>,
    pub attr: String,
    pub field: String,
    pub new: Option<String>,
    pub rule: Rule,
}

/// How one unfinished row ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub row_id: i64,
    /// True when the target shows the change: it landed before the crash.
    pub landed: bool,
    pub baseline: Option<Agreed>,
    /// For a create that landed: the link to record.
    pub link: Option<Link>,
}

/// Creates are settled per user: the TELUS user carrying the Okta id every create sends in
/// its `references`, else the one with the email the create sent (none when ambiguous).
fn find_created<'a>(
    rows: &'a [Unfinished],
    telus: &'a [TelusUser],
) -> HashMap<&'a OktaId, Option<&'a TelusUser>> {
    let mut created_by_okta: HashMap<&OktaId, Option<&TelusUser>> = HashMap::new();
    for r in rows.iter().filter(|r| r.rule == Rule::Create) {
        let (Some(okta_id), Some(email)) = (&r.okta_id, &r.new) else {
            continue;
        };
        if r.field != crate::model::TELUS_EMAIL {
            continue;
        }
        let by_ref: Vec<&TelusUser> = telus
            .iter()
            .filter(|t| t.directory_ref.as_ref() == Some(okta_id))
            .collect();
        let found = if by_ref.is_empty() {
            let key = normalize(Normalize::Email, Some(email));
            telus
                .iter()
                .filter(|t| normalize(Normalize::Email, t.email()) == key)
                .collect::<Vec<_>>()
        } else {
            by_ref
        };
        created_by_okta.insert(okta_id, (found.len() == 1).then(|| found[0]));
    }

    created_by_okta
}

/// Decides each unfinished row from the targets' current state.
pub fn settle(
    rows: &[Unfinished],
    okta: &[OktaUser],
    telus: &[TelusUser],
    policy: &Policy,
) -> Vec<Settlement> {
    let okta_by_id: HashMap<&OktaId, &OktaUser> = okta.iter().map(|u| (&u.id, u)).collect();
    let telus_by_id: HashMap<&ExtId, &TelusUser> = telus.iter().map(|u| (&u.id, u)).collect();
    let kind_of = |attr: &str| {
        policy
            .rule(attr)
            .map(|r| r.normalize)
            .unwrap_or(Normalize::None)
    };
    let created_by_okta = find_created(rows, telus);
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let current: Option<Option<String>> = if r.rule == Rule::Create {
            // The created user's field, when the user exists now.
            r.okta_id
                .as_ref()
                .and_then(|id| created_by_okta.get(id).copied().flatten())
                .map(|t| t.fields.get(&r.field).map(str::to_string))
        } else if r.field == STATUS_ATTR {
            r.ext_id
                .as_ref()
                .and_then(|id| telus_by_id.get(id))
                .map(|t| Some(t.status.as_str().to_string()))
        } else {
            match r.system {
                System::Telus => r
                    .ext_id
                    .as_ref()
                    .and_then(|id| telus_by_id.get(id))
                    // A field this read does not know says nothing about the write.
                    .filter(|t| t.knows(&r.field))
                    .map(|t| {
                        policy
                            .rule(&r.attr)
                            .and_then(|rule| telus_value(t, &rule.telus))
                            .or_else(|| t.fields.get(&r.field).map(str::to_string))
                    }),
                System::Okta => r
                    .okta_id
                    .as_ref()
                    .and_then(|id| okta_by_id.get(id))
                    .map(|o| o.profile.get(&r.field).map(str::to_string)),
            }
        };
        let kind = kind_of(&r.attr);
        let landed = match &current {
            Some(value) => {
                normalize(kind, value.as_deref()).key() == normalize(kind, r.new.as_deref()).key()
            }
            None => false,
        };
        let link = match (landed, r.rule, &r.okta_id) {
            (true, Rule::Create, Some(okta_id)) => created_by_okta
                .get(okta_id)
                .copied()
                .flatten()
                .map(|t| Link {
                    okta_id: okta_id.clone(),
                    ext_id: t.id.clone(),
                }),
            _ => None,
        };
        let baseline = match (landed, &r.okta_id) {
            (true, Some(okta_id)) => Some(Agreed::one(
                okta_id.clone(),
                &r.attr,
                normalize(kind, r.new.as_deref()).key().map(str::to_string),
            )),
            _ => None,
        };
        out.push(Settlement {
            row_id: r.row_id,
            landed,
            baseline,
            link,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OktaStatus, TelusStatus};
    use crate::reconcile::policy::Policy;

    fn telus_user(id: &str, email: &str, dept: &str) -> TelusUser {
        TelusUser {
            id: ExtId(id.into()),
            in_directory: true,
            status: TelusStatus::Enabled,
            directory_ref: None,
            fields: [
                ("contact.email".to_string(), email.to_string()),
                ("contact.department".to_string(), dept.to_string()),
            ]
            .into(),
        }
    }

    fn row(
        id: i64,
        rule: &str,
        field: &str,
        attr: &str,
        new: &str,
        ext: Option<&str>,
    ) -> Unfinished {
        Unfinished {
            row_id: id,
            system: System::Telus,
            okta_id: Some(OktaId("o1".into())),
            ext_id: ext.map(|e| ExtId(e.into())),
            attr: attr.into(),
            field: field.into(),
            new: Some(new.into()),
            rule: Rule::parse(rule).unwrap(),
        }
    }

    #[test]
    fn an_update_visible_in_the_target_is_marked_landed() {
        let t = telus_user("e1", "a@x.ca", "Legal");
        let rows = [
            row(
                1,
                "master",
                "contact.department",
                "department",
                "Legal",
                Some("e1"),
            ),
            row(
                2,
                "master",
                "contact.department",
                "department",
                "Sales",
                Some("e1"),
            ),
        ];
        let s = settle(&rows, &[], &[t], &Policy::builtin());
        assert!(s[0].landed && s[0].baseline.is_some());
        assert!(!s[1].landed && s[1].baseline.is_none());
    }

    #[test]
    fn a_create_whose_user_exists_is_linked_not_repeated() {
        let t = telus_user("e7", "A@x.ca", "Legal");
        let rows = [
            row(1, "create", "contact.email", "email", "a@x.ca", None),
            row(
                2,
                "create",
                "contact.department",
                "department",
                "Legal",
                None,
            ),
        ];
        let s = settle(&rows, &[], &[t], &Policy::builtin());
        assert!(s.iter().all(|s| s.landed));
        assert_eq!(s[0].link.as_ref().unwrap().ext_id, ExtId("e7".into()));
    }

    #[test]
    fn a_create_that_never_landed_is_not_landed() {
        let rows = [row(1, "create", "contact.email", "email", "a@x.ca", None)];
        let s = settle(&rows, &[], &[], &Policy::builtin());
        assert!(!s[0].landed && s[0].link.is_none());
    }

    #[test]
    fn okta_write_back_is_checked_in_okta() {
        let o = OktaUser {
            id: OktaId("o1".into()),
            status: OktaStatus::Active,
            last_updated: None,
            provider: None,
            profile: [("primaryPhone".to_string(), "#101".to_string())].into(),
        };
        let mut r = row(
            1,
            "master",
            "primaryPhone",
            "primaryPhone",
            "#101",
            Some("e1"),
        );
        r.system = System::Okta;
        let s = settle(&[r], &[o], &[], &Policy::builtin());
        assert!(s[0].landed);
    }
}
