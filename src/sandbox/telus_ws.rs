//! The fake TELUS notification gateway's wire side: `POST /restapi/oauth/wstoken`, the
//! WebSocket at `/ws` (ConnectionDetails, one subscription per session, heartbeats, idle
//! timeout, session recovery with `wsc` within the recovery timeout), and the per-extension
//! phone-number listing a targeted read uses. Its state is `telus_gateway.rs`'s.

use super::telus::{
    FakeNumber, Shared, TelusState, admit, base_url, number_json, paged_response, rc_error,
};
use super::telus_gateway::{Out, WsSession};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// `POST /restapi/oauth/wstoken` (spec: authWsToken, throttling group Auth).
pub async fn ws_token(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Auth") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    if st.gateway.down_until.is_some_and(|t| t > Instant::now()) {
        return rc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CMN-201",
            "Service Temporarily Unavailable",
            None,
        );
    }
    if !st.gateway.permitted {
        return rc_error(
            StatusCode::FORBIDDEN,
            "CMN-408",
            "In order to call this API endpoint, application needs to have [WebSocketsSubscription] permission",
            None,
        );
    }
    let token = st.gateway.next_id("wst");
    st.gateway
        .tokens
        .insert(token.clone(), Instant::now() + Duration::from_secs(30));
    let host = base_url(&headers).replacen("http://", "ws://", 1);
    let mut resp = axum::Json(json!({
        "ws_access_token": token,
        "uri": format!("{host}/ws"),
        "expires_in": 30,
    }))
    .into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// `GET /ws?access_token=…[&wsc=…]`: the WebSocket, once per single-use token.
pub async fn ws(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let valid = q
            .get("access_token")
            .and_then(|t| st.gateway.tokens.remove(t))
            .is_some_and(|exp| exp > Instant::now());
        if !valid {
            return rc_error(
                StatusCode::UNAUTHORIZED,
                "WSG-401",
                "WebSocket token is invalid, used or expired",
                None,
            );
        }
    }
    let wsc = q.get("wsc").cloned();
    upgrade.on_upgrade(move |socket| serve(state, socket, wsc))
}

/// Opens or recovers a session, then relays notifications out and answers the client.
async fn serve(state: Shared, mut socket: WebSocket, wsc: Option<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let (session_id, idle_timeout) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        open(&mut st, wsc, tx)
    };
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if socket.send(Message::Text(t.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Cut) | None => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    last_heard = tokio::time::Instant::now();
                    let (reply, then, cut) = {
                        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                        let reply = answer(&mut st, &session_id, &t);
                        let subscribed = reply.as_deref().is_some_and(|r| r.contains("\"fake-sub\""));
                        match subscribed {
                            true => (reply, st.gateway.after_subscribe.clone(), st.gateway.drop_after_subscribe),
                            false => (reply, Vec::new(), false),
                        }
                    };
                    if let Some(reply) = reply
                        && socket.send(Message::Text(reply.into())).await.is_err()
                    {
                        break;
                    }
                    for text in then {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    if cut {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            _ = tokio::time::sleep_until(last_heard + idle_timeout) => {
                let error = json!([{"type": "Error", "messageId": "idle", "status": 400},
                                   {"errorCode": "WSG-902", "message": "Idle timeout expired"}]);
                let _ = socket.send(Message::Text(error.to_string().into())).await;
                let _ = socket.send(Message::Close(None)).await;
                state.lock().unwrap_or_else(|e| e.into_inner()).gateway.idle_closed += 1;
                break;
            }
        }
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = st.gateway.sessions.get_mut(&session_id)
        && s.out.take().is_some()
    {
        s.dropped_at = Some(Instant::now());
    }
}

/// The session a connection takes: the one its `wsc` names when still recoverable (its
/// missed events queued after ConnectionDetails), else a new one, unsubscribed.
fn open(
    st: &mut TelusState,
    wsc: Option<String>,
    tx: mpsc::UnboundedSender<Out>,
) -> (String, Duration) {
    let g = &mut st.gateway;
    g.connections += 1;
    let timeout = g.recovery_timeout;
    let recoverable = wsc.as_ref().filter(|w| {
        !g.recovery_fails
            && g.sessions.get(*w).is_some_and(|s| {
                s.out.is_none() && s.dropped_at.is_some_and(|d| d.elapsed() < timeout)
            })
    });
    let (id, state) = match recoverable {
        Some(w) => {
            g.recovered += 1;
            (w.clone(), Some("Successful"))
        }
        None => {
            if wsc.is_some() {
                g.recovery_failed += 1;
            }
            let id = g.next_id("wsc");
            g.sessions.insert(
                id.clone(),
                WsSession {
                    subscribed: false,
                    out: None,
                    buffer: VecDeque::new(),
                    dropped_at: None,
                    sequence: 0,
                },
            );
            (id, wsc.is_some().then_some("Failed"))
        }
    };
    let s = g.sessions.get_mut(&id).expect("just inserted or found");
    s.sequence += 1;
    let mut details = json!({
        "creationTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "maxConnectionsPerSession": 50,
        "recoveryBufferSize": 100,
        "recoveryTimeout": timeout.as_secs(),
        "idleTimeout": g.idle_timeout.as_secs(),
        "absoluteTimeout": 86400,
        "maxActiveRequests": 10,
    });
    if let Some(state) = state {
        details["recoveryState"] = json!(state);
    }
    let message = json!([
        {"type": "ConnectionDetails", "messageId": format!("cd{}", s.sequence), "status": 200,
         "wsc": {"token": id, "sequence": s.sequence}},
        details
    ]);
    let _ = tx.send(Out::Text(message.to_string()));
    for missed in s.buffer.drain(..) {
        let _ = tx.send(Out::Text(missed.to_string()));
    }
    s.out = Some(tx);
    s.dropped_at = None;
    (id, g.idle_timeout)
}

/// The gateway's answer to a client message: a subscription (replacing any earlier one of
/// the session) or a heartbeat.
fn answer(st: &mut TelusState, session: &str, text: &str) -> Option<String> {
    let parts: Vec<Value> = serde_json::from_str(text).ok()?;
    let meta = parts.first()?;
    let message_id = meta.get("messageId").cloned().unwrap_or(Value::Null);
    let g = &mut st.gateway;
    match meta.get("type").and_then(Value::as_str)? {
        "Heartbeat" => {
            g.heartbeats += 1;
            Some(json!([{"type": "Heartbeat", "messageId": message_id, "status": 200}]).to_string())
        }
        "ClientRequest" => {
            let body = parts.get(1).cloned().unwrap_or(Value::Null);
            let filters: Vec<&str> = body
                .get("eventFilters")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let path = meta.get("path").and_then(Value::as_str).unwrap_or("");
            let ok = meta.get("method").and_then(Value::as_str) == Some("POST")
                && path.trim_end_matches('/') == "/restapi/v1.0/subscription"
                && filters == ["/restapi/v1.0/account/~/extension"]
                && body
                    .pointer("/deliveryMode/transportType")
                    .and_then(Value::as_str)
                    == Some("WebSocket");
            if !ok {
                return Some(json!([
                    {"type": "ClientResponse", "messageId": message_id, "status": 400},
                    {"errorCode": "SUB-400", "message": "Event filters or delivery mode are not supported by this fake"}
                ]).to_string());
            }
            g.subscriptions += 1;
            if let Some(s) = g.sessions.get_mut(session) {
                s.subscribed = true;
            }
            Some(
                json!([
                    {"type": "ClientResponse", "messageId": message_id, "status": 200},
                    {"id": "fake-sub", "status": "Active", "eventFilters": filters,
                     "deliveryMode": {"transportType": "WebSocket"}, "expiresIn": 900}
                ])
                .to_string(),
            )
        }
        _ => None,
    }
}

/// `GET extension/{id}/phone-number` (spec: listExtensionPhoneNumbers, Light): the numbers
/// assigned to one extension, paged.
pub async fn extension_numbers(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((_account, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Light") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let Some(ext) = id
        .parse::<i64>()
        .ok()
        .filter(|n| st.extension(*n).is_some())
    else {
        return rc_error(
            StatusCode::NOT_FOUND,
            "CMN-102",
            &format!("Resource for parameter [extensionId] is not found: {id}"),
            Some("extensionId"),
        );
    };
    let base = base_url(&headers);
    let nums: Vec<&FakeNumber> = st
        .numbers
        .iter()
        .filter(|n| n.extension_id == Some(ext))
        .collect();
    let render = |n: &&FakeNumber| number_json(n, &base);
    paged_response(&nums, render, &q, &base, &uri, rate)
}
