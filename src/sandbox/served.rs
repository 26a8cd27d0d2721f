//! A fake API server on a loopback ephemeral port: its shared state, the fault layer in front
//! of its routes, and the task serving it (stopped when dropped). Both fakes are one of these.

use super::faults::{self, Dialect, Fault, FaultKind, Faults};
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub struct Served<S> {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<S>>,
    /// Faults to inject, and the log of every request with the status it got.
    pub faults: Faults,
    task: tokio::task::JoinHandle<()>,
}

impl<S> Served<S> {
    /// Serves `app` (whose handlers share `state`) behind a fault layer speaking `dialect`.
    pub async fn serve(
        state: Arc<Mutex<S>>,
        app: Router,
        dialect: Dialect,
    ) -> std::io::Result<Self> {
        let faults = faults::new(dialect);
        let app = app.layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            faults::layer,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Served {
            addr,
            state,
            faults,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects a fault for the next `times` requests matching `method` and `path_prefix`.
    pub fn inject(&self, method: &str, path_prefix: &str, kind: FaultKind, times: u32) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .faults
            .push(Fault::new(method, path_prefix, kind, times));
    }

    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S> Drop for Served<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
