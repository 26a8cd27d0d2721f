//! The fake TELUS notification gateway's state: its sessions (subscription, live connection,
//! recovery buffer), single-use WebSocket tokens, outages, counters, and `notify`, which every
//! extension change of the fake calls. The WebSocket itself is `telus_ws.rs`'s.

use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the gateway sends down one connection.
#[derive(Debug)]
pub(super) enum Out {
    Text(String),
    /// The network drops the connection: no close frame.
    Cut,
}

/// One WebSocket session: its subscription, its live connection if any, and the events kept
/// for a recovery (RingCentral keeps up to `recoveryBufferSize` = 100, the newest).
#[derive(Debug)]
pub(super) struct WsSession {
    pub(super) subscribed: bool,
    pub(super) out: Option<mpsc::UnboundedSender<Out>>,
    pub(super) buffer: VecDeque<Value>,
    pub(super) dropped_at: Option<Instant>,
    pub(super) sequence: i64,
}

/// The gateway's state, part of the fake's.
#[derive(Debug)]
pub struct Gateway {
    /// Whether the app has the `WebSocketsSubscription` permission (else `wstoken` answers
    /// 403 CMN-408).
    pub permitted: bool,
    /// Single-use WebSocket tokens and their expiry (`expires_in`: 30 s in the guide).
    pub(super) tokens: HashMap<String, Instant>,
    pub(super) sessions: HashMap<String, WsSession>,
    /// RingCentral's `recoveryTimeout` (180 s).
    pub recovery_timeout: Duration,
    /// The gateway cannot recover any session (`recoveryState: Failed`), whatever the time.
    pub recovery_fails: bool,
    /// RingCentral's `idleTimeout` (30 minutes): a connection the client says nothing on for
    /// this long is closed with WSG-902.
    pub idle_timeout: Duration,
    pub connections: u64,
    pub recovered: u64,
    pub recovery_failed: u64,
    pub subscriptions: u64,
    pub heartbeats: u64,
    pub notifications: u64,
    /// Idle connections closed with WSG-902.
    pub idle_closed: u64,
    /// An outage of the gateway: until then `wstoken` answers 503 and nothing connects.
    pub down_until: Option<Instant>,
    /// A hostile or broken gateway (no documented behaviour; modelled for the storm tests):
    /// every session is cut right after its subscription is answered.
    pub drop_after_subscribe: bool,
    /// Messages sent right after a subscription is answered (an oversized one, a flood of
    /// `Error` messages).
    pub after_subscribe: Vec<String>,
    pub(super) counter: u64,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            permitted: true,
            tokens: HashMap::new(),
            sessions: HashMap::new(),
            recovery_timeout: Duration::from_secs(180),
            recovery_fails: false,
            idle_timeout: Duration::from_secs(1800),
            connections: 0,
            recovered: 0,
            recovery_failed: 0,
            subscriptions: 0,
            heartbeats: 0,
            notifications: 0,
            idle_closed: 0,
            down_until: None,
            drop_after_subscribe: false,
            after_subscribe: Vec::new(),
            counter: 0,
        }
    }
}

impl Gateway {
    pub(super) fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}x{}", self.counter, rand::random::<u32>())
    }

    /// Connections up now.
    pub fn live(&self) -> usize {
        self.sessions.values().filter(|s| s.out.is_some()).count()
    }

    /// Sessions subscribed now (connected or awaiting recovery).
    pub fn subscribed(&self) -> usize {
        self.sessions.values().filter(|s| s.subscribed).count()
    }

    /// Drops every live connection as a network would (no close frame); each session can be
    /// recovered within the recovery timeout.
    pub fn drop_connections(&mut self) {
        for s in self.sessions.values_mut() {
            if let Some(out) = s.out.take() {
                let _ = out.send(Out::Cut);
                s.dropped_at = Some(Instant::now());
            }
        }
    }

    /// The gateway goes away for `length`: live connections drop, and no new one is made
    /// (`wstoken` answers 503) until it is back.
    pub fn outage(&mut self, length: Duration) {
        self.drop_connections();
        self.down_until = Some(Instant::now() + length);
    }

    /// A `ServerNotification` of the extension-list event to every subscribed session, or
    /// into its recovery buffer while it is disconnected.
    pub fn notify(&mut self, ext_id: i64, event_type: &str, hints: &[&str]) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let timeout = self.recovery_timeout;
        let mut sent = 0;
        for (wsc, s) in self.sessions.iter_mut().filter(|(_, s)| s.subscribed) {
            s.sequence += 1;
            let mut body = json!({"extensionId": ext_id.to_string(), "eventType": event_type});
            if event_type == "Update" {
                body["hints"] = json!(hints);
            }
            let message = json!([
                {"type": "ServerNotification", "messageId": format!("n{}", s.sequence), "status": 200,
                 "wsc": {"token": wsc, "sequence": s.sequence}},
                {"uuid": format!("n{}", s.sequence), "event": "/restapi/v1.0/account/100/extension",
                 "timestamp": now, "subscriptionId": "fake-sub", "ownerId": "100", "body": body}
            ]);
            match &s.out {
                Some(out) => {
                    let _ = out.send(Out::Text(message.to_string()));
                    sent += 1;
                }
                None if s.dropped_at.is_some_and(|d| d.elapsed() < timeout) => {
                    if s.buffer.len() == 100 {
                        s.buffer.pop_front();
                    }
                    s.buffer.push_back(message);
                }
                None => {}
            }
        }
        self.notifications += sent;
    }
}
