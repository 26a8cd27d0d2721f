//! Secrets: from the key itself, a `<key>_file`, or a systemd credential; never echoed.

use super::{ENV_PREFIX, Problems};
use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// A secret from the key itself, from `<key>_file`, or from systemd's credentials directory
/// (`$CREDENTIALS_DIRECTORY/<cred_name>`), in that order. Exactly one source may be set.
pub(super) fn secret(
    p: &mut Problems,
    base_dir: &Path,
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
    cred_name: &str,
    required: bool,
) -> Option<SecretString> {
    let file_key = format!("{key}_file");
    let value = match (inline, file) {
        (Some(_), Some(_)) => {
            p.push(key, format!("set either {key} or {file_key}, not both"));
            return None;
        }
        (Some(v), None) => v,
        (None, Some(path)) => {
            let path = base_dir.join(path);
            match read_secret_file(&path) {
                Ok(v) => {
                    if let Some(w) = exposed(&path) {
                        p.1.push(format!("{file_key}: {w}"));
                    }
                    v
                }
                Err(e) => {
                    p.push(file_key, format!("cannot read {}: {e}", path.display()));
                    return None;
                }
            }
        }
        (None, None) => {
            // The shipped unit loads the whole credentials directory under one id, so each
            // file arrives as `okta-telus-sync_<name>`; a unit of its own may load `<name>`.
            // Outside systemd (an admin's `check-config` as root, README step 2) the same
            // directory is read where the unit loads it from: `credentials/` beside this file.
            let from_creds = match p.2.as_ref() {
                Some(dir) => [
                    format!("{CREDENTIAL_ID}_{cred_name}"),
                    cred_name.to_string(),
                ]
                .iter()
                .find_map(|name| read_secret_file(&dir.join(name)).ok()),
                None => {
                    let path = base_dir.join(CREDENTIALS_SUBDIR).join(cred_name);
                    let v = read_secret_file(&path).ok();
                    if v.is_some()
                        && let Some(w) = exposed(&path)
                    {
                        p.1.push(format!("{key}: {w}"));
                    }
                    v
                }
            };
            match from_creds {
                Some(v) => v,
                None if required => {
                    let looked = match p.2.as_ref() {
                        Some(dir) => format!("{}/{CREDENTIAL_ID}_{cred_name}", dir.display()),
                        None => base_dir
                            .join(CREDENTIALS_SUBDIR)
                            .join(cred_name)
                            .display()
                            .to_string(),
                    };
                    p.push(
                        key,
                        format!(
                            "missing: set {key}, {file_key}, the environment variable {}, or put the secret in the credentials directory (looked for {looked})",
                            env_name(key)
                        ),
                    );
                    return None;
                }
                None => return None,
            }
        }
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        p.push(key, "is empty");
        return None;
    }
    Some(SecretString::from(value))
}

pub(super) fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}__{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// The id the shipped unit loads the credentials directory under
/// (`LoadCredential=okta-telus-sync:/etc/okta-telus-sync/credentials`).
pub const CREDENTIAL_ID: &str = "okta-telus-sync";

/// The directory beside `sync.toml` that the shipped unit loads as credentials
/// (`/etc/okta-telus-sync/credentials`), read directly when systemd did not hand it over.
pub const CREDENTIALS_SUBDIR: &str = "credentials";

/// The most a secret file may hold: a token, a JWT or a PEM key is a few KiB. A path such as
/// `/dev/zero` is refused instead of read until memory runs out.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A secret file's text, at most [`MAX_SECRET_BYTES`].
fn read_secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} KiB: not a secret",
            MAX_SECRET_BYTES / 1024
        )));
    }
    Ok(text)
}

/// The secret keys a config file holds inline.
const SECRET_KEYS: [&str; 5] = [
    "okta.token",
    "okta.oauth.private_key",
    "telus.client_secret",
    "telus.jwt",
    "notify.webhook_url",
];

/// A warning for each secret written inline in `path` (not from the environment) when
/// others than its owner can read the file: the same as for a readable `<key>_file`.
pub(super) fn inline_in_readable_file(path: &Path, text: &str) -> Vec<String> {
    let Some(w) = exposed(path) else {
        return Vec::new();
    };
    let Ok(file) = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
    else {
        return Vec::new();
    };
    SECRET_KEYS
        .iter()
        .filter(|key| file.get_string(key).is_ok_and(|v| !v.trim().is_empty()))
        .map(|key| {
            format!(
                "{key}: written in the file, and {w}, or move the secret to {key}_file or the credentials directory"
            )
        })
        .collect()
}

/// Why a secret file is readable by others than its owner, if it is.
fn exposed(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            return Some(format!(
                "{} is readable by others (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    None
}
