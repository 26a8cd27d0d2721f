//! `schema` and `check-config --connect`: both sides' live schemas, and the mastering table
//! checked against them.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;

/// Whether the credentials allow the change events `[events]` turns on: one System Log read
/// and one WebSocket token. A refusal is a warning (scheduled passes still carry changes).
/// Whether Okta's built-in TELUS app (`okta.app_id`) still pushes: a warning naming it.
async fn check_builtin_app(config: &okta_telus_sync::config::Config, clients: &Clients) {
    let Some(app) = &config.okta.app_id else {
        return;
    };
    match clients.okta.get_app(app).await {
        Ok(a) => {
            let pushing: Vec<&str> = a
                .features
                .iter()
                .map(String::as_str)
                .filter(|f| okta_telus_sync::init::PUSHING_FEATURES.contains(f))
                .collect();
            match pushing.is_empty() {
                true => println!("built-in app {app}: no provisioning feature on"),
                false => println!(
                    "warning: Okta's built-in TELUS app {app} still has {} on: two writers would fight over the same users; turn them off before enabling the daemon",
                    pushing.join(", ")
                ),
            }
        }
        Err(e) => println!(
            "warning: built-in app {app} (okta.app_id) not readable ({e}); an OAuth app needs the okta.apps.read scope"
        ),
    }
}

async fn check_events(config: &okta_telus_sync::config::Config, clients: &Clients) {
    use okta_telus_sync::okta::LogCursor;
    if let Some(every) = config.events.okta_poll {
        let since = LogCursor::Since(okta_telus_sync::store::now());
        match clients.okta.poll_logs(&since).await {
            Ok(_) => println!(
                "change events: Okta System Log readable (polled every {} s)",
                every.as_secs()
            ),
            Err(e) => println!(
                "warning: change events: Okta System Log not readable ({e}); an OAuth app needs the okta.logs.read scope. Okta changes will wait for scheduled passes"
            ),
        }
    }
    if config.events.telus_websocket {
        match clients.telus.check_websocket().await {
            Ok(()) => println!("change events: TELUS WebSocket notifications allowed"),
            Err(why) => println!(
                "warning: change events: {why}. TELUS changes will wait for scheduled passes"
            ),
        }
    }
}

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
            check_events(&config, &clients).await;
            check_builtin_app(&config, &clients).await;
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
