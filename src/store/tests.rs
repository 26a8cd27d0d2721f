//! The store's tests: migrations, snapshots, links, the journal, settling and state, on
//! a real SQLite file or an in-memory one.

use super::*;

fn okta(id: &str, email: &str) -> OktaUser {
    OktaUser {
        id: OktaId(id.into()),
        status: OktaStatus::Active,
        last_updated: Some("2026-01-01T00:00:00.000Z".into()),
        provider: None,
        profile: [("email".to_string(), email.to_string())].into(),
    }
}

#[test]
fn migrations_run_twice_are_a_no_op() {
    let s = Store::open_in_memory().unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len());
    s.migrate().unwrap();
    s.migrate().unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len());
}

#[test]
fn reopening_a_file_keeps_data_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::open(&path).unwrap();
        s.add_links(&[Link {
            okta_id: OktaId("00u1".into()),
            ext_id: ExtId("7".into()),
        }])
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.links().unwrap().len(), 1);
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len());
}

#[cfg(unix)]
#[test]
fn the_store_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = Store::open(&path).unwrap();
    s.save_credentials(
        "telus",
        &TokenPair {
            access_token: secrecy::SecretString::from("at"),
            access_expires_at: 10,
            refresh_token: Some(secrecy::SecretString::from("rt")),
            refresh_expires_at: Some(20),
        },
    )
    .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let back = s.credentials("telus").unwrap().unwrap();
    assert_eq!(back.refresh_expires_at, Some(20));
}

#[test]
fn the_per_attribute_baseline_migrates_to_per_user_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let conn = Connection::open(&path).unwrap();
        for sql in &schema::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3i64).unwrap();
        conn.execute_batch(
            "INSERT INTO baseline VALUES ('o1', 'city', 'Victoria', 'x'), ('o1', 'state', 'BC', 'x'), ('o2', 'city', 'Regina', 'x');",
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let b = s.baseline().unwrap();
    assert_eq!(b.get(&OktaId("o1".into()), "state"), Some("BC"));
    assert_eq!(b.get(&OktaId("o2".into()), "city"), Some("Regina"));
    assert_eq!(b.users(), 2);
    s.set_baseline(&[Agreed::one(OktaId("o2".into()), "city", None)])
        .unwrap();
    assert_eq!(s.baseline().unwrap().users(), 1);
}

#[test]
fn field_names_are_stored_once_and_snapshots_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut u = okta("a", "a@x.ca");
    u.profile.insert("department", "Ventes \"Est\" 🚀".into());
    {
        let s = Store::open(&path).unwrap();
        s.save_snapshots(&[u.clone(), okta("b", "b@x.ca")], &[])
            .unwrap();
        let raw: String = s
            .conn
            .query_row("SELECT profile FROM okta_users WHERE id = 'a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            !raw.contains("department") && raw.starts_with("[["),
            "{raw}"
        );
        let n: i64 = s
            .conn
            .query_row("SELECT count(*) FROM field_names", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2, "email and department, once each");
    }
    // A new connection reads the numbering back.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.load_okta().unwrap()[0], u);
    // Rows written by older versions (JSON objects) still read.
    s.conn
        .execute(
            "UPDATE okta_users SET profile = '{\"email\":\"old@x.ca\"}' WHERE id = 'b'",
            [],
        )
        .unwrap();
    assert_eq!(s.load_okta().unwrap()[1].email(), Some("old@x.ca"));
}

/// Several processes (here threads, each with its own connection) opening a new store at
/// once: the migrations run once, inside an exclusive transaction, and every open works.
#[test]
fn concurrent_opens_of_a_new_store_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Store::open(&path).map(|s| s.schema_version().unwrap())
            })
        })
        .collect();
    for h in handles {
        let v = h.join().unwrap().unwrap();
        assert_eq!(v, schema::MIGRATIONS.len());
    }
}

/// Enums come back as enums: a value this program does not know is an error, never
/// read as some other system or outcome.
#[test]
fn an_unknown_system_in_the_journal_is_an_error_not_a_guess() {
    let s = Store::open_in_memory().unwrap();
    let pass = s.begin_pass(PassKind::Full).unwrap();
    s.conn
        .execute(
            "INSERT INTO journal (pass_id, time, direction, system, user_email, attribute,
             field, rule, outcome) VALUES (?1, 't', 'x', 'ldap', 'a@x.ca', 'a', 'f', 'r', 'applied')",
            [pass],
        )
        .unwrap();
    let err = s.history(&HistoryFilter::default()).unwrap_err();
    assert!(err.to_string().contains("ldap"), "{err}");
    assert_eq!(s.recent_passes(1).unwrap()[0].kind, PassKind::Full);
}

#[test]
fn journal_commits_are_durable_across_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s.db")).unwrap();
    let level: i64 = s
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(level, 2, "synchronous = FULL");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(Store::open(&path), Err(Error::TooNew { .. })));
}

#[test]
fn snapshots_replace_the_previous_ones() {
    let s = Store::open_in_memory().unwrap();
    s.save_snapshots(&[okta("a", "a@x.ca"), okta("b", "b@x.ca")], &[])
        .unwrap();
    s.save_snapshots(&[okta("b", "b@x.ca")], &[]).unwrap();
    let loaded = s.load_okta().unwrap();
    assert_eq!(loaded, vec![okta("b", "b@x.ca")]);
}

#[test]
fn the_telus_snapshot_is_merged_changed_added_and_gone() {
    let t = |id: &str, dept: &str| TelusUser {
        id: ExtId(id.into()),
        in_directory: true,
        status: TelusStatus::Enabled,
        directory_ref: None,
        fields: [("contact.department", dept.to_string())].into(),
    };
    let s = Store::open_in_memory().unwrap();
    s.save_snapshots(&[], &[t("1", "Sales"), t("2", "Legal")])
        .unwrap();
    let mut moved = t("2", "Finance");
    moved.directory_ref = Some(OktaId("00u2".into()));
    s.save_snapshots(&[], &[moved.clone(), t("3", "Ops")])
        .unwrap();
    assert_eq!(s.load_telus().unwrap(), vec![moved, t("3", "Ops")]);
    assert_eq!(s.snapshot_counts().unwrap(), (0, 2));
}

#[test]
fn a_user_left_out_of_the_directory_stays_so_in_the_snapshot() {
    let mut t = TelusUser {
        id: ExtId("1".into()),
        in_directory: false,
        status: TelusStatus::Enabled,
        directory_ref: None,
        fields: [("contact.department", "Sales".to_string())].into(),
    };
    let s = Store::open_in_memory().unwrap();
    s.save_snapshots(&[], std::slice::from_ref(&t)).unwrap();
    assert_eq!(s.load_telus().unwrap(), vec![t.clone()]);
    // Listed again, nothing else changed: the row is rewritten.
    t.in_directory = true;
    s.save_snapshots(&[], std::slice::from_ref(&t)).unwrap();
    assert_eq!(s.load_telus().unwrap(), vec![t]);
}

#[test]
fn changes_in_a_bulk_task_are_found_by_it_and_unsent_ones_discarded() {
    let s = Store::open_in_memory().unwrap();
    let pass = s.begin_pass(PassKind::Full).unwrap();
    let entry = |attribute| JournalEntry {
        pass_id: pass,
        system: System::Telus,
        okta_id: None,
        ext_id: None,
        user_email: "a@x.ca",
        attribute,
        field: "contact.department",
        old: None,
        new: Some("Sales"),
        rule: Rule::Master,
    };
    let rows = s
        .journal_planned_in(&[entry("department"), entry("city")], Some("pending"))
        .unwrap();
    let tasks = |s: &Store| -> Vec<(i64, String)> {
        s.unfinished_tasks()
            .unwrap()
            .into_iter()
            .map(|(r, t, _)| (r, t))
            .collect()
    };
    assert_eq!(
        tasks(&s),
        vec![(rows[0], "pending".into()), (rows[1], "pending".into())]
    );
    s.set_task(&rows[..1], Some("task-9")).unwrap();
    s.set_task(&rows[1..], None).unwrap();
    assert_eq!(tasks(&s), vec![(rows[0], "task-9".into())]);
    // A finished change is never discarded; an unsent one is.
    s.journal_outcome(&rows[..1], Outcome::Applied, None, None, &[])
        .unwrap();
    s.discard_unsent(&rows).unwrap();
    assert_eq!(s.unfinished_count().unwrap(), 0);
    assert_eq!(s.history(&HistoryFilter::default()).unwrap().len(), 1);
}

#[test]
fn a_new_link_replaces_an_old_one_on_either_end() {
    let s = Store::open_in_memory().unwrap();
    let l = |o: &str, e: &str| Link {
        okta_id: OktaId(o.into()),
        ext_id: ExtId(e.into()),
    };
    s.add_links(&[l("a", "1"), l("b", "2")]).unwrap();
    s.add_links(&[l("a", "2")]).unwrap();
    assert_eq!(s.links().unwrap(), vec![l("a", "2")]);
}

#[test]
fn journal_outcome_sets_baseline_atomically() {
    let s = Store::open_in_memory().unwrap();
    let pass = s.begin_pass(PassKind::Full).unwrap();
    let id = OktaId("00u1".into());
    let rows = s
        .journal_planned(&[JournalEntry {
            pass_id: pass,
            system: System::Telus,
            okta_id: Some(&id),
            ext_id: None,
            user_email: "a@x.ca",
            attribute: "city",
            field: "contact.businessAddress.city",
            old: Some("Vancouver"),
            new: Some("Victoria"),
            rule: Rule::Master,
        }])
        .unwrap();
    let row = rows[0];
    assert_eq!(s.unfinished_count().unwrap(), 1);
    s.journal_outcome(
        &[row],
        Outcome::Applied,
        None,
        None,
        &[Agreed::one(id.clone(), "city", Some("Victoria".into()))],
    )
    .unwrap();
    assert_eq!(s.unfinished_count().unwrap(), 0);
    assert_eq!(s.baseline().unwrap().get(&id, "city"), Some("Victoria"));
    let h = s
        .history(&HistoryFilter {
            user_email: Some("A@X.CA".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].direction, "okta->telus");
    assert_eq!(h[0].outcome, Outcome::Applied);
}
