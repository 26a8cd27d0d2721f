//! One module per command. Each loads the config itself (exit 2 naming the bad keys), does
//! its work through the library, prints, and answers the exit code.

pub mod assets;
pub mod auth;
pub mod backup;
pub mod check_config;
pub mod explain;
pub mod history;
pub mod import;
pub mod init;
pub mod review;
pub mod run;
pub mod sandbox;
pub mod schema;
pub mod serve_fakes;
pub mod status;
pub mod sync;

use crate::Exit;
use anyhow::Context as _;
use okta_telus_sync::{config, store};

/// Writes `text` to `out` at mode 0600 (a config the admin may add secrets to, a saved plan
/// holding attribute values): a temporary file beside it, synced, then renamed over it.
pub fn write_private(out: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = out.with_file_name(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// The config at `path`, or exit 2 after printing each problem with its key.
pub fn load_config(path: &std::path::Path) -> Result<config::Config, Exit> {
    let loaded = config::load(path);
    if let Ok(c) = &loaded {
        for w in &c.warnings {
            tracing::warn!(warning = %w, "configuration");
        }
    }
    loaded.map_err(|e| {
        match e {
            config::Error::Load { .. } => eprintln!("error: {e}"),
            config::Error::Invalid { path, problems } => {
                eprintln!("error: {} is invalid:", path.display());
                for p in problems {
                    eprintln!("  {p}");
                }
            }
        }
        Exit::Config
    })
}

pub fn open_store(config: &config::Config) -> anyhow::Result<store::Store> {
    refuse_root_on_a_service_store(&config.store_path)?;
    store::Store::open(&config.store_path)
        .with_context(|| format!("opening store {}", config.store_path.display()))
}

/// Root opening the service's store would leave root-owned files (the store, `-wal`, `-shm`,
/// the lock files) that the service's user cannot open afterwards: refused, naming the
/// command to run instead.
pub(super) fn refuse_root_on_a_service_store(store: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if store::files::effective_uid() != 0 {
        return Ok(());
    }
    let dir = store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let owner = std::fs::metadata(store)
        .or_else(|_| std::fs::metadata(dir))
        .map(|m| m.uid());
    match owner {
        Ok(uid) if uid != 0 => {
            let user = user_name(uid).unwrap_or_else(|| uid.to_string());
            let args: Vec<String> = std::env::args().skip(1).collect();
            anyhow::bail!(
                "the store {} belongs to user {user}: as root, this command would leave files the service cannot open. Run it as that user:\n  sudo -u {user} okta-telus-sync {}",
                store.display(),
                args.join(" ")
            )
        }
        _ => Ok(()),
    }
}

/// A user's name from `/etc/passwd`.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// The linked users these emails name (by the Okta user's email in the last snapshot), as a
/// targeted pass's scope; `Err` lists the emails no link holds.
pub fn named_by_email(
    store: &okta_telus_sync::store::Store,
    emails: &[String],
) -> anyhow::Result<Result<okta_telus_sync::pass::Named, Vec<String>>> {
    let links = store.links()?;
    let okta = store.load_okta()?;
    let mut named = okta_telus_sync::pass::Named::default();
    let mut missing = Vec::new();
    for email in emails {
        let key = email.trim().to_lowercase();
        let link = okta
            .iter()
            .filter(|o| o.email().is_some_and(|e| e.trim().to_lowercase() == key))
            .find_map(|o| links.iter().find(|l| l.okta_id == o.id));
        match link {
            Some(l) => {
                named.okta.insert(l.okta_id.clone(), "on-demand".into());
            }
            None => missing.push(email.clone()),
        }
    }
    Ok(match missing.is_empty() {
        true => Ok(named),
        false => Err(missing),
    })
}
