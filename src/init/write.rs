//! From what Okta says of its built-in TELUS app (features, the mappings both ways, the
//! profile schema's masters), the commented `sync.toml` that replaces it, and a summary of
//! what was translated, what needs a hand, and what to change at the cutover. Pure.

use crate::config::okta_expr::{okta_attr_of, telus_field_of_app_attr, telus_side_of};
use crate::model::{OktaApp, OktaMaster, ProfileMapping};
use crate::reconcile::policy::DEFAULT_TABLE;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What `init` read of the org.
#[derive(Debug, Clone, Default)]
pub struct AppSetup {
    pub okta_url: String,
    pub app: OktaApp,
    /// Okta → app (`user.*` into the app's attributes), and app → Okta (`appuser.*`).
    pub push: Option<ProfileMapping>,
    pub pull: Option<ProfileMapping>,
    /// Each Okta attribute's master in the profile schema.
    pub masters: BTreeMap<String, OktaMaster>,
}

/// The file and what to tell the admin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    /// One line per translated row.
    pub rows: Vec<String>,
    /// Mappings not translated: port by hand.
    pub by_hand: Vec<String>,
    /// What to do in Okta at the cutover.
    pub cutover: Vec<String>,
}

/// One row of the table to write.
#[derive(Debug, Clone, Default)]
struct Row {
    telus: Option<String>,
    master: Option<String>,
    normalize: Option<&'static str>,
    create_only: bool,
    off: Option<String>,
    comments: Vec<String>,
}

/// The push features a still-running built-in app uses to write TELUS users or Okta
/// profiles: while any is on, two writers fight over the same users.
pub const PUSHING_FEATURES: [&str; 5] = [
    "PUSH_NEW_USERS",
    "PUSH_PROFILE_UPDATES",
    "PUSH_USER_DEACTIVATION",
    "IMPORT_PROFILE_UPDATES",
    "PROFILE_MASTERING",
];

fn default_row(attr: &str) -> Option<(&'static str, &'static str, &'static str)> {
    DEFAULT_TABLE
        .iter()
        .find(|(a, ..)| *a == attr)
        .map(|(_, t, m, n)| (*t, *m, *n))
}

/// The row's master from the schema: an OVERRIDE whose priority puts this app before Okta
/// is TELUS first (then Okta when listed); otherwise Okta.
fn master_of(setup: &AppSetup, attr: &str) -> (String, Option<String>) {
    match setup.masters.get(attr) {
        Some(OktaMaster::Override { priority, .. }) => {
            let app = priority
                .iter()
                .position(|(k, v)| k == "APP" && v.as_deref() == Some(setup.app.id.as_str()));
            let okta = priority.iter().position(|(k, _)| k == "OKTA");
            match (app, okta) {
                (Some(a), Some(o)) if a < o => (
                    "[\"telus\", \"okta\"]".into(),
                    Some(format!(
                        "OVERRIDE: this app before Okta in {attr}'s priority"
                    )),
                ),
                (Some(_), None) => (
                    "\"telus\"".into(),
                    Some(format!("OVERRIDE: this app alone in {attr}'s priority")),
                ),
                _ => (
                    "\"okta\"".into(),
                    Some(format!(
                        "OVERRIDE: Okta before this app in {attr}'s priority"
                    )),
                ),
            }
        }
        Some(OktaMaster::ProfileMaster)
            if setup.app.features.iter().any(|f| f == "PROFILE_MASTERING") =>
        {
            (
                "\"telus\"".into(),
                Some(format!(
                    "PROFILE_MASTER (\"Inherit from profile source\") with this app a profile source: TELUS gave {attr} to the users it sourced"
                )),
            )
        }
        _ => ("\"okta\"".into(), None),
    }
}

/// Builds the rows from both mappings; untranslatable ones become `sync = false` rows (a
/// row left out would sync its built-in default quietly) and lines of `by_hand`.
fn rows(setup: &AppSetup, w: &mut Written) -> BTreeMap<String, Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    if let Some(push) = &setup.push {
        for (app_attr, (expr, pushed)) in &push.properties {
            let field = telus_field_of_app_attr(app_attr);
            match (okta_attr_of(expr), field) {
                (Ok(attr), Some(field)) => {
                    let (_, _, norm) = default_row(&attr).unwrap_or(("", "okta", "none"));
                    let row = rows.entry(attr.clone()).or_default();
                    row.telus = Some(field.to_string());
                    row.master = Some("\"okta\"".into());
                    row.normalize = Some(norm);
                    row.create_only = !pushed;
                    row.comments.push(format!(
                        "Okta → app: {app_attr} = {expr}{}",
                        if *pushed {
                            ""
                        } else {
                            " (DONT_PUSH: create only)"
                        }
                    ));
                    w.rows.push(format!(
                        "{attr} → {field}{}",
                        if *pushed { "" } else { " (create only)" }
                    ));
                }
                (result, _) => {
                    let why = match result {
                        Err(e) => e,
                        Ok(_) => format!("the app attribute {app_attr} has no known TELUS field"),
                    };
                    w.by_hand
                        .push(format!("Okta → app {app_attr} = {expr}: {why}"));
                    // The default row writing the same field is turned off.
                    if let Some((attr, ..)) =
                        field.and_then(|f| DEFAULT_TABLE.iter().find(|(_, t, ..)| *t == f))
                    {
                        let row = rows.entry(attr.to_string()).or_default();
                        row.off = Some(format!(
                            "the built-in app maps {app_attr} as `{expr}`, which is not translated ({why}): port it by hand"
                        ));
                    }
                }
            }
        }
    }
    if let Some(pull) = &setup.pull {
        for (attr, (expr, _)) in &pull.properties {
            let (master, why) = master_of(setup, attr);
            match telus_side_of(expr) {
                Ok(side) => {
                    let template = side.contains('{');
                    let row = rows.entry(attr.clone()).or_default();
                    if row.telus.is_some() && row.telus.as_deref() != Some(side.as_str()) {
                        w.by_hand.push(format!(
                            "app → Okta {attr} = {expr}: {attr} is also pushed to another field"
                        ));
                        continue;
                    }
                    if template && master == "\"okta\"" {
                        row.off = Some(format!(
                            "the app maps `{expr}` into {attr}, but Okta masters it (Inherit from Okta), so that mapping never applied"
                        ));
                        continue;
                    }
                    let norm = default_row(attr).map(|(_, _, n)| n).unwrap_or("none");
                    row.telus = Some(side.clone());
                    row.normalize = Some(norm);
                    row.comments.push(format!("app → Okta: {attr} = {expr}"));
                    if let Some(why) = why {
                        row.comments.push(why);
                    }
                    row.master = Some(master.clone());
                    if (master.starts_with("[\"telus\"") || master == "\"telus\"")
                        && matches!(setup.masters.get(attr), Some(OktaMaster::Override { .. }))
                    {
                        w.cutover.push(format!("{attr}: set it to \"Inherit from Okta\" in Okta's Profile Editor once the built-in app stops (its OVERRIDE makes Okta refuse this tool's write-back of {attr} for every user)"));
                    }
                    w.rows.push(format!("{attr} ← {side} (master {master})"));
                }
                Err(e) => {
                    w.by_hand.push(format!("app → Okta {attr} = {expr}: {e}"));
                    if default_row(attr).is_some() {
                        rows.entry(attr.clone()).or_default().off = Some(format!(
                            "the built-in app maps `{expr}` into it, which is not translated ({e}): port it by hand"
                        ));
                    }
                }
            }
        }
    }
    // Default rows the app does not map: off, or they would sync quietly.
    for (attr, ..) in DEFAULT_TABLE {
        let row = rows.entry(attr.to_string()).or_default();
        if row.telus.is_none() && row.off.is_none() {
            row.off = Some("not mapped by the built-in app".into());
        }
    }
    rows
}

/// The header, `[okta]`, `[telus]` and `[store]`: no secret, ever.
fn head(setup: &AppSetup, t: &mut String) {
    let app = &setup.app;
    let _ = writeln!(
        t,
        "# okta-telus-sync configuration, written by `init --from-okta-app {}` from Okta's",
        app.id
    );
    let _ = writeln!(
        t,
        "# built-in app \"{}\" ({}). Review it, fill in the credentials, then check it with",
        app.label, app.name
    );
    let _ = writeln!(
        t,
        "#   okta-telus-sync --config <this file> check-config --connect"
    );
    let _ = writeln!(
        t,
        "# Every key can be overridden from the environment: OKTA_TELUS_SYNC__<SECTION>__<KEY>.\n"
    );
    let _ = writeln!(t, "[okta]\nurl = \"{}\"", setup.okta_url);
    let _ = writeln!(
        t,
        "# The built-in app this file replaces: `check-config --connect`, `status` and a gauge warn\n# while it still pushes.\napp_id = \"{}\"",
        app.id
    );
    let _ = writeln!(
        t,
        "# The app's assignments are the users in scope, as they were for the built-in app.\nscope = \"app:{}\"",
        app.id
    );
    let _ = writeln!(
        t,
        "# The API token: the credentials file okta-token, token_file = \"...\", or the environment\n# (OKTA_TELUS_SYNC__OKTA__TOKEN). Never written here by init.\n"
    );
    let _ = writeln!(
        t,
        "[telus]\nurl = \"https://platform.ringcentral.com\"\nbrand_id = \"7310\""
    );
    let _ = writeln!(
        t,
        "# The app registered in the TELUS/RingCentral developer console (JWT auth flow).\nclient_id = \"your-client-id\""
    );
    let _ = writeln!(
        t,
        "# Its client secret and JWT: the credentials files telus-client-secret and telus-jwt (or\n# client_secret_file / jwt_file, or the environment). Never written here by init.\n"
    );
    let _ = writeln!(t, "[store]\npath = \"/var/lib/okta-telus-sync/state.db\"\n");
}

/// `[features]` and `[import]`, from the app's features.
fn sections(setup: &AppSetup, t: &mut String) {
    let app = &setup.app;
    let _ = writeln!(
        t,
        "[features]\n# From the built-in app's provisioning features: {}.",
        if app.features.is_empty() {
            "none".to_string()
        } else {
            app.features.join(", ")
        }
    );
    let _ = writeln!(
        t,
        "create_users = {}       # PUSH_NEW_USERS",
        has(setup, "PUSH_NEW_USERS")
    );
    let _ = writeln!(
        t,
        "update_users = {}       # PUSH_PROFILE_UPDATES",
        has(setup, "PUSH_PROFILE_UPDATES")
    );
    let _ = writeln!(
        t,
        "# PUSH_USER_DEACTIVATION; reactivation follows it (REACTIVATE_USERS{} has no key of its own).",
        if has(setup, "REACTIVATE_USERS") {
            ", on in the app,"
        } else {
            ", off in the app,"
        }
    );
    let _ = writeln!(
        t,
        "deactivate_users = {}",
        has(setup, "PUSH_USER_DEACTIVATION")
    );
    let _ = writeln!(
        t,
        "write_back = {}         # PROFILE_MASTERING\n",
        has(setup, "PROFILE_MASTERING")
    );
    let _ = writeln!(
        t,
        "[import]\n# IMPORT_NEW_USERS is {} in the built-in app: TELUS users with no Okta match form the\n# import queue (`import list`), confirmed by hand (`import confirm`).\nauto_confirm_new = false",
        if has(setup, "IMPORT_NEW_USERS") {
            "on"
        } else {
            "off"
        }
    );
    let _ = writeln!(
        t,
        "# Imports must be assigned to the app (the scope), and Okta then pushes them too while the\n# built-in app provisions.\nassign_to_app = true\n"
    );
}

/// The `[attributes.*]` rows.
fn table(rows: &BTreeMap<String, Row>, t: &mut String) {
    let _ = writeln!(
        t,
        "# The mastering table, from the app's mappings (Okta → app and app → Okta)."
    );
    for (attr, row) in rows {
        let _ = writeln!(t, "[attributes.{attr}]");
        for c in &row.comments {
            let _ = writeln!(t, "# {c}");
        }
        match (&row.off, &row.telus) {
            (Some(why), _) => {
                let _ = writeln!(t, "# {why}\nsync = false\n");
            }
            (None, Some(telus)) => {
                let _ = writeln!(t, "telus = \"{}\"", telus.replace('"', "\\\""));
                let _ = writeln!(
                    t,
                    "master = {}",
                    row.master.as_deref().unwrap_or("\"okta\"")
                );
                if let Some(n) = row.normalize.filter(|n| *n != "none") {
                    let _ = writeln!(t, "normalize = \"{n}\"");
                }
                if row.create_only {
                    let _ = writeln!(t, "apply = \"create\"");
                }
                let _ = writeln!(t);
            }
            (None, None) => {}
        }
    }
}

fn has(setup: &AppSetup, feature: &str) -> bool {
    setup.app.features.iter().any(|f| f == feature)
}

/// The whole file.
pub fn write(setup: &AppSetup) -> Written {
    let mut w = Written::default();
    let rows = rows(setup, &mut w);
    let mut t = String::new();
    head(setup, &mut t);
    sections(setup, &mut t);
    table(&rows, &mut t);
    if has(setup, "PROFILE_MASTERING") || PUSHING_FEATURES.iter().any(|f| has(setup, f)) {
        w.cutover.insert(0, format!("turn off the built-in app's provisioning features ({}) before enabling this daemon: two writers would fight over the same users", PUSHING_FEATURES.iter().filter(|f| has(setup, f)).copied().collect::<Vec<_>>().join(", ")));
    }
    w.text = t;
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(props: &[(&str, &str, bool)]) -> ProfileMapping {
        ProfileMapping {
            properties: props
                .iter()
                .map(|(k, e, p)| (k.to_string(), (e.to_string(), *p)))
                .collect(),
            ..ProfileMapping::default()
        }
    }

    fn setup(features: &[&str], phone_priority: Vec<(String, Option<String>)>) -> AppSetup {
        AppSetup {
            okta_url: "https://x.okta.com".into(),
            app: OktaApp {
                id: "0oa1".into(),
                features: features.iter().map(|f| f.to_string()).collect(),
                ..OktaApp::default()
            },
            push: Some(mapping(&[
                ("firstName", "user.firstName", true),
                ("department", "user.department", false),
            ])),
            pull: Some(mapping(&[(
                "primaryPhone",
                r##"(appuser.directNumber != null ? appuser.directNumber : "") + "#" + appuser.extensionNumber"##,
                true,
            )])),
            masters: BTreeMap::from([(
                "primaryPhone".to_string(),
                OktaMaster::Override {
                    first: Some("APP".into()),
                    priority: phone_priority,
                },
            )]),
        }
    }

    fn row<'a>(text: &'a str, attr: &str) -> &'a str {
        text.split(&format!("[attributes.{attr}]\n"))
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap()
    }

    #[test]
    fn features_masters_and_rows_follow_the_app() {
        let app_then_okta = vec![("APP".into(), Some("0oa1".into())), ("OKTA".into(), None)];
        let w = write(&setup(
            &["PUSH_NEW_USERS", "PROFILE_MASTERING"],
            app_then_okta,
        ));
        assert!(w.text.contains("create_users = true"));
        assert!(w.text.contains("update_users = false"));
        assert!(w.text.contains("write_back = true"));
        assert!(row(&w.text, "primaryPhone").contains("master = [\"telus\", \"okta\"]"));
        assert!(
            row(&w.text, "primaryPhone").contains("telus = \"{directNumber}#{extensionNumber}\"")
        );
        assert!(row(&w.text, "department").contains("apply = \"create\""));
        assert!(
            row(&w.text, "city").contains("sync = false"),
            "a default row the app does not map is off"
        );
        assert!(w.cutover.iter().any(|c| c.contains("Inherit from Okta")));
        assert!(w.cutover[0].contains("PUSH_NEW_USERS, PROFILE_MASTERING"));
        // The app alone in the priority: TELUS alone.
        let w = write(&setup(&[], vec![("APP".into(), Some("0oa1".into()))]));
        assert!(row(&w.text, "primaryPhone").contains("master = \"telus\""));
        // Another app first: Okta masters it here, and a template cannot take Okta's values.
        let w = write(&setup(
            &[],
            vec![("OKTA".into(), None), ("APP".into(), Some("0oa1".into()))],
        ));
        assert!(row(&w.text, "primaryPhone").contains("sync = false"));
    }

    #[test]
    fn an_untranslatable_pull_is_a_sync_false_row_to_port_by_hand() {
        let mut s = setup(&[], vec![("APP".into(), Some("0oa1".into()))]);
        s.pull = Some(mapping(&[(
            "primaryPhone",
            "String.append(appuser.directNumber, \"x\")",
            true,
        )]));
        let w = write(&s);
        assert!(row(&w.text, "primaryPhone").contains("sync = false"));
        assert!(
            w.by_hand.iter().any(|l| l.contains("String.append")),
            "{:?}",
            w.by_hand
        );
    }
}
