//! `check-config` without `--connect`: validates sync.toml and says what it found; with
//! `--notify`, also sends a test notification and says how each output took it.

use super::load_config;
use crate::Exit;

pub fn run(path: &std::path::Path) -> anyhow::Result<Exit> {
    match load_config(path) {
        Ok(c) => {
            say_checked(path, &c);
            Ok(Exit::Ok)
        }
        Err(code) => Ok(code),
    }
}

/// The warnings and the "ok" line of a config that validated.
fn say_checked(path: &std::path::Path, c: &okta_telus_sync::config::Config) {
    for w in &c.warnings {
        println!("warning: {w}");
    }
    if let Some(w) = okta_telus_sync::report::backup_warning(c, chrono::Utc::now()) {
        println!("warning: {w}");
    }
    println!(
        "{}: ok ({} attribute rows, store {}, okta {}, telus {})",
        path.display(),
        c.policy.rules.len(),
        c.store_path.display(),
        c.okta.url,
        c.telus.url
    );
}

/// `check-config --notify`: the config checked as without it, then one `test` event sent to
/// the webhook (one attempt, so the answer shows now) and the command. Exit 4 when an output
/// did not take it.
pub async fn notify(path: &std::path::Path) -> anyhow::Result<Exit> {
    use okta_telus_sync::daemon::notify::{Event, Kind, deliver};
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    say_checked(path, &config);
    let Some(n) = &config.notify else {
        eprintln!(
            "{}: has no [notify] section: nothing to send",
            path.display()
        );
        return Ok(Exit::Config);
    };
    let e = Event {
        kind: Kind::Test,
        summary: "A test notification from okta-telus-sync: notifications reach you".into(),
        details: vec![format!(
            "sent by check-config --notify with {}",
            path.display()
        )],
        users: vec![],
        attributes: vec![],
        command: "nothing: this is a test".into(),
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    let mut code = Exit::Ok;
    for (output, result) in deliver(&http, n, &e, 1).await {
        match result {
            Ok(()) => println!("notify: {output}: sent"),
            Err(why) => {
                println!("notify: {output}: NOT delivered: {why}");
                code = Exit::System;
            }
        }
    }
    Ok(code)
}
