//! `run`: the daemon, with SIGTERM/SIGINT, SIGHUP and SIGUSR1 forwarded to it.

use super::load_config;
use crate::Exit;
use anyhow::Context as _;

pub fn run(path: &std::path::Path, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Exit> {
    use okta_telus_sync::daemon::{self, Signal};
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // As root on the service's store, the daemon would leave files the service cannot open.
    super::refuse_root_on_a_service_store(&config.store_path)?;
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
    result.map(|()| Exit::Ok)
}
