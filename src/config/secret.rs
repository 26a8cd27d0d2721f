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
            match std::fs::read_to_string(&path) {
                Ok(v) => v,
                Err(e) => {
                    p.push(file_key, format!("cannot read {}: {e}", path.display()));
                    return None;
                }
            }
        }
        (None, None) => {
            let from_creds = std::env::var_os("CREDENTIALS_DIRECTORY")
                .map(|d| PathBuf::from(d).join(cred_name))
                .and_then(|path| std::fs::read_to_string(path).ok());
            match from_creds {
                Some(v) => v,
                None if required => {
                    p.push(
                        key,
                        format!(
                            "missing: set {key}, {file_key}, the environment variable {} or a systemd credential named {cred_name}",
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
