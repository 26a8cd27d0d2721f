//! Tracing subscriber setup: logs on stderr, filtered by `RUST_LOG` (default level given by
//! the command), as text or JSON lines. Under journald the text drops its own timestamp.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. `default` applies when `RUST_LOG` is unset.
pub fn init(default: &str, format: LogFormat) {
    // The scheduler crate is chatty at INFO about its own start-up.
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},tokio_cron_scheduler=warn")));
    // The WebSocket crates log the gateway URL, which carries the single-use token, at
    // DEBUG and TRACE: they are silenced whatever RUST_LOG asks.
    for quiet in ["tungstenite=off", "tokio_tungstenite=off"] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    // journald stamps every line itself, and shows no colours.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match (format, journald) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
}
