//! The planner's output and its data: a sorted list of actions per user and system, the
//! links and baseline values to record, the problems and holds to report, data problems,
//! known refusals, and the key each user's records are kept under.

use crate::model::{ExtId, Fields, Link, OktaId, System};
use std::collections::{BTreeMap, HashMap};

/// The last synced value per (Okta user, attribute), in normalized form. Kept per user, so a
/// user's id is held once rather than once per attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline(HashMap<OktaId, Fields>);

impl Baseline {
    pub fn new() -> Baseline {
        Baseline::default()
    }

    pub fn get(&self, id: &OktaId, attr: &str) -> Option<&str> {
        self.0.get(id)?.get(attr)
    }

    pub fn insert(&mut self, (id, attr): (OktaId, String), value: String) {
        self.0.entry(id).or_default().insert(&attr, value);
    }

    pub fn remove(&mut self, (id, attr): &(OktaId, String)) {
        if let Some(m) = self.0.get_mut(id) {
            m.remove(attr);
            if m.is_empty() {
                self.0.remove(id);
            }
        }
    }

    /// Sets all of one user's values at once (as the store loads them).
    pub fn set_user(&mut self, id: OktaId, values: Fields) {
        if !values.is_empty() {
            self.0.insert(id, values);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Users with a baseline.
    pub fn users(&self) -> usize {
        self.0.len()
    }
}

impl FromIterator<((OktaId, String), String)> for Baseline {
    fn from_iter<I: IntoIterator<Item = ((OktaId, String), String)>>(iter: I) -> Self {
        let mut b = Baseline::new();
        for (k, v) in iter {
            b.insert(k, v);
        }
        b
    }
}

/// Who an action or problem is about. `email` is the display key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserRef {
    pub email: String,
    pub okta_id: Option<OktaId>,
    pub ext_id: Option<ExtId>,
}

impl UserRef {
    /// The key this user's failures, refusals and data problems are kept under.
    pub fn key(&self) -> String {
        user_key_of(self.okta_id.as_ref(), self.ext_id.as_ref(), &self.email)
    }
}

/// Which rule decided a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// The master's value differs from the target's.
    Master,
    /// The target was edited since the last sync; reported, then overwritten by the master.
    Drift,
    /// A `latest` row: the side that changed since the baseline wins.
    Latest,
    /// A `latest` row where both sides changed, settled by `on_conflict`.
    Conflict,
    /// A field of a TELUS user created for an Okta user with no match.
    Create,
    /// A TELUS user disabled because its Okta user was suspended, deactivated or left scope.
    Deactivate,
    /// A TELUS user this tool disabled, enabled again because its Okta user is back.
    Reactivate,
    /// An attribute of an Okta user created from a TELUS user in the import queue.
    Import,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::Master,
        Rule::Drift,
        Rule::Latest,
        Rule::Conflict,
        Rule::Create,
        Rule::Deactivate,
        Rule::Reactivate,
        Rule::Import,
    ];

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Master => "master",
            Rule::Drift => "drift",
            Rule::Latest => "latest",
            Rule::Conflict => "conflict",
            Rule::Create => "create",
            Rule::Deactivate => "deactivate",
            Rule::Reactivate => "reactivate",
            Rule::Import => "import",
        }
    }
}

/// One attribute to write. `field` is the name in the written system (TELUS path or Okta name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttrChange {
    pub attr: String,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub rule: Rule,
}

/// The baseline key under which the lifecycle status this tool set is remembered.
pub const STATUS_ATTR: &str = "status";

/// One decision for one user on one system. Lifecycle actions carry their status change as
/// an `AttrChange` on `status`, so the journal records them like any other change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Update {
        changes: Vec<AttrChange>,
    },
    /// Create a TELUS user with these fields (`old` is always `None`). With `then_sync`, a
    /// dependent step follows once TELUS answers: what the created user gives back (its
    /// extension number to Okta's `primaryPhone`, with the default table), planned by
    /// `decide::after_create` from the created user and applied in the same pass.
    Create {
        changes: Vec<AttrChange>,
        then_sync: bool,
    },
    Deactivate {
        change: AttrChange,
        reason: String,
    },
    Reactivate {
        change: AttrChange,
    },
    /// Create an Okta user from a TELUS user in the import queue (`old` is always `None`;
    /// `login` among the changes), `STAGED` unless `activate`; then link it to the TELUS
    /// user, so nothing is created in TELUS.
    Import {
        changes: Vec<AttrChange>,
        activate: bool,
    },
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Update { .. } => "update",
            Action::Create { .. } => "create",
            Action::Deactivate { .. } => "deactivate",
            Action::Reactivate { .. } => "reactivate",
            Action::Import { .. } => "import",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlannedAction {
    pub user: UserRef,
    pub system: System,
    pub action: Action,
}

impl PlannedAction {
    pub fn changes(&self) -> &[AttrChange] {
        match &self.action {
            Action::Update { changes }
            | Action::Create { changes, .. }
            | Action::Import { changes, .. } => changes,
            Action::Deactivate { change, .. } | Action::Reactivate { change } => {
                std::slice::from_ref(change)
            }
        }
    }
}

/// What went wrong for a user, before any write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// Two records on one side share the user's email: nothing is written for it.
    DuplicateEmail,
    /// Several TELUS users carry the same Okta id in their `references`: nothing is
    /// written for it.
    DuplicateReference,
    /// The master's value cannot be normalized (unparseable phone, unknown state).
    InvalidValue,
    /// The master's value is empty but the target requires the field.
    RequiredEmpty,
    /// A `latest` row changed on both sides and `on_conflict = "skip"`.
    ConflictSkipped,
    /// A `latest` row changed on both sides, settled by `on_conflict` (reported, not a failure).
    ConflictSettled,
    /// A TELUS user with no Okta counterpart: left untouched.
    UnmatchedTelus,
    /// An Okta user with no TELUS counterpart (creation is off or not applicable).
    UnmatchedOkta,
    /// A linked TELUS user disabled outside this tool while its Okta user is active: left so.
    DisabledElsewhere,
    /// A TELUS-side edit since the last sync, overwritten by the master.
    Drift,
    /// An Okta attribute Okta refused for this user (E0000023: the user's profile source
    /// masters it), not sent again while the user's record and the attribute's master are
    /// unchanged. Reported; not a failure.
    KnownRefusal,
    /// A linked TELUS user that is gone from the listing: reported, never re-created without
    /// `sync --approve`.
    Vanished,
    /// An Okta phone number written with an extension ("x123"), which the TELUS field cannot
    /// carry: the number alone is compared and written. A note, not a failure.
    ExtensionLeftOut,
    /// A value that cannot be written until someone fixes it at its source (not a phone
    /// number, over a length limit, refused as invalid), reported and failed once before:
    /// not sent, and not a failure, while the values on both sides are unchanged.
    DataProblem,
    /// A TELUS user the admin named for import that cannot be created (a conflict, not
    /// looked up yet): nothing is written for it.
    ImportRefused,
}

impl ProblemKind {
    /// Whether the problem counts the user as failed for the pass's exit code.
    pub fn fails_user(self) -> bool {
        matches!(
            self,
            ProblemKind::DuplicateEmail
                | ProblemKind::DuplicateReference
                | ProblemKind::InvalidValue
                | ProblemKind::RequiredEmpty
                | ProblemKind::ConflictSkipped
                | ProblemKind::ImportRefused
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::DuplicateEmail => "duplicate-email",
            ProblemKind::DuplicateReference => "duplicate-reference",
            ProblemKind::InvalidValue => "invalid-value",
            ProblemKind::RequiredEmpty => "required-empty",
            ProblemKind::ConflictSkipped => "conflict-skipped",
            ProblemKind::ConflictSettled => "conflict-settled",
            ProblemKind::UnmatchedTelus => "unmatched-telus",
            ProblemKind::UnmatchedOkta => "unmatched-okta",
            ProblemKind::DisabledElsewhere => "disabled-elsewhere",
            ProblemKind::Drift => "drift",
            ProblemKind::KnownRefusal => "known-refusal",
            ProblemKind::Vanished => "vanished",
            ProblemKind::ExtensionLeftOut => "extension-left-out",
            ProblemKind::DataProblem => "data-problem",
            ProblemKind::ImportRefused => "import-refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub user: UserRef,
    pub kind: ProblemKind,
    pub attr: Option<String>,
    /// What is wrong, naming the user's attribute but none of its values: the log carries it
    /// above DEBUG.
    pub message: String,
    /// The values involved, as the admin's own output (`plan`, `status`) shows them beside
    /// the message; the log only at DEBUG.
    pub values: Option<String>,
}

impl Problem {
    /// The message with its values, as the admin's own output shows it (never the log
    /// above DEBUG).
    pub fn shown(&self) -> String {
        match &self.values {
            Some(v) => format!("{} ({v})", self.message),
            None => self.message.clone(),
        }
    }
}

/// Baseline values to record for one user, because both sides agree on them or a write was
/// confirmed (`None` forgets one). Grouped per user: a first pass records every attribute of
/// every user, so the user's id is held once and attribute names are shared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Agreed {
    pub okta_id: OktaId,
    pub values: Vec<(std::sync::Arc<str>, Option<String>)>,
}

impl Agreed {
    /// One attribute of one user.
    pub fn one(okta_id: OktaId, attr: &str, value: Option<String>) -> Agreed {
        Agreed {
            okta_id,
            values: vec![(crate::model::intern(attr), value)],
        }
    }

    pub fn get(&self, attr: &str) -> Option<&Option<String>> {
        self.values
            .iter()
            .find(|(k, _)| &**k == attr)
            .map(|(_, v)| v)
    }
}

/// Everything one pass would do. All vectors are sorted: the same input gives the same plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<PlannedAction>,
    pub new_links: Vec<Link>,
    pub agreed: Vec<Agreed>,
    pub problems: Vec<Problem>,
    /// Linked pairs reconciled in this plan.
    pub linked: usize,
    /// Linked TELUS users gone from the listing whose Okta user is still live: reported,
    /// and re-created only with approval.
    pub vanished: usize,
    /// Why the plan is held by a safety limit; empty when it may proceed.
    pub held: Vec<Hold>,
    /// The admin approved this pass (`sync --approve`): the holds are lifted.
    pub approved: bool,
    /// Users whose actions wait: backing off after a failure, or quarantined (with why).
    pub deferred: Vec<(UserRef, String)>,
    /// Okta writes left out because Okta refuses them from this tool (read-only attribute,
    /// or mastered by another source), one line per mastering row.
    pub left_out: Vec<String>,
    /// The data problems this plan's users have now: the known ones still holding, and the
    /// values found invalid here for the first time (reported and failed once).
    pub data_problems: Vec<DataProblem>,
    /// The import queue: TELUS users no Okta user matches, with their proposed outcomes
    /// (computed by whole passes and `import confirm`).
    pub imports: Vec<Candidate>,
}

/// Okta refused this attribute for this user (E0000023), when the user's record was as
/// recorded here and the attribute's master in Okta's schema was `master`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KnownRefusal {
    pub okta_id: OktaId,
    pub attr: String,
    pub email: String,
    /// The user's `lastUpdated` after the refusal (after the part of its update that landed).
    pub last_updated: Option<String>,
    /// The user's `credentials.provider.type` then.
    pub provider: Option<String>,
    /// The attribute's master in Okta's schema then (`PROFILE_MASTER`, `OKTA`, `OVERRIDE:APP`,
    /// or `unknown` when the schema could not be read).
    pub master: String,
    pub explanation: String,
}

/// A value of one user's attribute that cannot be written to `system` until it is fixed at
/// its source: a source value that cannot be normalized, or one the target refused as
/// invalid. It holds while `fingerprint` (of the values on both sides) is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataProblem {
    pub okta_id: Option<OktaId>,
    pub ext_id: Option<ExtId>,
    pub email: String,
    pub attr: String,
    /// The system the value could not be written to.
    pub system: System,
    /// The field in that system, and the value that could not be written: for the journal
    /// row of a problem found now (not kept in the store).
    pub field: String,
    pub value: Option<String>,
    pub fingerprint: String,
    /// The target's error code (`CMN-101`, `E0000001`), or `invalid-value` for a value
    /// refused here before any write.
    pub code: String,
    pub explanation: String,
    /// When it was first found (RFC 3339; set by the store).
    pub since: String,
}

impl DataProblem {
    /// Whose problem it is: the Okta id, else the extension.
    pub fn user_key(&self) -> String {
        user_key_of(self.okta_id.as_ref(), self.ext_id.as_ref(), &self.email)
    }
}

/// The key a user's failures, refusals and data problems are kept under: the Okta id, else
/// the extension, else the email.
pub fn user_key_of(okta: Option<&OktaId>, ext: Option<&ExtId>, email: &str) -> String {
    match (okta, ext) {
        (Some(o), _) => o.0.clone(),
        (None, Some(e)) => format!("ext:{}", e.0),
        (None, None) => format!("email:{email}"),
    }
}

impl Plan {
    /// Leaves out the Okta writes that Okta refused for that user before, while nothing they
    /// depended on changed: the user's `lastUpdated` and profile source, and the attribute's
    /// master (`masters`: attribute → master label; a missing one is `unknown`). Each becomes
    /// a `KnownRefusal` note instead of a write that would fail again. A changed record or
    /// master tries the write again.
    pub(super) fn hold_back_known_refusals(
        &mut self,
        known: &[KnownRefusal],
        okta: &[crate::model::OktaUser],
        masters: &BTreeMap<String, String>,
    ) {
        if known.is_empty() {
            return;
        }
        let users: HashMap<&OktaId, &crate::model::OktaUser> =
            okta.iter().map(|u| (&u.id, u)).collect();
        let by_key: HashMap<(&OktaId, &str), &KnownRefusal> = known
            .iter()
            .map(|k| ((&k.okta_id, k.attr.as_str()), k))
            .collect();
        let still = |id: &OktaId, attr: &str| -> Option<&KnownRefusal> {
            let k = by_key.get(&(id, attr))?;
            let u = users.get(id)?;
            let master = masters.get(attr).map(String::as_str).unwrap_or("unknown");
            (u.last_updated == k.last_updated && u.provider == k.provider && master == k.master)
                .then_some(*k)
        };
        let mut notes = Vec::new();
        for a in &mut self.actions {
            let (System::Okta, Action::Update { changes }, Some(id)) =
                (a.system, &mut a.action, a.user.okta_id.as_ref())
            else {
                continue;
            };
            changes.retain(|c| match still(id, &c.attr) {
                Some(k) => {
                    notes.push(Problem {
                        values: None,
                        user: a.user.clone(),
                        kind: ProblemKind::KnownRefusal,
                        attr: Some(c.attr.clone()),
                        message: format!(
                            "{}{}: {}",
                            c.attr,
                            k.provider
                                .as_deref()
                                .map(|p| format!(" (profile source {p})"))
                                .unwrap_or_default(),
                            k.explanation
                        ),
                    });
                    false
                }
                None => true,
            });
        }
        self.actions.retain(|a| !a.changes().is_empty());
        self.problems.extend(notes);
        self.problems.sort();
    }

    /// Leaves out the Okta writes to the attributes in `refused` (Okta name → why, naming the
    /// row): Okta would refuse each such update whole (E0000023), so the user's other
    /// attributes would not sync either. Each attribute becomes one line of `left_out`.
    pub(super) fn leave_out_okta_writes(&mut self, refused: &BTreeMap<String, String>) {
        if refused.is_empty() {
            return;
        }
        let mut users: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &mut self.actions {
            if let (System::Okta, Action::Update { changes }) = (a.system, &mut a.action) {
                changes.retain(|c| match refused.get_key_value(&c.attr) {
                    Some((name, _)) => {
                        *users.entry(name.as_str()).or_default() += 1;
                        false
                    }
                    None => true,
                });
            }
        }
        self.actions.retain(|a| !a.changes().is_empty());
        for (name, n) in users {
            self.left_out
                .push(format!("{} (left out for {n} user(s))", refused[name]));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Whether the holds stop this plan (they do unless approved).
    pub fn is_held(&self) -> bool {
        !self.held.is_empty() && !self.approved
    }

    /// The holds as an admin reads them.
    pub fn held_reasons(&self) -> Vec<String> {
        self.held.iter().map(ToString::to_string).collect()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.actions
            .iter()
            .filter(|a| a.action.as_str() == kind)
            .count()
    }

    pub fn change_count(&self) -> usize {
        self.actions.iter().map(|a| a.changes().len()).sum()
    }

    /// Users that cannot be synced this pass because of a problem found while planning.
    pub fn failed_users(&self) -> usize {
        let mut users: Vec<&UserRef> = self
            .problems
            .iter()
            .filter(|p| p.kind.fails_user())
            .map(|p| &p.user)
            .collect();
        users.sort();
        users.dedup();
        users.len()
    }
}

/// Why a plan is held: nothing is written until `sync --approve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Okta answered no users where the store knew some.
    EmptyOkta { known: usize },
    /// TELUS answered no users where the store knew some.
    EmptyTelus { known: usize },
    /// More creations than `safety.max_creates`.
    Creates { count: usize, max: u32 },
    /// More Okta users confirmed in bulk from the import queue than `safety.max_imports`.
    Imports { count: usize, max: u32 },
    /// More linked TELUS users gone from the listing than `safety.max_vanished`.
    Vanished { count: usize, max: u32 },
    /// More deactivations than `safety.max_deactivations`.
    Deactivations { count: usize, max: u32 },
    /// A larger share of linked users changed than `safety.max_changed_percent`.
    ChangedShare {
        changed: usize,
        linked: usize,
        max_percent: u32,
    },
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::EmptyOkta { known } => write!(
                f,
                "Okta returned no users where the store knew {known}: check the token's scope and okta.scope"
            ),
            Hold::EmptyTelus { known } => write!(
                f,
                "TELUS returned no users where the store knew {known}: check the account and the app's permissions"
            ),
            Hold::Creates { count, max } => write!(
                f,
                "{count} new TELUS users exceed safety.max_creates = {max}"
            ),
            Hold::Imports { count, max } => write!(
                f,
                "{count} Okta users to import exceed safety.max_imports = {max}: review them with `import list`, then `sync --approve` (or `import confirm --all-new --approve`)"
            ),
            Hold::Vanished { count, max } => write!(
                f,
                "{count} linked TELUS users are gone from the listing, over safety.max_vanished = {max}: check the account and the app's permissions before creating them again"
            ),
            Hold::Deactivations { count, max } => write!(
                f,
                "{count} deactivations exceed safety.max_deactivations = {max}"
            ),
            Hold::ChangedShare {
                changed,
                linked,
                max_percent,
            } => write!(
                f,
                "{changed} of {linked} linked users ({}%) would change, over safety.max_changed_percent = {max_percent}",
                changed * 100 / (*linked).max(1)
            ),
        }
    }
}

/// What a candidate would become.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// No Okta user in the whole org holds its email or login: created on confirmation.
    New,
    /// An in-scope Okta user with no TELUS match has the same first and last name but
    /// another email: perhaps the same person. Never confirmed automatically; `import link`
    /// links them, `import confirm` creates a new user anyway.
    Partial { okta_id: OktaId, login: String },
    /// An Okta user this tool cannot match holds the login or email (deactivated, outside
    /// the scope, or linked to another TELUS user): Okta would refuse the create
    /// (`E0000001`), or it would duplicate a person. `why` names the holder and what to do.
    Conflict { okta_id: OktaId, why: String },
    /// Not looked up in the whole org yet (more candidates than one pass looks up): it
    /// cannot be confirmed until a pass has.
    Unchecked,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::New => "new",
            Outcome::Partial { .. } => "partial",
            Outcome::Conflict { .. } => "conflict",
            Outcome::Unchecked => "unchecked",
        }
    }

    /// The Okta user the outcome names, if any.
    pub fn okta_id(&self) -> Option<&OktaId> {
        match self {
            Outcome::Partial { okta_id, .. } | Outcome::Conflict { okta_id, .. } => Some(okta_id),
            _ => None,
        }
    }

    /// What the admin reads beside the outcome.
    pub fn detail(&self) -> String {
        match self {
            Outcome::New => "no Okta user holds this email or login".into(),
            Outcome::Partial { login, .. } => format!(
                "Okta user {login} has the same first and last name but another email: `import link EMAIL {login}` if it is the same person, `import confirm EMAIL` if not"
            ),
            Outcome::Conflict { why, .. } => why.clone(),
            Outcome::Unchecked => {
                "not looked up in Okta yet: a later pass checks it before it can be confirmed"
                    .into()
            }
        }
    }
}

/// One TELUS user in the import queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    /// The normalized (lowercase) email: the key the admin names it by.
    pub email: String,
    pub ext_id: ExtId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub outcome: Outcome,
}

impl Candidate {
    pub fn user(&self) -> UserRef {
        UserRef {
            email: self.email.clone(),
            okta_id: None,
            ext_id: Some(self.ext_id.clone()),
        }
    }
}
