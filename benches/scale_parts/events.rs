//! Section 6 of the scale benchmark: change events at 10,000 users with the default
//! `[events]` (Okta polled every 10 s, TELUS over WebSocket) against fakes at the published
//! rate limits in another process. Latency of single changes in both directions, the idle
//! cost per minute, and no loss after a gateway outage longer than its recovery timeout
//! (scaled: 3 s for RingCentral's 180 s) and after a restart of the daemon.

use super::Fakes;
use okta_telus_sync::daemon::{self, Signal};
use okta_telus_sync::store::Store;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Users per side.
const USERS: usize = 10_000;
/// Single changes timed (a third each: an Okta department, an Okta suspension, a TELUS number).
const CHANGES: usize = 24;

/// One kind of change, made to user `i`, and how to tell it landed on the other side.
#[derive(Clone, Copy)]
enum Change {
    OktaDept,
    OktaSuspend,
    TelusNumber,
}

impl Change {
    fn make(self, fakes: &mut Fakes, i: usize) {
        match self {
            Change::OktaDept => fakes.ask(&format!("okta-dept {i} Dept{i}")),
            Change::OktaSuspend => fakes.ask(&format!("okta-suspend {i}")),
            Change::TelusNumber => fakes.ask(&format!("telus-number {i} {}", number(i))),
        };
    }

    fn landed(self, fakes: &mut Fakes, i: usize) -> bool {
        let v = fakes.ask(&format!("get {i}"));
        match self {
            Change::OktaDept => v["telus_dept"] == json!(format!("Dept{i}")),
            Change::OktaSuspend => v["telus_status"] == json!("Disabled"),
            Change::TelusNumber => v["okta_phone"]
                .as_str()
                .is_some_and(|p| p.starts_with(&number(i))),
        }
    }

    fn okta_side(self) -> bool {
        !matches!(self, Change::TelusNumber)
    }
}

fn number(i: usize) -> String {
    format!("+1778{:07}", 3_000_000 + i)
}

/// A small deterministic generator (no dependency): the waits between changes.
struct Lcg(u64);

impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn until_landed(
    fakes: &mut Fakes,
    pending: &[(Change, usize)],
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if pending.iter().all(|(c, i)| c.landed(fakes, *i)) {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn passes(path: &std::path::Path, kind: &str) -> usize {
    Store::open(path)
        .and_then(|s| s.recent_passes(10_000))
        .map(|v| {
            v.iter()
                .filter(|p| p.kind.as_str() == kind && p.finished_at.is_some())
                .count()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The fakes for the daemon sections: `users` a side, none changed, at the published limits,
/// with `extra` arguments.
pub fn published_fakes(users: usize, extra: &[&str]) -> Fakes {
    let mut args: Vec<String> = vec![
        "--users".into(),
        users.to_string(),
        "--changed-per-mille".into(),
        "0".into(),
        "--published-limits".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    Fakes::start(&args)
}

/// Writes the daemon's `sync.toml` for `fakes` into `dir` (the shipped defaults, `extra`
/// appended) and loads it.
pub fn daemon_config(
    fakes: &Fakes,
    dir: &std::path::Path,
    extra: &str,
) -> (std::path::PathBuf, okta_telus_sync::config::Config) {
    let path = dir.join("sync.toml");
    std::fs::write(
        &path,
        format!(
            "[okta]\nurl = \"{}\"\ntoken = \"{}\"\n[telus]\nurl = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\njwt = \"{}\"\n[store]\npath = \"s.db\"\n{extra}",
            fakes.okta,
            okta_telus_sync::sandbox::OKTA_TOKEN,
            fakes.telus,
            okta_telus_sync::sandbox::TELUS_CLIENT_ID,
            okta_telus_sync::sandbox::TELUS_CLIENT_SECRET,
            okta_telus_sync::sandbox::TELUS_JWT,
        ),
    )
    .expect("config");
    let config = okta_telus_sync::config::load_with_env(&path, Vec::new()).expect("config loads");
    (path, config)
}

/// Runs the whole measurement in this (child) process; answers one JSON value.
pub fn run() -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut fakes = published_fakes(USERS, &["--recovery-timeout-secs", "3"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, config) = daemon_config(&fakes, dir.path(), "");
    let store_path = config.store_path.clone();
    let mut out = json!({"users": USERS});
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let driver = async {
            let r = live_phase(&mut fakes, &store_path).await;
            let _ = tx.send(Signal::Terminate).await;
            r
        };
        let (ran, live) = tokio::join!(daemon::run(path.clone(), config.clone(), rx), driver);
        ran.expect("the daemon");
        out["live"] = live;
        // Restart: changes while the daemon is down, then it starts again.
        let while_down: Vec<(Change, usize)> = (0..10)
            .map(|k| {
                (
                    if k % 2 == 0 {
                        Change::TelusNumber
                    } else {
                        Change::OktaDept
                    },
                    9_000 + k,
                )
            })
            .collect();
        for (c, i) in &while_down {
            c.make(&mut fakes, *i);
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let driver = async {
            let landed = until_landed(&mut fakes, &while_down, Duration::from_secs(600)).await;
            let _ = tx.send(Signal::Terminate).await;
            landed
        };
        let incremental = passes(&store_path, "incremental");
        let (ran, landed) = tokio::join!(daemon::run(path.clone(), config.clone(), rx), driver);
        ran.expect("the daemon");
        out["restart"] = json!({
            "changes": while_down.len(),
            "landed_s": landed.map(|d| d.as_secs_f64()),
            "incremental_passes": passes(&store_path, "incremental") - incremental,
        });
    });
    out
}

/// With the daemon running: latency of single changes, the idle cost, and an outage.
async fn live_phase(fakes: &mut Fakes, store: &std::path::Path) -> Value {
    // Up: the start-up pass done and the WebSocket subscribed.
    let started = Instant::now();
    while passes(store, "incremental") + passes(store, "full") == 0
        || fakes.ask("counts")["ws_connections"].as_u64().unwrap_or(0) == 0
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let startup_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut rng = Lcg(0x5eed);
    let (mut okta, mut telus) = (Vec::new(), Vec::new());
    for k in 0..CHANGES {
        // A random moment against the poll's phase.
        tokio::time::sleep(Duration::from_secs_f64(rng.next_f64() * 10.0)).await;
        let change = [Change::OktaDept, Change::OktaSuspend, Change::TelusNumber][k % 3];
        let i = 100 + k;
        change.make(fakes, i);
        let lag = until_landed(fakes, &[(change, i)], Duration::from_secs(300))
            .await
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::INFINITY);
        match change.okta_side() {
            true => okta.push(lag),
            false => telus.push(lag),
        }
    }
    let summary = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        json!({"n": v.len(), "p50": percentile(&v, 50.0), "p95": percentile(&v, 95.0), "max": v.last()})
    };
    // Idle: a minute with no change.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = fakes.ask("counts");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = fakes.ask("counts");
    let d = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    let idle = json!({
        "okta_requests": d("okta_requests"),
        "okta_logs": d("okta_logs"),
        "telus_requests": d("telus_requests"),
        "telus_wstoken": d("telus_wstoken"),
        "telus_token": d("telus_token"),
        "heartbeats": d("ws_heartbeats"),
    });
    // An outage of the gateway twice its recovery timeout, with edits on both sides in it.
    let incremental = passes(store, "incremental");
    fakes.ask("ws-outage 6");
    let during: Vec<(Change, usize)> = (0..10)
        .map(|k| {
            (
                if k % 2 == 0 {
                    Change::TelusNumber
                } else {
                    Change::OktaDept
                },
                8_000 + k,
            )
        })
        .collect();
    for (c, i) in &during {
        c.make(fakes, *i);
    }
    let landed = until_landed(fakes, &during, Duration::from_secs(600)).await;
    let counts = fakes.ask("counts");
    json!({
        "startup_s": startup_s,
        "okta_to_telus": summary(okta),
        "telus_to_okta": summary(telus),
        "idle": idle,
        "outage": {
            "changes": during.len(),
            "landed_s": landed.map(|d| d.as_secs_f64()),
            "incremental_passes": passes(store, "incremental") - incremental,
            "recovered": counts["ws_recovered"],
            "recovery_failed": counts["ws_recovery_failed"],
        },
    })
}

/// Prints section 6 from `run`'s answer.
pub fn print(r: &Value) {
    let live = &r["live"];
    println!(
        "\n6. Change events, {} users a side, default [events] (Okta polled every 10 s, TELUS WebSocket), fakes at the published limits",
        r["users"]
    );
    println!(
        "   start-up (full pass + subscription): {:.1} s",
        live["startup_s"].as_f64().unwrap_or(0.0)
    );
    for (name, key) in [
        ("Okta -> TELUS (department, suspension)", "okta_to_telus"),
        ("TELUS -> Okta (direct number)", "telus_to_okta"),
    ] {
        let s = &live[key];
        println!(
            "   latency {name}: n {}  median {:.1} s  p95 {:.1} s  max {:.1} s   (targets: median <= 15 s, p95 <= 60 s)",
            s["n"],
            s["p50"].as_f64().unwrap_or(0.0),
            s["p95"].as_f64().unwrap_or(0.0),
            s["max"].as_f64().unwrap_or(0.0)
        );
    }
    let idle = &live["idle"];
    println!(
        "   idle minute: Okta requests {} (System Log polls {}; target <= 6)  TELUS REST requests {} (wstoken {}, token {}; target 0 but refreshes and reconnects)  heartbeats {}",
        idle["okta_requests"],
        idle["okta_logs"],
        idle["telus_requests"],
        idle["telus_wstoken"],
        idle["telus_token"],
        idle["heartbeats"]
    );
    let o = &live["outage"];
    println!(
        "   no loss, gateway down 6 s against a 3 s recovery timeout (scaled from 180 s): {} changes made during it, all landed after {}  (incremental catch-up passes {}, sessions recovered {}, recoveries refused {})",
        o["changes"],
        o["landed_s"]
            .as_f64()
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "NEVER".into()),
        o["incremental_passes"],
        o["recovered"],
        o["recovery_failed"]
    );
    let rs = &r["restart"];
    println!(
        "   no loss, daemon restarted: {} changes made while it was down, all landed {} after the start  (incremental catch-up passes {})",
        rs["changes"],
        rs["landed_s"]
            .as_f64()
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "NEVER".into()),
        rs["incremental_passes"]
    );
}
