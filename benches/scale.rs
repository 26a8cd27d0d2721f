//! Scale and speed benchmark (`cargo bench --bench scale`): the real client, store,
//! reconcile and apply code against generated fakes served by a separate process
//! (`okta-telus-sync serve-fakes`), so the figures are the sync's own. Prints:
//! 1. rate-limit efficiency: 2,000 TELUS updates under a Medium budget with a 1 s window,
//!    and 1,000 Okta updates with 10 ms round trips, one at a time and four at a time;
//! 2. request economy of a full pass (5% changed), an incremental pass (50 changed) and a
//!    no-change pass, against the minimum;
//! 3. local cost (CPU, peak RSS, store size) at N = 1,000, 10,000 and 100,000 per side;
//! 5. the time each kind of pass would take at RingCentral's and Okta's published limits,
//!    projected from the requests it made in each rate group, on the bulk and per-user paths;
//! 6. change events at 10,000 users: latency both ways, idle cost, no loss (`events.rs`);
//! 7. event storms at 10,000 users: the whole passes and requests each costs (`storm.rs`).
//!
//! `cargo bench --bench scale -- --events-only` prints section 6 alone (about 5 minutes),
//! `-- --storm-only` section 7 alone (about 7 minutes).
//!
//! Each N runs in a fresh child process of this benchmark so that peak RSS is its own.
//! `SCALE_SIZES=1000,10000` overrides the sizes.

#[path = "scale_parts/events.rs"]
mod events;
#[path = "scale_parts/floor.rs"]
mod floor;
#[path = "scale_parts/storm.rs"]
mod storm;

use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::pass::{PassOptions, run_whole};
use okta_telus_sync::reconcile::policy::Policy;
use okta_telus_sync::store::Store;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

// The same allocator as the binary, so the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Fakes {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<std::process::ChildStdout>,
    okta: String,
    telus: String,
}

impl Fakes {
    fn start(args: &[String]) -> Fakes {
        let mut child = Command::new(env!("CARGO_BIN_EXE_okta-telus-sync"))
            .arg("serve-fakes")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start serve-fakes");
        let stdin = child.stdin.take().expect("stdin");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("urls");
        let v: Value = serde_json::from_str(&line).expect("urls json");
        Fakes {
            child,
            stdin,
            out,
            okta: v["okta"].as_str().unwrap_or_default().to_string(),
            telus: v["telus"].as_str().unwrap_or_default().to_string(),
        }
    }

    fn ask(&mut self, cmd: &str) -> Value {
        writeln!(self.stdin, "{cmd}").expect("command");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("answer");
        serde_json::from_str(&line).unwrap_or(Value::Null)
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of this process (user + system), from /proc/self/schedstat.
fn cpu() -> Duration {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn settings() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(120),
        max_rate_wait: Duration::from_secs(120),
        ..HttpSettings::default()
    }
}

/// One pass with default options, and its wall time in seconds.
fn timed_pass(
    rt: &tokio::runtime::Runtime,
    config: &okta_telus_sync::config::Config,
    clients: &Clients,
    store: &Store,
) -> (okta_telus_sync::summary::PassReport, f64) {
    let t0 = Instant::now();
    let report = rt
        .block_on(run_whole(
            config,
            clients,
            store,
            false,
            PassOptions::default(),
        ))
        .expect("pass");
    (report, t0.elapsed().as_secs_f64())
}

fn delta(after: &Value, before: &Value, key: &str) -> u64 {
    after[key].as_u64().unwrap_or(0) - before[key].as_u64().unwrap_or(0)
}

/// A runtime, the fakes, and a sync configured against them with its own store.
struct Bench {
    rt: tokio::runtime::Runtime,
    fakes: Fakes,
    dir: tempfile::TempDir,
    config: okta_telus_sync::config::Config,
    store: Store,
    clients: Clients,
}

impl Bench {
    /// Fakes started with `args`; with `custom`, a `costCenter` ↔ `customFields.Cost Center`
    /// row (Okta masters it) is added to the default table.
    fn start_with(args: &[String], custom: bool) -> Bench {
        let mut bench = Bench::start(args);
        if custom {
            let path = bench.dir.path().join("sync.toml");
            std::fs::write(
                &path,
                format!(
                    "[okta]\nurl = \"{}\"\ntoken = \"{}\"\n[telus]\nurl = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\njwt = \"{}\"\n[store]\npath = \"{}\"\n[safety]\nmax_changed_percent = 100\nmax_creates = 1000000\n[attributes.costCenter]\ntelus = \"customFields.Cost Center\"\nmaster = \"okta\"\n",
                    bench.fakes.okta,
                    okta_telus_sync::sandbox::OKTA_TOKEN,
                    bench.fakes.telus,
                    okta_telus_sync::sandbox::TELUS_CLIENT_ID,
                    okta_telus_sync::sandbox::TELUS_CLIENT_SECRET,
                    okta_telus_sync::sandbox::TELUS_JWT,
                    bench.config.store_path.display()
                ),
            )
            .expect("config");
            bench.config =
                okta_telus_sync::config::load_with_env(&path, Vec::new()).expect("config loads");
            bench.clients = Clients::new(&bench.config, settings());
        }
        bench
    }

    fn start(args: &[String]) -> Bench {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let fakes = Fakes::start(args);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = okta_telus_sync::sandbox::config_for(
            &fakes.okta,
            &fakes.telus,
            Policy::builtin(),
            &dir.path().join("s.db"),
        );
        // Every user may change in these runs: no safety hold.
        config.safety.max_changed_percent = 100;
        let store = Store::open(&config.store_path).expect("store");
        let clients = Clients::new(&config, settings());
        Bench {
            rt,
            fakes,
            dir,
            config,
            store,
            clients,
        }
    }
}

/// One size: a full pass, an incremental pass with 50 changed, a no-change pass.
fn one(n: usize) -> Value {
    let Bench {
        rt,
        mut fakes,
        dir,
        config,
        store,
        clients,
    } = Bench::start(&[
        "--users".into(),
        n.to_string(),
        "--changed-per-mille".into(),
        "50".into(),
    ]);

    // The bodies the full pass is about to read (nothing changed yet), kept on disk for the
    // floor, which runs after the passes so that it weighs nothing on their peak RSS.
    let pages = dir.path().join("pages");
    rt.block_on(floor::fetch(
        config.okta.url.as_str().trim_end_matches('/'),
        config.telus.url.as_str().trim_end_matches('/'),
    ))
    .save(&pages);
    let c0 = fakes.ask("counts");
    let (cpu0, t0) = (cpu(), Instant::now());
    let full = rt
        .block_on(run_whole(
            &config,
            &clients,
            &store,
            false,
            PassOptions::default(),
        ))
        .expect("full pass");
    let (full_cpu, full_wall) = (cpu() - cpu0, t0.elapsed());
    let c1 = fakes.ask("counts");
    let rss_full = peak_rss_mib();

    fakes.ask("touch 50");
    let (cpu0, t0) = (cpu(), Instant::now());
    let inc = rt
        .block_on(run_whole(
            &config,
            &clients,
            &store,
            false,
            PassOptions::default(),
        ))
        .expect("incremental pass");
    let (inc_cpu, inc_wall) = (cpu() - cpu0, t0.elapsed());
    let c2 = fakes.ask("counts");

    let quiet = rt
        .block_on(run_whole(
            &config,
            &clients,
            &store,
            false,
            PassOptions::default(),
        ))
        .expect("quiet pass");
    let c3 = fakes.ask("counts");
    // The highest of the three passes (the first, full one, is the largest).
    let rss = peak_rss_mib();
    let bodies = floor::Bodies::load(&pages);
    let floor_cpu0 = cpu();
    let floor_users = floor::run(&bodies, &dir.path().join("floor.db"));
    let floor_cpu = cpu() - floor_cpu0;
    drop(bodies);
    let store_mib = std::fs::metadata(&config.store_path)
        .map(|m| m.len())
        .unwrap_or(0) as f64
        / 1048576.0
        + std::fs::metadata(dir.path().join("s.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0) as f64
            / 1048576.0;

    json!({
        "n": n,
        "full": {
            "okta_list": delta(&c1, &c0, "okta_list"), "okta_list_min": n.div_ceil(200).max(1),
            "telus_extension_list": delta(&c1, &c0, "telus_extension_list"), "telus_extension_list_min": n.div_ceil(1000).max(1),
            "telus_directory": delta(&c1, &c0, "telus_directory"), "telus_directory_min": n.div_ceil(2000).max(1),
            "telus_number_list": delta(&c1, &c0, "telus_number_list"),
            "telus_bulk": delta(&c1, &c0, "telus_bulk"), "telus_bulk_min": full.plan.change_count().div_ceil(500),
            "telus_update": delta(&c1, &c0, "telus_update"),
            "okta_update": delta(&c1, &c0, "okta_update"),
            "telus_token": delta(&c1, &c0, "telus_token"),
            "changes": full.plan.change_count(),
            "applied": full.apply.applied,
            "cpu_s": full_cpu.as_secs_f64(), "wall_s": full_wall.as_secs_f64(),
            "floor_cpu_s": floor_cpu.as_secs_f64(),
            "floor_users": [floor_users.0, floor_users.1],
        },
        "incremental": {
            "okta_read": delta(&c2, &c1, "okta_list"), "changes": inc.plan.change_count(),
            "cpu_s": inc_cpu.as_secs_f64(), "wall_s": inc_wall.as_secs_f64(),
        },
        "quiet": {
            "writes": delta(&c3, &c2, "telus_update") + delta(&c3, &c2, "okta_update") + delta(&c3, &c2, "telus_create"),
            "changes": quiet.plan.change_count(),
        },
        "peak_rss_mib": rss,
        "peak_rss_full_mib": rss_full,
        "store_mib": store_mib,
        "429s": c3["telus_429"].as_u64().unwrap_or(0) + c3["okta_429"].as_u64().unwrap_or(0),
    })
}

/// 2,000 TELUS updates under a Medium budget of `limit` per 1 s window.
fn rate(limit: u64) -> Value {
    let Bench {
        rt,
        mut fakes,
        dir: _dir,
        config,
        store,
        clients,
    } = Bench::start(&[
        "--users".into(),
        "2000".into(),
        "--changed-per-mille".into(),
        "1000".into(),
        "--medium-limit".into(),
        limit.to_string(),
        "--window-secs".into(),
        "1".into(),
        // The per-user path (an account that refuses bulk updates): Medium PUTs to pace.
        "--no-bulk".into(),
    ]);
    let (report, wall) = timed_pass(&rt, &config, &clients, &store);
    let c = fakes.ask("counts");
    let writes = c["telus_update"].as_u64().unwrap_or(0);
    // Medium requests: the listing plus the writes, over the windows the pass spanned.
    let medium = writes + c["telus_extension_list"].as_u64().unwrap_or(0);
    let per_window = medium as f64 / wall.max(1e-9);
    json!({
        "limit": limit, "writes": writes, "applied": report.apply.applied, "wall_s": wall,
        "efficiency": per_window / limit as f64,
        "429s": c["telus_429"], "sent_during_penalty": c["telus_during_penalty"],
    })
}

/// 1,600 Okta profile updates under a users-update budget of 400 per 2 s window, each
/// answered after 10 ms (a network round trip), `concurrency` at a time, spending `percent`
/// of each window's budget (`okta.rate_limit_percent`). Okta's windows are
/// fixed on its clock, so efficiency is the share of the budget used in the windows between
/// the first (begun before the writes) and the last (the remainder).
fn okta_rate(concurrency: usize, percent: u8) -> Value {
    const LIMIT: u64 = 400;
    const WINDOW_S: u64 = 2;
    let Bench {
        rt,
        mut fakes,
        dir: _dir,
        mut config,
        store,
        clients: _,
    } = Bench::start(&[
        "--users".into(),
        "1600".into(),
        "--changed-per-mille".into(),
        "0".into(),
        "--okta-stale".into(),
        "--okta-limit".into(),
        LIMIT.to_string(),
        "--okta-window-secs".into(),
        WINDOW_S.to_string(),
        "--okta-write-ms".into(),
        "10".into(),
    ]);
    config.okta.write_concurrency = concurrency;
    config.okta.rate_limit_percent = percent;
    let clients = Clients::new(&config, settings());
    let (report, wall) = timed_pass(&rt, &config, &clients, &store);
    let c = fakes.ask("counts");
    let writes = c["okta_update"].as_u64().unwrap_or(0);
    let windows: Vec<u64> = c["okta_update_windows"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let middle = &windows[1.min(windows.len())..windows.len().saturating_sub(1).max(1)];
    // Against the share this tool may spend, as it is configured to.
    let allowed = LIMIT * u64::from(percent) / 100;
    let efficiency =
        middle.iter().sum::<u64>() as f64 / (middle.len().max(1) as u64 * allowed) as f64;
    json!({
        "concurrency": concurrency, "percent": percent, "allowed": allowed,
        "limit": LIMIT, "window_s": WINDOW_S,
        "writes": writes, "applied": report.apply.applied, "wall_s": wall,
        "windows": windows, "efficiency": efficiency,
        "429s": c["okta_429"], "peak_in_flight": c["okta_peak_writes_in_flight"],
    })
}

/// RingCentral's published budgets per 60 s window, and Okta's users bucket (600 a minute)
/// times the default share (`okta.rate_limit_percent` 50).
const LIGHT: f64 = 50.0;
const MEDIUM: f64 = 40.0;
const HEAVY: f64 = 10.0;
const OKTA_PER_MIN: f64 = 600.0 * 0.5;

/// Requests one pass made, by rate group, from the fakes' counts before and after it.
fn groups(after: &Value, before: &Value) -> Value {
    let d = |k: &str| delta(after, before, k);
    let records = d("telus_bulk_records");
    let medium_reads = d("telus_extension_list") + d("telus_directory");
    json!({
        "medium_reads": medium_reads,
        "medium_writes": d("telus_update") + d("telus_create"),
        "creates": d("telus_create"),
        "heavy": d("telus_bulk") + d("telus_number_list"),
        "light": d("telus_task_polls") + d("telus_extension_get") + d("telus_custom_fields"),
        "polls": d("telus_task_polls"),
        "auth": d("telus_token"),
        "okta": d("okta_list") + d("okta_update"),
        "bulk_records": records,
        "directory_304": d("telus_directory_304"),
    })
}

/// Minutes a pass takes at the published limits, from its requests by group: TELUS reads
/// (Medium listings, Light single reads) then writes (Heavy bulk requests, Light task polls,
/// Medium PUTs), each group at its budget and taken one after another (no overlap counted,
/// so an upper bound); Okta beside it at its share. Answers (pass, TELUS write time).
/// `per_user`: the same changes sent one PUT per user (an account without bulk updates).
/// Creates (one Medium POST each on either path) are projected apart.
fn projection(g: &Value, per_user: bool) -> (f64, f64) {
    let f = |k: &str| g[k].as_u64().unwrap_or(0) as f64;
    let polls = f("polls");
    let light_reads = f("light") - polls;
    let puts = f("medium_writes") - f("creates");
    let (heavy, light_writes, puts) = if per_user {
        (0.0, 0.0, puts + f("bulk_records"))
    } else {
        (f("heavy"), polls, puts)
    };
    let reads = f("medium_reads") / MEDIUM + light_reads / LIGHT;
    let writes = heavy / HEAVY + light_writes / LIGHT + puts / MEDIUM;
    let okta = f("okta") / OKTA_PER_MIN;
    ((reads + writes).max(okta), writes)
}

/// One size with or without a custom-field row: an onboarding pass (every existing user's
/// department differs: one TELUS update each), a no-change full pass, an incremental pass
/// (50 Okta users changed) and a pass with 5 % changed; each pass's requests by group.
fn project(n: usize, custom: bool) -> Value {
    let mut args = vec![
        "--users".into(),
        n.to_string(),
        "--changed-per-mille".into(),
        "1000".into(),
    ];
    if custom {
        args.push("--custom-fields".into());
    }
    let Bench {
        rt,
        mut fakes,
        dir: _dir,
        config,
        store,
        clients,
    } = Bench::start_with(&args, custom);
    let mut out = serde_json::Map::new();
    let mut pass = |name: &str, full: bool, fakes: &mut Fakes| {
        let before = fakes.ask("counts");
        let r = rt
            .block_on(run_whole(
                &config,
                &clients,
                &store,
                full,
                PassOptions::default(),
            ))
            .expect("pass");
        let after = fakes.ask("counts");
        let mut g = groups(&after, &before);
        g["changes"] = json!(r.plan.change_count());
        g["failed"] = json!(r.apply.failed);
        out.insert(name.into(), g);
    };
    pass("onboarding", false, &mut fakes);
    fakes.ask("touch 50");
    pass("incremental", false, &mut fakes);
    fakes.ask(&format!("touch {} Finance", n / 20));
    pass("changed_5pc", false, &mut fakes);
    let full = true;
    // The first read after writes reads the pages they changed; the next finds none changed.
    pass("after_writes", full, &mut fakes);
    pass("no_change_full", full, &mut fakes);
    json!({"n": n, "custom": custom, "passes": out})
}

fn print_projections(sizes: &[usize], run: &dyn Fn(&[String]) -> Value) {
    println!(
        "\n5. Projected pass time at the published limits (RingCentral Light 50, Medium 40, Heavy 10"
    );
    println!(
        "   per 60 s; Okta users bucket 600/min x 50 % share), from the requests each pass made."
    );
    println!("   minutes: bulk path / per-user path (an account that refuses bulk updates)");
    println!(
        "   {:>8} {:>7} | {:>17} | {:>17} | {:>17} | {:>17} | {:>20}",
        "N",
        "custom",
        "no-change full",
        "incremental",
        "5 % changed",
        "onboarding",
        "TELUS write, 5 %"
    );
    for &n in sizes {
        for custom in [false, true] {
            let mut extra = vec!["--project".into(), n.to_string()];
            if custom {
                extra.push("--custom".into());
            }
            let r = run(&extra);
            let p = &r["passes"];
            let cell = |name: &str| {
                let (bulk, _) = projection(&p[name], false);
                let (single, _) = projection(&p[name], true);
                format!("{bulk:>7.2} / {single:<7.2}")
            };
            let (_, w_bulk) = projection(&p["changed_5pc"], false);
            let (_, w_single) = projection(&p["changed_5pc"], true);
            println!(
                "   {:>8} {:>7} | {} | {} | {} | {} | {:>8.2} / {:<9.2}",
                n,
                if custom { "yes" } else { "no" },
                cell("no_change_full"),
                cell("incremental"),
                cell("changed_5pc"),
                cell("onboarding"),
                w_bulk,
                w_single
            );
            println!(
                "   {:>8} {:>7}   requests (Medium reads, Heavy, Light, Okta; 304s): full {} {} {} {} {}; 5 % {} {} {} {}; onboarding {} {} {} {}",
                "",
                "",
                u(&p["no_change_full"]["medium_reads"]),
                u(&p["no_change_full"]["heavy"]),
                u(&p["no_change_full"]["light"]),
                u(&p["no_change_full"]["okta"]),
                u(&p["no_change_full"]["directory_304"]),
                u(&p["changed_5pc"]["medium_reads"]),
                u(&p["changed_5pc"]["heavy"]),
                u(&p["changed_5pc"]["light"]),
                u(&p["changed_5pc"]["okta"]),
                u(&p["onboarding"]["medium_reads"]),
                u(&p["onboarding"]["heavy"]),
                u(&p["onboarding"]["light"]),
                u(&p["onboarding"]["okta"]),
            );
        }
        // Creates stay one POST each (Medium).
        println!(
            "   {:>8} creates: one POST per user, 40 a minute: {:.1} min for 1 % of N new users",
            n,
            (n as f64 / 100.0) / MEDIUM
        );
    }
    println!(
        "   targets at 100,000 with a custom-field row: no-change full <= 6 min; 5 % (5,000) TELUS write <= 3 min; onboarding TELUS write <= 30 min"
    );
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let n: usize = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1000);
        println!("{}", one(n));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--project") {
        let n: usize = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1000);
        println!("{}", project(n, args.iter().any(|a| a == "--custom")));
        return;
    }
    if args.iter().any(|a| a == "--storm") {
        println!("{}", storm::run());
        return;
    }
    if args.iter().any(|a| a == "--events") {
        println!("{}", events::run());
        return;
    }
    if args.iter().any(|a| a == "--rate") {
        println!("{}", rate(200));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--okta-rate") {
        let k: usize = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1);
        let percent: u8 = args.get(i + 2).and_then(|s| s.parse().ok()).unwrap_or(100);
        println!("{}", okta_rate(k, percent));
        return;
    }
    let sizes: Vec<usize> = std::env::var("SCALE_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let me = std::env::current_exe().expect("current exe");
    let run = |extra: &[String]| -> Value {
        let out = Command::new(&me).args(extra).output().expect("child run");
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or("null");
        serde_json::from_str(last).unwrap_or(Value::Null)
    };

    if args.iter().any(|a| a == "--events-only") {
        events::print(&run(&["--events".into()]));
        return;
    }
    if args.iter().any(|a| a == "--storm-only") {
        storm::print(&run(&["--storm".into()]));
        return;
    }
    println!(
        "okta-telus-sync scale benchmark ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let r = run(&["--rate".into()]);
    println!(
        "\n1. Rate-limit efficiency: 2,000 TELUS updates one PUT each (an account without bulk), Medium budget {} per 1 s window",
        r["limit"]
    );
    println!(
        "   writes {}  in {:.1} s  efficiency {:.3} (target >= 0.9)  429s {}  sent during penalty {}",
        r["writes"],
        r["wall_s"].as_f64().unwrap_or(0.0),
        r["efficiency"].as_f64().unwrap_or(0.0),
        r["429s"],
        r["sent_during_penalty"]
    );
    println!(
        "   Okta: 1,600 profile updates, users-update budget 400 per 2 s window, 10 ms round trip"
    );
    for (k, percent) in [(1, 100), (4, 100), (4, 50)] {
        let r = run(&["--okta-rate".into(), k.to_string(), percent.to_string()]);
        println!(
            "   write_concurrency {}, rate_limit_percent {:>3} (allowed {} per window): writes {}  in {:.1} s  per window {}  efficiency {:.3}  429s {}  peak in flight {}",
            r["concurrency"],
            r["percent"],
            r["allowed"],
            r["writes"],
            r["wall_s"].as_f64().unwrap_or(0.0),
            r["windows"],
            r["efficiency"].as_f64().unwrap_or(0.0),
            r["429s"],
            r["peak_in_flight"]
        );
    }

    let results: Vec<Value> = sizes
        .iter()
        .map(|n| run(&["--one".into(), n.to_string()]))
        .collect();
    println!(
        "\n2. Request economy (full pass, 5% changed): made / minimum (no phone-number listing, no PUT: {} and {} made)",
        results
            .iter()
            .map(|r| u(&r["full"]["telus_number_list"]))
            .sum::<u64>(),
        results
            .iter()
            .map(|r| u(&r["full"]["telus_update"]))
            .sum::<u64>()
    );
    println!(
        "   {:>8} {:>12} {:>12} {:>12} {:>12} {:>8} | incr. okta pages (50 changed) | no-change writes",
        "N", "okta pages", "ext pages", "dir. pages", "bulk req.", "token"
    );
    for r in &results {
        let f = &r["full"];
        println!(
            "   {:>8} {:>5} / {:<5} {:>5} / {:<5} {:>5} / {:<5} {:>5} / {:<5} {:>8} | {:>29} | {:>16}",
            u(&r["n"]),
            u(&f["okta_list"]),
            u(&f["okta_list_min"]),
            u(&f["telus_extension_list"]),
            u(&f["telus_extension_list_min"]),
            u(&f["telus_directory"]),
            u(&f["telus_directory_min"]),
            u(&f["telus_bulk"]),
            u(&f["telus_bulk_min"]),
            u(&f["telus_token"]),
            u(&r["incremental"]["okta_read"]),
            u(&r["quiet"]["writes"])
        );
    }
    println!("\n3-4. Local cost (the sync process only; fakes run in another process)");
    println!(
        "   {:>8} {:>12} {:>12} {:>12} {:>20} {:>10}",
        "N", "full CPU s", "full wall s", "incr. CPU s", "peak RSS MiB full/all", "store MiB"
    );
    for r in &results {
        println!(
            "   {:>8} {:>12.2} {:>12.2} {:>12.2} {:>11.1} / {:<7.1} {:>10.1}",
            u(&r["n"]),
            r["full"]["cpu_s"].as_f64().unwrap_or(0.0),
            r["full"]["wall_s"].as_f64().unwrap_or(0.0),
            r["incremental"]["cpu_s"].as_f64().unwrap_or(0.0),
            r["peak_rss_full_mib"].as_f64().unwrap_or(0.0),
            r["peak_rss_mib"].as_f64().unwrap_or(0.0),
            r["store_mib"].as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "   full: the first pass; all: the highest over it, an incremental pass and a no-change pass"
    );
    println!(
        "   floor: the same wire decoders and snapshot writes on the same page bodies, nothing else"
    );
    println!(
        "   {:>8} {:>12} {:>12} {:>16} {:>18}",
        "N", "full CPU s", "floor CPU s", "ratio to floor", "floor users o/t"
    );
    for r in &results {
        let (full, floor) = (
            r["full"]["cpu_s"].as_f64().unwrap_or(0.0),
            r["full"]["floor_cpu_s"].as_f64().unwrap_or(0.0),
        );
        println!(
            "   {:>8} {:>12.2} {:>12.2} {:>16.2} {:>9} / {:<7}",
            u(&r["n"]),
            full,
            floor,
            if floor > 0.0 { full / floor } else { 0.0 },
            u(&r["full"]["floor_users"][0]),
            u(&r["full"]["floor_users"][1])
        );
    }
    println!("   target: a full pass costs at most 2.0x its floor at N = 100,000");
    println!("   targets at N = 100,000: CPU < 5 s, peak RSS < 300 MiB, store < 100 MiB");
    print_projections(&sizes, &run);
    events::print(&run(&["--events".into()]));
    storm::print(&run(&["--storm".into()]));
}
