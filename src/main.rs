//! The `okta-telus-sync` binary: parses the command line, loads the config, sets up
//! telemetry and runs the command. Nothing else.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use okta_telus_sync::daemon::pass::{Clients, PassOptions, run_one_pass};
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::summary::PassOutcome;
use okta_telus_sync::{config, report, sandbox, store, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc returns freed memory to the system more readily than glibc's malloc, which keeps
/// the daemon's resident size close to what a pass really holds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for usage and configuration errors.
const EXIT_CONFIG: u8 = 2;
/// Exit code when a whole system failed (auth, unreachable).
const EXIT_SYSTEM: u8 = 4;

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
    Sync {
        /// Compute and print the plan; write nothing anywhere.
        #[arg(long)]
        dry_run: bool,
        /// Lift a safety hold (too many deactivations or changes, an empty directory) for this pass.
        #[arg(long)]
        approve: bool,
        /// Release quarantined users and try them again in this pass.
        #[arg(long)]
        retry_quarantined: bool,
        /// Read Okta whole (by default only users changed since the last pass are read).
        #[arg(long)]
        full: bool,
        /// Seconds to wait for another pass on the same store (the daemon's, say) to finish
        /// before giving up with exit code 5.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// Print what a pass would change; write nothing to either API or the store.
    Plan {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The journal of changes, old → new, oldest first.
    History {
        /// Only changes since WHEN: an RFC 3339 time, a date (2026-11-01), or an age (7d, 12h, 30m).
        #[arg(long)]
        since: Option<String>,
        /// Only this user's changes (email, case-insensitive).
        #[arg(long)]
        user: Option<String>,
        /// Only this attribute (the Okta attribute name, or `status`).
        #[arg(long)]
        attribute: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Last passes, held passes, quarantined users, token expiry, store size.
    Status,
    /// Validate sync.toml; exit 2 naming each bad key.
    CheckConfig {
        /// Also authenticate to both APIs and check every row against their live schemas.
        #[arg(long)]
        connect: bool,
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
    ServeFakes {
        #[arg(long)]
        users: usize,
        #[arg(long, default_value_t = 50)]
        changed_per_mille: usize,
        /// TELUS Medium-group budget per window (default: effectively unlimited).
        #[arg(long)]
        medium_limit: Option<u64>,
        #[arg(long, default_value_t = 60)]
        window_secs: u64,
        #[command(flatten)]
        okta: OktaFakeArgs,
    },
}

/// The fake Okta's budget and speed for the scale benchmark.
#[derive(clap::Args, Clone, Copy)]
struct OktaFakeArgs {
    /// Okta budget per bucket per window (default: effectively unlimited).
    #[arg(long)]
    okta_limit: Option<u64>,
    #[arg(long, default_value_t = 60)]
    okta_window_secs: u64,
    /// Time the fake takes to answer a profile update, standing for a network round trip.
    #[arg(long, default_value_t = 0)]
    okta_write_ms: u64,
    /// Every Okta user's `primaryPhone` is stale: one Okta write per user.
    #[arg(long)]
    okta_stale: bool,
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
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
    let result = match cli.command {
        Command::Run => {
            telemetry::init("info", cli.log_format);
            run_daemon(&cli.config, &runtime)
        }
        Command::Sandbox => {
            telemetry::init("error", cli.log_format);
            runtime.block_on(run_sandbox())
        }
        Command::ServeFakes {
            users,
            changed_per_mille,
            medium_limit,
            window_secs,
            okta,
        } => {
            telemetry::init("error", cli.log_format);
            runtime.block_on(serve_fakes(
                users,
                changed_per_mille,
                medium_limit,
                window_secs,
                okta,
            ))
        }
        Command::CheckConfig { connect } => {
            telemetry::init("warn", cli.log_format);
            if connect {
                runtime.block_on(schema_cmd(&cli.config, SchemaOut::Check))
            } else {
                check_config(&cli.config)
            }
        }
        Command::Schema { json } => {
            telemetry::init("warn", cli.log_format);
            let out = if json {
                SchemaOut::Json
            } else {
                SchemaOut::Text
            };
            runtime.block_on(schema_cmd(&cli.config, out))
        }
        Command::Sync {
            dry_run,
            approve,
            retry_quarantined,
            full,
            wait,
        } => {
            telemetry::init("info", cli.log_format);
            let opts = PassOptions {
                dry_run,
                approve,
                retry_quarantined,
                progress_bar: true,
                full,
                stop: None,
                lock_wait: std::time::Duration::from_secs(wait),
            };
            runtime.block_on(run_sync(&cli.config, opts, false))
        }
        Command::Plan { json } => {
            telemetry::init("warn", cli.log_format);
            let opts = PassOptions {
                dry_run: true,
                ..PassOptions::default()
            };
            runtime.block_on(run_sync(&cli.config, opts, json))
        }
        Command::History {
            since,
            user,
            attribute,
            json,
        } => {
            telemetry::init("warn", cli.log_format);
            history(&cli.config, since, user, attribute, json)
        }
        Command::Auth {
            system: AuthSystem::Telus { no_browser },
        } => {
            telemetry::init("warn", cli.log_format);
            runtime.block_on(auth_telus(&cli.config, no_browser))
        }
        Command::Status => {
            telemetry::init("warn", cli.log_format);
            status(&cli.config)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_daemon(path: &std::path::Path, runtime: &tokio::runtime::Runtime) -> anyhow::Result<u8> {
    use okta_telus_sync::daemon::{self, Signal};
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // signal-hook's iterator runs on its own thread and forwards into the runtime.
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let s = match sig {
                SIGHUP => Signal::Reload,
                SIGUSR1 => Signal::PassNow,
                _ => Signal::Terminate,
            };
            if tx.blocking_send(s).is_err() {
                break;
            }
        }
    });
    let result = runtime.block_on(daemon::run(path.to_path_buf(), config, rx));
    handle.close();
    result.map(|()| 0)
}

fn load_config(path: &std::path::Path) -> Result<config::Config, u8> {
    config::load(path).map_err(|e| {
        match e {
            config::Error::Load { .. } => eprintln!("error: {e}"),
            config::Error::Invalid { path, problems } => {
                eprintln!("error: {} is invalid:", path.display());
                for p in problems {
                    eprintln!("  {p}");
                }
            }
        }
        EXIT_CONFIG
    })
}

fn check_config(path: &std::path::Path) -> anyhow::Result<u8> {
    match load_config(path) {
        Ok(c) => {
            println!(
                "{}: ok ({} attribute rows, store {}, okta {}, telus {})",
                path.display(),
                c.policy.rules.len(),
                c.store_path.display(),
                c.okta.url,
                c.telus.url
            );
            Ok(0)
        }
        Err(code) => Ok(code),
    }
}

enum SchemaOut {
    Text,
    Json,
    Check,
}

/// `schema` and `check-config --connect`: authenticate to both APIs, fetch their schemas and
/// check the mastering table against them. Exit 2 for a row problem, 4 if a side fails.
async fn schema_cmd(path: &std::path::Path, out: SchemaOut) -> anyhow::Result<u8> {
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
            return Ok(EXIT_SYSTEM);
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
    Ok(if problems.is_empty() { 0 } else { EXIT_CONFIG })
}

async fn run_sync(path: &std::path::Path, opts: PassOptions<'_>, json: bool) -> anyhow::Result<u8> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let report = run_one_pass(&config, &clients, &store, opts).await?;
    if let Some(busy) = &report.busy {
        eprintln!("error: {busy}; try again when it has finished");
        return Ok(report.outcome.exit_code() as u8);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::plan_json(&report.plan))?
        );
    } else {
        if opts.dry_run || report.outcome == PassOutcome::Held {
            print!("{}", report::plan_text(&report.plan));
        }
        print!("{}", report::pass_text(&report));
    }
    Ok(report.outcome.exit_code() as u8)
}

fn open_store(config: &config::Config) -> anyhow::Result<store::Store> {
    store::Store::open(&config.store_path)
        .with_context(|| format!("opening store {}", config.store_path.display()))
}

fn history(
    path: &std::path::Path,
    since: Option<String>,
    user: Option<String>,
    attribute: Option<String>,
    json: bool,
) -> anyhow::Result<u8> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let since = match since.map(|s| report::parse_since(&s, chrono::Utc::now())) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("error: --since: {e}");
            return Ok(EXIT_CONFIG);
        }
    };
    let store = open_store(&config)?;
    let rows = store.history(&store::HistoryFilter {
        since,
        user_email: user,
        attribute,
    })?;
    use std::io::{IsTerminal as _, Write as _};
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            writeln!(out, "{}", report::history_json(r))?;
        }
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        write!(out, "{}", report::history_text(&rows, color))?;
    }
    Ok(0)
}

fn status(path: &std::path::Path) -> anyhow::Result<u8> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    print!("{}", report::status_text(&config, &store)?);
    Ok(0)
}

async fn auth_telus(path: &std::path::Path, no_browser: bool) -> anyhow::Result<u8> {
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
                return Ok(EXIT_SYSTEM);
            }
        }
    };
    println!(
        "Open this address in a browser, sign in as a TELUS administrator and approve:\n\n  {url}\n"
    );
    let landed = if let Some(listener) = listener {
        println!("Waiting for the browser on {redirect} ...");
        listener
            .wait(std::time::Duration::from_secs(600))
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
            return Ok(EXIT_SYSTEM);
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
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}\n  {}", e.explanation());
            Ok(EXIT_SYSTEM)
        }
    }
}

/// The benchmark's peer: generated fakes in their own process, so that the benchmark
/// measures only the sync's own CPU and memory. Prints the URLs as one JSON line, then obeys
/// stdin: `touch K` (K Okta users change department), `counts` (requests by endpoint), EOF.
async fn serve_fakes(
    users: usize,
    changed_per_mille: usize,
    medium_limit: Option<u64>,
    window_secs: u64,
    okta_args: OktaFakeArgs,
) -> anyhow::Result<u8> {
    use tokio::io::AsyncBufReadExt as _;
    let (mut okta, exts, nums) = sandbox::scale::directory(users, changed_per_mille);
    if okta_args.okta_stale {
        for u in &mut okta {
            u.profile
                .insert("primaryPhone".into(), serde_json::json!("stale"));
        }
    }
    let sb = sandbox::Sandbox::start(okta, exts, nums).await?;
    {
        let mut st = sb.okta.lock();
        st.rate_limit = okta_args.okta_limit.unwrap_or(u64::MAX / 2);
        st.window_secs = okta_args.okta_window_secs;
        st.write_delay = std::time::Duration::from_millis(okta_args.okta_write_ms);
    }
    {
        let mut st = sb.telus.lock();
        st.window = std::time::Duration::from_secs(window_secs);
        for g in ["Light", "Heavy", "Auth"] {
            st.limits.insert(g, u64::MAX / 2);
        }
        st.limits
            .insert("Medium", medium_limit.unwrap_or(u64::MAX / 2));
    }
    println!(
        "{}",
        serde_json::json!({"okta": sb.okta.url(), "telus": sb.telus.url()})
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["touch", k] => {
                let k: usize = k.parse().unwrap_or(0);
                let mut st = sb.okta.lock();
                let ids: Vec<String> = st.users.iter().take(k).map(|u| u.id.clone()).collect();
                for id in ids {
                    if let Some(u) = st.users.iter_mut().find(|u| u.id == id) {
                        u.profile
                            .insert("department".into(), serde_json::json!("Legal"));
                    }
                    st.touch(&id);
                }
                println!("{}", serde_json::json!({"touched": k}));
            }
            ["counts"] => {
                let o = sb.okta.lock();
                let t = sb.telus.lock();
                println!(
                    "{}",
                    serde_json::json!({
                        "okta_list": o.count("GET", "/api/v1/users"),
                        "okta_update": o.count("POST", "/api/v1/users/"),
                        "telus_token": t.count("POST", "/restapi/oauth/token"),
                        "telus_extension_list": t.count("GET", "/restapi/v1.0/account/~/extension"),
                        "telus_number_list": t.count("GET", "/restapi/v1.0/account/~/phone-number"),
                        "telus_update": t.count("PUT", "/restapi/v1.0/account/~/extension/"),
                        "telus_create": t.count("POST", "/restapi/v1.0/account/~/extension"),
                        "telus_429": t.rate_limited,
                        "telus_during_penalty": t.sent_during_penalty,
                        "okta_429": o.rate_limited,
                        "okta_peak_writes_in_flight": o.peak_writes_in_flight,
                        "okta_update_windows": o.admitted_per_window("users-update"),
                    })
                );
            }
            _ => {}
        }
    }
    Ok(0)
}

async fn run_sandbox() -> anyhow::Result<u8> {
    let sb = sandbox::Sandbox::start_demo()
        .await
        .context("starting the sandbox servers")?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config = sb.config(
        sandbox::Sandbox::demo_policy(),
        &dir.path().join("sandbox.db"),
    );
    println!(
        "Sandbox: fake Okta at {}, fake TELUS at {}",
        sb.okta.url(),
        sb.telus.url()
    );
    println!("Store: {}\n", config.store_path.display());
    let store = store::Store::open(&config.store_path)?;
    let clients = Clients::new(&config, HttpSettings::default());

    println!("== Plan (dry run) ==");
    let dry_run = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let dry = run_one_pass(&config, &clients, &store, dry_run).await?;
    print!("{}", report::plan_text(&dry.plan));

    println!("\n== Pass 1 ==");
    let first = run_one_pass(&config, &clients, &store, PassOptions::default()).await?;
    print!("{}", report::pass_text(&first));

    println!("\n(Meanwhile someone edits Liam's department by hand in the TELUS portal.)");
    if let Some(liam) = sb
        .telus
        .lock()
        .extensions
        .iter_mut()
        .find(|e| e.extension_number == "112")
    {
        liam.contact
            .insert("department".into(), serde_json::json!("Facilities"));
    }

    println!("\n== Pass 2: the edit is drift, reported and overwritten by Okta ==");
    let second = run_one_pass(&config, &clients, &store, PassOptions::default()).await?;
    print!("{}", report::plan_text(&second.plan));
    print!("{}", report::pass_text(&second));

    let writes_before = writes(&sb);
    println!("\n== Pass 3 ==");
    let third = run_one_pass(&config, &clients, &store, PassOptions::default()).await?;
    print!("{}", report::pass_text(&third));
    println!(
        "Write requests sent in pass 3: {}",
        writes(&sb) - writes_before
    );

    println!("\n== TELUS after the passes ==");
    {
        let st = sb.telus.lock();
        let mut exts: Vec<_> = st.extensions.iter().collect();
        exts.sort_by_key(|e| e.extension_number.clone());
        for e in exts {
            let c = |k: &str| {
                e.contact
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let city = e
                .contact
                .get("businessAddress")
                .and_then(|a| a.get("city"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let cost = st
                .custom_values
                .get(&e.id)
                .and_then(|m| m.get("cf1"))
                .cloned()
                .unwrap_or_default();
            println!(
                "  ext {:<4} {:<9} {:<30} {:<12} {:<13} {:<12} cost center {}",
                e.extension_number,
                e.status,
                c("email"),
                c("department"),
                c("mobilePhone"),
                city,
                cost
            );
        }
    }
    println!("\n== Okta after the passes ==");
    {
        let st = sb.okta.lock();
        for u in &st.users {
            let p = |k: &str| {
                u.profile
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            println!(
                "  {:<9} {:<30} primaryPhone {}",
                u.status,
                p("email"),
                p("primaryPhone")
            );
        }
    }
    println!(
        "\nThe journal of every change is in the store; run passes against your own directories with `sync --dry-run` first."
    );
    Ok(0)
}

fn writes(sb: &sandbox::Sandbox) -> usize {
    let okta = sb.okta.lock().count("POST", "/api/v1/users/");
    let telus = sb.telus.lock();
    okta + telus.count("PUT", "/restapi/v1.0/") + telus.count("POST", "/restapi/v1.0/")
}
