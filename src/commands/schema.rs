//! `schema` and `check-config --connect`: both sides' live schemas, and the mastering table
//! checked against them.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::daemon::pass::Clients;
use okta_telus_sync::http::HttpSettings;

pub enum SchemaOut {
    Text,
    Json,
    Check,
}

/// `schema` and `check-config --connect`: authenticate to both APIs, fetch their schemas and
/// check the mastering table against them. Exit 2 for a row problem, 4 if a side fails.
pub async fn run(path: &std::path::Path, out: SchemaOut) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let (okta, telus) = tokio::join!(
        clients.okta.fetch_schema(),
        clients.telus.fetch_custom_fields()
    );
    let (okta, telus) = match (okta, telus) {
        (Ok(o), Ok(t)) => (o, t),
        (o, t) => {
            if let Err(e) = o {
                eprintln!("error: Okta: {e}\n  {}", e.explanation());
            }
            if let Err(e) = t {
                eprintln!("error: TELUS: {e}\n  {}", e.explanation());
            }
            return Ok(Exit::System);
        }
    };
    let problems = okta_telus_sync::schema::check_policy(&config.policy, &okta, &telus);
    match out {
        SchemaOut::Json => println!(
            "{}",
            serde_json::to_string_pretty(&okta_telus_sync::schema::schema_json(
                &config.policy,
                &okta,
                &telus
            ))?
        ),
        SchemaOut::Text => print!(
            "{}",
            okta_telus_sync::schema::schema_text(&config.policy, &okta, &telus)
        ),
        SchemaOut::Check => {
            if problems.is_empty() {
                println!(
                    "{}: ok; authenticated to Okta and TELUS; all {} rows match both live schemas",
                    path.display(),
                    config.policy.rules.len()
                );
            } else {
                eprintln!("error: {} does not match the live schemas:", path.display());
                for p in &problems {
                    eprintln!("  {p}");
                }
            }
        }
    }
    Ok(if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Config
    })
}
