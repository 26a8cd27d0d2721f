//! Table tests, one per reconciliation rule, and properties of the planner (idempotence,
//! determinism, convergence). Pure: no IO.

use super::plan::STATUS_ATTR;
use super::policy::{Master, OnConflict, Policy, Safety};
use super::safety::{HoldContext, hold_reasons};
use super::*;
use crate::model::*;
use std::collections::BTreeMap;

fn okta(id: &str, status: &str, attrs: &[(&str, &str)]) -> OktaUser {
    OktaUser {
        id: OktaId(id.into()),
        status: OktaStatus::parse(status),
        last_updated: None,
        provider: None,
        profile: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn okta_writes_okta_refuses_are_left_out_and_named_once() {
    let update = |email: &str, attrs: &[&str], system: System| PlannedAction {
        user: UserRef {
            email: email.into(),
            okta_id: Some(OktaId(format!("id-{email}"))),
            ext_id: None,
        },
        system,
        action: Action::Update {
            changes: attrs
                .iter()
                .map(|a| AttrChange {
                    attr: a.to_string(),
                    field: a.to_string(),
                    old: None,
                    new: Some("x".into()),
                    rule: Rule::Master,
                })
                .collect(),
        },
    };
    let mut plan = Plan {
        actions: vec![
            update("a@x", &["department", "primaryPhone"], System::Okta),
            update("b@x", &["primaryPhone"], System::Okta),
            // The same attribute name on a TELUS write is not Okta's to refuse.
            update("c@x", &["primaryPhone"], System::Telus),
        ],
        ..Plan::default()
    };
    let refused: BTreeMap<String, String> = [(
        "primaryPhone".to_string(),
        "attributes.primaryPhone: mastered elsewhere".to_string(),
    )]
    .into();
    plan.leave_out_okta_writes(&refused);
    let left: Vec<(&str, System, Vec<&str>)> = plan
        .actions
        .iter()
        .map(|a| {
            (
                a.user.email.as_str(),
                a.system,
                a.changes().iter().map(|c| c.attr.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        left,
        vec![
            ("a@x", System::Okta, vec!["department"]),
            ("c@x", System::Telus, vec!["primaryPhone"]),
        ]
    );
    assert_eq!(
        plan.left_out,
        vec!["attributes.primaryPhone: mastered elsewhere (left out for 2 user(s))"]
    );
    // Nothing refused: the plan is untouched.
    let before = plan.clone();
    plan.leave_out_okta_writes(&BTreeMap::new());
    assert_eq!(plan, before);
}

fn telus(id: &str, status: &str, fields: &[(&str, &str)]) -> TelusUser {
    TelusUser {
        id: ExtId(id.into()),
        in_directory: true,
        status: TelusStatus::parse(status),
        directory_ref: None,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn link(o: &str, e: &str) -> Link {
    Link {
        okta_id: OktaId(o.into()),
        ext_id: ExtId(e.into()),
    }
}

/// Ana, agreeing on every default attribute.
fn ana_okta() -> OktaUser {
    okta(
        "o1",
        "ACTIVE",
        &[
            ("firstName", "Ana"),
            ("lastName", "Silva"),
            ("email", "ana@x.ca"),
            ("mobilePhone", "+16045550101"),
            ("city", "Vancouver"),
            ("state", "BC"),
            ("department", "Sales"),
            ("primaryPhone", "+16045550201#101"),
        ],
    )
}

fn ana_telus() -> TelusUser {
    telus(
        "e1",
        "Enabled",
        &[
            ("contact.firstName", "Ana"),
            ("contact.lastName", "Silva"),
            ("contact.email", "ana@x.ca"),
            ("contact.mobilePhone", "+16045550101"),
            ("contact.businessAddress.city", "Vancouver"),
            ("contact.businessAddress.state", "BC"),
            ("contact.department", "Sales"),
            ("extensionNumber", "101"),
            ("directNumber", "+16045550201"),
        ],
    )
}

fn set(u: &mut OktaUser, k: &str, v: &str) {
    u.profile.insert(k, v.into());
}

fn tset(u: &mut TelusUser, k: &str, v: &str) {
    u.fields.insert(k, v.into());
}

fn run(
    okta: &[OktaUser],
    telus: &[TelusUser],
    links: &[Link],
    baseline: &Baseline,
    policy: &Policy,
) -> Plan {
    plan_pass(
        &Snapshot {
            okta,
            telus,
            links,
            baseline,
            approved: false,
        },
        policy,
    )
}

fn plan1(o: OktaUser, t: TelusUser) -> Plan {
    run(&[o], &[t], &[], &Baseline::new(), &Policy::builtin())
}

fn only_change(plan: &Plan) -> (&PlannedAction, &AttrChange) {
    assert_eq!(plan.actions.len(), 1, "{:#?}", plan.actions);
    let a = &plan.actions[0];
    assert_eq!(a.changes().len(), 1, "{:#?}", a);
    (a, &a.changes()[0])
}

fn policy_with(attr: &str, master: Master) -> Policy {
    let mut p = Policy::builtin();
    for r in &mut p.rules {
        if r.okta_attr == attr {
            r.master = master.clone();
        }
    }
    p
}

#[test]
fn agreeing_users_need_nothing_and_become_baseline() {
    let plan = plan1(ana_okta(), ana_telus());
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert_eq!(plan.new_links, vec![link("o1", "e1")]);
    assert!(
        plan.agreed
            .iter()
            .any(|a| a.get("city").and_then(|v| v.as_deref()) == Some("Vancouver"))
    );
}

#[test]
fn department_change_in_okta_updates_telus() {
    let mut o = ana_okta();
    set(&mut o, "department", "Marketing");
    let plan = plan1(o, ana_telus());
    let (a, c) = only_change(&plan);
    assert_eq!(a.system, System::Telus);
    assert_eq!(c.field, "contact.department");
    assert_eq!(
        (c.old.as_deref(), c.new.as_deref()),
        (Some("Sales"), Some("Marketing"))
    );
    assert_eq!(c.rule, Rule::Master);
}

#[test]
fn email_change_in_okta_keeps_its_link_and_updates_telus() {
    let mut o = ana_okta();
    set(&mut o, "email", "Ana.Silva@X.ca");
    let plan = run(
        &[o],
        &[ana_telus()],
        &[link("o1", "e1")],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert!(plan.new_links.is_empty());
    let (_, c) = only_change(&plan);
    assert_eq!(c.new.as_deref(), Some("ana.silva@x.ca"));
}

#[test]
fn email_case_difference_is_not_a_change() {
    let mut o = ana_okta();
    set(&mut o, "email", "ANA@X.CA");
    assert!(plan1(o, ana_telus()).actions.is_empty());
}

#[test]
fn reformatted_phone_is_not_written() {
    let mut o = ana_okta();
    set(&mut o, "mobilePhone", "(604) 555-0101");
    assert!(plan1(o, ana_telus()).actions.is_empty());
}

#[test]
fn phone_is_written_in_e164() {
    let mut o = ana_okta();
    set(&mut o, "mobilePhone", "604.555.0199");
    let plan = plan1(o, ana_telus());
    assert_eq!(only_change(&plan).1.new.as_deref(), Some("+16045550199"));
}

#[test]
fn province_name_equals_its_code() {
    let mut o = ana_okta();
    set(&mut o, "state", "British Columbia");
    assert!(plan1(o, ana_telus()).actions.is_empty());
}

#[test]
fn province_name_is_written_as_its_code() {
    let mut o = ana_okta();
    set(&mut o, "state", "Québec");
    let plan = plan1(o, ana_telus());
    assert_eq!(only_change(&plan).1.new.as_deref(), Some("QC"));
}

#[test]
fn unknown_state_is_reported_not_written() {
    let mut o = ana_okta();
    set(&mut o, "state", "Narnia");
    let plan = plan1(o, ana_telus());
    assert!(plan.actions.is_empty());
    let p = &plan.problems[0];
    assert_eq!(p.kind, ProblemKind::InvalidValue);
    assert_eq!(p.attr.as_deref(), Some("state"));
    assert_eq!(plan.failed_users(), 1);
}

#[test]
fn primary_phone_template_renders_a_missing_direct_number_as_empty() {
    let mut t = ana_telus();
    t.fields.remove("directNumber");
    let plan = plan1(ana_okta(), t);
    let (a, c) = only_change(&plan);
    assert_eq!(a.system, System::Okta);
    assert_eq!(c.field, "primaryPhone");
    assert_eq!(c.new.as_deref(), Some("#101"));
}

#[test]
fn a_user_the_directory_left_out_has_an_unknown_direct_number_not_an_empty_one() {
    // The same user as in the test above, but not listed by the Company Directory (Frozen,
    // say): the primaryPhone row reads the direct number, so it is left alone; the other
    // rows still plan.
    let mut t = ana_telus();
    t.fields.remove("directNumber");
    t.in_directory = false;
    tset(&mut t, "contact.department", "Legal");
    let plan = plan1(ana_okta(), t.clone());
    let (a, c) = only_change(&plan);
    assert_eq!((a.system, c.attr.as_str()), (System::Telus, "department"));
    // Listed, the same record writes "#101" to Okta.
    t.in_directory = true;
    let plan = plan1(ana_okta(), t);
    assert!(plan.actions.iter().any(|a| a.system == System::Okta));
}

#[test]
fn telus_mastered_direct_number_is_written_back_to_okta() {
    let mut t = ana_telus();
    tset(&mut t, "directNumber", "+16045550999");
    let plan = plan1(ana_okta(), t);
    assert_eq!(
        only_change(&plan).1.new.as_deref(),
        Some("+16045550999#101")
    );
}

#[test]
fn write_back_off_writes_nothing_to_okta() {
    let mut t = ana_telus();
    tset(&mut t, "directNumber", "+16045550999");
    let mut p = Policy::builtin();
    p.features.write_back = false;
    assert!(
        run(&[ana_okta()], &[t], &[], &Baseline::new(), &p)
            .actions
            .is_empty()
    );
}

#[test]
fn update_users_off_writes_nothing_to_telus() {
    let mut o = ana_okta();
    set(&mut o, "department", "Marketing");
    let mut p = Policy::builtin();
    p.features.update_users = false;
    assert!(
        run(&[o], &[ana_telus()], &[], &Baseline::new(), &p)
            .actions
            .is_empty()
    );
}

#[test]
fn priority_list_gives_the_first_system_the_value() {
    let mut t = ana_telus();
    tset(&mut t, "contact.businessAddress.city", "Burnaby");
    let p = policy_with("city", Master::Priority(vec![System::Telus, System::Okta]));
    let plan = run(&[ana_okta()], &[t], &[], &Baseline::new(), &p);
    let (a, c) = only_change(&plan);
    assert_eq!(a.system, System::Okta);
    assert_eq!(c.new.as_deref(), Some("Burnaby"));
}

fn base(pairs: &[(&str, &str, &str)]) -> Baseline {
    pairs
        .iter()
        .map(|(o, a, v)| ((OktaId(o.to_string()), a.to_string()), v.to_string()))
        .collect()
}

#[test]
fn latest_row_takes_the_side_that_changed() {
    let p = policy_with(
        "department",
        Master::Latest {
            on_conflict: OnConflict::Skip,
        },
    );
    let b = base(&[("o1", "department", "Sales")]);
    // TELUS changed: Okta gets it.
    let mut t = ana_telus();
    tset(&mut t, "contact.department", "Support");
    let plan = run(&[ana_okta()], &[t], &[link("o1", "e1")], &b, &p);
    let (a, c) = only_change(&plan);
    assert_eq!(
        (a.system, c.new.as_deref(), c.rule),
        (System::Okta, Some("Support"), Rule::Latest)
    );
    // Okta changed: TELUS gets it.
    let mut o = ana_okta();
    set(&mut o, "department", "Legal");
    let plan = run(&[o], &[ana_telus()], &[link("o1", "e1")], &b, &p);
    let (a, c) = only_change(&plan);
    assert_eq!((a.system, c.new.as_deref()), (System::Telus, Some("Legal")));
}

#[test]
fn latest_conflict_settled_by_on_conflict_is_reported_not_failed() {
    let p = policy_with(
        "department",
        Master::Latest {
            on_conflict: OnConflict::Prefer(System::Telus),
        },
    );
    let b = base(&[("o1", "department", "Sales")]);
    let mut o = ana_okta();
    set(&mut o, "department", "Legal");
    let mut t = ana_telus();
    tset(&mut t, "contact.department", "Support");
    let plan = run(&[o], &[t], &[link("o1", "e1")], &b, &p);
    let (a, c) = only_change(&plan);
    assert_eq!(
        (a.system, c.new.as_deref(), c.rule),
        (System::Okta, Some("Support"), Rule::Conflict)
    );
    assert!(
        plan.problems
            .iter()
            .any(|p| p.kind == ProblemKind::ConflictSettled)
    );
    assert_eq!(plan.failed_users(), 0);
}

#[test]
fn latest_conflict_with_skip_writes_nothing_and_fails_the_user() {
    let p = policy_with(
        "department",
        Master::Latest {
            on_conflict: OnConflict::Skip,
        },
    );
    let b = base(&[("o1", "department", "Sales")]);
    let mut o = ana_okta();
    set(&mut o, "department", "Legal");
    let mut t = ana_telus();
    tset(&mut t, "contact.department", "Support");
    let plan = run(&[o], &[t], &[link("o1", "e1")], &b, &p);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.problems[0].kind, ProblemKind::ConflictSkipped);
    assert_eq!(plan.failed_users(), 1);
}

#[test]
fn drift_on_the_non_master_side_is_reported_then_overwritten() {
    let b = base(&[("o1", "department", "Sales")]);
    let mut t = ana_telus();
    tset(&mut t, "contact.department", "Facilities");
    let plan = run(
        &[ana_okta()],
        &[t],
        &[link("o1", "e1")],
        &b,
        &Policy::builtin(),
    );
    let (_, c) = only_change(&plan);
    assert_eq!(
        (c.rule, c.old.as_deref(), c.new.as_deref()),
        (Rule::Drift, Some("Facilities"), Some("Sales"))
    );
    assert!(plan.problems.iter().any(|p| p.kind == ProblemKind::Drift));
}

#[test]
fn empty_master_value_clears_the_target() {
    let mut o = ana_okta();
    o.profile.remove("department");
    let plan = plan1(o, ana_telus());
    let (_, c) = only_change(&plan);
    assert_eq!((c.old.as_deref(), c.new.as_deref()), (Some("Sales"), None));
}

#[test]
fn empty_master_value_never_clears_a_required_field() {
    let mut o = ana_okta();
    set(&mut o, "firstName", "  ");
    let plan = run(
        &[o],
        &[ana_telus()],
        &[link("o1", "e1")],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.problems[0].kind, ProblemKind::RequiredEmpty);
}

#[test]
fn two_telus_users_with_one_email_link_nothing() {
    let mut t2 = ana_telus();
    t2.id = ExtId("e2".into());
    tset(&mut t2, "contact.email", "ANA@x.ca");
    let mut o = ana_okta();
    set(&mut o, "department", "Marketing");
    let plan = run(
        &[o],
        &[ana_telus(), t2],
        &[],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert!(plan.actions.is_empty() && plan.new_links.is_empty());
    assert_eq!(plan.problems[0].kind, ProblemKind::DuplicateEmail);
    assert_eq!(
        plan.problems[0].message,
        "More than one record found for Email: ana@x.ca. Email is the unique key: remove the duplicate."
    );
    assert_eq!(plan.failed_users(), 1);
}

#[test]
fn two_active_okta_users_with_one_email_link_nothing() {
    let mut o2 = ana_okta();
    o2.id = OktaId("o2".into());
    let plan = run(
        &[ana_okta(), o2],
        &[ana_telus()],
        &[],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert!(plan.actions.is_empty() && plan.new_links.is_empty());
    assert_eq!(plan.failed_users(), 2);
}

#[test]
fn a_live_okta_user_wins_the_email_over_a_deactivated_one() {
    let mut gone = ana_okta();
    gone.id = OktaId("o0".into());
    gone.status = OktaStatus::Deprovisioned;
    let plan = run(
        &[gone, ana_okta()],
        &[ana_telus()],
        &[],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert_eq!(plan.new_links, vec![link("o1", "e1")]);
    assert!(plan.actions.is_empty());
}

#[test]
fn stored_link_wins_over_email() {
    let mut other = ana_telus();
    other.id = ExtId("e9".into());
    tset(&mut other, "contact.email", "someone@x.ca");
    tset(&mut other, "contact.department", "Legal");
    // Linked to e9 although e1 has the same email: e9 is updated, e1 is unmatched.
    let plan = run(
        &[ana_okta()],
        &[ana_telus(), other],
        &[link("o1", "e9")],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert!(
        plan.actions
            .iter()
            .all(|a| a.user.ext_id == Some(ExtId("e9".into())))
    );
    assert!(
        plan.problems
            .iter()
            .any(|p| p.kind == ProblemKind::UnmatchedTelus)
    );
}

#[test]
fn unmatched_telus_user_is_reported_and_left_alone() {
    let plan = run(
        &[],
        &[ana_telus()],
        &[],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.problems[0].kind, ProblemKind::UnmatchedTelus);
    assert_eq!(plan.failed_users(), 0);
}

#[test]
fn active_okta_user_without_match_is_created_in_telus() {
    let plan = run(
        &[ana_okta()],
        &[],
        &[],
        &Baseline::new(),
        &Policy::builtin(),
    );
    let a = &plan.actions[0];
    assert!(matches!(a.action, Action::Create { .. }));
    let fields: BTreeMap<_, _> = a
        .changes()
        .iter()
        .map(|c| (c.field.as_str(), c.new.as_deref()))
        .collect();
    assert_eq!(fields["contact.email"], Some("ana@x.ca"));
    assert_eq!(fields["contact.businessAddress.state"], Some("BC"));
    assert!(
        !fields.contains_key("primaryPhone"),
        "templates are never targets"
    );
    assert!(
        a.changes()
            .iter()
            .all(|c| c.rule == Rule::Create && c.old.is_none())
    );
}

#[test]
fn staged_or_suspended_users_are_not_created_and_create_can_be_off() {
    let mut staged = ana_okta();
    staged.status = OktaStatus::Staged;
    assert!(
        run(&[staged], &[], &[], &Baseline::new(), &Policy::builtin())
            .actions
            .is_empty()
    );
    let mut p = Policy::builtin();
    p.features.create_users = false;
    let plan = run(&[ana_okta()], &[], &[], &Baseline::new(), &p);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.problems[0].kind, ProblemKind::UnmatchedOkta);
}

/// What a pass does for one Okta status: (status, unmatched user created, linked user's
/// department synced, linked enabled user disabled, linked user disabled by this tool enabled).
const STATUS_TABLE: &[(&str, bool, bool, bool, bool)] = &[
    ("ACTIVE", true, true, false, true),
    ("PROVISIONED", true, true, false, true),
    ("RECOVERY", true, true, false, true),
    ("PASSWORD_EXPIRED", true, true, false, true),
    ("LOCKED_OUT", true, true, false, true),
    // Not activated yet (imported users are STAGED): never created, never disabled, but
    // its rows sync, so that its primaryPhone is written back.
    ("STAGED", false, true, false, false),
    ("SUSPENDED", false, false, true, false),
    ("DEPROVISIONED", false, false, true, false),
];

/// One linked pair (o1 ↔ e1) under the built-in table, no baseline.
fn linked(o: OktaUser, t: TelusUser) -> Plan {
    run(
        &[o],
        &[t],
        &[link("o1", "e1")],
        &Baseline::new(),
        &Policy::builtin(),
    )
}

fn with_status(status: &str) -> OktaUser {
    let mut o = ana_okta();
    o.status = OktaStatus::parse(status);
    o
}

#[test]
fn unmatched_okta_user_is_created_for_each_live_status_only() {
    for &(status, created, ..) in STATUS_TABLE {
        let plan = run(
            &[with_status(status)],
            &[],
            &[],
            &Baseline::new(),
            &Policy::builtin(),
        );
        assert_eq!(plan.count("create"), usize::from(created), "{status}");
        // A live user that cannot be created would be reported; none is here.
        assert_eq!(plan.failed_users(), 0, "{status}");
    }
}

#[test]
fn linked_user_rows_sync_for_live_and_staged_statuses() {
    for &(status, _, synced, ..) in STATUS_TABLE {
        let mut o = with_status(status);
        set(&mut o, "department", "Marketing");
        let plan = linked(o, ana_telus());
        let dept = plan
            .actions
            .iter()
            .flat_map(|a| a.changes())
            .any(|c| c.attr == "department" && c.new.as_deref() == Some("Marketing"));
        assert_eq!(dept, synced, "{status}: {:#?}", plan.actions);
    }
}

#[test]
fn linked_enabled_user_is_disabled_only_for_suspended_and_deprovisioned() {
    for &(status, _, _, disabled, _) in STATUS_TABLE {
        let plan = linked(with_status(status), ana_telus());
        assert_eq!(plan.count("deactivate"), usize::from(disabled), "{status}");
    }
}

#[test]
fn user_this_tool_disabled_is_enabled_again_for_live_statuses_only() {
    let ours = base(&[("o1", STATUS_ATTR, "Disabled")]);
    for &(status, _, _, _, enabled) in STATUS_TABLE {
        let mut t = ana_telus();
        t.status = TelusStatus::Disabled;
        let plan = run(
            &[with_status(status)],
            &[t],
            &[link("o1", "e1")],
            &ours,
            &Policy::builtin(),
        );
        assert_eq!(plan.count("reactivate"), usize::from(enabled), "{status}");
        assert_eq!(plan.count("deactivate"), 0, "{status}");
    }
}

#[test]
fn staged_user_disabled_in_telus_is_left_so_without_a_problem() {
    let mut t = ana_telus();
    t.status = TelusStatus::Disabled;
    let plan = linked(with_status("STAGED"), t);
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert!(plan.problems.is_empty(), "{:#?}", plan.problems);
}

#[test]
fn email_match_prefers_a_staged_user_over_a_deactivated_one() {
    let gone = {
        let mut o = with_status("DEPROVISIONED");
        o.id = OktaId("o0".into());
        o
    };
    let plan = run(
        &[gone, with_status("STAGED")],
        &[ana_telus()],
        &[],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert_eq!(plan.new_links, vec![link("o1", "e1")]);
    assert_eq!(plan.count("deactivate"), 0);
}

#[test]
fn country_names_in_telus_agree_with_okta_codes() {
    for (okta_code, telus_name) in [
        ("CA", "Canada"),
        ("US", "USA"),
        ("US", "United States"),
        ("US", "United States of America"),
        ("CA", "CAN"),
    ] {
        let mut o = ana_okta();
        set(&mut o, "countryCode", okta_code);
        let mut t = ana_telus();
        tset(&mut t, "contact.businessAddress.country", telus_name);
        let plan = plan1(o, t);
        assert!(plan.actions.is_empty(), "{telus_name}: {:#?}", plan.actions);
        // The baseline holds the compared form.
        let agreed = plan.agreed[0].get("countryCode").cloned().flatten();
        assert_eq!(agreed.as_deref(), Some(okta_code));
    }
}

#[test]
fn a_country_written_to_telus_is_its_name_and_to_okta_its_code() {
    let mut o = ana_okta();
    set(&mut o, "countryCode", "US");
    let mut t = ana_telus();
    tset(&mut t, "contact.businessAddress.country", "Canada");
    let plan = plan1(o.clone(), t.clone());
    let (a, c) = only_change(&plan);
    assert_eq!(a.system, System::Telus);
    assert_eq!(
        (c.old.as_deref(), c.new.as_deref()),
        (Some("Canada"), Some("United States"))
    );
    let p = policy_with("countryCode", Master::Priority(vec![System::Telus]));
    let plan = run(&[o], &[t], &[], &Baseline::new(), &p);
    let (a, c) = only_change(&plan);
    assert_eq!(a.system, System::Okta);
    assert_eq!(c.new.as_deref(), Some("CA"));
    // A created user gets the name too.
    let mut o = ana_okta();
    set(&mut o, "countryCode", "CA");
    let plan = run(&[o], &[], &[], &Baseline::new(), &Policy::builtin());
    let country = plan.actions[0]
        .changes()
        .iter()
        .find(|c| c.attr == "countryCode")
        .and_then(|c| c.new.clone());
    assert_eq!(country.as_deref(), Some("Canada"));
}

#[test]
fn a_phone_with_an_extension_plans_no_write_and_one_note() {
    for raw in ["(604) 555-0101 x123", "(604) 555-0101 ext. 123"] {
        let mut o = ana_okta();
        set(&mut o, "mobilePhone", raw);
        let plan = plan1(o, ana_telus());
        assert!(plan.actions.is_empty(), "{raw}: {:#?}", plan.actions);
        let notes: Vec<&Problem> = plan
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::ExtensionLeftOut)
            .collect();
        assert_eq!(notes.len(), 1, "{raw}: {:#?}", plan.problems);
        assert!(!notes[0].message.contains("123"));
        assert_eq!(plan.failed_users(), 0);
    }
    // A changed number is written without its extension.
    let mut o = ana_okta();
    set(&mut o, "mobilePhone", "(604) 555-0199 x123");
    let plan = plan1(o, ana_telus());
    let (_, c) = only_change(&plan);
    assert_eq!(c.new.as_deref(), Some("+16045550199"));
}

#[test]
fn creating_without_an_email_is_refused() {
    let mut o = ana_okta();
    o.profile.remove("email");
    o.profile.insert("login", "ana".into());
    // No email: nothing to match on, and nothing to create with.
    assert!(
        run(&[o], &[], &[], &Baseline::new(), &Policy::builtin())
            .actions
            .is_empty()
    );
}

#[test]
fn suspended_okta_user_is_deactivated_never_deleted() {
    let mut o = ana_okta();
    o.status = OktaStatus::Suspended;
    set(&mut o, "department", "Marketing");
    let plan = run(
        &[o],
        &[ana_telus()],
        &[link("o1", "e1")],
        &Baseline::new(),
        &Policy::builtin(),
    );
    let (a, c) = only_change(&plan);
    assert!(matches!(a.action, Action::Deactivate { .. }));
    assert_eq!(
        (c.field.as_str(), c.new.as_deref()),
        (STATUS_ATTR, Some("Disabled"))
    );
}

#[test]
fn okta_user_leaving_scope_is_deactivated() {
    let plan = run(
        &[],
        &[ana_telus()],
        &[link("o1", "e1")],
        &Baseline::new(),
        &Policy::builtin(),
    );
    let (a, _) = only_change(&plan);
    assert!(
        matches!(&a.action, Action::Deactivate { reason, .. } if reason.contains("left scope"))
    );
}

#[test]
fn deactivate_off_leaves_telus_enabled() {
    let mut p = Policy::builtin();
    p.features.deactivate_users = false;
    assert!(
        run(
            &[],
            &[ana_telus()],
            &[link("o1", "e1")],
            &Baseline::new(),
            &p
        )
        .actions
        .is_empty()
    );
}

#[test]
fn already_disabled_user_is_not_deactivated_again() {
    let mut o = ana_okta();
    o.status = OktaStatus::Deprovisioned;
    let mut t = ana_telus();
    t.status = TelusStatus::Disabled;
    assert!(
        run(
            &[o],
            &[t],
            &[link("o1", "e1")],
            &Baseline::new(),
            &Policy::builtin()
        )
        .actions
        .is_empty()
    );
}

#[test]
fn reactivation_only_for_users_this_tool_disabled() {
    let mut t = ana_telus();
    t.status = TelusStatus::Disabled;
    let ours = base(&[("o1", STATUS_ATTR, "Disabled")]);
    let plan = run(
        &[ana_okta()],
        std::slice::from_ref(&t),
        &[link("o1", "e1")],
        &ours,
        &Policy::builtin(),
    );
    assert!(matches!(
        only_change(&plan).0.action,
        Action::Reactivate { .. }
    ));
    let plan = run(
        &[ana_okta()],
        &[t],
        &[link("o1", "e1")],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.problems[0].kind, ProblemKind::DisabledElsewhere);
}

// ---- safety holds ----

fn ctx(has_baseline: bool) -> HoldContext {
    HoldContext {
        known_okta: 5,
        known_telus: 5,
        okta_read: 5,
        telus_read: 5,
        has_baseline,
    }
}

#[test]
fn more_deactivations_than_allowed_hold_the_plan() {
    let telus: Vec<TelusUser> = (0..3)
        .map(|i| {
            let mut t = ana_telus();
            t.id = ExtId(format!("e{i}"));
            t
        })
        .collect();
    let links: Vec<Link> = (0..3)
        .map(|i| link(&format!("o{i}"), &format!("e{i}")))
        .collect();
    let plan = run(&[], &telus, &links, &Baseline::new(), &Policy::builtin());
    let safety = Safety {
        max_deactivations: 2,
        max_changed_percent: 100,
        ..Safety::default()
    };
    let reasons = hold_reasons(&plan, &safety, &ctx(true));
    assert!(
        reasons[0]
            .to_string()
            .contains("3 deactivations exceed safety.max_deactivations = 2"),
        "{reasons:?}"
    );
    let safety = Safety {
        max_deactivations: 3,
        max_changed_percent: 100,
        ..Safety::default()
    };
    assert!(hold_reasons(&plan, &safety, &ctx(true)).is_empty());
}

#[test]
fn changed_share_holds_only_once_a_baseline_exists() {
    let mut o = ana_okta();
    set(&mut o, "department", "Marketing");
    let plan = plan1(o, ana_telus());
    let safety = Safety {
        max_deactivations: 10,
        max_changed_percent: 20,
        ..Safety::default()
    };
    assert!(hold_reasons(&plan, &safety, &ctx(false)).is_empty());
    let reasons = hold_reasons(&plan, &safety, &ctx(true));
    assert!(
        reasons[0]
            .to_string()
            .contains("1 of 1 linked users (100%)"),
        "{reasons:?}"
    );
}

#[test]
fn an_empty_directory_where_users_were_known_holds() {
    let plan = Plan::default();
    let mut c = ctx(true);
    c.telus_read = 0;
    let reasons = hold_reasons(&plan, &Safety::default(), &c);
    assert!(
        reasons[0]
            .to_string()
            .starts_with("TELUS returned no users where the store knew 5")
    );
    c.known_telus = 0;
    assert!(hold_reasons(&plan, &Safety::default(), &c).is_empty());
}

// ---- properties ----

mod props {
    use super::*;
    use proptest::prelude::*;

    const EMAILS: &[&str] = &["a@x.ca", "b@x.ca", "B@X.ca", "c@x.ca", "d@x.ca", ""];
    const NAMES: &[&str] = &["Ana", " Ana ", "Bob", "Zoë", ""];
    const PHONES: &[&str] = &[
        "604-555-0142",
        "+16045550142",
        "(604) 555 0142",
        "555-01",
        "+442079460958",
        "",
    ];
    const STATES: &[&str] = &[
        "BC",
        "British Columbia",
        "b.c.",
        "Québec",
        "QC",
        "Narnia",
        "",
    ];
    const DEPTS: &[&str] = &["Sales", "sales", "Legal", ""];
    const OKTA_STATUS: &[&str] = &[
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "SUSPENDED",
        "DEPROVISIONED",
        "STAGED",
    ];
    const TELUS_STATUS: &[&str] = &["Enabled", "Enabled", "Disabled", "NotActivated"];
    const DIRECT: &[&str] = &["+16045550201", "+16045550202", ""];

    fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        proptest::sample::select(pool)
    }

    fn okta_user(i: usize) -> impl Strategy<Value = OktaUser> {
        (
            pick(EMAILS),
            pick(NAMES),
            pick(NAMES),
            pick(PHONES),
            pick(STATES),
            pick(DEPTS),
            pick(OKTA_STATUS),
            pick(DIRECT),
        )
            .prop_map(
                move |(email, first, last, phone, state, dept, status, pp)| {
                    let mut attrs = vec![
                        ("email", email),
                        ("firstName", first),
                        ("lastName", last),
                        ("mobilePhone", phone),
                        ("state", state),
                        ("department", dept),
                        ("primaryPhone", pp),
                    ];
                    attrs.retain(|(_, v)| !v.is_empty());
                    okta(&format!("o{i}"), status, &attrs)
                },
            )
    }

    fn telus_user(i: usize) -> impl Strategy<Value = TelusUser> {
        (
            pick(EMAILS),
            pick(NAMES),
            pick(NAMES),
            pick(PHONES),
            pick(STATES),
            pick(DEPTS),
            pick(TELUS_STATUS),
            pick(DIRECT),
        )
            .prop_map(
                move |(email, first, last, phone, state, dept, status, direct)| {
                    let ext = format!("{}", 100 + i);
                    let mut fields = vec![
                        ("contact.email", email),
                        ("contact.firstName", first),
                        ("contact.lastName", last),
                        ("contact.mobilePhone", phone),
                        ("contact.businessAddress.state", state),
                        ("contact.department", dept),
                        ("extensionNumber", ext.as_str()),
                        ("directNumber", direct),
                    ];
                    fields.retain(|(_, v)| !v.is_empty());
                    telus(&format!("e{i}"), status, &fields)
                },
            )
    }

    fn directory() -> impl Strategy<Value = (Vec<OktaUser>, Vec<TelusUser>)> {
        (0usize..6, 0usize..6).prop_flat_map(|(n, m)| {
            (
                (0..n).map(okta_user).collect::<Vec<_>>(),
                (0..m).map(telus_user).collect::<Vec<_>>(),
            )
        })
    }

    fn latest_policy() -> Policy {
        let mut p = Policy::builtin();
        for r in &mut p.rules {
            if r.okta_attr == "department" {
                r.master = Master::Latest {
                    on_conflict: OnConflict::Prefer(System::Okta),
                };
            }
            if r.okta_attr == "lastName" {
                r.master = Master::Latest {
                    on_conflict: OnConflict::Skip,
                };
            }
            if r.okta_attr == "mobilePhone" {
                r.master = Master::Priority(vec![System::Telus, System::Okta]);
            }
        }
        p
    }

    /// State the fakes would hold after a plan is applied, with links and baseline as the
    /// store would record them.
    struct World {
        okta: Vec<OktaUser>,
        telus: Vec<TelusUser>,
        links: Vec<Link>,
        baseline: Baseline,
    }

    impl World {
        fn plan(&self, p: &Policy) -> Plan {
            run(&self.okta, &self.telus, &self.links, &self.baseline, p)
        }

        fn apply(&mut self, plan: &Plan) {
            self.links.extend(plan.new_links.iter().cloned());
            for a in &plan.agreed {
                for (attr, value) in &a.values {
                    let key = (a.okta_id.clone(), attr.to_string());
                    match value {
                        Some(v) => self.baseline.insert(key, v.clone()),
                        None => self.baseline.remove(&key),
                    };
                }
            }
            for action in &plan.actions {
                let okta_id = action.user.okta_id.clone().unwrap();
                let ext = match &action.action {
                    Action::Create { changes, .. } => {
                        let n = self.telus.len() + 500;
                        let mut t = telus(&format!("new{n}"), "Enabled", &[]);
                        t.fields.insert("extensionNumber", n.to_string());
                        for c in changes {
                            t.fields.insert(&c.field, c.new.clone().unwrap_or_default());
                        }
                        self.links.push(Link {
                            okta_id: okta_id.clone(),
                            ext_id: t.id.clone(),
                        });
                        self.telus.push(t);
                        None
                    }
                    _ => action.user.ext_id.clone(),
                };
                for c in action.changes() {
                    match (&action.action, action.system) {
                        (Action::Create { .. }, _) => {}
                        (Action::Deactivate { .. } | Action::Reactivate { .. }, _) => {
                            let t = self
                                .telus
                                .iter_mut()
                                .find(|t| Some(&t.id) == ext.as_ref())
                                .unwrap();
                            t.status = TelusStatus::parse(c.new.as_deref().unwrap());
                        }
                        (_, System::Telus) => {
                            let t = self
                                .telus
                                .iter_mut()
                                .find(|t| Some(&t.id) == ext.as_ref())
                                .unwrap();
                            t.fields.insert(&c.field, c.new.clone().unwrap_or_default());
                        }
                        (_, System::Okta) => {
                            let o = self.okta.iter_mut().find(|o| o.id == okta_id).unwrap();
                            match &c.new {
                                Some(v) => o.profile.insert(&c.field, v.clone()),
                                None => o.profile.remove(&c.field),
                            };
                        }
                    }
                    let key = (okta_id.clone(), c.attr.clone());
                    match &c.new {
                        Some(v) => self.baseline.insert(key, v.clone()),
                        None => self.baseline.remove(&key),
                    };
                }
            }
        }
    }

    fn converges(
        okta: Vec<OktaUser>,
        telus: Vec<TelusUser>,
        policy: &Policy,
    ) -> Result<(), TestCaseError> {
        let mut w = World {
            okta,
            telus,
            links: Vec::new(),
            baseline: Baseline::new(),
        };
        // A create is followed by the write-back of its new extension number: two rounds.
        for _ in 0..2 {
            let plan = w.plan(policy);
            w.apply(&plan);
        }
        let last = w.plan(policy);
        prop_assert!(
            last.actions.is_empty(),
            "not converged: {:#?}",
            last.actions
        );
        prop_assert!(last.new_links.is_empty());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn a_converged_state_plans_nothing((okta, telus) in directory()) {
            let mut w = World { okta, telus, links: Vec::new(), baseline: Baseline::new() };
            for _ in 0..3 {
                let plan = w.plan(&Policy::builtin());
                w.apply(&plan);
            }
            let plan = w.plan(&Policy::builtin());
            prop_assert!(plan.actions.is_empty());
            prop_assert!(plan.agreed.is_empty(), "agreed values are already the baseline");
        }

        #[test]
        fn the_plan_does_not_depend_on_input_order((okta, telus) in directory(), seed in any::<u64>()) {
            let p = latest_policy();
            let a = run(&okta, &telus, &[], &Baseline::new(), &p);
            let mut okta2 = okta.clone();
            let mut telus2 = telus.clone();
            let mut rng = seed;
            let mut next = || { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; rng };
            for i in (1..okta2.len()).rev() { let j = (next() as usize) % (i + 1); okta2.swap(i, j); }
            for i in (1..telus2.len()).rev() { let j = (next() as usize) % (i + 1); telus2.swap(i, j); }
            let b = run(&okta2, &telus2, &[], &Baseline::new(), &p);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn applying_the_plan_converges_with_default_rows((okta, telus) in directory()) {
            converges(okta, telus, &Policy::builtin())?;
        }

        #[test]
        fn applying_the_plan_converges_with_latest_and_priority_rows((okta, telus) in directory()) {
            converges(okta, telus, &latest_policy())?;
        }
    }
}

// ---- references, vanished users, creation limits ----

fn plan_with(okta: &[OktaUser], telus: &[TelusUser], links: &[Link], approved: bool) -> Plan {
    plan_pass(
        &Snapshot {
            okta,
            telus,
            links,
            baseline: &Baseline::new(),
            approved,
        },
        &Policy::builtin(),
    )
}

#[test]
fn a_reference_to_an_in_scope_okta_id_links_before_email() {
    // The TELUS user's email was changed in the portal; the store was lost. Its reference
    // still names Ana: linked (and its email set back), never created again.
    let mut t = ana_telus();
    tset(&mut t, "contact.email", "ana.old@x.ca");
    t.directory_ref = Some(OktaId("o1".into()));
    let plan = plan_with(&[ana_okta()], &[t], &[], false);
    assert_eq!(plan.new_links, vec![link("o1", "e1")]);
    assert_eq!(plan.count("create"), 0);
    let (_, change) = only_change(&plan);
    assert_eq!(change.attr, "email");
}

#[test]
fn a_reference_to_an_okta_id_outside_the_scope_is_ignored() {
    let mut t = ana_telus();
    t.directory_ref = Some(OktaId("not-in-scope".into()));
    let plan = plan_with(&[ana_okta()], &[t], &[], false);
    // Matched by email as if it carried no reference.
    assert_eq!(plan.new_links, vec![link("o1", "e1")]);
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

#[test]
fn two_telus_users_referencing_one_okta_id_link_nothing() {
    let mut a = ana_telus();
    a.directory_ref = Some(OktaId("o1".into()));
    let mut b = telus("e2", "Enabled", &[("contact.email", "other@x.ca")]);
    b.directory_ref = Some(OktaId("o1".into()));
    let plan = plan_with(&[ana_okta()], &[a, b], &[], false);
    assert!(plan.new_links.is_empty() && plan.actions.is_empty());
    assert_eq!(plan.problems.len(), 1, "{:#?}", plan.problems);
    assert_eq!(plan.problems[0].kind, ProblemKind::DuplicateReference);
    assert_eq!(plan.failed_users(), 1);
}

#[test]
fn a_vanished_linked_user_is_reported_and_recreated_only_with_approval() {
    let plan = plan_with(&[ana_okta()], &[], &[link("o1", "e1")], false);
    assert_eq!(plan.count("create"), 0);
    assert_eq!(plan.vanished, 1);
    assert!(
        plan.problems
            .iter()
            .any(|p| p.kind == ProblemKind::Vanished && p.user.email == "ana@x.ca"),
        "{:#?}",
        plan.problems
    );
    let approved = plan_with(&[ana_okta()], &[], &[link("o1", "e1")], true);
    assert_eq!(approved.count("create"), 1);
}

#[test]
fn creations_and_vanished_users_over_their_limits_hold_the_plan() {
    let oktas: Vec<OktaUser> = (0..4)
        .map(|i| {
            okta(
                &format!("o{i}"),
                "ACTIVE",
                &[("firstName", "N"), ("email", &format!("n{i}@x.ca"))],
            )
        })
        .collect();
    let plan = plan_with(&oktas, &[], &[], false);
    assert_eq!(plan.count("create"), 4);
    let safety = Safety {
        max_creates: 3,
        ..Safety::default()
    };
    // The first pass too: no baseline.
    let reasons = hold_reasons(&plan, &safety, &ctx(false));
    assert!(
        reasons.iter().any(|r| r
            .to_string()
            .contains("4 new TELUS users exceed safety.max_creates = 3")),
        "{reasons:?}"
    );
    let links: Vec<Link> = (0..4)
        .map(|i| link(&format!("o{i}"), &format!("e{i}")))
        .collect();
    let plan = plan_with(&oktas, &[], &links, false);
    assert_eq!((plan.vanished, plan.count("create")), (4, 0));
    let safety = Safety {
        max_vanished: 3,
        ..Safety::default()
    };
    let reasons = hold_reasons(&plan, &safety, &ctx(true));
    assert!(
        reasons
            .iter()
            .any(|r| r.to_string().contains("4 linked TELUS users are gone")),
        "{reasons:?}"
    );
    let safety = Safety {
        max_vanished: 4,
        max_changed_percent: 100,
        ..Safety::default()
    };
    assert!(hold_reasons(&plan, &safety, &ctx(true)).is_empty());
}

mod data_problems {
    use super::*;
    use crate::reconcile::data::{change_fingerprint, hold_back_data_problems};

    fn hugo() -> OktaUser {
        let mut o = ana_okta();
        set(&mut o, "mobilePhone", "555-0108");
        o
    }

    fn known(plan: &Plan) -> Vec<DataProblem> {
        plan.data_problems
            .iter()
            .cloned()
            .map(|mut d| {
                d.since = "2026-12-01T00:00:00Z".into();
                d
            })
            .collect()
    }

    #[test]
    fn an_invalid_value_fails_once_then_is_a_known_data_problem_until_it_changes() {
        let mut first = plan1(hugo(), ana_telus());
        hold_back_data_problems(&mut first, &[]);
        assert_eq!(first.failed_users(), 1);
        assert_eq!(first.data_problems.len(), 1);
        assert!(first.data_problems[0].since.is_empty(), "new");
        let stored = known(&first);

        // Unchanged: listed, not failing.
        let mut again = plan1(hugo(), ana_telus());
        hold_back_data_problems(&mut again, &stored);
        assert_eq!(again.failed_users(), 0, "{:#?}", again.problems);
        assert!(
            again
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::DataProblem)
        );
        assert_eq!(again.data_problems, stored);

        // Changed in Okta to another bad value: reported and failed again.
        let mut o = hugo();
        set(&mut o, "mobilePhone", "555-0199");
        let mut changed = plan1(o, ana_telus());
        hold_back_data_problems(&mut changed, &stored);
        assert_eq!(changed.failed_users(), 1);
        // Changed on the TELUS side: tried again too.
        let mut t = ana_telus();
        tset(&mut t, "contact.mobilePhone", "+16045550177");
        let mut changed = plan1(hugo(), t);
        hold_back_data_problems(&mut changed, &stored);
        assert_eq!(changed.failed_users(), 1);

        // Fixed: no problem, and the store's entry is not kept.
        let mut o = hugo();
        set(&mut o, "mobilePhone", "(604) 555-0199");
        let mut fixed = plan1(o, ana_telus());
        hold_back_data_problems(&mut fixed, &stored);
        assert!(fixed.data_problems.is_empty());
        assert_eq!(only_change(&fixed).1.new.as_deref(), Some("+16045550199"));
    }

    /// A value over the `maxLength` RingCentral's spec gives the TELUS field is a data
    /// problem at plan time: never sent, the user's other changes go.
    #[test]
    fn a_value_over_the_telus_fields_max_length_is_a_data_problem_before_any_write() {
        let mut o = ana_okta();
        set(&mut o, "department", &"D".repeat(65));
        set(&mut o, "city", "Burnaby");
        let plan = plan1(o, ana_telus());
        let changes: Vec<_> = plan.actions.iter().flat_map(|a| a.changes()).collect();
        assert!(changes.iter().all(|c| c.attr != "department"));
        assert!(changes.iter().any(|c| c.attr == "city"));
        assert_eq!(plan.data_problems.len(), 1, "{:?}", plan.data_problems);
        assert_eq!(plan.data_problems[0].code, "invalid-value");
        assert!(
            plan.data_problems[0]
                .explanation
                .contains("over TELUS's 64")
        );
        let mut fits = ana_okta();
        set(&mut fits, "department", &"D".repeat(64));
        assert!(plan1(fits, ana_telus()).data_problems.is_empty());
    }

    #[test]
    fn a_value_the_target_refused_is_not_sent_again_while_both_sides_are_unchanged() {
        let mut o = ana_okta();
        // A value TELUS refuses for a reason the spec does not bound (its answer below).
        set(&mut o, "department", "Finance/Ops");
        set(&mut o, "city", "Burnaby");
        let plan = plan1(o.clone(), ana_telus());
        let dept = plan.actions[0]
            .changes()
            .iter()
            .find(|c| c.attr == "department")
            .unwrap()
            .clone();
        let refused = DataProblem {
            okta_id: Some(OktaId("o1".into())),
            ext_id: Some(ExtId("e1".into())),
            email: "ana@x.ca".into(),
            attr: "department".into(),
            system: System::Telus,
            field: String::new(),
            value: None,
            fingerprint: change_fingerprint(&dept),
            code: "CMN-101".into(),
            explanation: "The [contact.department] is invalid.".into(),
            since: "2026-12-01T00:00:00Z".into(),
        };
        let mut held = plan.clone();
        hold_back_data_problems(&mut held, std::slice::from_ref(&refused));
        // The city still goes; the department waits, listed and not failing.
        let (_, c) = only_change(&held);
        assert_eq!(c.attr, "city");
        assert_eq!(held.failed_users(), 0);
        assert_eq!(held.data_problems, vec![refused.clone()]);
        // The department changed in Okta: sent again, and the old problem is gone.
        set(&mut o, "department", "Research");
        let mut retried = plan1(o, ana_telus());
        hold_back_data_problems(&mut retried, &[refused]);
        assert_eq!(retried.change_count(), 2);
        assert!(retried.data_problems.is_empty());
    }
}

mod imports {
    //! The import queue: outcomes, confirmation, the profile read backwards, lost creates.
    use super::*;
    use crate::reconcile::import::{self, Confirm, LostImport, Outcome};
    use crate::reconcile::policy::MatchOn;
    use std::collections::{HashMap, HashSet};

    fn t(id: &str, first: &str, last: &str, email: &str) -> TelusUser {
        telus(
            id,
            "Enabled",
            &[
                ("contact.firstName", first),
                ("contact.lastName", last),
                ("contact.email", email),
                ("contact.businessAddress.country", "Canada"),
                ("contact.businessAddress.state", "British Columbia"),
                ("contact.mobilePhone", "(604) 555-0120"),
                ("extensionNumber", "120"),
                ("directNumber", "+16045550220"),
            ],
        )
    }

    fn holder(id: &str, status: &str, login: &str, email: &str) -> OktaUser {
        okta(
            id,
            status,
            &[
                ("login", login),
                ("email", email),
                ("firstName", "X"),
                ("lastName", "Y"),
            ],
        )
    }

    /// One directory, each outcome: nobody holds it (new), a same-named in-scope user with
    /// another email (partial), a deactivated holder of the login (conflict), a holder
    /// outside the scope (conflict, named), no lookup yet (unchecked).
    #[test]
    fn each_candidate_gets_its_outcome_from_the_whole_org() {
        let policy = Policy::builtin();
        let okta_in_scope = vec![okta(
            "o-bob",
            "ACTIVE",
            &[
                ("login", "robert@x.ca"),
                ("email", "robert@x.ca"),
                ("firstName", "Bob"),
                ("lastName", "Stone"),
            ],
        )];
        let telus = vec![
            t("e1", "New", "Hire", "new.hire@x.ca"),
            t("e2", "Bob", "Stone", "bob@x.ca"),
            t("e3", "Old", "Timer", "Old.Timer@x.ca"),
            t("e4", "Out", "Side", "outside@x.ca"),
            t("e5", "Not", "Looked", "later@x.ca"),
        ];
        let unmatched = import::unmatched(
            &okta_in_scope,
            &telus,
            &[],
            &policy,
            &HashSet::new(),
            &HashSet::new(),
        );
        assert_eq!(unmatched.len(), 5);
        let lookups: import::Lookups = HashMap::from([
            (ExtId("e1".into()), vec![]),
            (ExtId("e2".into()), vec![]),
            (
                ExtId("e3".into()),
                vec![holder(
                    "o-old",
                    "DEPROVISIONED",
                    "old.timer@x.ca",
                    "old.timer@x.ca",
                )],
            ),
            (
                ExtId("e4".into()),
                vec![holder("o-out", "ACTIVE", "outside@x.ca", "outside@x.ca")],
            ),
        ]);
        let q = import::queue(&unmatched, &okta_in_scope, &HashSet::new(), &lookups);
        let by: HashMap<&str, &Outcome> = q
            .iter()
            .map(|c| (c.ext_id.0.as_str(), &c.outcome))
            .collect();
        assert_eq!(by["e1"], &Outcome::New);
        assert!(matches!(by["e2"], Outcome::Partial { login, .. } if login == "robert@x.ca"));
        let Outcome::Conflict { why, okta_id } = by["e3"] else {
            panic!("{:?}", by["e3"])
        };
        assert_eq!(okta_id.0, "o-old");
        assert!(
            why.contains("deactivated") && why.contains("E0000001"),
            "{why}"
        );
        let Outcome::Conflict { why, .. } = by["e4"] else {
            panic!()
        };
        assert!(why.contains("outside okta.scope"), "{why}");
        assert_eq!(by["e5"], &Outcome::Unchecked);
        // Case-insensitive throughout: the key is the lowercase email.
        assert!(q.iter().any(|c| c.email == "old.timer@x.ca"));
    }

    #[test]
    fn linked_referenced_matched_disabled_pending_and_ignored_users_are_not_candidates() {
        let mut policy = Policy::builtin();
        let okta_in_scope = vec![okta(
            "o1",
            "ACTIVE",
            &[("login", "ana.login@x.ca"), ("email", "ana@x.ca")],
        )];
        let mut referenced = t("e2", "R", "R", "r@x.ca");
        referenced.directory_ref = Some(OktaId("o1".into()));
        let mut disabled = t("e3", "D", "D", "d@x.ca");
        disabled.status = TelusStatus::Disabled;
        let telus = vec![
            t("e1", "L", "L", "l@x.ca"),
            referenced,
            disabled,
            t("e4", "Ana", "S", "ANA@x.ca"),
            t("e5", "P", "P", "p@x.ca"),
            t("e6", "I", "I", "i@x.ca"),
            t("e7", "A", "L", "ana.login@x.ca"),
        ];
        let pending = HashSet::from([ExtId("e5".into())]);
        let ignored = HashSet::from(["i@x.ca".to_string()]);
        let names = |policy: &Policy| -> Vec<String> {
            import::unmatched(
                &okta_in_scope,
                &telus,
                &[link("o9", "e1")],
                policy,
                &pending,
                &ignored,
            )
            .iter()
            .map(|t| t.id.0.clone())
            .collect()
        };
        assert_eq!(
            names(&policy),
            ["e7"],
            "matched by email: ana; by login: none"
        );
        policy.import.match_on = MatchOn::Login;
        assert_eq!(
            names(&policy),
            ["e4"],
            "matched by login: e7; ana's email no longer matches"
        );
    }

    /// `match = "login"`: a TELUS user whose email is an Okta user's login is linked by the
    /// plan, with no import and no TELUS create.
    #[test]
    fn match_on_login_links_a_telus_email_to_the_okta_login() {
        let mut policy = Policy::builtin();
        policy.import.match_on = MatchOn::Login;
        let o = okta(
            "o1",
            "ACTIVE",
            &[
                ("login", "ana@x.ca"),
                ("email", "ana.silva@x.ca"),
                ("firstName", "Ana"),
                ("lastName", "Silva"),
            ],
        );
        let plan = plan_pass(
            &Snapshot {
                okta: &[o],
                telus: &[t("e1", "Ana", "Silva", "ana@x.ca")],
                links: &[],
                baseline: &Baseline::new(),
                approved: false,
            },
            &policy,
        );
        assert_eq!(plan.new_links, vec![link("o1", "e1")]);
        assert_eq!(plan.count("create"), 0);
    }

    #[test]
    fn the_okta_profile_is_the_mastering_table_read_backwards_in_oktas_forms() {
        let changes = import::okta_profile(
            &t("e1", "Rita", "Desk", "Rita.Desk@x.ca"),
            &Policy::builtin(),
        )
        .unwrap();
        let v: HashMap<&str, &str> = changes
            .iter()
            .map(|c| (c.attr.as_str(), c.new.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(v["login"], "rita.desk@x.ca", "the email row's form");
        assert_eq!(v["email"], "rita.desk@x.ca");
        assert_eq!(v["firstName"], "Rita");
        assert_eq!(
            v["countryCode"], "CA",
            "Okta takes the ISO code, not TELUS's name"
        );
        assert_eq!(v["state"], "BC");
        assert_eq!(v["mobilePhone"], "+16045550120");
        assert_eq!(
            v["primaryPhone"], "+16045550220#120",
            "the TELUS-mastered row too"
        );
        assert!(
            changes
                .iter()
                .all(|c| c.rule == Rule::Import && c.old.is_none())
        );
        let mut nameless = t("e2", "", "Desk", "desk@x.ca");
        nameless.fields.remove("contact.firstName");
        let missing = import::okta_profile(&nameless, &Policy::builtin()).unwrap_err();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, "firstName");
        assert!(missing[0].1.contains("required by Okta"));
    }

    fn candidates(n: usize) -> (Vec<TelusUser>, Vec<import::Candidate>) {
        let telus: Vec<TelusUser> = (0..n)
            .map(|i| {
                t(
                    &format!("e{i}"),
                    "N",
                    &format!("U{i}"),
                    &format!("u{i}@x.ca"),
                )
            })
            .collect();
        let refs: Vec<&TelusUser> = telus.iter().collect();
        let lookups = telus.iter().map(|t| (t.id.clone(), vec![])).collect();
        let q = import::queue(&refs, &[], &HashSet::new(), &lookups);
        (telus, q)
    }

    /// Bulk confirmations (auto-confirm, `--all-new`) hold past `safety.max_imports`; users
    /// named one by one are the admin's decision and never hold.
    #[test]
    fn max_imports_holds_bulk_confirmations_only() {
        let (telus, q) = candidates(4);
        let safety = Safety {
            max_imports: 3,
            ..Safety::default()
        };
        let policy = Policy::builtin();
        let bulk = import::confirm(
            &q,
            &telus,
            &policy,
            &safety,
            &Confirm {
                all_new: true,
                ..Confirm::default()
            },
        );
        assert_eq!(bulk.actions.len(), 4);
        let hold = bulk.hold.expect("held");
        assert!(
            hold.to_string().contains("exceed safety.max_imports = 3"),
            "{hold}"
        );
        let named = Confirm {
            named: (0..4).map(|i| format!("u{i}@x.ca")).collect(),
            ..Confirm::default()
        };
        let by_name = import::confirm(&q, &telus, &policy, &safety, &named);
        assert_eq!(by_name.actions.len(), 4);
        assert!(by_name.hold.is_none());
        assert!(matches!(
            by_name.actions[0].action,
            Action::Import {
                activate: false,
                ..
            }
        ));
    }

    #[test]
    fn a_conflict_named_for_import_is_refused_with_its_reason_and_partials_need_a_name() {
        let policy = Policy::builtin();
        let telus = vec![
            t("e1", "A", "B", "a@x.ca"),
            t("e2", "Bob", "Stone", "bob@x.ca"),
        ];
        let refs: Vec<&TelusUser> = telus.iter().collect();
        let bob = okta(
            "o-bob",
            "ACTIVE",
            &[
                ("login", "r@x.ca"),
                ("email", "r@x.ca"),
                ("firstName", "Bob"),
                ("lastName", "Stone"),
            ],
        );
        let lookups = HashMap::from([
            (
                ExtId("e1".into()),
                vec![holder("o-a", "SUSPENDED", "a@x.ca", "a@x.ca")],
            ),
            (ExtId("e2".into()), vec![]),
        ]);
        let q = import::queue(&refs, std::slice::from_ref(&bob), &HashSet::new(), &lookups);
        let all = import::confirm(
            &q,
            &telus,
            &policy,
            &Safety::default(),
            &Confirm {
                all_new: true,
                ..Confirm::default()
            },
        );
        assert!(
            all.actions.is_empty(),
            "neither a conflict nor a partial is confirmed in bulk"
        );
        let named = Confirm {
            named: vec!["a@x.ca".into(), "bob@x.ca".into()],
            ..Confirm::default()
        };
        let c = import::confirm(&q, &telus, &policy, &Safety::default(), &named);
        assert_eq!(c.actions.len(), 1, "the partial, named, is created");
        assert_eq!(c.problems.len(), 1);
        assert_eq!(c.problems[0].kind, ProblemKind::ImportRefused);
        assert!(
            c.problems[0].message.contains("deactivated"),
            "{}",
            c.problems[0].message
        );
    }

    /// A candidate Okta would refuse for a missing required field is not sent: named by the
    /// admin, that confirmation fails; confirmed in bulk, it is a listed data problem, not a
    /// failure every pass.
    #[test]
    fn a_candidate_without_a_required_field_is_not_sent() {
        let mut nameless = t("e1", "", "Desk", "desk@x.ca");
        nameless.fields.remove("contact.firstName");
        let telus = vec![nameless];
        let refs: Vec<&TelusUser> = telus.iter().collect();
        let lookups = HashMap::from([(ExtId("e1".into()), vec![])]);
        let q = import::queue(&refs, &[], &HashSet::new(), &lookups);
        let (policy, safety) = (Policy::builtin(), Safety::default());
        let bulk = Confirm {
            all_new: true,
            ..Confirm::default()
        };
        let c = import::confirm(&q, &telus, &policy, &safety, &bulk);
        assert!(c.actions.is_empty());
        assert_eq!(c.problems[0].kind, ProblemKind::DataProblem);
        assert!(!c.problems[0].kind.fails_user());
        let named = Confirm {
            named: vec!["desk@x.ca".into()],
            ..Confirm::default()
        };
        let c = import::confirm(&q, &telus, &policy, &safety, &named);
        assert_eq!(c.problems[0].kind, ProblemKind::RequiredEmpty);
        assert_eq!(c.problems[0].attr.as_deref(), Some("firstName"));
    }

    #[test]
    fn a_lost_import_settles_by_who_holds_the_login() {
        let same = holder("o1", "STAGED", "ana@x.ca", "Ana@x.ca");
        assert_eq!(
            import::settle_lost("ana@x.ca", Some(&same)),
            LostImport::Landed(OktaId("o1".into()))
        );
        assert_eq!(
            import::settle_lost("ana@x.ca", None),
            LostImport::NotCreated
        );
        let other = holder("o2", "ACTIVE", "ana@x.ca", "someone@x.ca");
        assert!(
            matches!(import::settle_lost("ana@x.ca", Some(&other)), LostImport::HeldByAnother { why, .. } if why.contains("another email"))
        );
        let gone = holder("o3", "DEPROVISIONED", "ana@x.ca", "ana@x.ca");
        assert!(
            matches!(import::settle_lost("ana@x.ca", Some(&gone)), LostImport::HeldByAnother { why, .. } if why.contains("DEPROVISIONED"))
        );
    }
}

/// `apply = "create"` (Okta's `DONT_PUSH`): the row's value goes into the TELUS user when it
/// is created, and is never written on updates, even when Okta's value changes later.
#[test]
fn a_create_only_row_is_written_on_create_and_never_on_update() {
    let mut policy = Policy::builtin();
    for r in policy
        .rules
        .iter_mut()
        .filter(|r| r.okta_attr == "department")
    {
        r.create_only = true;
    }
    // Created: the department is among the new user's fields.
    let created = run(&[ana_okta()], &[], &[], &Baseline::new(), &policy);
    let create = created
        .actions
        .iter()
        .find(|a| matches!(a.action, Action::Create { .. }))
        .expect("a create");
    assert!(create.changes().iter().any(|c| c.attr == "department"));
    // Linked, Okta's department changed: nothing is written for it.
    let mut o = ana_okta();
    set(&mut o, "department", "Finance");
    let plan = run(
        &[o],
        &[ana_telus()],
        &[link("o1", "e1")],
        &Baseline::new(),
        &policy,
    );
    assert!(
        plan.actions
            .iter()
            .all(|a| a.changes().iter().all(|c| c.attr != "department")),
        "{:?}",
        plan.actions
    );
    // The default (`apply = "always"`) writes it.
    let mut o = ana_okta();
    set(&mut o, "department", "Finance");
    let plan = run(
        &[o],
        &[ana_telus()],
        &[link("o1", "e1")],
        &Baseline::new(),
        &Policy::builtin(),
    );
    assert_eq!(plan.change_count(), 1);
}
