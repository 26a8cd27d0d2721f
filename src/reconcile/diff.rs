//! Matching users across the two directories and deciding, attribute by attribute, what each
//! side must receive. Pure: snapshots, links and baseline in, a sorted `Plan` out.

use super::data::{INVALID_VALUE, invalid_fingerprint};
use super::normalize::{Norm, normalize, normalize_in, phone_extension, written_form};
use super::plan::STATUS_ATTR;
use super::plan::{
    Action, Agreed, AttrChange, Baseline, DataProblem, Plan, PlannedAction, Problem, ProblemKind,
    Rule, UserRef,
};
use super::policy::{
    AttrRule, Master, MatchOn, Normalize, OKTA_REQUIRED, OnConflict, Piece, Policy, TELUS_REQUIRED,
    TelusSide,
};
use crate::model::{Link, OktaStatus, OktaUser, System, TelusStatus, TelusUser};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The state a plan is computed from.
pub struct Snapshot<'a> {
    pub okta: &'a [OktaUser],
    pub telus: &'a [TelusUser],
    pub links: &'a [Link],
    pub baseline: &'a Baseline,
    /// The admin approved this pass (`sync --approve`): linked TELUS users that vanished are
    /// created again.
    pub approved: bool,
}

/// Renders the TELUS side of a row for one user: a field's value, or a template where a
/// missing field renders as the empty string.
pub fn telus_value(user: &TelusUser, side: &TelusSide) -> Option<String> {
    match side {
        TelusSide::Field { path, .. } => user.fields.get(path).map(str::to_string),
        TelusSide::Template(pieces) => {
            let mut out = String::new();
            for piece in pieces {
                match piece {
                    Piece::Lit(s) => out.push_str(s),
                    Piece::Field(f) => {
                        if let Some(v) = user.fields.get(f) {
                            out.push_str(v);
                        }
                    }
                }
            }
            Some(out)
        }
    }
}

fn email_key(email: Option<&str>) -> Option<String> {
    normalize(Normalize::Email, email).key().map(str::to_string)
}

/// The key an Okta user is matched on under `[import] match`.
pub fn okta_match_key(o: &OktaUser, on: MatchOn) -> Option<String> {
    match on {
        MatchOn::Email => email_key(o.email()),
        MatchOn::Login => email_key(o.profile.get("login")),
    }
}

/// Who is matched with whom so far, and the Okta users whose linked TELUS user is gone.
struct Matching<'a> {
    okta_by_id: HashMap<&'a str, &'a OktaUser>,
    telus_by_id: HashMap<&'a str, &'a TelusUser>,
    pairs: Vec<(&'a OktaUser, &'a TelusUser)>,
    linked_okta: HashSet<&'a str>,
    linked_telus: HashSet<&'a str>,
    vanished: HashSet<&'a str>,
}

/// Computes the plan for one pass: users matched by stored link, then by the reference each
/// TELUS user carries, then by email; then each pair attribute by attribute.
pub fn plan_pass(snap: &Snapshot<'_>, policy: &Policy) -> Plan {
    let mut plan = Plan::default();
    let mut m = Matching {
        okta_by_id: snap.okta.iter().map(|u| (u.id.0.as_str(), u)).collect(),
        telus_by_id: snap.telus.iter().map(|u| (u.id.0.as_str(), u)).collect(),
        pairs: Vec::new(),
        linked_okta: HashSet::new(),
        linked_telus: HashSet::new(),
        vanished: HashSet::new(),
    };
    match_stored_links(snap, policy, &mut m, &mut plan);
    match_references(snap, &mut m, &mut plan);
    match_emails(snap, policy, &mut m, &mut plan);
    plan.linked += m.pairs.len();
    for (o, t) in m.pairs {
        plan_user(o, t, snap.baseline, policy, &mut plan);
    }
    plan.actions.sort();
    plan.new_links.sort();
    plan.agreed.sort();
    plan.problems.sort();
    plan.data_problems.sort();
    plan
}

/// Stored links first.
fn match_stored_links<'a>(
    snap: &Snapshot<'a>,
    policy: &Policy,
    m: &mut Matching<'a>,
    plan: &mut Plan,
) {
    // Stored links first. A link whose TELUS end is gone is dropped (the Okta user may match
    // again); a link whose Okta end is gone means the user left scope or was deleted.
    for link in snap.links {
        let o = m.okta_by_id.get(link.okta_id.0.as_str());
        let t = m.telus_by_id.get(link.ext_id.0.as_str());
        // The store keeps links one-to-one; the sets guard against a corrupt store anyway.
        match (o, t) {
            (Some(o), Some(t))
                if !m.linked_okta.contains(o.id.0.as_str())
                    && !m.linked_telus.contains(t.id.0.as_str()) =>
            {
                m.linked_okta.insert(o.id.0.as_str());
                m.linked_telus.insert(t.id.0.as_str());
                m.pairs.push((o, t));
            }
            (Some(o), None) => {
                m.vanished.insert(o.id.0.as_str());
            }
            (None, Some(t)) if m.linked_telus.insert(t.id.0.as_str()) => {
                plan.linked += 1;
                let user = UserRef {
                    email: email_key(t.email()).unwrap_or_default(),
                    okta_id: Some(link.okta_id.clone()),
                    ext_id: Some(t.id.clone()),
                };
                plan_deactivate(&user, t, "left scope or was deleted in Okta", policy, plan);
            }
            _ => {}
        }
    }
}

/// Then the reference each TELUS user carries.
fn match_references<'a>(snap: &Snapshot<'a>, m: &mut Matching<'a>, plan: &mut Plan) {
    // Then the Okta id this tool writes into every TELUS user's `references`: it links a
    // user again without the store (or after an email change), and settles a create whose
    // answer was lost. A reference to an Okta user outside the scope is ignored.
    let mut by_ref: BTreeMap<&str, Vec<&TelusUser>> = BTreeMap::new();
    for t in snap.telus {
        if m.linked_telus.contains(t.id.0.as_str()) {
            continue;
        }
        if let Some(r) = &t.directory_ref
            && let Some(o) = m.okta_by_id.get(r.0.as_str())
            && !m.linked_okta.contains(o.id.0.as_str())
        {
            by_ref.entry(o.id.0.as_str()).or_default().push(t);
        }
    }
    for (okta_id, teluses) in by_ref {
        let Some(o) = m.okta_by_id.get(okta_id).copied() else {
            continue;
        };
        m.linked_okta.insert(okta_id);
        match teluses.as_slice() {
            [t] => {
                m.linked_telus.insert(t.id.0.as_str());
                plan.new_links.push(Link {
                    okta_id: o.id.clone(),
                    ext_id: t.id.clone(),
                });
                m.pairs.push((o, t));
            }
            ts => {
                for t in ts {
                    m.linked_telus.insert(t.id.0.as_str());
                }
                plan.problems.push(Problem {
                    values: None,
                    user: UserRef {
                        email: email_key(o.email()).unwrap_or_default(),
                        okta_id: Some(o.id.clone()),
                        ext_id: None,
                    },
                    kind: ProblemKind::DuplicateReference,
                    attr: None,
                    message: format!(
                        "{} TELUS users carry Okta id {} in their references (extensions {}): remove the duplicates",
                        ts.len(),
                        o.id,
                        ts.iter().map(|t| t.id.0.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }
}

/// The users not matched yet, by normalized email; a TELUS user with no email is reported.
type ByEmail<'a> = BTreeMap<String, (Vec<&'a OktaUser>, Vec<&'a TelusUser>)>;

fn index_by_email<'a>(
    snap: &Snapshot<'a>,
    policy: &Policy,
    m: &Matching<'a>,
    plan: &mut Plan,
) -> ByEmail<'a> {
    let mut by_email: ByEmail<'a> = BTreeMap::new();
    for o in snap.okta {
        if m.linked_okta.contains(o.id.0.as_str()) {
            continue;
        }
        // `[import] match = "login"` matches a TELUS email with the Okta login instead.
        if let Some(key) = okta_match_key(o, policy.import.match_on) {
            by_email.entry(key).or_default().0.push(o);
        }
    }
    for t in snap.telus {
        if m.linked_telus.contains(t.id.0.as_str()) {
            continue;
        }
        match email_key(t.email()) {
            Some(key) => by_email.entry(key).or_default().1.push(t),
            None => plan.problems.push(Problem {
                values: None,
                user: UserRef {
                    email: String::new(),
                    okta_id: None,
                    ext_id: Some(t.id.clone()),
                },
                kind: ProblemKind::UnmatchedTelus,
                attr: None,
                message: format!("TELUS extension {} has no email: left untouched", t.id),
            }),
        }
    }
    by_email
}

/// Then email.
fn match_emails<'a>(snap: &Snapshot<'a>, policy: &Policy, m: &mut Matching<'a>, plan: &mut Plan) {
    // Then email, case-insensitively, among the unlinked users. A live Okta user is preferred,
    // then a STAGED one; a suspended or deactivated one matches only when no other user has
    // the email (and then its TELUS user is deactivated).
    let by_email = index_by_email(snap, policy, m, plan);
    for (email, (oktas, teluses)) in &by_email {
        let live: Vec<&OktaUser> = oktas
            .iter()
            .copied()
            .filter(|o| o.status.is_live())
            .collect();
        let staged: Vec<&OktaUser> = oktas
            .iter()
            .copied()
            .filter(|o| o.status == OktaStatus::Staged)
            .collect();
        let candidates = match (live.is_empty(), staged.is_empty()) {
            (false, _) => live,
            (true, false) => staged,
            (true, true) => oktas.clone(),
        };
        let dup = |o: Option<&OktaUser>, t: Option<&TelusUser>| Problem {
            values: None,
            user: UserRef {
                email: email.clone(),
                okta_id: o.map(|o| o.id.clone()),
                ext_id: t.map(|t| t.id.clone()),
            },
            kind: ProblemKind::DuplicateEmail,
            attr: None,
            message: format!(
                "More than one record found for Email: {email}. Email is the unique key: remove the duplicate."
            ),
        };
        match (candidates.as_slice(), teluses.as_slice()) {
            ([o], [t]) => {
                plan.new_links.push(Link {
                    okta_id: o.id.clone(),
                    ext_id: t.id.clone(),
                });
                m.pairs.push((o, t));
            }
            ([], ts) => {
                for t in ts {
                    plan.problems.push(Problem {
                        values: None,
                        user: UserRef {
                            email: email.clone(),
                            okta_id: None,
                            ext_id: Some(t.id.clone()),
                        },
                        kind: ProblemKind::UnmatchedTelus,
                        attr: None,
                        message: "TELUS user with no Okta counterpart: left untouched".into(),
                    });
                }
            }
            // A linked user gone from the listing is never re-created without approval: the
            // listing may have lost it.
            ([o], []) if m.vanished.contains(o.id.0.as_str()) && o.status.is_live() => {
                plan.vanished += 1;
                if snap.approved {
                    plan_create(o, email, policy, plan);
                } else {
                    plan.problems.push(Problem {
                        values: None,
                        user: UserRef {
                            email: email.clone(),
                            okta_id: Some(o.id.clone()),
                            ext_id: None,
                        },
                        kind: ProblemKind::Vanished,
                        attr: None,
                        message: "its linked TELUS user is gone from the listing (deleted in the portal?): not created again without `sync --approve`".into(),
                    });
                }
            }
            ([o], []) => plan_create(o, email, policy, plan),
            // One Okta user, several TELUS users: nothing is written for it.
            ([o], _) => plan.problems.push(dup(Some(o), None)),
            (os, _) => {
                for o in os {
                    plan.problems.push(dup(Some(o), None));
                }
            }
        }
    }
}

fn status_change(t: &TelusUser, new: &str, rule: Rule) -> AttrChange {
    AttrChange {
        attr: STATUS_ATTR.to_string(),
        field: STATUS_ATTR.to_string(),
        old: Some(t.status.as_str().to_string()),
        new: Some(new.to_string()),
        rule,
    }
}

/// Disables a TELUS user that is still enabled (never deletes).
fn plan_deactivate(user: &UserRef, t: &TelusUser, why: &str, policy: &Policy, plan: &mut Plan) {
    if !policy.features.deactivate_users || t.status == TelusStatus::Disabled {
        return;
    }
    if !matches!(t.status, TelusStatus::Enabled | TelusStatus::NotActivated) {
        return;
    }
    plan.actions.push(PlannedAction {
        user: user.clone(),
        system: System::Telus,
        action: Action::Deactivate {
            change: status_change(t, TelusStatus::Disabled.as_str(), Rule::Deactivate),
            reason: why.to_string(),
        },
    });
}

/// A TELUS user for an in-scope live Okta user with no match (ACTIVE, PROVISIONED, RECOVERY,
/// PASSWORD_EXPIRED, LOCKED_OUT: the statuses Okta's own app assignments push), from the
/// Okta-sourced rows. STAGED users wait for their activation; SUSPENDED and DEPROVISIONED
/// ones are never created.
fn plan_create(o: &OktaUser, email: &str, policy: &Policy, plan: &mut Plan) {
    let user = UserRef {
        email: email.to_string(),
        okta_id: Some(o.id.clone()),
        ext_id: None,
    };
    if !policy.features.create_users || !o.status.is_live() {
        if o.status.is_live() {
            plan.problems.push(Problem {
                values: None,
                user,
                kind: ProblemKind::UnmatchedOkta,
                attr: None,
                message: if policy.features.create_users {
                    format!(
                        "Okta user ({}) with no TELUS counterpart",
                        o.status.as_str()
                    )
                } else {
                    "Okta user with no TELUS counterpart (create_users is off)".into()
                },
            });
        }
        return;
    }
    note_extensions(o, o.profile.get("countryCode"), &user, policy, plan);
    let mut changes = Vec::new();
    for rule in &policy.rules {
        let Some(path) = rule.telus.path() else {
            continue;
        };
        let okta_sources = match &rule.master {
            Master::Priority(list) => list.first() == Some(&System::Okta),
            Master::Latest { .. } => true,
        };
        if !okta_sources || !rule.telus.writable() {
            continue;
        }
        let norm = match normalize(rule.normalize, o.profile.get(&rule.okta_attr)) {
            Norm::Value(v) => match crate::model::telus_value_refused(path, &v) {
                Some(reason) => Norm::Invalid { trimmed: v, reason },
                None => Norm::Value(v),
            },
            other => other,
        };
        match norm {
            Norm::Value(v) => changes.push(AttrChange {
                attr: rule.okta_attr.clone(),
                field: path.to_string(),
                old: None,
                new: Some(written_form(rule.normalize, &v, true)),
                rule: Rule::Create,
            }),
            Norm::Invalid { trimmed, reason } => {
                let message = format!("okta value of {} is {reason}", rule.okta_attr);
                invalid_data(&user, rule, System::Telus, &trimmed, None, message, plan);
                plan.problems.push(Problem {
                    values: Some(format!("okta {trimmed:?}")),
                    user: user.clone(),
                    kind: ProblemKind::InvalidValue,
                    attr: Some(rule.okta_attr.clone()),
                    message: format!(
                        "okta value of {} is {reason}: left empty on the new TELUS user",
                        rule.okta_attr
                    ),
                })
            }
            Norm::Empty => {}
        }
    }
    for required in TELUS_REQUIRED {
        if !changes.iter().any(|c| c.field == *required) {
            plan.problems.push(Problem {
                values: None,
                user: user.clone(),
                kind: ProblemKind::RequiredEmpty,
                attr: None,
                message: format!("cannot create the TELUS user: {required} would be empty"),
            });
            return;
        }
    }
    changes.sort();
    // Something of the created user may flow back (a TELUS-sourced row, written back).
    let then_sync = policy.features.write_back
        && policy.rules.iter().any(|r| match &r.master {
            Master::Priority(list) => list.first() == Some(&System::Telus),
            Master::Latest { .. } => true,
        });
    plan.actions.push(PlannedAction {
        user,
        system: System::Telus,
        action: Action::Create { changes, then_sync },
    });
}

/// Decides every attribute of one linked pair.
fn plan_user(o: &OktaUser, t: &TelusUser, baseline: &Baseline, policy: &Policy, plan: &mut Plan) {
    let user = UserRef {
        email: email_key(o.email())
            .or_else(|| email_key(t.email()))
            .unwrap_or_default(),
        okta_id: Some(o.id.clone()),
        ext_id: Some(t.id.clone()),
    };
    match &o.status {
        // Suspended or deactivated in Okta: disable in TELUS; attributes are not synced.
        OktaStatus::Suspended | OktaStatus::Deprovisioned => {
            let why = if o.status == OktaStatus::Suspended {
                "suspended in Okta"
            } else {
                "deactivated in Okta"
            };
            plan_deactivate(&user, t, why, policy, plan);
            return;
        }
        // A status this tool does not know: nothing is written (the harsher reading).
        OktaStatus::Other(_) => return,
        // STAGED (not activated yet, an imported user say): its rows sync as for a live
        // user, and its TELUS status is left as it is, neither disabled nor enabled. Live
        // users are kept Enabled below.
        _ => {}
    }
    if o.status.is_live() && t.status == TelusStatus::Disabled {
        let we_disabled = baseline
            .get(&o.id, STATUS_ATTR)
            .is_some_and(|s| s == TelusStatus::Disabled.as_str());
        if we_disabled && policy.features.deactivate_users {
            plan.actions.push(PlannedAction {
                user: user.clone(),
                system: System::Telus,
                action: Action::Reactivate {
                    change: status_change(t, TelusStatus::Enabled.as_str(), Rule::Reactivate),
                },
            });
        } else {
            plan.problems.push(Problem {
                values: None,
                user: user.clone(),
                kind: ProblemKind::DisabledElsewhere,
                attr: None,
                message: "disabled in TELUS outside this tool while active in Okta: left disabled"
                    .into(),
            });
        }
    }
    // The user's country reads phone numbers written without a country code.
    let region = o
        .profile
        .get("countryCode")
        .or_else(|| t.fields.get("contact.businessAddress.country"));
    note_extensions(o, region, &user, policy, plan);
    let mut to_okta = Vec::new();
    let mut to_telus = Vec::new();
    let mut agreed = Vec::new();
    for rule in &policy.rules {
        // A field this read does not know (a user the Company Directory left out) is left
        // alone on both sides: unknown is not empty.
        if !t.in_directory && !rule.telus.fields().iter().all(|f| t.knows(f)) {
            continue;
        }
        // `apply = "create"`: written when the TELUS user was created, never since.
        if rule.create_only {
            continue;
        }
        let base = baseline.get(&o.id, &rule.okta_attr);
        match plan_attr(rule, o, t, region, base, &user, policy, plan) {
            AttrDecision::Agree(value) => {
                agreed.push((crate::model::intern(&rule.okta_attr), value));
            }
            AttrDecision::Write(System::Okta, change) => to_okta.push(change),
            AttrDecision::Write(System::Telus, change) => to_telus.push(change),
            AttrDecision::Nothing => {}
        }
    }
    if !agreed.is_empty() {
        plan.agreed.push(Agreed {
            okta_id: o.id.clone(),
            values: agreed,
        });
    }
    for (system, mut changes) in [(System::Okta, to_okta), (System::Telus, to_telus)] {
        if changes.is_empty() {
            continue;
        }
        changes.sort();
        plan.actions.push(PlannedAction {
            user: user.clone(),
            system,
            action: Action::Update { changes },
        });
    }
}

/// One note per user whose Okta phone numbers, in rows written to TELUS, carry an extension
/// that the TELUS field cannot hold (the number alone is compared and written). Not a
/// failure; the extension itself is not in the note's text.
fn note_extensions(
    o: &OktaUser,
    region: Option<&str>,
    user: &UserRef,
    policy: &Policy,
    plan: &mut Plan,
) {
    let attrs: Vec<&str> = policy
        .rules
        .iter()
        .filter(|r| r.normalize == Normalize::E164 && policy.can_write(r, System::Telus))
        .filter(|r| match &r.master {
            Master::Priority(list) => list.first() == Some(&System::Okta),
            Master::Latest { .. } => true,
        })
        .filter(|r| {
            o.profile
                .get(&r.okta_attr)
                .is_some_and(|v| phone_extension(v, region).is_some())
        })
        .map(|r| r.okta_attr.as_str())
        .collect();
    let Some(first) = attrs.first() else {
        return;
    };
    plan.problems.push(Problem {
        values: None,
        user: user.clone(),
        kind: ProblemKind::ExtensionLeftOut,
        attr: Some(first.to_string()),
        message: format!(
            "the extension in Okta's {} cannot be carried by TELUS's field: the number alone is compared and written",
            attrs.join(", ")
        ),
    });
}

/// Records a source value found invalid (a data problem, matched against the known ones by
/// `data::hold_back_data_problems`).
fn invalid_data(
    user: &UserRef,
    rule: &AttrRule,
    target: System,
    source: &str,
    target_value: Option<&str>,
    explanation: String,
    plan: &mut Plan,
) {
    plan.data_problems.push(DataProblem {
        okta_id: user.okta_id.clone(),
        ext_id: user.ext_id.clone(),
        email: user.email.clone(),
        attr: rule.okta_attr.clone(),
        system: target,
        field: match (target, rule.telus.path()) {
            (System::Telus, Some(path)) => path.to_string(),
            _ => rule.okta_attr.clone(),
        },
        value: Some(source.to_string()),
        fingerprint: invalid_fingerprint(source, target_value),
        code: INVALID_VALUE.to_string(),
        explanation,
        since: String::new(),
    });
}

/// What one row decides for one linked pair.
enum AttrDecision {
    /// Both sides hold this (normalized) value, new to the baseline.
    Agree(Option<String>),
    /// This change goes to this system.
    Write(System, AttrChange),
    Nothing,
}

/// One row for one linked pair: agreed, a change for one side, or nothing (a problem may be
/// reported instead).
#[allow(clippy::too_many_arguments)]
fn plan_attr(
    rule: &AttrRule,
    o: &OktaUser,
    t: &TelusUser,
    region: Option<&str>,
    base: Option<&str>,
    user: &UserRef,
    policy: &Policy,
    plan: &mut Plan,
) -> AttrDecision {
    let okta_raw = o.profile.get(&rule.okta_attr).map(str::to_string);
    let telus_raw = telus_value(t, &rule.telus);
    let on = normalize_in(rule.normalize, okta_raw.as_deref(), region);
    // The same text reads the same (normalizing is a function of the text and the region):
    // phone parsing, most of a converged pass's CPU, is done once for an agreeing pair.
    let tn = match okta_raw.as_deref().map(str::trim) == telus_raw.as_deref().map(str::trim) {
        true => on.clone(),
        false => normalize_in(rule.normalize, telus_raw.as_deref(), region),
    };
    if on.key() == tn.key() {
        let value = on.key().map(str::to_string);
        return match value.as_deref() != base {
            true => AttrDecision::Agree(value),
            false => AttrDecision::Nothing,
        };
    }
    let Some((source, rule_kind)) = decide_source(rule, &on, &tn, base, user, plan) else {
        return AttrDecision::Nothing;
    };
    let target = source.other();
    if !policy.can_write(rule, target) {
        return AttrDecision::Nothing;
    }
    let (src_norm, tgt_norm, tgt_raw) = match source {
        System::Okta => (&on, &tn, telus_raw),
        System::Telus => (&tn, &on, okta_raw),
    };
    let field = match target {
        System::Okta => rule.okta_attr.clone(),
        System::Telus => match rule.telus.path() {
            Some(p) => p.to_string(),
            None => return AttrDecision::Nothing,
        },
    };
    let bounded = over_telus_bound(src_norm, target, &field);
    let src_norm = bounded.as_ref().unwrap_or(src_norm);
    let Some(new) = value_to_write(src_norm, rule, source, &field, user, plan) else {
        if let Norm::Invalid { trimmed, reason } = src_norm {
            let message = format!("{source} value of {} is {reason}", rule.okta_attr);
            invalid_data(
                user,
                rule,
                target,
                trimmed,
                tgt_raw.as_deref(),
                message,
                plan,
            );
        }
        return AttrDecision::Nothing;
    };
    let rule_kind = match (rule_kind, base) {
        // The target moved away from the last synced value while the source kept it.
        (Rule::Master, Some(b)) if src_norm.key() == Some(b) => {
            if tgt_norm.key() != Some(b) {
                Rule::Drift
            } else {
                Rule::Master
            }
        }
        (k, _) => k,
    };
    if rule_kind == Rule::Drift {
        plan.problems.push(Problem {
            values: Some(format!(
                "{:?} → {:?}",
                base.unwrap_or(""),
                tgt_norm.key().unwrap_or("")
            )),
            user: user.clone(),
            kind: ProblemKind::Drift,
            attr: Some(rule.okta_attr.clone()),
            message: format!(
                "{} was edited in {target} since the last sync; {source} masters it and overwrites the edit",
                rule.okta_attr,
            ),
        });
    }
    let change = AttrChange {
        attr: rule.okta_attr.clone(),
        field,
        old: tgt_raw.filter(|v| !v.trim().is_empty()),
        new,
        rule: rule_kind,
    };
    AttrDecision::Write(target, change)
}

/// A value over the bound RingCentral's spec gives the TELUS field (`maxLength`), as an
/// invalid value: checked before TELUS is asked, it is the user's data problem, as if TELUS
/// had refused it, without a request.
fn over_telus_bound(src_norm: &Norm, target: System, field: &str) -> Option<Norm> {
    match src_norm {
        Norm::Value(v) if target == System::Telus => crate::model::telus_value_refused(field, v)
            .map(|reason| Norm::Invalid {
                trimmed: v.clone(),
                reason,
            }),
        _ => None,
    }
}

/// The value a change writes: the source's normalized value, an empty one that clears the
/// target, or `None` when nothing may be written (an unreadable value, or an empty one the
/// target requires), reported as the user's problem.
fn value_to_write(
    src_norm: &Norm,
    rule: &AttrRule,
    source: System,
    field: &str,
    user: &UserRef,
    plan: &mut Plan,
) -> Option<Option<String>> {
    let target = source.other();
    match src_norm {
        Norm::Value(v) => Some(Some(written_form(
            rule.normalize,
            v,
            target == System::Telus,
        ))),
        Norm::Invalid { trimmed, reason } => {
            plan.problems.push(Problem {
                values: Some(format!("{source} {trimmed:?}")),
                user: user.clone(),
                kind: ProblemKind::InvalidValue,
                attr: Some(rule.okta_attr.clone()),
                message: format!(
                    "{source} value of {} is {reason}: not written",
                    rule.okta_attr
                ),
            });
            None
        }
        Norm::Empty => {
            let required = match target {
                System::Okta => OKTA_REQUIRED.contains(&field),
                System::Telus => TELUS_REQUIRED.contains(&field),
            };
            if required {
                plan.problems.push(Problem {
                    values: None,
                    user: user.clone(),
                    kind: ProblemKind::RequiredEmpty,
                    attr: Some(rule.okta_attr.clone()),
                    message: format!(
                        "{} is empty in {source} but {target} requires {field}: not cleared",
                        rule.okta_attr
                    ),
                });
                return None;
            }
            Some(None)
        }
    }
}

/// Which side supplies the value when the two differ, and why. `None`: nothing is written.
fn decide_source(
    rule: &AttrRule,
    on: &Norm,
    tn: &Norm,
    base: Option<&str>,
    user: &UserRef,
    plan: &mut Plan,
) -> Option<(System, Rule)> {
    match &rule.master {
        Master::Priority(list) => list.first().map(|s| (*s, Rule::Master)),
        Master::Latest { on_conflict } => {
            let okta_changed = on.key() != base;
            let telus_changed = tn.key() != base;
            match (okta_changed, telus_changed) {
                (true, false) => Some((System::Okta, Rule::Latest)),
                (false, true) => Some((System::Telus, Rule::Latest)),
                // No baseline yet and one side empty: the side holding a value wins.
                _ if base.is_none() && *tn == Norm::Empty => Some((System::Okta, Rule::Latest)),
                _ if base.is_none() && *on == Norm::Empty => Some((System::Telus, Rule::Latest)),
                _ => {
                    let desc = format!("{} changed on both sides", rule.okta_attr);
                    let values = Some(format!(
                        "okta {:?}, telus {:?}",
                        on.key().unwrap_or(""),
                        tn.key().unwrap_or("")
                    ));
                    match on_conflict {
                        OnConflict::Prefer(s) => {
                            plan.problems.push(Problem {
                                values: values.clone(),
                                user: user.clone(),
                                kind: ProblemKind::ConflictSettled,
                                attr: Some(rule.okta_attr.clone()),
                                message: format!("{desc}; {s} wins (on_conflict)"),
                            });
                            Some((*s, Rule::Conflict))
                        }
                        OnConflict::Skip => {
                            plan.problems.push(Problem {
                                values: values.clone(),
                                user: user.clone(),
                                kind: ProblemKind::ConflictSkipped,
                                attr: Some(rule.okta_attr.clone()),
                                message: format!("{desc}; left as is (on_conflict = \"skip\")"),
                            });
                            None
                        }
                    }
                }
            }
        }
    }
}
