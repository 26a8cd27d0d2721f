//! `auth telus`: the authorization-code flow with PKCE, on the loopback redirect (or a
//! pasted address), and the session stored.

use super::{load_config, open_store};
use crate::Exit;
use anyhow::Context as _;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;

pub async fn telus(path: &std::path::Path, no_browser: bool) -> anyhow::Result<Exit> {
    use okta_telus_sync::telus::auth;
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let pkce = auth::Pkce::new();
    let state = auth::new_state();
    let redirect = &config.telus.redirect_uri;
    let url = auth::authorize_url(
        &config.telus.url,
        &config.telus.client_id,
        &config.telus.brand_id,
        redirect,
        &state,
        &pkce,
    );
    // Listen before the address is shown, so the browser never finds the port closed.
    let listener = if no_browser {
        None
    } else {
        match auth::RedirectListener::bind(redirect).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!(
                    "error: {e}\n  set telus.redirect_uri to a free loopback port, or use --no-browser"
                );
                return Ok(Exit::System);
            }
        }
    };
    println!(
        "Open this address in a browser, sign in as a TELUS administrator and approve:\n\n  {url}\n"
    );
    let landed = if let Some(listener) = listener {
        println!("Waiting for the browser on {redirect} ...");
        listener
            .wait(&state, std::time::Duration::from_secs(600))
            .await
            .map_err(anyhow::Error::msg)?
    } else {
        println!("Your browser then goes to {redirect}?code=... (it may show an error page).");
        println!("Paste that whole address here and press Enter:");
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the pasted address")?;
        line
    };
    let code = match auth::code_from_redirect(&landed, &state) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::System);
        }
    };
    match clients
        .telus
        .exchange_code(&code, &pkce.verifier, redirect)
        .await
    {
        Ok(pair) => {
            let until = pair
                .refresh_expires_at
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "unknown".into());
            println!(
                "TELUS session stored in {}. The refresh token is valid until {until} and renews with every pass.",
                config.store_path.display()
            );
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("error: {e}\n  {}", e.explanation());
            Ok(Exit::System)
        }
    }
}
