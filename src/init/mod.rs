//! `init --from-okta-app`: reads Okta's built-in TELUS app (its features, the mappings both
//! ways, the schema's masters, and with `--links` its assignments) and writes the
//! `sync.toml` that replaces it (`write.rs`, pure), naming what needs a hand.

pub mod write;

pub use write::{AppSetup, PUSHING_FEATURES, Written};

/// What `init` could not read, with the OAuth scope the read needs.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Okta answered no (404 for the app, 403 for a scope the token lacks): exit 2.
    #[error("{what}: {error}{hint}")]
    Refused {
        what: String,
        error: String,
        hint: String,
    },
    /// Okta could not be reached: exit 4.
    #[error("{what}: {error}")]
    Unreachable { what: String, error: String },
}

fn refused_or_unreachable(what: &str, scope: &str, e: crate::okta::Error) -> InitError {
    match &e {
        crate::okta::Error::Api { status, .. } if *status < 500 => InitError::Refused {
            what: what.to_string(),
            hint: match status {
                403 => format!(
                    " (an OAuth service app needs the scope {scope}; an API token needs an admin role that can read apps and profile mappings)"
                ),
                404 => " (check the app id: Applications > the app > its URL ends with it)".into(),
                _ => String::new(),
            },
            error: e.to_string(),
        },
        _ => InitError::Unreachable {
            what: what.to_string(),
            error: e.to_string(),
        },
    }
}

/// Reads what `write` needs from the org.
pub async fn read_setup(
    okta: &crate::okta::Client,
    okta_url: &str,
    app_id: &str,
) -> Result<AppSetup, InitError> {
    let app = okta.get_app(app_id).await.map_err(|e| {
        refused_or_unreachable(&format!("reading app {app_id}"), "okta.apps.read", e)
    })?;
    let user_type = okta
        .default_user_type()
        .await
        .map_err(|e| {
            refused_or_unreachable("reading the default user type", "okta.schemas.read", e)
        })?
        .ok_or_else(|| InitError::Refused {
            what: "reading the default user type".into(),
            error: "Okta lists no default user type".into(),
            hint: String::new(),
        })?;
    let mapping = |source: String, target: String| async move {
        okta.mapping(&source, &target).await.map_err(|e| {
            refused_or_unreachable(
                "reading the app's profile mappings",
                "okta.profileMappings.read",
                e,
            )
        })
    };
    let push = mapping(user_type.clone(), app_id.to_string()).await?;
    let pull = mapping(app_id.to_string(), user_type).await?;
    let masters = okta
        .fetch_schema()
        .await
        .map_err(|e| refused_or_unreachable("reading the profile schema", "okta.schemas.read", e))?
        .into_iter()
        .map(|a| (a.name, a.master))
        .collect();
    Ok(AppSetup {
        okta_url: okta_url.to_string(),
        app,
        push,
        pull,
        masters,
    })
}
