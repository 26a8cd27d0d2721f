//! The import queue (Okta's "Import New Users"): which TELUS users no Okta user matches, what
//! each would become (new, a partial match, a conflict), the Okta users confirmed ones become
//! (the mastering table read backwards), and how a create whose answer was lost settles.
//! Pure: snapshots and whole-org lookups in, candidates and planned creates out.

use super::diff::{okta_match_key, telus_value};
use super::normalize::{Norm, normalize, normalize_in, written_form};
use super::plan::{Action, AttrChange, Hold, PlannedAction, Problem, ProblemKind, Rule};
pub use super::plan::{Candidate, Outcome};
use super::policy::{Normalize, OKTA_REQUIRED, Policy, Safety};
use crate::model::{ExtId, Link, OktaId, OktaStatus, OktaUser, System, TelusStatus, TelusUser};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The Okta users of the whole org that hold a candidate's login or email, as one pass's
/// lookups found them (`GET /api/v1/users/{login}` and a search on email: both see users
/// outside the scope and DEPROVISIONED ones, which the scope's listing does not).
pub type Lookups = HashMap<ExtId, Vec<OktaUser>>;

fn key(v: Option<&str>) -> Option<String> {
    normalize(Normalize::Email, v).key().map(str::to_string)
}

/// TELUS users that no Okta user in the scope matches by link, reference or the match key,
/// and that an import could be for: Enabled or NotActivated, with an email, no create of
/// theirs still unconfirmed (`pending`), and not ignored by the admin (`ignored`: emails).
/// Cheap at any size (a few hash sets), so every whole pass computes it before its lookups.
pub fn unmatched<'a>(
    okta: &[OktaUser],
    telus: &'a [TelusUser],
    links: &[Link],
    policy: &Policy,
    pending: &HashSet<ExtId>,
    ignored: &HashSet<String>,
) -> Vec<&'a TelusUser> {
    let linked: HashSet<&ExtId> = links.iter().map(|l| &l.ext_id).collect();
    let ids: HashSet<&OktaId> = okta.iter().map(|o| &o.id).collect();
    let keys: HashSet<String> = okta
        .iter()
        .filter_map(|o| okta_match_key(o, policy.import.match_on))
        .collect();
    telus
        .iter()
        .filter(|t| matches!(t.status, TelusStatus::Enabled | TelusStatus::NotActivated))
        .filter(|t| !linked.contains(&t.id) && !pending.contains(&t.id))
        .filter(|t| t.directory_ref.as_ref().is_none_or(|r| !ids.contains(r)))
        .filter(|t| key(t.email()).is_some_and(|k| !keys.contains(&k) && !ignored.contains(&k)))
        .collect()
}

/// The queue: each unmatched TELUS user with its proposed outcome, from the whole-org
/// lookups (`Unchecked` where there is none) and the in-scope Okta users (`okta`, for
/// partial matches among those no link or match holds: `linked`). Sorted by email.
pub fn queue(
    unmatched: &[&TelusUser],
    okta: &[OktaUser],
    linked: &HashSet<&OktaId>,
    lookups: &Lookups,
) -> Vec<Candidate> {
    let in_scope: HashSet<&OktaId> = okta.iter().map(|o| &o.id).collect();
    let name = |v: Option<&str>| v.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    let mut by_name: HashMap<(String, String), Vec<&OktaUser>> = HashMap::new();
    for o in okta.iter().filter(|o| !linked.contains(&o.id)) {
        if let (Some(f), Some(l)) = (
            name(o.profile.get("firstName")),
            name(o.profile.get("lastName")),
        ) {
            by_name.entry((f, l)).or_default().push(o);
        }
    }
    let mut out: Vec<Candidate> = unmatched
        .iter()
        .filter_map(|t| {
            let email = key(t.email())?;
            let first = t.fields.get("contact.firstName").map(str::to_string);
            let last = t.fields.get("contact.lastName").map(str::to_string);
            let outcome = match lookups.get(&t.id) {
                None => Outcome::Unchecked,
                Some(holders) => match holders.first() {
                    Some(h) => conflict(h, &email, in_scope.contains(&h.id), linked),
                    None => match (name(first.as_deref()), name(last.as_deref())) {
                        (Some(f), Some(l)) => match by_name.get(&(f, l)).map(Vec::as_slice) {
                            Some([o, ..]) => Outcome::Partial {
                                okta_id: o.id.clone(),
                                login: o.profile.get("login").unwrap_or_default().to_string(),
                            },
                            _ => Outcome::New,
                        },
                        _ => Outcome::New,
                    },
                },
            };
            Some(Candidate {
                email,
                ext_id: t.id.clone(),
                first_name: first,
                last_name: last,
                outcome,
            })
        })
        .collect();
    out.sort();
    out
}

/// Why an Okta user who holds the candidate's login or email is a conflict.
fn conflict(h: &OktaUser, email: &str, in_scope: bool, linked: &HashSet<&OktaId>) -> Outcome {
    let login = h.profile.get("login").unwrap_or_default();
    let what = if key(Some(login)).as_deref() == Some(email) {
        "login"
    } else {
        "email"
    };
    let who = format!("Okta user {login} ({}, {})", h.id, h.status.as_str());
    let why = if matches!(h.status, OktaStatus::Deprovisioned | OktaStatus::Suspended) {
        format!(
            "{who} holds this {what} and is deactivated: Okta would refuse a new user with it (E0000001). Reactivate that user in Okta if it is this person (the next pass links them), or delete it in Okta to import this one as new"
        )
    } else if !in_scope {
        format!(
            "{who} holds this {what} but is outside okta.scope: add it to the scope if it is this person (the next pass links them)"
        )
    } else if linked.contains(&h.id) {
        format!(
            "{who} holds this {what} and is already linked to another TELUS user: remove the duplicate in TELUS, or change one of the emails"
        )
    } else {
        format!(
            "{who} holds this {what} but does not match by the configured import.match: `import link EMAIL {login}` if it is this person"
        )
    };
    Outcome::Conflict {
        okta_id: h.id.clone(),
        why,
    }
}

/// Which candidates a pass creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirm {
    /// Named one by one by the admin (normalized emails): created whatever their number.
    pub named: Vec<String>,
    /// Every `new` candidate (`import confirm --all-new`, or `[import] auto_confirm_new`
    /// on a whole pass): bound by `safety.max_imports`.
    pub all_new: bool,
    /// Create them activated (`PROVISIONED`, an activation email) rather than `STAGED`.
    pub activate: bool,
}

/// What confirming gives: the creates, the problems of candidates that cannot be created
/// (named but a conflict, unchecked, or missing a field Okta requires), and the hold when
/// more than `safety.max_imports` were confirmed in bulk.
#[derive(Debug, Default)]
pub struct Confirmed {
    pub actions: Vec<PlannedAction>,
    pub problems: Vec<Problem>,
    pub hold: Option<Hold>,
}

/// The Okta creates for the confirmed candidates. A named candidate is created when `new`
/// or `partial` (the admin decided); a bulk confirmation takes only `new` ones.
pub fn confirm(
    candidates: &[Candidate],
    telus: &[TelusUser],
    policy: &Policy,
    safety: &Safety,
    confirm: &Confirm,
) -> Confirmed {
    let by_id: HashMap<&ExtId, &TelusUser> = telus.iter().map(|t| (&t.id, t)).collect();
    let mut out = Confirmed::default();
    let mut bulk = 0usize;
    for c in candidates {
        let named = confirm.named.contains(&c.email);
        let take = match &c.outcome {
            Outcome::New => named || confirm.all_new,
            Outcome::Partial { .. } => named,
            Outcome::Conflict { .. } | Outcome::Unchecked => {
                if named {
                    out.problems.push(refusal(c));
                }
                false
            }
        };
        let Some(t) = by_id.get(&c.ext_id).filter(|_| take) else {
            continue;
        };
        bulk += usize::from(!named);
        match okta_profile(t, policy) {
            Ok(changes) => out.actions.push(PlannedAction {
                user: c.user(),
                system: System::Okta,
                action: Action::Import {
                    changes,
                    activate: confirm.activate,
                },
            }),
            Err(p) => out
                .problems
                .extend(p.into_iter().map(|(attr, message)| Problem {
                    user: c.user(),
                    // Named by the admin: that confirmation failed. Confirmed in bulk on
                    // every pass: a data problem listed (not failing each pass) until the
                    // value is filled in TELUS.
                    kind: match named {
                        true => ProblemKind::RequiredEmpty,
                        false => ProblemKind::DataProblem,
                    },
                    attr: Some(attr),
                    message,
                    values: None,
                })),
        }
    }
    if bulk > safety.max_imports as usize {
        out.hold = Some(Hold::Imports {
            count: bulk,
            max: safety.max_imports,
        });
    }
    out.actions.sort();
    out.problems.sort();
    out
}

/// Takes out the imports of candidates whose import failed recently (backing off, or
/// quarantined after repeated failures), as `decide::plan` does for every other action: a
/// create Okta refuses is not sent every pass. Answers the deferred users with why.
pub fn defer_failed(
    actions: &mut Vec<PlannedAction>,
    failures: &[super::retry::FailureRow],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(super::plan::UserRef, String)> {
    use super::retry::{Gate, fingerprint, gate};
    let mut deferred = Vec::new();
    actions.retain(|a| {
        let record = failures.iter().find(|f| f.user_key == a.user.key());
        let why = match gate(record, &fingerprint([a]), now) {
            Gate::Go => return true,
            Gate::Backoff(until) => format!("its import failed recently; next retry after {until}"),
            Gate::Quarantined => "its import is quarantined after repeated failures; fix the data or run `sync --retry-quarantined`".to_string(),
        };
        deferred.push((a.user.clone(), why));
        false
    });
    deferred
}

/// Why a named candidate is not created.
fn refusal(c: &Candidate) -> Problem {
    Problem {
        user: c.user(),
        kind: ProblemKind::ImportRefused,
        attr: None,
        message: format!(
            "not imported ({}): {}",
            c.outcome.as_str(),
            c.outcome.detail()
        ),
        values: None,
    }
}

/// The new Okta user's profile: the mastering table read backwards (every row's TELUS
/// value, whoever masters it: Okta has no value yet), in Okta's forms (a country's ISO code,
/// a province's code), with `login` = the email. `Err` lists the attributes Okta requires
/// that have no value, each with its message.
pub fn okta_profile(
    t: &TelusUser,
    policy: &Policy,
) -> Result<Vec<AttrChange>, Vec<(String, String)>> {
    let region = normalize(
        Normalize::IsoCountry,
        t.fields.get("contact.businessAddress.country"),
    );
    let region = region.key().map(str::to_string);
    let mut values: BTreeMap<String, (String, String)> = BTreeMap::new();
    for rule in &policy.rules {
        let raw = telus_value(t, &rule.telus);
        let field = rule.telus.path().unwrap_or("template").to_string();
        if let Norm::Value(v) = normalize_in(rule.normalize, raw.as_deref(), region.as_deref()) {
            // A template of empty fields ("#" for a user with no numbers) is no value.
            if v.chars().any(|c| c.is_alphanumeric()) {
                values.insert(
                    rule.okta_attr.clone(),
                    (field, written_form(rule.normalize, &v, false)),
                );
            }
        }
    }
    // The login is the email as the email row gives it (lowercase under `normalize =
    // "email"`), else as TELUS holds it.
    let email = values.get("email").map(|(_, v)| v.clone()).or_else(|| {
        t.email()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
    });
    if let Some(email) = email {
        values
            .entry("login".into())
            .or_insert_with(|| ("contact.email".into(), email.clone()));
        values
            .entry("email".into())
            .or_insert_with(|| ("contact.email".into(), email));
    }
    let missing: Vec<(String, String)> = OKTA_REQUIRED
        .iter()
        .filter(|a| !values.contains_key(**a))
        .map(|a| {
            (
                a.to_string(),
                format!("{a} is required by Okta and TELUS has no value for it: fill it in TELUS (or in the mastering row's field) to import this user"),
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(values
        .into_iter()
        .map(|(attr, (field, new))| AttrChange {
            attr,
            field,
            old: None,
            new: Some(new),
            rule: Rule::Import,
        })
        .collect())
}

/// How an import whose answer was lost ended, from a read of its login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostImport {
    /// Okta holds the login and it is this person (the email matches): the create landed.
    Landed(OktaId),
    /// Okta has no such login: the create did not land; the candidate is proposed again.
    NotCreated,
    /// Someone else holds the login now: a conflict for the admin.
    HeldByAnother { okta_id: OktaId, why: String },
}

/// Settles a lost import (or one Okta refused with `E0000001`, the login taken) from the
/// user that holds `login` now, if any: landed (or linkable) when it is the same person (the
/// email equal) and not deactivated.
pub fn settle_lost(email: &str, holder: Option<&OktaUser>) -> LostImport {
    let Some(h) = holder else {
        return LostImport::NotCreated;
    };
    let same = key(h.email()).as_deref() == key(Some(email)).as_deref();
    let deactivated = matches!(h.status, OktaStatus::Deprovisioned | OktaStatus::Suspended);
    if same && !deactivated {
        return LostImport::Landed(h.id.clone());
    }
    let login = h.profile.get("login").unwrap_or_default();
    let why = match same {
        true => format!(
            "Okta user {login} ({}) holds this login and is {}: reactivate it in Okta if it is this person (the next pass links them), or delete it to import this one as new",
            h.id,
            h.status.as_str()
        ),
        false => format!(
            "Okta user {login} ({}) holds this login with another email: a different person; change one of the two logins, then confirm again",
            h.id
        ),
    };
    LostImport::HeldByAnother {
        okta_id: h.id.clone(),
        why,
    }
}

/// How many candidates have each outcome, in a fixed order (for `status` and the gauge).
pub fn counts(candidates: &[Candidate]) -> [(&'static str, usize); 4] {
    let n = |o: &str| {
        candidates
            .iter()
            .filter(|c| c.outcome.as_str() == o)
            .count()
    };
    [
        ("new", n("new")),
        ("partial", n("partial")),
        ("conflict", n("conflict")),
        ("unchecked", n("unchecked")),
    ]
}
