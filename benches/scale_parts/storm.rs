//! Section 7 of the scale benchmark: event storms at 10,000 users against fakes at the
//! published limits in another process, with `events.whole_pass_spacing_minutes = 1` (one
//! whole-pass interval is a minute). Three storms, one after another: 100 lifecycle events of
//! unlinked users in a minute (10 of them new hires who can be created), a System Log
//! answering 400 for two minutes, and a gateway that drops every session after subscribing
//! for a minute. Each prints the whole passes it cost, the requests on both sides, the 429s,
//! and when the real changes made during it landed, counted from its end.

use super::Fakes;
use okta_telus_sync::daemon::{self, Signal};
use okta_telus_sync::store::Store;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USERS: usize = 10_000;
/// How long a real change may take after its storm's end: one whole-pass interval, plus the
/// time the pass itself takes at 10,000 users (reported, not hidden).
const SPACING_S: u64 = 60;

fn whole_passes(store: &std::path::Path) -> usize {
    let Ok(s) = Store::open(store) else { return 0 };
    s.recent_passes(10_000)
        .map(|p| {
            p.iter()
                .filter(|p| matches!(p.kind.as_str(), "full" | "incremental"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits until `landed` holds (checked every half second), up to `limit`.
async fn until(mut landed: impl FnMut() -> bool, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if landed() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// What a storm cost: the difference of the fakes' counters and of the store's passes.
fn cost(before: &Value, after: &Value, passes: usize, landed: Option<Duration>) -> Value {
    let d = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    json!({
        "whole_passes": passes,
        "okta_requests": d("okta_requests"),
        "telus_requests": d("telus_requests"),
        "telus_wstoken": d("telus_wstoken"),
        "okta_429": d("okta_429"),
        "telus_429": d("telus_429"),
        "landed_after_end_s": landed.map(|d| d.as_secs_f64()),
    })
}

/// Runs the storms in this (child) process; answers one JSON value.
pub fn run() -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut fakes = super::events::published_fakes(USERS, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, config) = super::events::daemon_config(
        &fakes,
        dir.path(),
        "[events]\nwhole_pass_spacing_minutes = 1\n",
    );
    let store = config.store_path.clone();
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let driver = async {
            let r = storms(&mut fakes, &store).await;
            let _ = tx.send(Signal::Terminate).await;
            r
        };
        let (ran, out) = tokio::join!(daemon::run(path.clone(), config.clone(), rx), driver);
        ran.expect("the daemon");
        json!({"users": USERS, "storms": out})
    })
}

async fn storms(fakes: &mut Fakes, store: &std::path::Path) -> Value {
    // Up: the start-up pass done, the WebSocket subscribed, the start-up catch-up run.
    while whole_passes(store) == 0 || fakes.ask("counts")["ws_connections"].as_u64() == Some(0) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    let mut out = json!({});

    // 1. 100 lifecycle events of unlinked users in a minute; every tenth can be created.
    let (before, passes) = (fakes.ask("counts"), whole_passes(store));
    for k in 0..100 {
        let status = if k % 10 == 0 { "ACTIVE" } else { "STAGED" };
        fakes.ask(&format!("okta-new-user {k} {status}"));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let landed = until(
        || fakes.ask("created-new-users")["n"].as_u64() == Some(10),
        Duration::from_secs(SPACING_S * 5),
    )
    .await;
    out["unlinked"] = cost(
        &before,
        &fakes.ask("counts"),
        whole_passes(store) - passes,
        landed,
    );

    // 2. The System Log answers 400 for two minutes; an Okta edit made during it.
    let (before, passes) = (fakes.ask("counts"), whole_passes(store));
    fakes.ask("okta-logs-400 on");
    tokio::time::sleep(Duration::from_secs(10)).await;
    fakes.ask("okta-dept 300 Storm2");
    tokio::time::sleep(Duration::from_secs(110)).await;
    fakes.ask("okta-logs-400 off");
    let landed = until(
        || fakes.ask("get 300")["telus_dept"].as_str() == Some("Storm2"),
        Duration::from_secs(SPACING_S * 5),
    )
    .await;
    out["log_400"] = cost(
        &before,
        &fakes.ask("counts"),
        whole_passes(store) - passes,
        landed,
    );

    // 3. A gateway that drops every session after subscribing, for a minute; a TELUS edit
    // made during it.
    let (before, passes) = (fakes.ask("counts"), whole_passes(store));
    fakes.ask("ws-drop-after-subscribe on");
    tokio::time::sleep(Duration::from_secs(10)).await;
    fakes.ask("telus-number 301 +16045559301");
    tokio::time::sleep(Duration::from_secs(50)).await;
    fakes.ask("ws-drop-after-subscribe off");
    let landed = until(
        || {
            fakes.ask("get 301")["okta_phone"]
                .as_str()
                .is_some_and(|p| p.starts_with("+16045559301"))
        },
        Duration::from_secs(SPACING_S * 5),
    )
    .await;
    out["gateway_drops"] = cost(
        &before,
        &fakes.ask("counts"),
        whole_passes(store) - passes,
        landed,
    );
    out
}

/// Prints section 7 from `run`'s answer.
pub fn print(r: &Value) {
    println!(
        "\n7. Event storms, {} users a side, whole_pass_spacing_minutes = 1, fakes at the published limits (targets: <= 2 whole passes a storm, no 429, every change landed within a minute of the storm's end)",
        r["users"]
    );
    println!(
        "   {:<58} {:>6} {:>9} {:>9} {:>8} {:>5} {:>16}",
        "storm", "whole", "Okta req", "TELUS req", "wstoken", "429", "landed after end"
    );
    for (name, key) in [
        (
            "100 lifecycle events of unlinked users in a minute",
            "unlinked",
        ),
        ("System Log answering 400 for two minutes", "log_400"),
        (
            "gateway dropping every session after subscribing, 1 min",
            "gateway_drops",
        ),
    ] {
        let s = &r["storms"][key];
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        println!(
            "   {:<58} {:>6} {:>9} {:>9} {:>8} {:>5} {:>16}",
            name,
            n("whole_passes"),
            n("okta_requests"),
            n("telus_requests"),
            n("telus_wstoken"),
            n("okta_429") + n("telus_429"),
            s["landed_after_end_s"]
                .as_f64()
                .map(|v| format!("{v:.1} s"))
                .unwrap_or_else(|| "NEVER".into())
        );
    }
}
