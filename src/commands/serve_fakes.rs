//! The scale benchmark's peer (`serve-fakes`, hidden): generated fakes in their own process.

use crate::Exit;
use okta_telus_sync::sandbox;

/// The generated directory and the fakes' budgets.
#[derive(clap::Args)]
pub struct ServeFakesArgs {
    #[arg(long)]
    users: usize,
    #[arg(long, default_value_t = 50)]
    changed_per_mille: usize,
    /// TELUS Medium-group budget per window (default: effectively unlimited).
    #[arg(long)]
    medium_limit: Option<u64>,
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    /// Every user has a `Cost Center` custom field (TELUS) and `costCenter` (Okta), agreeing.
    #[arg(long)]
    custom_fields: bool,
    /// The account refuses bulk updates: one PUT per user.
    #[arg(long)]
    no_bulk: bool,
    /// RingCentral's published budgets (Light 50, Medium 40, Heavy 10, Auth 5 a minute) and
    /// Okta's System Log budget (120 a minute) for every Okta bucket.
    #[arg(long)]
    published_limits: bool,
    /// The WebSocket gateway's recovery timeout in seconds (RingCentral: 180; a scaled
    /// clock shortens it).
    #[arg(long, default_value_t = 180)]
    recovery_timeout_secs: u64,
    #[command(flatten)]
    okta: OktaFakeArgs,
}

/// The fake Okta's budget and speed for the scale benchmark.
#[derive(clap::Args, Clone, Copy)]
pub struct OktaFakeArgs {
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

/// The benchmark's peer: generated fakes in their own process, so that the benchmark
/// measures only the sync's own CPU and memory. Prints the URLs as one JSON line, then obeys
/// stdin: `touch K [DEPT]` (K Okta users change department), `counts` (requests by endpoint), EOF.
pub async fn run(args: ServeFakesArgs) -> anyhow::Result<Exit> {
    let ServeFakesArgs {
        users,
        changed_per_mille,
        medium_limit,
        window_secs,
        custom_fields,
        no_bulk,
        published_limits,
        recovery_timeout_secs,
        okta: okta_args,
    } = args;
    use tokio::io::AsyncBufReadExt as _;
    let (mut okta, exts, nums) = sandbox::scale::directory(users, changed_per_mille);
    if okta_args.okta_stale {
        for u in &mut okta {
            u.profile
                .insert("primaryPhone".into(), serde_json::json!("stale"));
        }
    }
    if custom_fields {
        for (i, u) in okta.iter_mut().enumerate() {
            u.profile.insert(
                "costCenter".into(),
                serde_json::json!(format!("CC{}", i % 100)),
            );
        }
    }
    let ext_ids: Vec<i64> = exts.iter().map(|e| e.id).collect();
    let sb = sandbox::Sandbox::start(okta, exts, nums).await?;
    if custom_fields {
        let mut st = sb.telus.lock();
        for (i, id) in ext_ids.iter().enumerate() {
            st.custom_values
                .entry(*id)
                .or_default()
                .insert("cf1".into(), format!("CC{}", i % 100));
        }
    }
    if no_bulk {
        sb.telus.lock().bulk = sandbox::telus::BulkAvailability::FeatureNotAvailable;
    }
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
    if published_limits {
        sb.telus.lock().limits.clear();
        sb.telus.lock().window = std::time::Duration::from_secs(60);
        let mut st = sb.okta.lock();
        st.rate_limit = 120;
        st.window_secs = 60;
    }
    sb.telus.lock().gateway.recovery_timeout =
        std::time::Duration::from_secs(recovery_timeout_secs);
    println!(
        "{}",
        serde_json::json!({"okta": sb.okta.url(), "telus": sb.telus.url()})
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["touch", k, rest @ ..] => {
                let k: usize = k.parse().unwrap_or(0);
                let dept = rest.first().copied().unwrap_or("Legal");
                let mut st = sb.okta.lock();
                let ids: Vec<String> = st.users.iter().take(k).map(|u| u.id.clone()).collect();
                for id in ids {
                    if let Some(u) = st.users.iter_mut().find(|u| u.id == id) {
                        u.profile
                            .insert("department".into(), serde_json::json!(dept));
                    }
                    st.touch(&id);
                }
                println!("{}", serde_json::json!({"touched": k}));
            }
            ["counts"] => println!("{}", counts(&sb)),
            _ => match storm(&sb, &words) {
                Some(answer) => println!("{answer}"),
                None => println!("{}", edit(&sb, &words)),
            },
        }
    }
    Ok(Exit::Ok)
}

/// The admin's edits and reads the events benchmark makes, by user index I:
/// `okta-dept I DEPT`, `okta-suspend I`, `telus-number I NUMBER`, `get I`,
/// `ws-outage SECS`, `ws-drop`.
fn edit(sb: &sandbox::Sandbox, words: &[&str]) -> serde_json::Value {
    use serde_json::json;
    let index = |w: &str| w.parse::<usize>().unwrap_or(0);
    match words {
        ["okta-dept", i, dept] => {
            let mut o = sb.okta.lock();
            let Some(u) = o.users.get_mut(index(i)) else {
                return json!({"error": "no such user"});
            };
            u.profile.insert("department".into(), json!(dept));
            let id = u.id.clone();
            o.touch(&id);
            json!({"ok": true})
        }
        ["okta-suspend", i] => {
            let mut o = sb.okta.lock();
            let Some(u) = o.users.get_mut(index(i)) else {
                return json!({"error": "no such user"});
            };
            u.status = "SUSPENDED".into();
            let id = u.id.clone();
            o.touch(&id);
            o.log_event("user.lifecycle.suspend", &id, None);
            json!({"ok": true})
        }
        ["telus-number", i, number] => {
            let mut t = sb.telus.lock();
            let Some(ext) = t.extensions.get(index(i)).map(|e| e.id) else {
                return json!({"error": "no such user"});
            };
            for n in t.numbers.iter_mut().filter(|n| n.extension_id == Some(ext)) {
                n.extension_id = None;
            }
            let id = t.numbers.iter().map(|n| n.id).max().unwrap_or(0) + 1;
            t.numbers.push(sandbox::telus::FakeNumber {
                id,
                phone_number: number.to_string(),
                usage_type: "DirectNumber".into(),
                primary: true,
                extension_id: Some(ext),
            });
            t.changed(ext, &["CompanyNumbers"]);
            json!({"ok": true})
        }
        ["get", i] => {
            let o = sb.okta.lock();
            let t = sb.telus.lock();
            let (Some(u), Some(e)) = (o.users.get(index(i)), t.extensions.get(index(i))) else {
                return json!({"error": "no such user"});
            };
            json!({
                "okta_status": u.status,
                "okta_dept": u.profile.get("department"),
                "okta_phone": u.profile.get("primaryPhone"),
                "telus_status": e.status,
                "telus_dept": e.contact.get("department"),
            })
        }
        ["ws-outage", secs] => {
            let secs = secs.parse::<u64>().unwrap_or(1);
            sb.telus
                .lock()
                .gateway
                .outage(std::time::Duration::from_secs(secs));
            json!({"ok": true})
        }
        ["ws-drop"] => {
            sb.telus.lock().gateway.drop_connections();
            json!({"ok": true})
        }
        _ => json!({"error": "unknown command"}),
    }
}

/// The storms the benchmark's section 7 makes: `okta-new-user K STATUS` (a user not linked
/// yet, with its lifecycle event), `created-new-users` (how many of those TELUS has),
/// `okta-logs-400 on|off` (the System Log refuses every poll), `ws-drop-after-subscribe
/// on|off` (the gateway cuts every session once subscribed and recovers none).
fn storm(sb: &sandbox::Sandbox, words: &[&str]) -> Option<serde_json::Value> {
    use serde_json::json;
    const LOGS: &str = "/api/v1/logs";
    Some(match words {
        ["okta-new-user", k, status] => {
            let email = format!("storm{k}@northwind.ca");
            let id = format!("00uSTORM{k}");
            let mut o = sb.okta.lock();
            o.users.push(sandbox::okta::FakeOktaUser {
                id: id.clone(),
                status: status.to_string(),
                last_updated: okta_telus_sync::store::now(),
                provider: "OKTA",
                profile: json!({"login": email, "email": email, "firstName": "Storm", "lastName": format!("N{k}")})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            });
            let event = match *status {
                "ACTIVE" => "user.lifecycle.activate",
                _ => "user.lifecycle.create",
            };
            o.log_event(event, &id, None);
            json!({"ok": true})
        }
        ["created-new-users"] => {
            let t = sb.telus.lock();
            let n = t
                .extensions
                .iter()
                .filter(|e| {
                    e.contact
                        .get("email")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|m| m.starts_with("storm"))
                })
                .count();
            json!({"n": n})
        }
        ["okta-logs-400", on] => {
            let mut f = sb.okta.faults.lock().unwrap_or_else(|e| e.into_inner());
            f.faults.retain(|x| x.path_prefix != LOGS);
            drop(f);
            if *on == "on" {
                let body = r#"{"errorCode":"E0000001","errorSummary":"Api validation failed: since","errorLink":"E0000001","errorId":"storm","errorCauses":[]}"#;
                let kind = sandbox::faults::FaultKind::Error {
                    status: 400,
                    body: body.into(),
                };
                sb.okta.inject("GET", LOGS, kind, u32::MAX);
            }
            json!({"ok": true})
        }
        ["ws-drop-after-subscribe", on] => {
            let mut t = sb.telus.lock();
            t.gateway.drop_after_subscribe = *on == "on";
            t.gateway.recovery_fails = *on == "on";
            if *on == "on" {
                t.gateway.drop_connections();
            }
            json!({"ok": true})
        }
        _ => return None,
    })
}

/// Requests the fakes received, by endpoint, and their rate-limit and bulk counters.
fn counts(sb: &sandbox::Sandbox) -> serde_json::Value {
    let o = sb.okta.lock();
    let t = sb.telus.lock();
    serde_json::json!({
        "okta_list": o.count("GET", "/api/v1/users"),
        "okta_update": o.count("POST", "/api/v1/users/"),
        "telus_token": t.count("POST", "/restapi/oauth/token"),
        "telus_extension_list": t.count("GET", "/restapi/v1.0/account/~/extension"),
        "telus_number_list": t.count("GET", "/restapi/v1.0/account/~/phone-number"),
        "telus_directory": t.count("GET", "/restapi/v1.0/account/~/directory/entries"),
        "telus_directory_304": t.not_modified,
        "telus_extension_get": t.count("GET", "/restapi/v1.0/account/~/extension/"),
        "telus_custom_fields": t.count("GET", "/restapi/v1.0/account/~/custom-fields"),
        "telus_update": t.count("PUT", "/restapi/v1.0/account/~/extension/"),
        "telus_create": t.count("POST", "/restapi/v1.0/account/~/extension"),
        "telus_bulk": t.count("POST", "/restapi/v1.0/account/~/extension-bulk-update"),
        "telus_bulk_records": t.bulk_records,
        "telus_task_polls": t.count("GET", "/restapi/v1.0/account/~/extension-bulk-update/tasks"),
        "telus_429": t.rate_limited,
        "telus_during_penalty": t.sent_during_penalty,
        "okta_429": o.rate_limited,
        "okta_peak_writes_in_flight": o.peak_writes_in_flight,
        "okta_update_windows": o.admitted_per_window("users-update"),
        "okta_requests": o.requests.len(),
        "okta_logs": o.count("GET", "/api/v1/logs"),
        "telus_requests": t.requests.len(),
        "telus_wstoken": t.count("POST", "/restapi/oauth/wstoken"),
        "ws_connections": t.gateway.connections,
        "ws_heartbeats": t.gateway.heartbeats,
        "ws_recovered": t.gateway.recovered,
        "ws_recovery_failed": t.gateway.recovery_failed,
        "ws_notifications": t.gateway.notifications,
    })
}
