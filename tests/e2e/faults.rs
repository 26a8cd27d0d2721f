//! The fault matrix: every fault on every endpoint the sync uses. A pass under a fault
//! completes or ends cleanly; the passes after it converge with every change journalled as
//! applied exactly once and nobody created twice.

use crate::*;
use okta_telus_sync::sandbox::faults::FaultKind;

const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users/"),
    ("POST", "/restapi/oauth/token"),
    ("GET", "/restapi/v1.0/account/~/extension"),
    ("GET", "/restapi/v1.0/account/~/directory/entries"),
    ("PUT", "/restapi/v1.0/account/~/extension/"),
    ("POST", "/restapi/v1.0/account/~/extension"),
    ("POST", "/restapi/v1.0/account/~/extension-bulk-update"),
    (
        "GET",
        "/restapi/v1.0/account/~/extension-bulk-update/tasks/",
    ),
];

fn faults_for(path: &str) -> Vec<FaultKind> {
    let expired = if path.starts_with("/api") {
        json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided", "errorLink": "E0000011", "errorId": "x", "errorCauses": []})
    } else {
        json!({"errorCode": "OAU-213", "message": "Token is expired", "errors": [{"errorCode": "OAU-213", "message": "Token is expired"}]})
    };
    vec![
        FaultKind::TooManyRequests { retry_after: 1 },
        FaultKind::Unavailable,
        FaultKind::Malformed,
        FaultKind::WrongContentType,
        FaultKind::Truncated,
        FaultKind::Slow(Duration::from_millis(1500)),
        FaultKind::Error {
            status: 401,
            body: expired.to_string(),
        },
        FaultKind::DoneThen5xx,
        FaultKind::DoneThenSilence,
    ]
}

async fn fault_case(method: &str, path: &str, fault: FaultKind) {
    let label = format!("{fault:?} on {method} {path}");
    let sb = Sandbox::start_seeded().await.unwrap();
    // Updates go in bulk unless the account refuses it: a fault on the PUT needs the PUTs.
    if method == "PUT" {
        without_bulk(&sb);
    }
    let target = if path.starts_with("/api") || path.starts_with("/oauth2") {
        &sb.okta.faults
    } else {
        &sb.telus.faults
    };
    target
        .lock()
        .unwrap()
        .faults
        .push(okta_telus_sync::sandbox::faults::Fault::new(
            method,
            path,
            fault.clone(),
            1,
        ));
    let (_dir, config, store, clients) = setup_impatient(&sb);
    let first = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{label}: the store failed: {e}"));
    assert!(
        matches!(
            first.outcome,
            PassOutcome::UsersFailed | PassOutcome::SystemFailed
        ),
        "{label}: {:?}",
        first.outcome
    );
    if matches!(fault, FaultKind::Slow(_) | FaultKind::DoneThenSilence) {
        tokio::time::sleep(Duration::from_millis(1600)).await;
    }
    // A bulk task accepted before its answer was lost runs a moment later; until then its
    // records are in flight and wait.
    if path.contains("bulk") {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for _ in 0..2 {
        run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
    }
    let last = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        last.plan.change_count(),
        0,
        "{label}: not converged: {:#?}",
        last.plan.actions
    );
    assert_eq!(
        last.outcome,
        PassOutcome::UsersFailed,
        "{label}: only the seeded bad users fail"
    );
    assert_eq!(
        store.unfinished_count().unwrap(),
        0,
        "{label}: journal settled"
    );
    let mut applied: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for h in store.history(&HistoryFilter::default()).unwrap() {
        if h.outcome == Outcome::Applied {
            *applied
                .entry((h.user_email.clone(), h.attribute.clone()))
                .or_default() += 1;
        }
    }
    for (k, n) in &applied {
        assert_eq!(*n, 1, "{label}: {k:?} applied {n} times");
    }
    assert_eq!(
        applied.len(),
        20,
        "{label}: every change of the seeded plan applied"
    );
    let st = sb.telus.lock();
    let isabelles = st
        .extensions
        .iter()
        .filter(|e| e.contact["email"] == json!("isabelle.cote@northwind.ca"))
        .count();
    assert_eq!(isabelles, 1, "{label}: created once");
}

/// One fault of each kind, each on a different endpoint (the full matrix is the long run).
#[tokio::test]
async fn each_fault_kind_is_survived_and_the_next_passes_converge() {
    let picks = [
        (0, 0), // 429 on the Okta listing
        (5, 1), // 503 on a TELUS update
        (3, 2), // malformed extension page
        (4, 3), // HTML instead of a Company Directory page
        (5, 4), // a TELUS update cut off mid-body
        (6, 5), // a create answered too late
        (1, 6), // an Okta write-back refused: token expired
        (2, 6), // the TELUS token endpoint refusing
        (6, 7), // a create done, then a gateway's 502
        (6, 8), // a create done, then no answer
        (5, 7), // an update done, then a gateway's 502
        (1, 8), // an Okta write-back done, then no answer
        (7, 7), // a bulk update accepted, then a gateway's 502
        (8, 1), // 503 while polling a bulk task
    ];
    for (e, f) in picks {
        let (method, path) = ENDPOINTS[e];
        fault_case(method, path, faults_for(path)[f].clone()).await;
    }
}

/// Every fault on every endpoint: `cargo test --locked --test e2e -- --ignored fault_matrix`
#[tokio::test]
#[ignore = "long: 81 cases"]
async fn fault_matrix_every_fault_on_every_endpoint() {
    for (method, path) in ENDPOINTS {
        for fault in faults_for(path) {
            fault_case(method, path, fault).await;
        }
    }
}
