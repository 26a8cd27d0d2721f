//! The `okta-telus-sync` binary: the command line, the dispatch to `commands/`, and the exit
//! codes. Each command's work lives in its own module under `commands/`.

mod commands;

use clap::{Parser, Subcommand};
use okta_telus_sync::model::PassOutcome;
use okta_telus_sync::telemetry;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc returns freed memory to the system more readily than glibc's malloc, which keeps
/// the daemon's resident size close to what a pass really holds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The exit codes (DESIGN.md's, for `sync`; the other commands use the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// All applied, or nothing to do.
    Ok = 0,
    /// Some users failed.
    UsersFailed = 1,
    /// Usage or configuration error.
    Config = 2,
    /// Held by a safety limit.
    Held = 3,
    /// A whole system failed (auth, unreachable).
    System = 4,
    /// Another pass holds the store.
    Busy = 5,
    /// A saved plan (`sync --plan`) is stale or does not belong here: refused whole.
    PlanRefused = 6,
}

impl From<PassOutcome> for Exit {
    fn from(o: PassOutcome) -> Exit {
        match o {
            PassOutcome::Clean => Exit::Ok,
            PassOutcome::UsersFailed => Exit::UsersFailed,
            PassOutcome::Held => Exit::Held,
            PassOutcome::SystemFailed => Exit::System,
            PassOutcome::Busy => Exit::Busy,
        }
    }
}

#[derive(Parser)]
#[command(
    name = "okta-telus-sync",
    version,
    about = "Keeps Okta and TELUS Business Connect in agreement, attribute by attribute"
)]
struct Cli {
    /// Path of the configuration file.
    #[arg(long, global = true, default_value = "sync.toml")]
    config: PathBuf,
    /// Log lines as text (default) or JSON, on stderr.
    #[arg(long, global = true, value_enum, default_value_t = telemetry::LogFormat::Text)]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon: incremental passes on schedule.cron, full passes on schedule.full_cron.
    /// SIGHUP reloads sync.toml, SIGUSR1 runs a pass now, SIGTERM/SIGINT stop cleanly.
    Run,
    /// Run one pass now.
    Sync(commands::sync::SyncArgs),
    /// Print what a pass would change; write nothing to either API or the store.
    Plan {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Only these linked users (their email), each read now (repeatable).
        #[arg(long = "user", value_name = "EMAIL")]
        users: Vec<String>,
        /// Also save the plan to FILE (0600, signed) for review; `sync --plan FILE` applies
        /// exactly its changes.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        /// With --out: the reviewer approves the plan's safety holds; the approval travels
        /// in the file.
        #[arg(long, requires = "out")]
        approve: bool,
    },
    /// Why the tool does what it does for one user: the link, each row's values and rule,
    /// what applies (holds, backoff, refusals, data problems), the last changes. Reads that
    /// user now; takes no lock and writes nothing.
    Explain {
        /// The user's email (Okta's, as the last pass read it).
        email: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the store to PATH (0600; safe beside a running daemon).
    Backup {
        /// Where the copy goes; must not exist.
        path: std::path::PathBuf,
    },
    /// The journal of changes, old → new, oldest first.
    History(commands::history::HistoryArgs),
    /// The import queue: TELUS users with no Okta match, and what to do with each.
    Import {
        #[command(subcommand)]
        command: commands::import::ImportCommand,
    },
    /// Writes a sync.toml from Okta's built-in TELUS app (features, mappings, masters).
    Init(commands::init::InitArgs),
    /// Last passes, held passes, quarantined users, token expiry, store size.
    Status,
    /// Validate sync.toml; exit 2 naming each bad key.
    CheckConfig {
        /// Also authenticate to both APIs and check every row against their live schemas.
        #[arg(long, conflicts_with = "notify")]
        connect: bool,
        /// Also send a test notification to `[notify]`'s webhook and command, and say how
        /// each went.
        #[arg(long)]
        notify: bool,
    },
    /// List the attributes both sides offer (type, writable, mapped), from their live schemas.
    Schema {
        #[arg(long)]
        json: bool,
    },
    /// Authorize this tool with TELUS (authorization code with PKCE) and store the session.
    Auth {
        #[command(subcommand)]
        system: AuthSystem,
    },
    /// Start built-in fake Okta and TELUS servers with demo data and run real passes against them.
    Sandbox,
    /// Serve generated fakes for the scale benchmark (reads commands on stdin).
    #[command(hide = true)]
    ServeFakes(commands::serve_fakes::ServeFakesArgs),
    /// Write shell completions (bash, zsh, fish) and the man page into DIR (for packaging).
    #[command(hide = true)]
    Assets { out: PathBuf },
}

#[derive(Subcommand)]
enum AuthSystem {
    /// Sign in to TELUS in a browser; the tokens are kept in the store and rotated by passes.
    Telus {
        /// Do not wait on the loopback redirect: paste the address the browser lands on
        /// instead (for a server with no browser).
        #[arg(long)]
        no_browser: bool,
    },
}

impl Command {
    /// The log level when `RUST_LOG` is unset: the daemon and `sync` report their passes;
    /// commands that print their own output log only what goes wrong.
    fn log_level(&self) -> &'static str {
        match self {
            Command::Run | Command::Sync(_) => "info",
            Command::Sandbox | Command::ServeFakes(_) => "error",
            _ => "warn",
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.use_stderr() {
                true => ExitCode::from(Exit::Config as u8),
                false => ExitCode::SUCCESS,
            };
        }
    };
    telemetry::init(cli.command.log_level(), cli.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = cli.config.as_path();
    use commands::schema::SchemaOut;
    let result = match cli.command {
        Command::Run => commands::run::run(path, &runtime),
        Command::Sync(args) => runtime.block_on(commands::sync::sync(path, &args)),
        Command::Plan {
            json,
            users,
            out: Some(out),
            approve,
        } => runtime.block_on(commands::review::plan_out(
            path, &out, approve, json, &users,
        )),
        Command::Plan { json, users, .. } => {
            runtime.block_on(commands::sync::plan(path, json, &users))
        }
        Command::History(args) => commands::history::run(path, args),
        Command::Import { command } => runtime.block_on(commands::import::run(path, command)),
        Command::Init(args) => runtime.block_on(commands::init::run(path, args)),
        Command::Backup { path: dest } => commands::backup::run(path, &dest),
        Command::Explain { email, json } => {
            runtime.block_on(commands::explain::run(path, &email, json))
        }
        Command::Status => commands::status::run(path),
        Command::CheckConfig {
            connect: false,
            notify: false,
        } => commands::check_config::run(path),
        Command::CheckConfig { connect: true, .. } => {
            runtime.block_on(commands::schema::run(path, SchemaOut::Check))
        }
        Command::CheckConfig { notify: true, .. } => {
            runtime.block_on(commands::check_config::notify(path))
        }
        Command::Schema { json } => {
            let out = if json {
                SchemaOut::Json
            } else {
                SchemaOut::Text
            };
            runtime.block_on(commands::schema::run(path, out))
        }
        Command::Auth {
            system: AuthSystem::Telus { no_browser },
        } => runtime.block_on(commands::auth::telus(path, no_browser)),
        Command::Sandbox => runtime.block_on(commands::sandbox::run()),
        Command::ServeFakes(args) => runtime.block_on(commands::serve_fakes::run(args)),
        Command::Assets { out } => {
            commands::assets::write(<Cli as clap::CommandFactory>::command(), &out)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sync`'s exit codes as DESIGN.md gives them, one per pass outcome.
    #[test]
    fn each_pass_outcome_has_its_exit_code() {
        let codes: Vec<(PassOutcome, i32)> = [
            PassOutcome::Clean,
            PassOutcome::UsersFailed,
            PassOutcome::Held,
            PassOutcome::SystemFailed,
            PassOutcome::Busy,
        ]
        .into_iter()
        .map(|o| (o, Exit::from(o) as i32))
        .collect();
        assert_eq!(
            codes,
            [
                (PassOutcome::Clean, 0),
                (PassOutcome::UsersFailed, 1),
                (PassOutcome::Held, 3),
                (PassOutcome::SystemFailed, 4),
                (PassOutcome::Busy, 5),
            ]
        );
    }
}
