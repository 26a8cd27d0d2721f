//! The fake Okta's System Log (`GET /api/v1/logs`): polling requests from `since` or an
//! `after` cursor, ascending, with the `next` link a polling request always gets, the
//! `eventType` filter, retention, and visibility a moment after the change.

use super::okta::{Shared, admit, base_url, error, now_epoch_ms};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

/// One clause of the filters this fake understands: `eventType eq "x"` or `eventType sw "x"`,
/// joined by `or` (Okta's System Log filter syntax; anything else is refused here, the harsher
/// case for a client).
fn parse_filter(filter: &str) -> Option<Vec<(bool, String)>> {
    filter
        .split(" or ")
        .map(|clause| {
            let rest = clause.trim().strip_prefix("eventType ")?;
            let (op, value) = rest.split_once(' ')?;
            let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            match op {
                "eq" => Some((false, value.to_string())),
                "sw" => Some((true, value.to_string())),
                _ => None,
            }
        })
        .collect()
}

fn bad_request(cause: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "E0000001",
        "Api validation failed: request",
        &[cause.to_string()],
    )
}

/// `GET /api/v1/logs`. Okta's System Log API: without `until`, a request is a polling request
/// and always answers a `Link: rel="next"` (`after=` an opaque cursor) to continue from, even
/// on an empty page; `since` is at most the retention ago; `limit` up to 1000.
pub async fn logs(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "logs") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if st.logs_forbidden {
        return error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
            &[],
        );
    }
    let now = now_epoch_ms();
    let oldest_kept = now.saturating_sub(st.log_retention.as_millis() as u64);
    if let Some(last_old) = st
        .log
        .iter()
        .take_while(|e| e.published_ms < oldest_kept)
        .last()
    {
        st.log_trimmed_upto = last_old.seq;
    }
    st.log.retain(|e| e.published_ms >= oldest_kept);
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return bad_request("limit: must be between 1 and 1000"),
    };
    let filter = match q.get("filter").map(|f| parse_filter(f)) {
        None => None,
        Some(Some(f)) => Some(f),
        Some(None) => return bad_request("filter: Invalid filter expression"),
    };
    // The position after which events are returned, as a sequence number.
    let after = match (q.get("after"), q.get("since")) {
        (Some(a), _) => match a.parse::<u64>() {
            // A cursor to events the log no longer keeps is refused.
            Ok(seq) if seq >= st.log_trimmed_upto => seq,
            _ => return bad_request("after: The cursor is invalid or has expired"),
        },
        (None, Some(since)) => match chrono::DateTime::parse_from_rfc3339(since) {
            Ok(t) if t.timestamp_millis() as u64 >= oldest_kept => {
                let since_ms = t.timestamp_millis() as u64;
                st.log
                    .iter()
                    .take_while(|e| e.published_ms < since_ms)
                    .last()
                    .map(|e| e.seq)
                    .unwrap_or_else(|| st.log.first().map(|e| e.seq - 1).unwrap_or(0))
            }
            _ => return bad_request("since: must be a time within the log's retention"),
        },
        (None, None) => return bad_request("since: required by this fake"),
    };
    let ascending = q.get("sortOrder").is_some_and(|o| o == "ASCENDING");
    let delay = st.log_delay.as_millis() as u64;
    let visible = st
        .log
        .iter()
        .filter(|e| e.seq > after)
        .take_while(|e| e.published_ms + delay <= now);
    let mut page = Vec::new();
    let mut last = after;
    for e in visible {
        if page.len() == limit {
            break;
        }
        last = e.seq;
        let wanted = filter.as_ref().is_none_or(|f| {
            f.iter().any(|(prefix, v)| match prefix {
                true => e.event_type.starts_with(v.as_str()),
                false => e.event_type == *v,
            })
        });
        if wanted {
            page.push(event_json(e));
        }
    }
    let base = base_url(&headers);
    let mut resp = axum::Json(Value::Array(page)).into_response();
    resp.headers_mut().extend(rate);
    if ascending && !q.contains_key("until") {
        let mut next = url::Url::parse(&format!("{base}/api/v1/logs")).expect("loopback url");
        next.query_pairs_mut()
            .append_pair("after", &last.to_string())
            .append_pair("limit", &limit.to_string())
            .append_pair("sortOrder", "ASCENDING");
        if let Some(f) = q.get("filter") {
            next.query_pairs_mut().append_pair("filter", f);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            resp.headers_mut().insert("link", v);
        }
    }
    resp
}

fn event_json(e: &super::okta::FakeLogEvent) -> Value {
    let published = chrono::DateTime::from_timestamp_millis(e.published_ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut target = vec![json!({"id": e.user_id, "type": "User", "alternateId": e.user_id})];
    if let Some((kind, id)) = &e.scope_target {
        target.push(json!({"id": id, "type": kind, "alternateId": id}));
    }
    json!({
        "uuid": format!("fake-{}", e.seq),
        "published": published,
        "eventType": e.event_type,
        "version": "0",
        "severity": "INFO",
        "displayMessage": e.event_type,
        "actor": {"id": "00uadmin", "type": "User", "alternateId": "admin@example.com"},
        "outcome": {"result": "SUCCESS"},
        "transaction": {"type": "WEB", "id": e.transaction_id},
        "target": target,
    })
}
