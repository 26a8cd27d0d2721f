//! The config's tests: `sync.toml` texts in, a typed `Config` or errors naming their keys
//! out; secrets from files and systemd credentials.

use super::attributes::build_rules;
use super::*;
use crate::model::System;
use crate::reconcile::policy::{DEFAULT_TABLE, Master, Normalize, OnConflict};
use std::collections::BTreeMap;

/// A syntax error names the line, the column and what was expected, and never echoes the
/// line itself: it may hold a secret.
#[test]
fn a_syntax_error_never_echoes_the_line_it_is_on() {
    let text = format!("{MINIMAL}\n[telus.extra]\nsecret_thing = \"hunter2-secret-value\" oops\n");
    let problems = match parse(&text) {
        Err(p) => p,
        Ok(_) => panic!("accepted"),
    };
    let all: String = problems.iter().map(ToString::to_string).collect();
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("line") && all.contains("column"), "{all}");
    let text = "[okta]\ntoken = \"okta-secret-token\nurl = \"https://x.okta.com\"\n";
    let all: String = parse(text)
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(!all.contains("okta-secret-token"), "{all}");
}

#[test]
fn the_builtin_policy_is_what_a_config_without_rows_means() {
    let mut p = Problems(Vec::new(), Vec::new(), None);
    let rules = build_rules(&mut p, BTreeMap::new());
    assert!(p.0.is_empty());
    assert_eq!(rules, Policy::builtin().rules);
    assert_eq!(rules.len(), crate::reconcile::policy::DEFAULT_TABLE.len());
}

const MINIMAL: &str = r#"
[okta]
url = "https://example.okta.com"
token = "okta-secret-token"

[telus]
client_id = "cid"
client_secret = "csecret"
jwt = "jwt-credential"
"#;

fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    from_toml_str(text, Vec::new(), Path::new("/tmp"))
}

fn keys(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .into_iter()
        .map(|p| p.key)
        .collect()
}

#[test]
fn minimal_config_gets_the_default_table() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.policy.rules.len(), DEFAULT_TABLE.len());
    assert_eq!(c.telus.brand_id, "7310");
    assert_eq!(c.okta.scope, OktaScope::All);
    assert_eq!(c.safety.max_deactivations, 10);
    let phone = c.policy.rule("primaryPhone").unwrap();
    assert_eq!(phone.master, Master::Priority(vec![System::Telus]));
    assert_eq!(
        c.policy.rule("state").unwrap().normalize,
        Normalize::IsoSubdivision
    );
}

#[test]
fn shipped_sync_toml_is_valid() {
    let text = include_str!("../../sync.toml");
    let env = vec![
        ("OKTA_TELUS_SYNC__OKTA__TOKEN".to_string(), "t".to_string()),
        (
            "OKTA_TELUS_SYNC__TELUS__CLIENT_SECRET".to_string(),
            "s".to_string(),
        ),
        ("OKTA_TELUS_SYNC__TELUS__JWT".to_string(), "j".to_string()),
    ];
    let c = from_toml_str(text, env, Path::new("/etc")).unwrap();
    assert_eq!(c.policy.rules.len(), DEFAULT_TABLE.len());
    // The shipped table spells out the built-in one, normalizations included.
    assert_eq!(
        c.policy.rules,
        crate::reconcile::policy::Policy::builtin().rules
    );
    // The shipped file says what a config without `[events]` means.
    let bare = from_toml_str(MINIMAL, Vec::new(), Path::new("/etc")).unwrap();
    assert_eq!(c.events, bare.events);
    assert_eq!(c.schedule, bare.schedule);
    assert!(c.schedule.cron_is_default && c.events.okta_poll.is_some());
    // The commented `[notify]` block, uncommented as an admin would, is a valid one.
    let block: String = text
        .lines()
        .skip_while(|l| *l != "# [notify]")
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.starts_with('[') || l.contains(" = "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(block.contains("channel_down_seconds"), "{block}");
    let n = parse(&format!("{MINIMAL}\n{block}"))
        .unwrap()
        .notify
        .unwrap();
    assert_eq!(n.channel_down_after, std::time::Duration::from_secs(600));
    assert_eq!(n.command, ["/usr/local/bin/page-oncall"]);
}

#[test]
fn events_keys_are_checked_and_named() {
    let errs = parse(&format!(
        "{MINIMAL}\n[events]\nokta_poll_seconds = 1\ntelus = \"webhook\"\ntelus_heartbeat_seconds = 3600\n"
    ))
    .unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "events.okta_poll_seconds",
            "events.telus",
            "events.telus_heartbeat_seconds"
        ]
    );
    let off = from_toml_str(
        &format!("{MINIMAL}\n[events]\nokta_poll_seconds = 0\ntelus = \"off\"\n"),
        Vec::new(),
        Path::new("/etc"),
    )
    .unwrap();
    assert!(!off.events.any());
}

#[test]
fn unknown_key_is_named() {
    let text = MINIMAL.replace("[telus]", "[telus]\nclient_idd = \"x\"");
    let errs = parse(&text).unwrap_err();
    assert_eq!(errs[0].key, "telus.client_idd", "{errs:?}");
}

#[test]
fn wrong_type_is_named() {
    let text = format!("{MINIMAL}\n[safety]\nmax_deactivations = \"many\"\n");
    let errs = parse(&text).unwrap_err();
    assert!(
        errs.iter().any(|p| p.key == "safety.max_deactivations"),
        "{errs:?}"
    );
}

#[test]
fn missing_section_is_named() {
    let text = MINIMAL.replace("[okta]", "[oktaa]");
    let errs = parse(&text).unwrap_err();
    assert_eq!(errs[0].key, "oktaa", "{errs:?}");
    let errs = parse("[telus]\nclient_id = \"c\"\n").unwrap_err();
    assert_eq!(errs[0].key, "okta", "{errs:?}");
}

#[test]
fn plain_http_is_refused_except_loopback() {
    let text = MINIMAL.replace("https://example.okta.com", "http://example.okta.com");
    assert_eq!(keys(&text), vec!["okta.url"]);
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:9",
        "http://[::1]:80",
    ] {
        let text = MINIMAL.replace("https://example.okta.com", ok);
        assert!(parse(&text).is_ok(), "{ok}");
    }
}

#[test]
fn url_with_path_is_refused() {
    let text = MINIMAL.replace("https://example.okta.com", "https://example.okta.com/api");
    assert_eq!(keys(&text), vec!["okta.url"]);
}

#[test]
fn okta_write_concurrency_and_rate_share_are_bounded() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        (c.okta.write_concurrency, c.okta.rate_limit_percent),
        (4, 50)
    );
    let with = |line: String| {
        MINIMAL.replace(
            "token = \"okta-secret-token\"",
            &format!("token = \"okta-secret-token\"\n{line}"),
        )
    };
    for (key, bad) in [
        ("write_concurrency", 0),
        ("write_concurrency", 17),
        ("rate_limit_percent", 0),
        ("rate_limit_percent", 101),
    ] {
        let text = with(format!("{key} = {bad}"));
        assert_eq!(keys(&text), vec![format!("okta.{key}")], "{key} = {bad}");
    }
    let c = parse(&with(
        "write_concurrency = 1\nrate_limit_percent = 100".into(),
    ))
    .unwrap();
    assert_eq!(
        (c.okta.write_concurrency, c.okta.rate_limit_percent),
        (1, 100)
    );
}

#[test]
fn template_as_target_is_rejected() {
    let text = format!("{MINIMAL}\n[attributes.primaryPhone]\nmaster = \"okta\"\n");
    assert_eq!(keys(&text), vec!["attributes.primaryPhone.master"]);
    let text = format!("{MINIMAL}\n[attributes.primaryPhone]\nmaster = \"latest\"\n");
    assert_eq!(keys(&text), vec!["attributes.primaryPhone.master"]);
}

#[test]
fn unknown_telus_field_is_rejected() {
    let text =
        format!("{MINIMAL}\n[attributes.title]\ntelus = \"contact.title\"\nmaster = \"okta\"\n");
    assert_eq!(keys(&text), vec!["attributes.title.telus"]);
}

#[test]
fn bad_master_and_normalize_are_named() {
    let text = format!(
        "{MINIMAL}\n[attributes.city]\nmaster = \"ad\"\n[attributes.department]\nnormalize = \"upper\"\n"
    );
    assert_eq!(
        keys(&text),
        vec!["attributes.city.master", "attributes.department.normalize"]
    );
}

#[test]
fn priority_list_and_latest_rows_parse() {
    let text = format!(
        "{MINIMAL}\n[attributes.city]\nmaster = [\"telus\", \"okta\"]\n[attributes.department]\nmaster = \"latest\"\non_conflict = \"okta\"\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        c.policy.rule("city").unwrap().master,
        Master::Priority(vec![System::Telus, System::Okta])
    );
    assert_eq!(
        c.policy.rule("department").unwrap().master,
        Master::Latest {
            on_conflict: OnConflict::Prefer(System::Okta)
        }
    );
}

#[test]
fn sync_false_turns_a_row_off() {
    let text = format!("{MINIMAL}\n[attributes.department]\nsync = false\n");
    let c = parse(&text).unwrap();
    assert!(c.policy.rule("department").is_none());
    assert_eq!(c.policy.rules.len(), DEFAULT_TABLE.len() - 1);
}

#[test]
fn two_rows_on_one_telus_field_are_rejected() {
    let text = format!(
        "{MINIMAL}\n[attributes.title]\ntelus = \"contact.department\"\nmaster = \"okta\"\n"
    );
    assert_eq!(keys(&text), vec!["attributes.title.telus"]);
}

#[test]
fn environment_overrides_and_supplies_secrets() {
    let text = MINIMAL.replace("token = \"okta-secret-token\"\n", "");
    assert_eq!(keys(&text), vec!["okta.token"]);
    let env = vec![(
        "OKTA_TELUS_SYNC__OKTA__TOKEN".to_string(),
        "from-env".to_string(),
    )];
    let c = from_toml_str(&text, env, Path::new("/tmp")).unwrap();
    use secrecy::ExposeSecret;
    let OktaAuth::Ssws(t) = &c.okta.auth else {
        panic!()
    };
    assert_eq!(t.expose_secret(), "from-env");
}

/// Environment values are strings as written (`000123` stays `000123`, `12e3` stays
/// `12e3`), and still fill numeric keys.
#[test]
fn environment_strings_stay_strings_and_numbers_still_parse() {
    let text = MINIMAL.replace("client_id = \"cid\"\n", "");
    let env = vec![
        (
            "OKTA_TELUS_SYNC__TELUS__CLIENT_ID".to_string(),
            "000123".to_string(),
        ),
        (
            "OKTA_TELUS_SYNC__TELUS__JWT".to_string(),
            "12e3".to_string(),
        ),
        (
            "OKTA_TELUS_SYNC__SAFETY__MAX_CREATES".to_string(),
            "40".to_string(),
        ),
    ];
    let c = from_toml_str(&text, env, Path::new("/tmp")).unwrap();
    assert_eq!(c.telus.client_id, "000123");
    use secrecy::ExposeSecret;
    assert_eq!(c.telus.jwt.as_ref().unwrap().expose_secret(), "12e3");
    assert_eq!(c.safety.max_creates, 40);
}

/// A secret file others can read is a warning naming it; one too large to be a secret
/// (`/dev/zero`) is refused without reading it whole.
#[test]
fn secret_files_readable_by_others_warn_and_endless_ones_are_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("okta-token");
    std::fs::write(&file, "tok\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = MINIMAL.replace(
        "token = \"okta-secret-token\"",
        &format!("token_file = {:?}", file.display().to_string()),
    );
    let c = from_toml_str(&text, Vec::new(), dir.path()).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("okta.token_file") && c.warnings[0].contains("chmod 600"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(
        from_toml_str(&text, Vec::new(), dir.path())
            .unwrap()
            .warnings
            .is_empty()
    );
    let text = MINIMAL.replace(
        "token = \"okta-secret-token\"",
        "token_file = \"/dev/zero\"",
    );
    let problems = from_toml_str(&text, Vec::new(), dir.path()).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.key == "okta.token_file" && p.message.contains("not a secret")),
        "{problems:?}"
    );
}

#[test]
fn a_metrics_listener_other_hosts_can_reach_is_a_warning() {
    let text = format!("{MINIMAL}\n[http]\nlisten = \"0.0.0.0:9464\"\n");
    let c = from_toml_str(&text, Vec::new(), Path::new("/tmp")).unwrap();
    assert!(
        c.warnings.iter().any(|w| w.starts_with("http.listen")),
        "{:?}",
        c.warnings
    );
    let text = format!("{MINIMAL}\n[http]\nlisten = \"127.0.0.1:9464\"\n");
    assert!(
        from_toml_str(&text, Vec::new(), Path::new("/tmp"))
            .unwrap()
            .warnings
            .is_empty()
    );
}

/// The shipped unit loads the whole credentials directory (`okta-telus-sync_<name>`):
/// each of the three setups starts from it without editing the unit.
#[test]
fn each_setup_reads_its_secrets_from_the_loaded_credentials_directory() {
    let pem = include_str!("../../tests/fixtures/okta-test-key.pem");
    let cases: [(&[(&str, &str)], &str); 3] = [
        // SSWS token + JWT.
        (
            &[
                ("okta-token", "t"),
                ("telus-client-secret", "s"),
                ("telus-jwt", "j"),
            ],
            "",
        ),
        // Token + `auth telus`: no JWT.
        (&[("okta-token", "t"), ("telus-client-secret", "s")], ""),
        // Okta OAuth private key.
        (
            &[
                ("okta-private-key", pem),
                ("telus-client-secret", "s"),
                ("telus-jwt", "j"),
            ],
            "[okta.oauth]\nclient_id = \"0oa1\"\n",
        ),
    ];
    for (files, extra) in cases {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in files {
            std::fs::write(dir.path().join(format!("okta-telus-sync_{name}")), value).unwrap();
        }
        let text =
            format!("[okta]\nurl = \"https://x.okta.com\"\n{extra}[telus]\nclient_id = \"cid\"\n");
        let env = vec![(
            "CREDENTIALS_DIRECTORY".to_string(),
            dir.path().display().to_string(),
        )];
        let c = from_toml_str(&text, env, Path::new("/tmp"))
            .unwrap_or_else(|p| panic!("{files:?}: {p:?}"));
        assert_eq!(
            c.telus.jwt.is_some(),
            files.iter().any(|(n, _)| *n == "telus-jwt")
        );
    }
}

#[test]
fn secret_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tok"), "file-token\n").unwrap();
    let text = MINIMAL.replace("token = \"okta-secret-token\"", "token_file = \"tok\"");
    let c = from_toml_str(&text, Vec::new(), dir.path()).unwrap();
    use secrecy::ExposeSecret;
    let OktaAuth::Ssws(t) = &c.okta.auth else {
        panic!()
    };
    assert_eq!(t.expose_secret(), "file-token");
    let text = MINIMAL.replace("token = \"okta-secret-token\"", "token_file = \"nope\"");
    let errs = from_toml_str(&text, Vec::new(), dir.path()).unwrap_err();
    assert_eq!(errs[0].key, "okta.token_file");
}

#[test]
fn okta_oauth_needs_a_readable_rsa_key_and_excludes_a_token() {
    let base = MINIMAL.replace("token = \"okta-secret-token\"\n", "");
    let with = |extra: &str| format!("{base}\n[okta.oauth]\nclient_id = \"0oa1\"\n{extra}");
    let errs = parse(&with("private_key = \"not a key\"")).unwrap_err();
    assert_eq!(errs[0].key, "okta.oauth.private_key");
    let errs = parse(&with("")).unwrap_err();
    assert_eq!(errs[0].key, "okta.oauth.private_key");
    let pem = include_str!("../../tests/fixtures/okta-test-key.pem");
    let c = parse(&with(&format!("private_key = \"\"\"{pem}\"\"\""))).unwrap();
    assert!(
        matches!(c.okta.auth, OktaAuth::OAuth { ref scopes, .. } if scopes == "okta.users.read okta.users.manage")
    );
    let both =
        format!("{MINIMAL}\n[okta.oauth]\nclient_id = \"0oa1\"\nprivate_key = \"\"\"{pem}\"\"\"");
    assert_eq!(parse(&both).unwrap_err()[0].key, "okta.token");
}

#[test]
fn http_listen_is_parsed_or_named() {
    let c = parse(&format!("{MINIMAL}\n[http]\nlisten = \"127.0.0.1:9464\"\n")).unwrap();
    assert_eq!(c.http.unwrap().listen.port(), 9464);
    let text = format!("{MINIMAL}\n[http]\nlisten = \"localhost\"\n");
    assert_eq!(keys(&text), vec!["http.listen"]);
}

#[test]
fn bad_cron_is_named() {
    let text = format!("{MINIMAL}\n[schedule]\ncron = \"every 15 minutes\"\n");
    assert_eq!(keys(&text), vec!["schedule.cron"]);
    let text = format!("{MINIMAL}\n[schedule]\ncron = \"*/15 * * * *\"\n");
    assert_eq!(parse(&text).unwrap().schedule.cron, "0 */15 * * * *");
    let text = format!("{MINIMAL}\n[schedule]\nfull_cron = \"0 99 * * *\"\n");
    assert_eq!(keys(&text), vec!["schedule.full_cron"]);
}

#[test]
fn errors_never_echo_secrets() {
    let text = MINIMAL.replace("https://example.okta.com", "ftp://x") + "\n[bogus]\n";
    let all = format!("{:?}", parse(&text).unwrap_err());
    assert!(!all.contains("okta-secret-token") && !all.contains("csecret"));
}

/// A secret written in a `sync.toml` others can read warns as a readable `token_file` does,
/// naming the key and never the value; at 0600, or from the environment, it does not.
#[test]
fn inline_secrets_in_a_readable_file_warn_by_key() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = load_with_env(&path, Vec::new()).unwrap();
    let inline: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.contains("written in the file"))
        .collect();
    assert!(
        inline
            .iter()
            .any(|w| w.starts_with("okta.token:") && w.contains("chmod 600")),
        "{:?}",
        c.warnings
    );
    assert!(!c.warnings.iter().any(|w| w.contains("okta-secret-token")));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = load_with_env(&path, Vec::new()).unwrap();
    assert!(
        !c.warnings.iter().any(|w| w.contains("written in the file")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn the_import_section_is_read_and_a_bad_one_names_its_key() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        c.policy.import,
        crate::reconcile::policy::ImportPolicy::default()
    );
    assert_eq!(c.safety.max_imports, 25);
    let text = format!(
        "{MINIMAL}\n[import]\nmatch = \"login\"\nactivate = true\n[safety]\nmax_imports = 3\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        c.policy.import.match_on,
        crate::reconcile::policy::MatchOn::Login
    );
    assert!(c.policy.import.activate);
    assert_eq!(c.safety.max_imports, 3);
    assert_eq!(
        keys(&format!("{MINIMAL}\n[import]\nmatch = \"name\"\n")),
        ["import.match"]
    );
    // Under an app scope, auto-confirmed imports must be assignable to the app.
    let app = MINIMAL.replace(
        "token = \"okta-secret-token\"",
        "token = \"okta-secret-token\"\nscope = \"app:0oa1telus\"",
    );
    let problems = parse(&format!("{app}\n[import]\nauto_confirm_new = true\n")).unwrap_err();
    assert_eq!(problems[0].key, "import.auto_confirm_new");
    assert!(
        problems[0].to_string().contains("import.assign_to_app"),
        "{}",
        problems[0]
    );
    assert!(
        parse(&format!(
            "{app}\n[import]\nauto_confirm_new = true\nassign_to_app = true\n"
        ))
        .is_ok()
    );
}

#[test]
fn apply_create_is_for_rows_okta_masters() {
    let text = format!("{MINIMAL}\n[attributes.department]\napply = \"create\"\n");
    let c = parse(&text).unwrap();
    let rule = c.policy.rule("department").unwrap();
    assert!(rule.create_only);
    assert!(!c.policy.rule("city").unwrap().create_only);
    assert_eq!(
        keys(&format!(
            "{MINIMAL}\n[attributes.primaryPhone]\napply = \"create\"\n"
        )),
        ["attributes.primaryPhone.apply"]
    );
    assert_eq!(
        keys(&format!(
            "{MINIMAL}\n[attributes.city]\napply = \"sometimes\"\n"
        )),
        ["attributes.city.apply"]
    );
}

#[test]
fn notify_takes_an_https_webhook_or_a_command_and_never_repeats_the_url() {
    let c = parse(&format!(
        "{MINIMAL}\n[notify]\nwebhook_url = \"https://hooks.slack.com/services/T0/B0/tok3n\"\nformat = \"slack\"\n"
    ))
    .unwrap();
    let n = c.notify.unwrap();
    assert_eq!(n.webhook.as_ref().unwrap().1, super::NotifyFormat::Slack);
    assert_eq!(n.min_interval, std::time::Duration::from_secs(3600));
    assert!(
        !format!("{:?}", n.webhook).contains("tok3n"),
        "Debug shows the URL"
    );
    let err = parse(&format!(
        "{MINIMAL}\n[notify]\nwebhook_url = \"http://hooks.example.com/tok3n\"\n"
    ))
    .unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("notify.webhook_url") && !text.contains("tok3n"),
        "{text}"
    );
    let keys: Vec<String> = parse(&format!("{MINIMAL}\n[notify]\nformat = \"xml\"\n"))
        .unwrap_err()
        .iter()
        .map(|p| p.key.clone())
        .collect();
    assert!(keys.contains(&"notify.format".to_string()), "{keys:?}");
    let c = parse(&format!("{MINIMAL}\n[notify]\ncommand = [\"/usr/local/bin/page-oncall\"]\nmin_interval_seconds = 60\n")).unwrap();
    assert_eq!(c.notify.unwrap().command, ["/usr/local/bin/page-oncall"]);
}

/// The webhook URL is a secret like the others: from `webhook_url_file` or the credentials
/// directory (`notify-webhook-url`), and a `sync.toml` others can read warns when it is inline.
#[test]
fn the_webhook_url_comes_from_a_file_or_a_credential_and_warns_inline() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("hook");
    std::fs::write(
        &url_file,
        "https://hooks.slack.com/services/T0/B0/fr0mfile\n",
    )
    .unwrap();
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text =
        format!("{MINIMAL}\n[notify]\nwebhook_url_file = \"hook\"\nchannel_down_seconds = 120\n");
    let n = from_toml_str(&text, Vec::new(), dir.path())
        .unwrap()
        .notify
        .unwrap();
    let (url, _) = n.webhook.unwrap();
    assert_eq!(url.0.path(), "/services/T0/B0/fr0mfile");
    assert_eq!(n.channel_down_after, std::time::Duration::from_secs(120));
    // From the credentials directory beside sync.toml, as the shipped unit loads it.
    std::fs::create_dir(dir.path().join("credentials")).unwrap();
    std::fs::rename(&url_file, dir.path().join("credentials/notify-webhook-url")).unwrap();
    let text = format!("{MINIMAL}\n[notify]\nformat = \"slack\"\n");
    let n = from_toml_str(&text, Vec::new(), dir.path())
        .unwrap()
        .notify
        .unwrap();
    assert_eq!(n.webhook.unwrap().0.0.path(), "/services/T0/B0/fr0mfile");
    // Both at once, or a file that is not there: named, never the URL.
    let both = format!(
        "{MINIMAL}\n[notify]\nwebhook_url = \"https://x.example/t0k\"\nwebhook_url_file = \"hook\"\n"
    );
    let errs = from_toml_str(&both, Vec::new(), dir.path()).unwrap_err();
    assert!(
        errs.iter().any(|e| e.key == "notify.webhook_url"),
        "{errs:?}"
    );
    assert!(!format!("{errs:?}").contains("t0k"));
    let zero = format!("{MINIMAL}\n[notify]\ncommand = [\"true\"]\nchannel_down_seconds = 0\n");
    assert_eq!(keys(&zero), ["notify.channel_down_seconds"]);
    // Inline in a file others can read: the same warning as for the API secrets.
    let path = dir.path().join("sync.toml");
    let inline = format!("{MINIMAL}\n[notify]\nwebhook_url = \"https://x.example/t0k\"\n");
    std::fs::write(&path, &inline).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warnings = super::secret::inline_in_readable_file(&path, &inline);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("notify.webhook_url:")),
        "{warnings:?}"
    );
    assert!(!format!("{warnings:?}").contains("t0k"));
}
