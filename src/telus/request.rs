//! An authenticated TELUS request: a Bearer token from the session, paced by its group,
//! retried after 5xx, network errors and 429s (a write that is not safe to repeat is never
//! sent twice), with one token refresh on a 401.

use super::client::Client;
use super::error::{Error, api_error};
use super::pacing::RateGroup;
use secrecy::ExposeSecret;
use std::sync::atomic::Ordering;

impl Client {
    /// Sends with a Bearer token; paces by rate-limit group; retries 5xx, network errors and
    /// 429 (after the penalty); refreshes the token once on a 401.
    pub(super) async fn send(
        &self,
        group: RateGroup,
        endpoint: &str,
        idempotent: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.access_token(false).await?;
            let ticket = self.wait_for_group(group, endpoint).await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = build()
                .bearer_auth(token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await;
            // The budget the answer reports is noted before a request waiting to learn it goes.
            if let Ok(resp) = &result {
                self.note_rate_headers(group, resp);
            }
            drop(ticket);
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = Error::no_answer(endpoint, crate::http::NoAnswer::of(&e));
                    // A create that may have reached the server is not sent again: the next
                    // pass finds the user by email if it was created.
                    if crate::http::retry_after(
                        &self.settings,
                        attempt,
                        idempotent,
                        "telus",
                        endpoint,
                        &err,
                    )
                    .await
                    {
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status();
            // Wire detail without headers (they carry the credentials) or bodies.
            tracing::trace!(endpoint, attempt, status = status.as_u16(), "response");
            // 304 answers a conditional read (`If-None-Match`); its caller keeps what it had.
            if status.is_success() || status.as_u16() == 304 {
                return Ok(resp);
            }
            if status.as_u16() == 401 && !refreshed {
                refreshed = true;
                attempt -= 1;
                self.access_token(true).await?;
                continue;
            }
            // A 5xx may come after the work was done (a gateway losing the answer): a write
            // that is not safe to repeat is never sent again; the next read settles it.
            if status.is_server_error() && !idempotent {
                let code = match api_error(endpoint, resp).await {
                    Error::Api { code, .. } => code,
                    _ => String::new(),
                };
                tracing::warn!(
                    endpoint,
                    status = status.as_u16(),
                    code = %code,
                    "telus answered a write that is not sent twice in one request with a server error; the next read settles it"
                );
                return Err(Error::Unconfirmed {
                    endpoint: endpoint.to_string(),
                    status: status.as_u16(),
                    code,
                });
            }
            if (status.as_u16() == 429 || status.is_server_error())
                && attempt < self.settings.attempts
            {
                self.after_429_or_5xx(group, &resp, attempt).await;
                continue;
            }
            if status.as_u16() == 429 {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                return Err(Error::RateLimited {
                    endpoint: endpoint.to_string(),
                });
            }
            return Err(api_error(endpoint, resp).await);
        }
    }
}
