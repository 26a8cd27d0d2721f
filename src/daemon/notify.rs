//! Notifications (`[notify]`): what changed between two passes that an admin must hear about
//! (a held pass, quarantined users, new refusals or data problems, a session that can lapse,
//! a channel down too long, a streak of whole-system failures, the built-in app pushing),
//! and the sender: a queue never blocking a pass, a webhook retried with backoff and/or a
//! command fed the event on stdin, at most one per kind per interval. A payload names users
//! by email and attributes by name, never a value or a secret.

use crate::config::{NotifyConfig, NotifyFormat};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// What kind of thing happened: one notification per kind per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    PassHeld,
    Quarantined,
    NewProblems,
    SessionAtRisk,
    ChannelDown,
    SystemFailures,
    BuiltinAppPushing,
    /// Sent by `check-config --notify` only.
    Test,
}

impl Kind {
    /// Every kind the daemon sends.
    pub const ALL: [Kind; 7] = [
        Kind::PassHeld,
        Kind::Quarantined,
        Kind::NewProblems,
        Kind::SessionAtRisk,
        Kind::ChannelDown,
        Kind::SystemFailures,
        Kind::BuiltinAppPushing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PassHeld => "pass_held",
            Kind::Quarantined => "users_quarantined",
            Kind::NewProblems => "new_problems",
            Kind::SessionAtRisk => "session_at_risk",
            Kind::ChannelDown => "channel_down",
            Kind::SystemFailures => "system_failures",
            Kind::BuiltinAppPushing => "builtin_app_pushing",
            Kind::Test => "test",
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub summary: String,
    /// Lines of detail: reasons, never attribute values.
    pub details: Vec<String>,
    /// Users by email.
    pub users: Vec<String>,
    /// Attributes by name.
    pub attributes: Vec<String>,
    /// The command that answers it.
    pub command: String,
}

/// What the daemon knows after a pass, as far as notifications go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    pub held: Vec<String>,
    pub quarantined: BTreeSet<String>,
    /// (email, attribute) of known refusals and data problems.
    pub problems: BTreeSet<(String, String)>,
    /// What `status` says of a TELUS session that can lapse; `None` while it cannot.
    pub session_at_risk: Option<String>,
    /// Channels down, by side, and since when (Unix time).
    pub channels_down: BTreeMap<String, i64>,
    pub failure_streak: u32,
    /// Why the last pass failed as a whole, while the streak lasts.
    pub system_error: Option<String>,
    /// The built-in app's features still on.
    pub builtin_pushing: Vec<String>,
    /// When this was taken (Unix time).
    pub at: i64,
}

impl Watch {
    /// What a store kept of an earlier run's announcements: the channels and the failure
    /// streak start afresh with the daemon.
    pub fn from_announced(a: crate::store::state::Announced) -> Watch {
        Watch {
            held: a.held,
            quarantined: a.quarantined.into_iter().collect(),
            problems: a.problems.into_iter().collect(),
            session_at_risk: a.session_at_risk,
            builtin_pushing: a.builtin_pushing,
            ..Watch::default()
        }
    }

    /// What is kept of this one for the next run.
    pub fn announced(&self) -> crate::store::state::Announced {
        crate::store::state::Announced {
            held: self.held.clone(),
            quarantined: self.quarantined.iter().cloned().collect(),
            problems: self.problems.iter().cloned().collect(),
            session_at_risk: self.session_at_risk.clone(),
            builtin_pushing: self.builtin_pushing.clone(),
        }
    }
}

/// This many whole-system failures in a row are notified.
pub const FAILURE_STREAK: u32 = 3;

/// What to notify, going from `prev` to `now`; a channel down `channel_after` seconds is
/// notified (`notify.channel_down_seconds`). Pure.
pub fn changes(prev: &Watch, now: &Watch, channel_after: i64) -> Vec<Event> {
    let mut out = Vec::new();
    let event = |kind, summary: String, details, users, attributes, command: &str| Event {
        kind,
        summary,
        details,
        users,
        attributes,
        command: command.to_string(),
    };
    if !now.held.is_empty() && prev.held.is_empty() {
        out.push(event(
            Kind::PassHeld,
            "A pass is held by a safety limit: nothing is written until it is approved".into(),
            now.held.clone(),
            vec![],
            vec![],
            "okta-telus-sync plan, then okta-telus-sync sync --approve",
        ));
    }
    let quarantined: Vec<String> = now
        .quarantined
        .difference(&prev.quarantined)
        .cloned()
        .collect();
    if !quarantined.is_empty() {
        out.push(event(
            Kind::Quarantined,
            format!(
                "{} user(s) quarantined after repeated failures",
                quarantined.len()
            ),
            vec![],
            quarantined,
            vec![],
            "okta-telus-sync explain EMAIL, then okta-telus-sync sync --retry-quarantined",
        ));
    }
    let new: Vec<&(String, String)> = now.problems.difference(&prev.problems).collect();
    if !new.is_empty() {
        let users: BTreeSet<String> = new.iter().map(|(u, _)| u.clone()).collect();
        let attrs: BTreeSet<String> = new.iter().map(|(_, a)| a.clone()).collect();
        out.push(event(
            Kind::NewProblems,
            format!("{} new known refusal(s) or data problem(s)", new.len()),
            new.iter().map(|(u, a)| format!("{u}: {a}")).collect(),
            users.into_iter().collect(),
            attrs.into_iter().collect(),
            "okta-telus-sync status, and okta-telus-sync explain EMAIL",
        ));
    }
    out.extend(system_changes(prev, now, channel_after));
    out
}

/// "12 min", or "45 s" under two minutes.
fn how_long(secs: i64) -> String {
    if secs < 120 {
        format!("{secs} s")
    } else {
        format!("{} min", secs / 60)
    }
}

/// What changed about the systems themselves: the session, the channels, whole-system
/// failures, the built-in app.
fn system_changes(prev: &Watch, now: &Watch, channel_after: i64) -> Vec<Event> {
    let mut out = Vec::new();
    let event = |kind, summary: String, details, command: &str| Event {
        kind,
        summary,
        details,
        users: vec![],
        attributes: vec![],
        command: command.to_string(),
    };
    if let (Some(line), None) = (&now.session_at_risk, &prev.session_at_risk) {
        out.push(event(
            Kind::SessionAtRisk,
            "The TELUS session can lapse".into(),
            line.lines().map(|l| l.trim().to_string()).collect(),
            "okta-telus-sync status; renew the JWT or run okta-telus-sync auth telus",
        ));
    }
    for (side, since) in &now.channels_down {
        let long =
            |w: &Watch| w.channels_down.get(side) == Some(since) && w.at - since >= channel_after;
        // Once per outage: when it first becomes long.
        if long(now) && !long(prev) {
            out.push(event(
                Kind::ChannelDown,
                format!(
                    "The {} change-event channel has been down for {}: changes reach the other side only at scheduled passes",
                    match side.as_str() {
                        "okta" => "Okta",
                        "telus" => "TELUS",
                        other => other,
                    },
                    how_long(now.at - since)
                ),
                vec![],
                "okta-telus-sync status (the channel's line says why), and the daemon's log",
            ));
        }
    }
    if now.failure_streak >= FAILURE_STREAK && prev.failure_streak < FAILURE_STREAK {
        out.push(event(
            Kind::SystemFailures,
            format!(
                "{} passes in a row failed as a whole (auth, unreachable)",
                now.failure_streak
            ),
            now.system_error.iter().cloned().collect(),
            "okta-telus-sync status, and okta-telus-sync check-config --connect",
        ));
    }
    if !now.builtin_pushing.is_empty() && prev.builtin_pushing.is_empty() {
        out.push(event(
            Kind::BuiltinAppPushing,
            "Okta's built-in TELUS app still pushes: two writers on the same users".into(),
            now.builtin_pushing.clone(),
            "okta-telus-sync status; turn the app's provisioning features off in Okta",
        ));
    }
    out
}

/// The body for the webhook's format (and, plain, for the command's stdin).
pub fn payload(e: &Event, format: NotifyFormat, at: &str) -> Value {
    let plain = json!({
        "source": "okta-telus-sync",
        "kind": e.kind.as_str(),
        "summary": e.summary,
        "details": e.details,
        "users": e.users,
        "attributes": e.attributes,
        "command": e.command,
        "time": at,
    });
    let lines = chat_lines(e);
    match format {
        NotifyFormat::Plain => plain,
        NotifyFormat::Slack => {
            // Slack's text is mrkdwn: `&`, `<` and `>` are control characters and must be
            // escaped (Slack, "Formatting text for app surfaces": escaping text).
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let mut text = format!("*okta-telus-sync*: {}", esc(&e.summary));
            for line in &lines {
                text.push_str(&format!("\n• {}", esc(line)));
            }
            json!({ "text": format!("{text}\nRun: `{}`", esc(&e.command)) })
        }
        // A Workflows webhook ("When a Teams webhook request is received"): Microsoft 365
        // connectors, which took MessageCards, are retired, and Workflows take Adaptive Cards
        // only (Microsoft Learn, "Create and send messages": known issues), sent as a message
        // with the card as its attachment.
        NotifyFormat::Teams => {
            let mut body = vec![
                json!({"type": "TextBlock", "text": "okta-telus-sync", "weight": "Bolder", "size": "Medium"}),
                json!({"type": "TextBlock", "text": e.summary, "wrap": true}),
            ];
            body.extend(
                lines
                    .iter()
                    .map(|l| json!({"type": "TextBlock", "text": format!("• {l}"), "wrap": true, "spacing": "None"})),
            );
            body.push(json!({"type": "TextBlock", "text": format!("Run: {}", e.command), "wrap": true, "fontType": "Monospace"}));
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    },
                }],
            })
        }
    }
}

/// A chat message's lines: the details, or else the users (new problems' details name
/// their users already), at most [`CHAT_LINES`]: a chat refuses a message over its size
/// (Slack: 40,000 characters) and a refusal is not retried, so a notice of 2,000 quarantined
/// users would never arrive. The plain body keeps every line.
fn chat_lines(e: &Event) -> Vec<String> {
    let all = if e.details.is_empty() {
        &e.users
    } else {
        &e.details
    };
    let mut lines: Vec<String> = all.iter().take(CHAT_LINES).cloned().collect();
    if all.len() > CHAT_LINES {
        lines.push(format!(
            "… and {} more: okta-telus-sync status lists them",
            all.len() - CHAT_LINES
        ));
    }
    lines
}

/// The most lines a Slack or Teams message lists.
const CHAT_LINES: usize = 20;

/// Where notifications go: a bounded queue to a task that sends them.
pub struct Notifier {
    tx: tokio::sync::mpsc::Sender<Event>,
    /// `notify.channel_down_seconds`, as [`changes`] takes it.
    pub channel_after: i64,
}

/// Queued notifications beyond this are dropped (said in the log).
const QUEUE: usize = 64;
/// Webhook attempts, and the first wait between them (doubled after each).
const ATTEMPTS: u32 = 5;
const FIRST_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Notifier {
    /// Starts the sender task.
    pub fn start(config: NotifyConfig, figures: super::metrics::Shared) -> Notifier {
        let channel_after = i64::try_from(config.channel_down_after.as_secs()).unwrap_or(i64::MAX);
        {
            // Every series from the start at 0: a rule's increase() sees the first failure.
            let mut f = figures.lock().unwrap_or_else(|e| e.into_inner());
            for kind in Kind::ALL {
                for result in ["sent", "failed", "dropped"] {
                    f.notifications
                        .entry((kind.as_str().to_string(), result.to_string()))
                        .or_default();
                }
            }
        }
        let count = move |kind: Kind, result: &str| {
            let mut f = figures.lock().unwrap_or_else(|e| e.into_inner());
            *f.notifications
                .entry((kind.as_str().to_string(), result.to_string()))
                .or_default() += 1;
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(QUEUE);
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .unwrap_or_default();
            let mut last: BTreeMap<Kind, std::time::Instant> = BTreeMap::new();
            let mut said: BTreeSet<Kind> = BTreeSet::new();
            while let Some(e) = rx.recv().await {
                if last
                    .get(&e.kind)
                    .is_some_and(|t| t.elapsed() < config.min_interval)
                {
                    count(e.kind, "dropped");
                    if said.insert(e.kind) {
                        tracing::info!(
                            kind = e.kind.as_str(),
                            "notification dropped: one of this kind was sent within notify.min_interval_seconds (said once)"
                        );
                    }
                    continue;
                }
                last.insert(e.kind, std::time::Instant::now());
                said.remove(&e.kind);
                let sent = send(&http, &config, &e).await;
                count(e.kind, if sent { "sent" } else { "failed" });
            }
        });
        Notifier { tx, channel_after }
    }

    /// Queues `e`; never waits.
    pub fn notify(&self, e: Event) {
        if let Err(err) = self.tx.try_send(e) {
            tracing::warn!(error = %err, "notification dropped: the queue is full");
        }
    }
}

/// Sends `e` to every output, logging how each went; whether all took it.
async fn send(http: &reqwest::Client, config: &NotifyConfig, e: &Event) -> bool {
    let mut all = true;
    for (output, result) in deliver(http, config, e, ATTEMPTS).await {
        match result {
            Ok(()) => tracing::info!(kind = e.kind.as_str(), output, "notification sent"),
            Err(why) => {
                all = false;
                tracing::warn!(kind = e.kind.as_str(), output, error = %why, "notification not delivered")
            }
        }
    }
    all
}

/// Sends `e` to each configured output, the webhook tried up to `attempts` times; answers
/// each output (`"webhook"`, `"command"`) with how it went. Never names the URL.
pub async fn deliver(
    http: &reqwest::Client,
    config: &NotifyConfig,
    e: &Event,
    attempts: u32,
) -> Vec<(&'static str, Result<(), String>)> {
    let at = chrono::Utc::now().to_rfc3339();
    let mut out = Vec::new();
    if let Some((url, format)) = &config.webhook {
        let body = payload(e, *format, &at);
        out.push((
            "webhook",
            webhook(http, &url.0, &body, e.kind, attempts).await,
        ));
    }
    if let Some((program, args)) = config.command.split_first() {
        let event = payload(e, NotifyFormat::Plain, &at);
        out.push(("command", run_command(program, args, &event).await));
    }
    out
}

/// POSTs `body`, retried with backoff after a 5xx, a 408, a 429 (its Retry-After, up to a
/// minute) or no answer.
async fn webhook(
    http: &reqwest::Client,
    url: &url::Url,
    body: &Value,
    kind: Kind,
    attempts: u32,
) -> Result<(), String> {
    let mut wait = FIRST_RETRY;
    let mut last = String::new();
    for attempt in 1..=attempts {
        // The URL is never logged: a webhook's path may carry its token.
        let mut pause = wait;
        match http.post(url.clone()).json(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let status = r.status().as_u16();
                last = format!("the webhook answered HTTP {status}");
                tracing::debug!(
                    kind = kind.as_str(),
                    status,
                    attempt,
                    "the webhook refused a notification"
                );
                // A refusal that asking again cannot change (a revoked webhook, a channel
                // gone: Slack's 403/404, a body it rejects) is not retried.
                if (400..500).contains(&status) && status != 408 && status != 429 {
                    return Err(format!(
                        "{last}: not retried (a webhook deleted or revoked, or a body it refuses)"
                    ));
                }
                // Slack answers a burst with 429 and Retry-After (its rate limits page);
                // waited, up to a minute.
                if let Some(s) = retry_after(&r) {
                    pause = s.min(std::time::Duration::from_secs(60));
                }
            }
            Err(err) => {
                last = format!("the webhook could not be reached: {}", err.without_url());
                tracing::debug!(kind = kind.as_str(), error = %last, attempt, "webhook attempt failed");
            }
        }
        if attempt < attempts {
            tokio::time::sleep(pause).await; // real time: backoff between webhook attempts
            wait *= 2;
        }
    }
    Err(format!("{last} ({attempts} attempt(s))"))
}

/// A `Retry-After` in seconds, if the answer has one.
fn retry_after(r: &reqwest::Response) -> Option<std::time::Duration> {
    let secs: u64 = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::Duration::from_secs(secs))
}

/// Runs the command with the event on stdin (LSC's post-hooks), for at most 30 s.
async fn run_command(program: &str, args: &[String], event: &Value) -> Result<(), String> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("notify.command {program:?} could not be started: {err}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{event}\n").as_bytes()).await;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(format!("notify.command {program:?} failed: {s}")),
        Ok(Err(err)) => Err(format!("notify.command {program:?} failed: {err}")),
        Err(_) => Err(format!(
            "notify.command {program:?} took over 30 s: stopped"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_notified_once_when_it_appears() {
        let quiet = Watch::default();
        let loud = Watch {
            held: vec!["3 deactivations exceed safety.max_deactivations = 0".into()],
            quarantined: ["ana@x.ca".to_string()].into(),
            problems: [("ben@x.ca".to_string(), "mobilePhone".to_string())].into(),
            session_at_risk: Some("TELUS session (auth telus): refresh token valid until …".into()),
            channels_down: [("telus".to_string(), 1_000)].into(),
            failure_streak: 3,
            system_error: Some("TELUS refused the credentials".into()),
            builtin_pushing: vec!["PUSH_NEW_USERS".into()],
            at: 2_000,
        };
        let kinds: Vec<Kind> = changes(&quiet, &loud, 600).iter().map(|e| e.kind).collect();
        assert_eq!(kinds, Kind::ALL, "every kind, in order");
        // Nothing new since: nothing again (the channel still down, the same outage).
        let later = Watch {
            at: 3_000,
            ..loud.clone()
        };
        assert_eq!(changes(&loud, &later, 600), vec![]);
        // A channel down for less than 10 minutes is not notified yet.
        let young = Watch {
            channels_down: [("okta".to_string(), 1_900)].into(),
            at: 2_000,
            ..Watch::default()
        };
        assert_eq!(changes(&quiet, &young, 600), vec![]);
        // It becomes long at a later check (no pass needed), once; it comes back, goes down
        // again: a new outage, notified again when it too lasts.
        let long = Watch {
            at: 2_500,
            ..young.clone()
        };
        let kinds = |a: &Watch, b: &Watch| -> Vec<Kind> {
            changes(a, b, 600).iter().map(|e| e.kind).collect()
        };
        assert_eq!(kinds(&young, &long), [Kind::ChannelDown]);
        assert!(
            changes(&young, &long, 600)[0]
                .summary
                .contains("The Okta change-event")
        );
        assert_eq!(
            kinds(
                &long,
                &Watch {
                    at: 2_600,
                    ..long.clone()
                }
            ),
            []
        );
        let back = Watch {
            at: 2_700,
            ..Watch::default()
        };
        let again = Watch {
            channels_down: [("okta".to_string(), 2_800)].into(),
            at: 3_500,
            ..Watch::default()
        };
        assert_eq!(kinds(&back, &again), [Kind::ChannelDown]);
        // The streak's cause and the session's line travel as details.
        let all = changes(&quiet, &loud, 600);
        let of = |k: Kind| all.iter().find(|e| e.kind == k).unwrap();
        assert_eq!(
            of(Kind::SystemFailures).details,
            ["TELUS refused the credentials"]
        );
        assert!(of(Kind::SessionAtRisk).details[0].contains("refresh token valid until"));
        // A payload carries emails and attribute names, never a value.
        let e = &changes(&quiet, &loud, 600)[2];
        for f in [
            NotifyFormat::Plain,
            NotifyFormat::Slack,
            NotifyFormat::Teams,
        ] {
            let body = payload(e, f, "t").to_string();
            assert!(body.contains("ben@x.ca"), "{body}");
        }
        assert_eq!(
            payload(e, NotifyFormat::Plain, "t")["attributes"],
            json!(["mobilePhone"])
        );
        // Teams: an Adaptive Card in a message, as Workflows take it; Slack: escaped mrkdwn.
        let teams = payload(e, NotifyFormat::Teams, "t");
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert!(
            card["content"]["body"]
                .to_string()
                .contains("ben@x.ca: mobilePhone")
        );
        let odd = Event {
            summary: "a <b> & c".into(),
            ..e.clone()
        };
        let slack = payload(&odd, NotifyFormat::Slack, "t")["text"].to_string();
        assert!(slack.contains("a &lt;b&gt; &amp; c"), "{slack}");
    }

    /// 2,000 quarantined users: the chat bodies list 20 and say how many more (a message
    /// over Slack's size is refused, and not retried); the plain body keeps all.
    #[test]
    fn a_chat_message_lists_twenty_lines_and_counts_the_rest() {
        let users: BTreeSet<String> = (0..2000).map(|i| format!("user{i:04}@x.ca")).collect();
        let e = changes(
            &Watch::default(),
            &Watch {
                quarantined: users,
                ..Watch::default()
            },
            600,
        )
        .remove(0);
        let slack = payload(&e, NotifyFormat::Slack, "t")["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(slack.contains("user0019@x.ca") && !slack.contains("user0020@x.ca"));
        assert!(slack.contains("… and 1980 more"), "{slack}");
        assert!(slack.len() < 2_000, "{} bytes", slack.len());
        let teams = payload(&e, NotifyFormat::Teams, "t").to_string();
        assert!(teams.contains("… and 1980 more") && teams.len() < 8_000);
        let plain = payload(&e, NotifyFormat::Plain, "t");
        assert_eq!(plain["users"].as_array().unwrap().len(), 2000);
    }

    /// A refusal the webhook will repeat (404: the webhook was deleted) is sent once; a 429
    /// is asked again after its Retry-After.
    #[tokio::test]
    async fn a_gone_webhook_is_not_asked_again_and_a_429_waits_its_retry_after() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let e = changes(
            &Watch::default(),
            &Watch {
                failure_streak: 3,
                ..Watch::default()
            },
            600,
        )
        .remove(0);
        let config = |uri: &str| NotifyConfig {
            webhook: Some((
                crate::config::WebhookUrl(url::Url::parse(uri).unwrap()),
                NotifyFormat::Slack,
            )),
            command: vec![],
            min_interval: std::time::Duration::from_secs(3600),
            channel_down_after: std::time::Duration::from_secs(600),
        };
        let http = reqwest::Client::new();
        let gone = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
            .expect(1)
            .mount(&gone)
            .await;
        assert!(!send(&http, &config(&gone.uri()), &e).await);
        gone.verify().await;

        let busy = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&busy)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .expect(1)
            .mount(&busy)
            .await;
        assert!(send(&http, &config(&busy.uri()), &e).await);
        busy.verify().await;
        let bodies: Vec<Value> = busy
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0], bodies[1], "the same notice, asked again");
    }
}
