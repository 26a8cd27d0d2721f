//! Okta's System Log as a source of change hints (`GET /api/v1/logs` polled from a cursor)
//! and single-user reads by id (targeted passes, deactivated users a listing leaves out).
//! Knows the log's query and event shapes.

use super::client::{BUCKET_GET, BUCKET_LOGS, Client, Error, read_body, to_model};
use super::wire::{LogEventDto, UserDto};
use crate::http::same_origin_link;
use crate::model::{OktaId, OktaUser};

/// The event types that can change what a pass decides for a user (DESIGN, "Change events").
pub const LOG_FILTER: &str = "eventType sw \"user.lifecycle\" or eventType eq \"user.account.update_profile\" or eventType sw \"group.user_membership\" or eventType sw \"application.user_membership\"";

/// Events per page: the System Log's maximum.
const LOG_LIMIT: u32 = 1000;
/// Pages one poll follows at most (a backlog is read over several polls, within the bucket).
const POLL_PAGES: usize = 5;

/// Where a poll starts: a time (the first poll, or after events were lost), or the `next`
/// link the previous poll ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogCursor {
    Since(String),
    Next(String),
}

/// One System Log event as a hint: which users it names, and whether this client caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub uuid: String,
    pub published: String,
    pub event_type: String,
    pub users: Vec<OktaId>,
    /// The event's group and app targets: (`UserGroup` | `AppInstance`, id).
    pub scopes: Vec<(String, String)>,
    /// Raised by one of this client's own profile writes (its `transaction.id` is the
    /// `X-Okta-Request-Id` of that write).
    pub own: bool,
}

/// What a poll read, and the link the next poll starts from.
#[derive(Debug, Clone)]
pub struct LogPoll {
    pub events: Vec<LogEvent>,
    pub next: String,
}

impl Client {
    /// `GET /api/v1/users/{id}`: one user as it is now; `None` when Okta no longer has it.
    pub async fn get_user(&self, id: &OktaId) -> Result<Option<OktaUser>, Error> {
        let endpoint = format!("GET users/{id}");
        let url = self.user_url(id, &endpoint)?;
        let resp = match self
            .send(BUCKET_GET, &endpoint, || self.http.get(url.clone()))
            .await
        {
            Ok(r) => r,
            Err(Error::Api { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes = read_body(resp, &endpoint).await?;
        let dto: UserDto = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            endpoint,
            message: e.to_string(),
        })?;
        Ok(Some(to_model(dto)))
    }

    /// Reads the System Log from `cursor` (ascending, no `until`: a polling request), following
    /// `rel="next"` while pages come full, up to a few pages. The answer's `next` is where the
    /// next poll starts: Okta always sends one to a polling request. A 400 means Okta refuses
    /// the cursor (too old for the log's retention, or unknown): events were lost.
    pub async fn poll_logs(&self, cursor: &LogCursor) -> Result<LogPoll, Error> {
        let endpoint = "GET logs".to_string();
        let mut url = match cursor {
            LogCursor::Since(since) => {
                let mut url = self.base.clone();
                url.set_path("/api/v1/logs");
                url.query_pairs_mut()
                    .append_pair("since", since)
                    .append_pair("sortOrder", "ASCENDING")
                    .append_pair("limit", &LOG_LIMIT.to_string())
                    .append_pair("filter", LOG_FILTER);
                url
            }
            LogCursor::Next(next) => {
                same_origin_link(&self.base, next).map_err(|message| Error::Paging {
                    endpoint: endpoint.clone(),
                    message,
                })?
            }
        };
        let mut events = Vec::new();
        for _ in 0..POLL_PAGES {
            let (body, next) = self.get_page(BUCKET_LOGS, &endpoint, &url).await?;
            let page: Vec<LogEventDto> =
                serde_json::from_slice(&body).map_err(|e| Error::Decode {
                    endpoint: endpoint.clone(),
                    message: e.to_string(),
                })?;
            let full = page.len() >= LOG_LIMIT as usize;
            events.extend(page.into_iter().map(|e| self.hint_of(e)));
            let Some(next) = next else {
                return Err(Error::Paging {
                    endpoint,
                    message: "a polling request came back without a next link".into(),
                });
            };
            let next = same_origin_link(&self.base, &next).map_err(|message| Error::Paging {
                endpoint: endpoint.clone(),
                message,
            })?;
            // A `next` that points at the page itself would read it again: the poll ends,
            // and the next poll starts there.
            let itself = next == url;
            url = next;
            if !full || itself {
                break;
            }
        }
        Ok(LogPoll {
            events,
            next: url.to_string(),
        })
    }

    fn hint_of(&self, e: LogEventDto) -> LogEvent {
        let own = e
            .transaction
            .and_then(|t| t.id)
            .is_some_and(|id| self.is_own_request(&id));
        let targets = e.target.unwrap_or_default();
        LogEvent {
            uuid: e.uuid,
            published: e.published,
            event_type: e.event_type,
            users: targets
                .iter()
                .filter(|t| t.kind.as_deref() == Some("User"))
                .filter_map(|t| t.id.clone().map(OktaId))
                .collect(),
            scopes: targets
                .into_iter()
                .filter_map(|t| match (t.kind.as_deref(), t.id) {
                    (Some(kind @ ("UserGroup" | "AppInstance")), Some(id)) => {
                        Some((kind.to_string(), id))
                    }
                    _ => None,
                })
                .collect(),
            own,
        }
    }

    /// Remembers the `X-Okta-Request-Id` of one of this client's writes.
    pub(super) fn remember_own_request(&self, resp: &reqwest::Response) {
        let Some(id) = resp
            .headers()
            .get("x-okta-request-id")
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        if let Ok(mut own) = self.own_requests.lock() {
            own.remember(id);
        }
    }

    fn is_own_request(&self, id: &str) -> bool {
        self.own_requests
            .lock()
            .map(|own| own.contains(id))
            .unwrap_or(false)
    }
}
