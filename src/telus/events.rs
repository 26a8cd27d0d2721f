//! RingCentral's change notifications over WebSocket (`wstoken`, `ConnectionDetails`, the
//! extension-list subscription, `ServerNotification`, heartbeats, session recovery with
//! `wsc`), and the single-extension read a targeted pass makes. Knows their wire formats;
//! decides nothing about users.

use super::client::{Client, extension_url};
use super::directory::to_user;
use super::error::Error;
use super::pacing::RateGroup;
use super::transport::decode;
use super::wire::{DirectoryPhoneDto, ExtensionDto, ListDto, WsTokenDto, direct_number};
use crate::model::{ExtId, TELUS_DIRECT_NUMBER, TelusUser};
use futures_util::{SinkExt as _, StreamExt as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// The event filter for the account's extension list (RingCentral's extension-list event:
/// contact info, address, status, phone numbers; not custom fields).
pub const EVENT_FILTER: &str = "/restapi/v1.0/account/~/extension";

/// Update hints that name nothing this tool reads (the extension-list event guide's hint
/// table): an Update carrying only these is no hint at all.
const IGNORED_HINTS: [&str; 9] = [
    "AccountSettings",
    "AccountStatus",
    "AnsweringRules",
    "DialingPlan",
    "Features",
    "Limits",
    "Permissions",
    "ProfileImage",
    "VideoConfiguration",
];

/// What the notification channel tells the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Connected and subscribed. `lost`: events may have been missed before this (a new
    /// session, or a recovery the server refused): a pass must catch up. A recovered session
    /// gets the missed events replayed instead.
    Subscribed { lost: bool, recovered: bool },
    /// An extension was created, changed or deleted (`timestamp` as RingCentral sent it).
    Changed {
        ext: ExtId,
        event_type: String,
        timestamp: String,
    },
    /// The connection dropped or could not be made; it is being made again.
    Down { reason: String },
    /// RingCentral refuses notifications to this app for good (no `WebSocketsSubscription`
    /// permission): the channel is off until the configuration changes.
    Refused { reason: String },
}

/// How the listener keeps its connection.
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    /// Quiet time after which a `Heartbeat` is sent (RingCentral: at least 30 s), and the
    /// time its answer may take before the connection counts as dead.
    pub heartbeat: Duration,
    /// Longest wait between two connection attempts.
    pub max_backoff: Duration,
    /// How long the channel stays off after a 403 before it asks again.
    pub refused_retry: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            heartbeat: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30),
            refused_retry: REFUSED_RETRY,
        }
    }
}

/// A WebSocket session that can be recovered: its `wsc` token, and until when.
#[derive(Debug, Clone)]
struct Session {
    wsc: SecretString,
    sequence: i64,
    recovery_timeout: Duration,
    dropped_at: Instant,
}

/// How one connection ended.
enum Ended {
    /// It was up; the session may be recovered within its timeout.
    Dropped(Option<Session>, String),
    /// It never came up.
    Failed(String),
    Refused(String),
    /// The daemon no longer listens.
    Closed,
}

impl Client {
    /// `GET extension/{id}` and `GET extension/{id}/phone-number` (both Light): one user as
    /// it is now, with its direct number and custom fields; `None` when TELUS no longer has it.
    pub async fn fetch_user(&self, id: &ExtId) -> Result<Option<TelusUser>, Error> {
        let endpoint = format!("GET extension/{id}");
        let url = extension_url(&self.base, id);
        let resp = match self
            .send(RateGroup::Light, &endpoint, true, || {
                self.http.get(url.clone())
            })
            .await
        {
            Ok(r) => r,
            Err(Error::Api { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let dto: ExtensionDto = decode(resp, &endpoint).await?;
        if dto.kind.as_deref().is_some_and(|k| k != "User") {
            return Ok(None);
        }
        let custom = self.custom_values(dto.custom_fields.as_deref().unwrap_or_default());
        let mut user = to_user(dto);
        for (k, v) in custom {
            user.fields.insert(&k, v);
        }
        let endpoint = format!("GET extension/{id}/phone-number");
        let mut url = extension_url(&self.base, id);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("phone-number");
        }
        url.query_pairs_mut().append_pair("perPage", "100");
        let resp = self
            .send(RateGroup::Light, &endpoint, true, || {
                self.http.get(url.clone())
            })
            .await?;
        let numbers: ListDto<DirectoryPhoneDto> = decode(resp, &endpoint).await?;
        if let Some(n) = direct_number(numbers.records.iter()) {
            user.fields.insert(TELUS_DIRECT_NUMBER, n);
        }
        // Read from the user itself: its direct number and custom fields are known.
        user.in_directory = true;
        Ok(Some(user))
    }

    /// Whether this app may open the notification WebSocket (asks for a token and drops it):
    /// `Err` says why not, in an admin's words.
    pub async fn check_websocket(&self) -> Result<(), String> {
        match self.ws_token().await {
            Ok(_) => Ok(()),
            Err(Error::Api {
                status: 403,
                code,
                message,
                ..
            }) => Err(format!(
                "RingCentral refuses a WebSocket token (HTTP 403 {code}: {message}): give the app the WebSocketsSubscription permission, or set events.telus = \"off\""
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `POST /restapi/oauth/wstoken` (Auth group): a single-use token and the gateway's URI.
    async fn ws_token(&self) -> Result<(SecretString, Url), Error> {
        let endpoint = "POST oauth/wstoken";
        let mut url = self.base.clone();
        url.set_path("/restapi/oauth/wstoken");
        // A WebSocket token never takes the Auth group's last request: a token refresh
        // (same group, 5 a minute) always finds one.
        self.keep_in_reserve(RateGroup::Auth, AUTH_RESERVE).await;
        // Safe to repeat: a token that was issued but whose answer was lost is never used.
        let resp = self
            .send(RateGroup::Auth, endpoint, true, || {
                self.http.post(url.clone())
            })
            .await?;
        let dto: WsTokenDto = decode(resp, endpoint).await?;
        let uri = dto.uri.as_deref().unwrap_or_default();
        let gateway = Url::parse(uri)
            .ok()
            .filter(|u| {
                u.scheme() == "wss" || (u.scheme() == "ws" && crate::config::is_loopback(u))
            })
            .ok_or_else(|| Error::Decode {
                endpoint: endpoint.to_string(),
                message: format!(
                    "gateway URI {uri:?} is neither wss:// nor ws:// on a loopback host"
                ),
            })?;
        let _ = dto.expires_in;
        Ok((SecretString::from(dto.ws_access_token), gateway))
    }
}

/// Requests of the Auth group a WebSocket token leaves for token refreshes.
const AUTH_RESERVE: u64 = 1;

/// Keeps one subscribed WebSocket connection to RingCentral's gateway until `tx` closes:
/// heartbeats when quiet, reconnects after a drop (recovering the session with `wsc` within
/// its recovery timeout, else subscribing again and saying events were lost).
pub async fn listen(client: Arc<Client>, tx: mpsc::Sender<Notice>, opts: ListenOptions) {
    let mut session: Option<Session> = None;
    let mut failures = 0u32;
    loop {
        let recover = session
            .take()
            .filter(|s| s.dropped_at.elapsed() < s.recovery_timeout);
        let began = Instant::now();
        let ended = connect_once(&client, recover, &tx, &opts).await;
        let reason = match ended {
            Ended::Closed => return,
            Ended::Refused(reason) => {
                if tx.send(Notice::Refused { reason }).await.is_err() {
                    return;
                }
                // Off for a while, then asked again: the permission may have been granted.
                tokio::select! {
                    _ = tokio::time::sleep(opts.refused_retry) => {}
                    _ = tx.closed() => return,
                }
                failures = 0;
                continue;
            }
            Ended::Dropped(s, reason) => {
                session = s;
                // A session that dies soon after it began (a gateway that drops every
                // session once subscribed) backs off as a failed connection does.
                failures = if began.elapsed() < STABLE_SESSION {
                    failures + 1
                } else {
                    0
                };
                reason
            }
            Ended::Failed(reason) => {
                failures += 1;
                reason
            }
        };
        if tx.send(Notice::Down { reason }).await.is_err() {
            return;
        }
        // First retry at once after a drop; then 1 s doubling, capped below the recovery
        // timeout so that a session can still be recovered.
        let wait = match failures {
            0 => Duration::ZERO,
            n => Duration::from_secs(1 << (n - 1).min(5)).min(opts.max_backoff),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tx.closed() => return,
        }
    }
}

/// The largest message or frame taken from the gateway: a notification is a few KiB; past
/// this the connection is dropped (tungstenite's defaults, 64 MiB messages, let one message
/// take the daemon past the unit's `MemoryMax`).
pub const MAX_WS_MESSAGE: usize = 1 << 20;

fn ws_limits() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
}

/// A session that ends sooner than this after it began counts as a failed attempt: the
/// next one backs off, as after a connection that never came up.
const STABLE_SESSION: Duration = Duration::from_secs(60);

/// How long the channel stays off after RingCentral refuses it a token or a subscription
/// (403: the app lacks the permission), before it asks again: an admin may grant it.
pub const REFUSED_RETRY: Duration = Duration::from_secs(15 * 60);

/// A gateway URL with the token (and `wsc`, to recover a session) in its query.
fn gateway_url(mut url: Url, token: &SecretString, recover: Option<&Session>) -> Url {
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("access_token", token.expose_secret());
        if let Some(s) = recover {
            q.append_pair("wsc", s.wsc.expose_secret());
        }
    }
    url
}

/// One message of the gateway: `[meta, body?]`.
fn parse(text: &str) -> Option<(Value, Value)> {
    let mut parts: Vec<Value> = serde_json::from_str(text).ok()?;
    if parts.is_empty() {
        return None;
    }
    let body = if parts.len() > 1 {
        parts.remove(1)
    } else {
        Value::Null
    };
    Some((parts.remove(0), body))
}

/// The `wsc` a message carries, if newer than the one held.
fn newer_wsc(meta: &Value, held: Option<(&SecretString, i64)>) -> Option<(SecretString, i64)> {
    let wsc = meta.get("wsc")?;
    let token = wsc.get("token")?.as_str()?;
    let sequence = wsc.get("sequence").and_then(Value::as_i64).unwrap_or(0);
    match held {
        Some((_, seq)) if seq >= sequence => None,
        _ => Some((SecretString::from(token.to_string()), sequence)),
    }
}

async fn connect_once(
    client: &Client,
    recover: Option<Session>,
    tx: &mpsc::Sender<Notice>,
    opts: &ListenOptions,
) -> Ended {
    let (token, gateway) = match client.ws_token().await {
        Ok(t) => t,
        Err(Error::Api {
            status: 403,
            code,
            message,
            ..
        }) => {
            return Ended::Refused(format!(
                "RingCentral refused a WebSocket token (HTTP 403 {code}: {message}): the app needs the WebSocketsSubscription permission"
            ));
        }
        Err(e) => return Ended::Failed(e.to_string()),
    };
    let url = gateway_url(gateway, &token, recover.as_ref());
    let mut ws = match tokio::time::timeout(
        opts.heartbeat,
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_limits()), false),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        // The error names the URL, which holds the token: only its kind is told.
        Ok(Err(e)) => {
            return Ended::Failed(format!(
                "cannot connect to the gateway: {}",
                ws_error_kind(&e)
            ));
        }
        Err(_) => return Ended::Failed("the gateway did not answer in time".into()),
    };
    // Nothing is sent before ConnectionDetails (the session-recovery guide).
    let details = match tokio::time::timeout(opts.heartbeat, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => parse(&t),
        _ => None,
    };
    let Some((meta, body)) =
        details.filter(|(m, _)| m.get("type").and_then(Value::as_str) == Some("ConnectionDetails"))
    else {
        return Ended::Failed("the gateway sent no ConnectionDetails".into());
    };
    let Some((wsc, sequence)) = newer_wsc(&meta, None) else {
        return Ended::Failed("ConnectionDetails without a wsc token".into());
    };
    let mut session = Session {
        wsc,
        sequence,
        recovery_timeout: Duration::from_secs(
            body.get("recoveryTimeout")
                .and_then(Value::as_u64)
                .unwrap_or(180),
        ),
        dropped_at: Instant::now(),
    };
    let recovered = recover.is_some()
        && body.get("recoveryState").and_then(Value::as_str) == Some("Successful");
    if !recovered {
        // A new session, or one the server could not recover: subscriptions are gone.
        if let Err(e) = subscribe(&mut ws, opts).await {
            return e;
        }
    }
    let lost = !recovered;
    if tx
        .send(Notice::Subscribed { lost, recovered })
        .await
        .is_err()
    {
        return Ended::Closed;
    }
    let reason = pump(&mut ws, &mut session, tx, opts).await;
    let _ = ws.close(None).await;
    match reason {
        None => Ended::Closed,
        Some(reason) => {
            session.dropped_at = Instant::now();
            Ended::Dropped(Some(session), reason)
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends the subscription `ClientRequest` and waits for its `ClientResponse`.
async fn subscribe(ws: &mut Ws, opts: &ListenOptions) -> Result<(), Ended> {
    let message_id = format!("sub-{}", rand::random::<u64>());
    let request = json!([
        {"type": "ClientRequest", "messageId": message_id, "method": "POST",
         "path": "/restapi/v1.0/subscription/"},
        {"eventFilters": [EVENT_FILTER], "deliveryMode": {"transportType": "WebSocket"}}
    ]);
    if let Err(e) = ws.send(Message::text(request.to_string())).await {
        return Err(Ended::Failed(format!(
            "cannot subscribe: {}",
            ws_error_kind(&e)
        )));
    }
    let deadline = Instant::now() + opts.heartbeat;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            _ => {
                return Err(Ended::Failed(
                    "no answer to the subscription request".into(),
                ));
            }
        };
        let Some((meta, body)) = parse(&msg) else {
            continue;
        };
        if meta.get("messageId").and_then(Value::as_str) != Some(message_id.as_str()) {
            continue;
        }
        let status = meta.get("status").and_then(Value::as_u64).unwrap_or(0);
        if status == 200 {
            return Ok(());
        }
        let code = body.get("errorCode").and_then(Value::as_str).unwrap_or("");
        let message = body.get("message").and_then(Value::as_str).unwrap_or("");
        let reason = format!("subscription refused: HTTP {status} {code}: {message}");
        return Err(match status {
            401 | 403 => Ended::Refused(reason),
            _ => Ended::Failed(reason),
        });
    }
}

/// Reads notifications until the connection drops (`Some(reason)`) or the daemon stops
/// listening (`None`); sends a `Heartbeat` once `opts.heartbeat` has passed since the last
/// message it sent, however much it hears meanwhile (the gateway's `idleTimeout` counts what
/// the client says: notifications arriving do not keep the connection open), and counts the
/// connection dead when nothing is heard for as long after a heartbeat.
async fn pump(
    ws: &mut Ws,
    session: &mut Session,
    tx: &mpsc::Sender<Notice>,
    opts: &ListenOptions,
) -> Option<String> {
    // The subscription was the last message sent.
    let mut last_sent = Instant::now();
    let mut heartbeat_sent: Option<Instant> = None;
    let mut errors_told = false;
    loop {
        let wake = match heartbeat_sent {
            Some(sent) => sent + opts.heartbeat,
            None => last_sent + opts.heartbeat,
        };
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        return Some(format!("closed by the gateway{}", frame.map(|f| format!(": {}", f.reason)).unwrap_or_default()));
                    }
                    Some(Ok(_)) => { heartbeat_sent = None; continue; }
                    Some(Err(e)) => return Some(format!("connection lost: {}", ws_error_kind(&e))),
                    None => return Some("connection closed".into()),
                };
                heartbeat_sent = None;
                let Some((meta, body)) = parse(&text) else { continue };
                if let Some((wsc, sequence)) = newer_wsc(&meta, Some((&session.wsc, session.sequence))) {
                    session.wsc = wsc;
                    session.sequence = sequence;
                }
                match meta.get("type").and_then(Value::as_str) {
                    Some("ServerNotification") => {
                        if let Some(notice) = notice_of(&body)
                            && tx.send(notice).await.is_err()
                        {
                            return None;
                        }
                    }
                    Some("Error") => {
                        let code = body.get("errorCode").and_then(Value::as_str).unwrap_or("");
                        // One line per connection: a gateway that repeats itself is not news.
                        if !std::mem::replace(&mut errors_told, true) {
                            tracing::warn!(code, "the notification gateway reported an error (further ones on this connection at DEBUG)");
                        } else {
                            tracing::debug!(code, "the notification gateway reported an error");
                        }
                    }
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if heartbeat_sent.is_some() {
                    return Some("no answer to a heartbeat".into());
                }
                let beat = json!([{"type": "Heartbeat", "messageId": format!("hb-{}", rand::random::<u64>())}]);
                if let Err(e) = ws.send(Message::text(beat.to_string())).await {
                    return Some(format!("cannot send a heartbeat: {}", ws_error_kind(&e)));
                }
                last_sent = Instant::now();
                heartbeat_sent = Some(last_sent);
            }
            _ = tx.closed() => return None,
        }
    }
}

/// The hint a `ServerNotification` body gives: the extension-list event's `extensionId`,
/// `eventType` and `hints`. An Update whose hints all name things this tool does not read is
/// none.
fn notice_of(body: &Value) -> Option<Notice> {
    let event = body.get("body")?;
    let ext = match event.get("extensionId")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let event_type = event
        .get("eventType")
        .and_then(Value::as_str)
        .unwrap_or("Update")
        .to_string();
    if event_type == "Update"
        && let Some(hints) = event.get("hints").and_then(Value::as_array)
        && !hints.is_empty()
        && hints
            .iter()
            .all(|h| h.as_str().is_some_and(|h| IGNORED_HINTS.contains(&h)))
    {
        return None;
    }
    Some(Notice::Changed {
        ext: ExtId(ext),
        event_type,
        timestamp: body
            .get("timestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

/// A WebSocket error without its details (a connection error can quote the URL, which
/// carries the single-use token).
fn ws_error_kind(e: &tokio_tungstenite::tungstenite::Error) -> &'static str {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::ConnectionClosed | E::AlreadyClosed => "closed",
        E::Io(_) => "network error",
        E::Tls(_) => "TLS error",
        E::Capacity(_) => "message too large",
        E::Protocol(_) => "protocol error",
        E::Http(r) if r.status().as_u16() == 401 || r.status().as_u16() == 403 => {
            "the gateway refused the token"
        }
        E::Http(_) => "the gateway refused the connection",
        E::Url(_) => "bad gateway URL",
        _ => "WebSocket error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_that_name_only_unread_settings_are_no_hint() {
        let body = |hints: Value| {
            json!({"timestamp": "2026-12-01T10:00:00.000Z",
                   "body": {"extensionId": "62", "eventType": "Update", "hints": hints}})
        };
        assert_eq!(
            notice_of(&body(json!(["Features", "AnsweringRules"]))),
            None
        );
        assert!(matches!(
            notice_of(&body(json!(["Features", "CompanyNumbers"]))),
            Some(Notice::Changed { ext, .. }) if ext.0 == "62"
        ));
        // No hints at all: taken as a change (the harsher reading).
        assert!(notice_of(&body(json!([]))).is_some());
        let created = json!({"body": {"extensionId": 63, "eventType": "Create"}});
        assert!(
            matches!(notice_of(&created), Some(Notice::Changed { ext, event_type, .. })
            if ext.0 == "63" && event_type == "Create")
        );
    }

    #[test]
    fn only_a_newer_wsc_replaces_the_one_held() {
        let held = SecretString::from("old".to_string());
        let meta = json!({"wsc": {"token": "new", "sequence": 3}});
        assert!(newer_wsc(&meta, Some((&held, 2))).is_some());
        assert!(newer_wsc(&meta, Some((&held, 3))).is_none());
        assert!(newer_wsc(&json!({}), None).is_none());
    }
}
