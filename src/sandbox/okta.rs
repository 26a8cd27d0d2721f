//! A fake Okta Management API on loopback: SSWS and OAuth auth, `/api/v1/users` with `Link`
//! paging and the `lastUpdated gt` filter, group and app members, partial profile updates,
//! the profile schema and its masters, rate-limit headers, Okta error bodies. It records
//! every request so tests can count them; the routes are `routes.rs`'s.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How the `Link` headers of a page are sent: Okta sends one header per link; some proxies
/// join them into one comma-separated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStyle {
    Separate,
    Joined,
}

#[derive(Debug, Clone)]
pub struct FakeOktaUser {
    pub id: String,
    pub status: String,
    pub last_updated: String,
    /// `credentials.provider.type`: `OKTA` (the profile source is Okta itself, the usual
    /// case) or a directory or app such as `ACTIVE_DIRECTORY`, whose user refuses API writes
    /// to the attributes that inherit from the profile source.
    pub provider: &'static str,
    pub profile: Map<String, Value>,
}

/// An app's assigned users: (Okta user id, the app-specific profile).
pub type Assignments = Vec<(String, Map<String, Value>)>;

#[derive(Debug, Clone)]
/// An app as `GET /api/v1/apps/{id}` describes it.
pub struct FakeApp {
    pub name: String,
    pub label: String,
    pub features: Vec<String>,
}

#[derive(Debug, Clone)]
/// A profile mapping of the Mappings API.
pub struct FakeMapping {
    pub id: String,
    /// (id, `appuser` | `user`): the source and target of the mapping.
    pub source: (String, &'static str),
    pub target: (String, &'static str),
    /// Target property → `{expression, pushStatus}`.
    pub properties: Map<String, Value>,
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

#[derive(Debug)]
pub struct OktaState {
    pub users: Vec<FakeOktaUser>,
    pub token: String,
    pub link_style: LinkStyle,
    /// Requests allowed per bucket per window.
    pub rate_limit: u64,
    pub window_secs: u64,
    buckets: HashMap<&'static str, (u64, u64)>,
    /// Requests admitted in each finished window, by bucket, oldest first.
    pub finished_windows: Vec<(&'static str, u64)>,
    pub requests: Vec<Request>,
    pub rate_limited: u64,
    clock: u64,
    /// Delay before each write is handled (to catch a process mid-apply, or to stand for
    /// a real network's round trip).
    pub write_delay: std::time::Duration,
    /// Profile updates being handled now, and the most seen at once.
    pub writes_in_flight: u64,
    pub peak_writes_in_flight: u64,
    /// An OAuth service app: its client id and RS256 public key (PEM).
    pub oauth_client: Option<(String, String)>,
    pub bearer_ttl: std::time::Duration,
    bearer: HashMap<String, std::time::Instant>,
    pub tokens_issued: u64,
    /// Custom profile attributes in the schema: (name, JSON type).
    pub custom_attrs: Vec<(String, String)>,
    /// Each attribute's `master.type` where it is not Okta's default `PROFILE_MASTER`
    /// ("Inherit from profile source", the default for base and custom attributes in a real
    /// org, per Okta's Profile Editor docs): `OKTA` ("Inherit from Okta"), or `OVERRIDE` (a
    /// priority list led by an app, refused for every user).
    pub masters: HashMap<String, String>,
    /// A fault: every page links a next one (a cursor that never ends).
    pub endless_cursor: bool,
    /// Groups and their member user ids; a group not here is answered 404.
    pub groups: HashMap<String, Vec<String>>,
    /// Apps and their assigned user ids, each with its app-specific profile (which differs
    /// from the Okta profile: a client must read the embedded user, never the app profile).
    pub apps: HashMap<String, Assignments>,
    /// The System Log: one event per user change, oldest first.
    pub log: Vec<FakeLogEvent>,
    log_seq: u64,
    /// How long after a change its event becomes visible to `/api/v1/logs`. Okta documents
    /// the log as eventually consistent without a bound; one second is modelled.
    pub log_delay: std::time::Duration,
    /// How far back `since` may reach (Okta keeps 90 days of System Log); an older `since`
    /// or a cursor to events no longer kept is refused with 400 E0000001.
    pub log_retention: std::time::Duration,
    /// An OAuth app without `okta.logs.read`: `/api/v1/logs` answers 403 E0000006.
    pub logs_forbidden: bool,
    /// The newest event dropped for its age: a cursor before it would skip events.
    pub log_trimmed_upto: u64,
    /// Users created activated, each of whom Okta would have emailed an activation link.
    pub activation_emails: Vec<String>,
    /// Apps as `GET /api/v1/apps/{id}` describes them (the built-in TELUS app).
    pub app_meta: HashMap<String, FakeApp>,
    /// Profile mappings (Mappings API).
    pub mappings: Vec<FakeMapping>,
    /// Each assignment's `externalId`, by `"<appId>/<userId>"`.
    pub external_ids: HashMap<String, String>,
}

/// A System Log event of the fake (`LogEvent`: uuid, published, eventType, transaction.id,
/// target[] naming the user).
#[derive(Debug, Clone)]
pub struct FakeLogEvent {
    pub seq: u64,
    pub published_ms: u64,
    pub event_type: String,
    pub user_id: String,
    pub transaction_id: String,
    /// The membership's group or app as a second target: (`UserGroup` | `AppInstance`, id).
    pub scope_target: Option<(String, String)>,
}

impl OktaState {
    pub fn new(users: Vec<FakeOktaUser>, token: &str) -> OktaState {
        OktaState {
            users,
            token: token.to_string(),
            link_style: LinkStyle::Separate,
            rate_limit: 600,
            window_secs: 60,
            buckets: HashMap::new(),
            finished_windows: Vec::new(),
            requests: Vec::new(),
            rate_limited: 0,
            clock: 0,
            write_delay: std::time::Duration::ZERO,
            writes_in_flight: 0,
            peak_writes_in_flight: 0,
            oauth_client: None,
            bearer_ttl: std::time::Duration::from_secs(3600),
            bearer: HashMap::new(),
            tokens_issued: 0,
            custom_attrs: vec![("costCenter".into(), "string".into())],
            masters: HashMap::new(),
            endless_cursor: false,
            groups: HashMap::new(),
            apps: HashMap::new(),
            log: Vec::new(),
            log_seq: 0,
            log_delay: std::time::Duration::from_secs(1),
            log_retention: std::time::Duration::from_secs(90 * 86_400),
            logs_forbidden: false,
            log_trimmed_upto: 0,
            activation_emails: Vec::new(),
            app_meta: HashMap::new(),
            mappings: Vec::new(),
            external_ids: HashMap::new(),
        }
    }

    /// Writes a System Log event naming `user_id`, as Okta does for every change; returns its
    /// transaction id.
    pub fn log_event(
        &mut self,
        event_type: &str,
        user_id: &str,
        transaction: Option<&str>,
    ) -> String {
        self.log_seq += 1;
        let seq = self.log_seq;
        let transaction_id = transaction
            .map(str::to_string)
            .unwrap_or_else(|| format!("admin-ui-{seq}"));
        self.log.push(FakeLogEvent {
            seq,
            published_ms: now_epoch_ms(),
            event_type: event_type.to_string(),
            user_id: user_id.to_string(),
            transaction_id: transaction_id.clone(),
            scope_target: None,
        });
        transaction_id
    }

    /// A membership event: `group.user_membership.add` and the like name the user and, as a
    /// second target, the `UserGroup` (or for `application.user_membership.*` the
    /// `AppInstance`), as Okta's event-type catalog describes them (no recording of one was at
    /// hand: the target types are the catalog's).
    pub fn membership_event(&mut self, event_type: &str, user_id: &str, kind: &str, id: &str) {
        self.log_event(event_type, user_id, None);
        if let Some(e) = self.log.last_mut() {
            e.scope_target = Some((kind.to_string(), id.to_string()));
        }
    }

    /// Requests with this method whose path starts with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.method == method && super::faults::under(&r.path, prefix))
            .count()
    }

    /// Requests admitted in each window of a bucket so far, the current one last.
    pub fn admitted_per_window(&self, bucket: &str) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .finished_windows
            .iter()
            .filter(|(b, _)| *b == bucket)
            .map(|(_, n)| *n)
            .collect();
        if let Some((remaining, _)) = self.buckets.get(bucket) {
            out.push(self.rate_limit - remaining);
        }
        out
    }

    pub fn user(&self, id: &str) -> Option<&FakeOktaUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// Marks a user as just updated (as Okta does on any change), for tests that edit
    /// profiles directly.
    pub fn touch(&mut self, id: &str) {
        let stamp = self.tick();
        if let Some(u) = self.users.iter_mut().find(|u| u.id == id) {
            u.last_updated = stamp;
            self.log_event("user.account.update_profile", id, None);
        }
    }

    /// A monotonic `lastUpdated` so that each write is strictly later than the previous one.
    pub(super) fn tick(&mut self) -> String {
        self.clock += 1;
        let now = now_epoch_ms().max(self.clock);
        self.clock = now;
        chrono::DateTime::from_timestamp_millis(now as i64)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

pub type Shared = Arc<Mutex<OktaState>>;

/// The fake, served on loopback.
pub type FakeOkta = super::served::Served<OktaState>;

pub(super) fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn error(status: StatusCode, code: &str, summary: &str, causes: &[String]) -> Response {
    let body = json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", now_epoch_ms()),
        "errorCauses": causes.iter().map(|c| json!({"errorSummary": c})).collect::<Vec<_>>(),
    });
    (status, axum::Json(body)).into_response()
}

/// Logs the request, checks SSWS auth and the bucket's budget; on success returns the rate
/// headers to attach.
pub(super) fn admit(
    st: &mut OktaState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    bucket: &'static str,
) -> Result<HeaderMap, Response> {
    st.requests.push(Request {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
    let expected = format!("SSWS {}", st.token);
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    let bearer_ok = given
        .and_then(|g| g.strip_prefix("Bearer "))
        .and_then(|t| st.bearer.get(t))
        .is_some_and(|exp| *exp > std::time::Instant::now());
    if given != Some(expected.as_str()) && !bearer_ok {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
            &[],
        ));
    }
    let now = now_epoch_ms() / 1000;
    let (limit, window) = (st.rate_limit, st.window_secs.max(1));
    let entry = st.buckets.entry(bucket).or_insert((limit, now + window));
    if entry.1 <= now {
        st.finished_windows.push((bucket, limit - entry.0));
        *entry = (limit, now + window);
    }
    let mut rate = HeaderMap::new();
    rate.insert("x-rate-limit-limit", HeaderValue::from(limit));
    rate.insert("x-rate-limit-reset", HeaderValue::from(entry.1));
    if entry.0 == 0 {
        rate.insert("x-rate-limit-remaining", HeaderValue::from(0u64));
        st.rate_limited += 1;
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        );
        resp.headers_mut().extend(rate);
        return Err(resp);
    }
    entry.0 -= 1;
    rate.insert("x-rate-limit-remaining", HeaderValue::from(entry.0));
    Ok(rate)
}

/// An `AppUser`: the assignment's own status and app profile; the Okta user under
/// `_embedded.user` when expanded.
pub(super) fn app_user_json(
    u: &FakeOktaUser,
    profile: Map<String, Value>,
    expand: bool,
    base: &str,
) -> Value {
    let mut v = json!({
        "id": u.id,
        "scope": "USER",
        "status": "PROVISIONED",
        "syncState": "SYNCHRONIZED",
        "created": "2026-01-05T10:00:00.000Z",
        "lastUpdated": u.last_updated,
        "credentials": {"userName": u.profile.get("login").cloned().unwrap_or(Value::Null)},
        "profile": profile,
    });
    if expand {
        v["_embedded"] = json!({ "user": user_json(u, base) });
    }
    v
}

pub(super) fn user_json(u: &FakeOktaUser, base: &str) -> Value {
    json!({
        "id": u.id,
        "status": u.status,
        "created": "2024-03-01T16:00:00.000Z",
        "activated": "2024-03-01T16:00:00.000Z",
        "statusChanged": "2024-03-01T16:00:00.000Z",
        "lastLogin": null,
        "lastUpdated": u.last_updated,
        "passwordChanged": null,
        "type": {"id": "oty1fakeusertype"},
        "profile": u.profile,
        "credentials": {"provider": {"type": u.provider, "name": u.provider}},
        "_links": {"self": {"href": format!("{base}/api/v1/users/{}", u.id)}},
    })
}

pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Parses the one filter this fake supports: `lastUpdated gt "<RFC 3339>"`.
fn parse_filter(filter: &str) -> Option<String> {
    let rest = filter.trim().strip_prefix("lastUpdated gt ")?;
    let value = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    chrono::DateTime::parse_from_rfc3339(value).ok()?;
    Some(value.to_string())
}

/// Whose users a listing returns.
enum Listing {
    All,
    Group(String),
    App(String),
}

pub(super) async fn list_users(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(state, method, uri, headers, q, Listing::All)
}

/// `GET /api/v1/groups/{groupId}/users`: the group's members; `GET /api/v1/apps/{appId}/users`:
/// app users (`AppUser`), the Okta user embedded under `_embedded.user` only with
/// `expand=user`.
pub(super) async fn list_members(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let listing = if uri.path().starts_with("/api/v1/apps/") {
        Listing::App(id)
    } else {
        Listing::Group(id)
    };
    list(state, method, uri, headers, q, listing)
}

fn list(
    state: Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    q: HashMap<String, String>,
    listing: Listing,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let bucket = match listing {
        Listing::App(_) => "apps",
        Listing::Group(_) => "groups",
        Listing::All => "users-list",
    };
    let rate = match admit(&mut st, &method, &uri, &headers, b"", bucket) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    // Members of the group or app, with each app user's own profile; `None`: everyone.
    let members: Option<HashMap<String, Option<Map<String, Value>>>> = match &listing {
        Listing::All => None,
        Listing::Group(gid) => match st.groups.get(gid) {
            Some(ids) => Some(ids.iter().map(|id| (id.clone(), None)).collect()),
            None => return not_found_resource(gid, "UserGroup"),
        },
        Listing::App(aid) => match st.apps.get(aid) {
            Some(assigned) => Some(
                assigned
                    .iter()
                    .map(|(id, p)| (id.clone(), Some(p.clone())))
                    .collect(),
            ),
            None => return not_found_resource(aid, "AppInstance"),
        },
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 200,
        Some(Ok(n)) if n >= 1 => n.min(200),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: limit",
                &["limit: must be a positive integer".into()],
            );
        }
    };
    let since = match q.get("filter") {
        None => None,
        Some(f) => match parse_filter(f) {
            Some(s) => Some(s),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "E0000031",
                    "Invalid search criteria.",
                    &[],
                );
            }
        },
    };
    let search = match q.get("search") {
        None => None,
        Some(text) => match search_matches(text) {
            Some(terms) => Some(terms),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "E0000031",
                    "Invalid search criteria.",
                    &[],
                );
            }
        },
    };
    let mut users: Vec<&FakeOktaUser> = st
        .users
        .iter()
        .filter(|u| members.as_ref().is_none_or(|m| m.contains_key(&u.id)))
        .filter(|u| search.as_ref().is_none_or(|t| matches_search(u, t)))
        // listUsers "omits users that have a status of DEPROVISIONED"; a `filter` returns
        // them (management spec, `listUsers` and its `filter` parameter). Group and app
        // listings: the spec is silent; they keep them.
        .filter(|u| {
            !matches!(listing, Listing::All)
                || since.is_some()
                || search.is_some()
                || u.status != "DEPROVISIONED"
        })
        .filter(|u| {
            since.as_deref().is_none_or(|s| {
                match (
                    chrono::DateTime::parse_from_rfc3339(&u.last_updated),
                    chrono::DateTime::parse_from_rfc3339(s),
                ) {
                    (Ok(a), Ok(b)) => a > b,
                    _ => true,
                }
            })
        })
        .collect();
    if !users.is_sorted_by(|a, b| a.id <= b.id) {
        users.sort_by(|a, b| a.id.cmp(&b.id));
    }
    let start = match q.get("after") {
        Some(after) => users.partition_point(|u| u.id <= *after),
        None => 0,
    };
    let page: Vec<&FakeOktaUser> = users.iter().skip(start).take(limit).copied().collect();
    let base = base_url(&headers);
    let expand = q.get("expand").is_some_and(|e| e == "user");
    let body: Vec<Value> = page
        .iter()
        .map(|u| {
            match members
                .as_ref()
                .and_then(|m| m.get(&u.id).cloned().flatten())
            {
                Some(app_profile) => {
                    let mut v = app_user_json(u, app_profile, expand, &base);
                    // AppUser.externalId: the app's own id for the user (null until set).
                    if let Listing::App(aid) = &listing {
                        v["externalId"] = st
                            .external_ids
                            .get(&format!("{aid}/{}", u.id))
                            .map(|e| json!(e))
                            .unwrap_or(Value::Null);
                    }
                    v
                }
                None => user_json(u, &base),
            }
        })
        .collect();
    let self_link = format!("<{base}{uri}>; rel=\"self\"");
    let endless = st.endless_cursor.then(|| {
        format!(
            "<{base}{}?limit={limit}&after=zzz{}>; rel=\"next\"",
            uri.path(),
            st.requests.len()
        )
    });
    let next_link = if let Some(next) = endless {
        Some(Some(next))
    } else if start + page.len() < users.len() {
        page.last().map(|last| {
            let mut next = url::Url::parse(&format!("{base}{}", uri.path())).ok()?;
            {
                let mut qp = next.query_pairs_mut();
                for (k, v) in &q {
                    if k != "after" {
                        qp.append_pair(k, v);
                    }
                }
                qp.append_pair("after", &last.id);
            }
            Some(format!("<{next}>; rel=\"next\""))
        })
    } else {
        None
    }
    .flatten();
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.extend(rate);
    match (st.link_style, next_link) {
        (LinkStyle::Separate, Some(next)) => {
            h.append(
                "link",
                HeaderValue::from_str(&self_link).unwrap_or(HeaderValue::from_static("")),
            );
            h.append(
                "link",
                HeaderValue::from_str(&next).unwrap_or(HeaderValue::from_static("")),
            );
        }
        (LinkStyle::Joined, Some(next)) => {
            h.append(
                "link",
                HeaderValue::from_str(&format!("{self_link}, {next}"))
                    .unwrap_or(HeaderValue::from_static("")),
            );
        }
        (_, None) => {
            h.append(
                "link",
                HeaderValue::from_str(&self_link).unwrap_or(HeaderValue::from_static("")),
            );
        }
    }
    resp
}

pub(super) async fn get_user(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "users-get") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let base = base_url(&headers);
    match st.user(&id).or_else(|| by_login(&st.users, &id)) {
        Some(u) => {
            let mut resp = axum::Json(user_json(u, &base)).into_response();
            resp.headers_mut().extend(rate);
            resp
        }
        None => not_found(&id),
    }
}

fn not_found(id: &str) -> Response {
    not_found_resource(id, "User")
}

fn not_found_resource(id: &str, kind: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {id} ({kind})"),
        &[],
    )
}

/// `POST /api/v1/users/{id}`: a partial update; only the attributes sent change, null clears.
pub(super) async fn update_user(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    /// Counts the update as in flight until its answer is built.
    struct InFlight(Shared);
    impl Drop for InFlight {
        fn drop(&mut self) {
            let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
            st.writes_in_flight -= 1;
        }
    }
    let delay = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.writes_in_flight += 1;
        st.peak_writes_in_flight = st.peak_writes_in_flight.max(st.writes_in_flight);
        st.write_delay
    };
    let _in_flight = InFlight(state.clone());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, &body, "users-update") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "E0000003",
                "The request body was not well-formed.",
                &[],
            );
        }
    };
    let Some(changes) = parsed.get("profile").and_then(Value::as_object).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: profile",
            &["profile: The profile object is required".into()],
        );
    };
    let Some(idx) = st.users.iter().position(|u| u.id == id) else {
        return not_found(&id);
    };
    // Okta refuses the whole update (403 E0000023) when any attribute in it is mastered
    // elsewhere for this user: an OVERRIDE led by an app, for everyone; PROFILE_MASTER (the
    // default), for a user whose profile source is a directory or app. Okta's docs do not
    // say whether such a user's unmapped attributes stay writable; the harsher case is
    // modelled: every attribute that inherits from the profile source is refused.
    let sourced_elsewhere = st.users[idx].provider != "OKTA";
    let refused = changes
        .keys()
        .any(|k| match st.masters.get(k).map(String::as_str) {
            Some("OKTA") => false,
            Some(o) if o.starts_with("OVERRIDE") => true,
            _ => sourced_elsewhere,
        });
    if refused {
        // Real answers name no attribute: the summary is all an admin gets.
        return error(
            StatusCode::FORBIDDEN,
            "E0000023",
            "Operation failed because user profile is mastered under another system",
            &[],
        );
    }
    let mut profile = st.users[idx].profile.clone();
    let mut causes = Vec::new();
    for (k, v) in changes {
        match v {
            Value::Null => {
                profile.remove(&k);
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                profile.insert(k, v);
            }
            _ => causes.push(format!("{k}: Invalid value")),
        }
    }
    for required in ["login", "email", "firstName", "lastName"] {
        let blank = profile
            .get(required)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty());
        if blank {
            causes.push(format!("{required}: The field cannot be left blank"));
        }
    }
    if let Some(email) = profile.get("email").and_then(Value::as_str)
        && !email.is_empty()
        && !email.contains('@')
    {
        causes.push("email: Does not match required pattern".into());
    }
    if !causes.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: profile",
            &causes,
        );
    }
    let stamp = st.tick();
    let request_id = format!("req{}", st.log_seq + 1);
    st.log_event("user.account.update_profile", &id, Some(&request_id));
    let user = &mut st.users[idx];
    user.profile = profile;
    user.last_updated = stamp;
    let base = base_url(&headers);
    let mut resp = axum::Json(user_json(user, &base)).into_response();
    resp.headers_mut().extend(rate);
    // Okta's request id, the same as the System Log's `transaction.id` for the event.
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-okta-request-id", v);
    }
    resp
}

/// `POST /oauth2/v1/token`: client credentials with a `private_key_jwt` client assertion,
/// verified against the service app's public key.
pub(super) async fn oauth_token(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.requests.push(Request {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: String::new(),
        body: String::new(),
    });
    let refuse = |error: &str, desc: &str| {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": error, "error_description": desc})),
        )
            .into_response()
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refuse(
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return refuse("invalid_client", "client_assertion_type is not jwt-bearer");
    }
    let Some((client_id, public_pem)) = st.oauth_client.clone() else {
        return refuse("invalid_client", "no service app is registered");
    };
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()) else {
        return refuse("invalid_client", "bad registered key");
    };
    let aud = format!(
        "http://{}/oauth2/v1/token",
        uri.authority().map(|a| a.as_str()).unwrap_or("")
    );
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[client_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.validate_aud = false;
    let assertion = form.get("client_assertion").cloned().unwrap_or_default();
    let claims = match jsonwebtoken::decode::<serde_json::Value>(&assertion, &key, &validation) {
        Ok(d) => d.claims,
        Err(e) => {
            return refuse(
                "invalid_client",
                &format!("The client_assertion is invalid: {e}"),
            );
        }
    };
    if claims["sub"] != json!(client_id) {
        return refuse("invalid_client", "sub must be the client id");
    }
    let aud_ok = claims["aud"]
        .as_str()
        .is_some_and(|a| a.ends_with("/oauth2/v1/token"));
    if !aud_ok {
        return refuse(
            "invalid_client",
            &format!("aud must be the token endpoint ({aud})"),
        );
    }
    let scopes = form.get("scope").cloned().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == "okta.users.manage") {
        return refuse("invalid_scope", "okta.users.manage was not requested");
    }
    st.tokens_issued += 1;
    let token = format!("okta-at-{}", st.tokens_issued);
    let ttl = st.bearer_ttl;
    st.bearer
        .insert(token.clone(), std::time::Instant::now() + ttl);
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "access_token": token,
        "scope": scopes,
    }))
    .into_response()
}

const BASE_ATTRS: &[&str] = &[
    "login",
    "email",
    "firstName",
    "lastName",
    "mobilePhone",
    "primaryPhone",
    "streetAddress",
    "city",
    "state",
    "zipCode",
    "countryCode",
    "department",
    "title",
];

/// `GET /api/v1/meta/schemas/user/default`: the base attributes and the custom ones.
pub(super) async fn schema(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "schemas") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let prop = |st: &OktaState, name: &str, kind: &str| {
        let master = match st.masters.get(name).map(String::as_str) {
            Some("OVERRIDE") => {
                json!({"type": "OVERRIDE", "priority": [{"type": "APP", "value": "0oaad"}, {"type": "OKTA"}]})
            }
            // `OVERRIDE:<appId>`: that app first, then Okta.
            Some(o) if o.starts_with("OVERRIDE:") => {
                json!({"type": "OVERRIDE", "priority": [{"type": "APP", "value": &o["OVERRIDE:".len()..]}, {"type": "OKTA"}]})
            }
            Some(t) => json!({"type": t}),
            None => json!({"type": "PROFILE_MASTER"}),
        };
        json!({"title": name, "type": kind, "mutability": "READ_WRITE", "scope": "NONE", "master": master,
               "permissions": [{"principal": "SELF", "action": "READ_WRITE"}]})
    };
    let base: Map<String, Value> = BASE_ATTRS
        .iter()
        .map(|n| (n.to_string(), prop(&st, n, "string")))
        .collect();
    let custom: Map<String, Value> = st
        .custom_attrs
        .iter()
        .map(|(n, k)| (n.clone(), prop(&st, n, k)))
        .collect();
    let mut resp = axum::Json(json!({
        "id": "https://example.okta.com/meta/schemas/user/default",
        "name": "user",
        "definitions": {
            "base": {"id": "#base", "type": "object", "properties": base, "required": ["login", "firstName", "lastName", "email"]},
            "custom": {"id": "#custom", "type": "object", "properties": custom, "required": []},
        },
    }))
    .into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// `search` of listUsers, the forms an import sends: `profile.<attr> eq "<value>"` joined by
/// `or`. String values compare case-insensitively, and DEPROVISIONED users are returned
/// (spec, listUsers `search`). `None`: a search this fake does not parse (400 E0000031).
fn search_matches(search: &str) -> Option<Vec<(String, String)>> {
    search
        .split(" or ")
        .map(|term| {
            let (attr, value) = term.trim().split_once(" eq ")?;
            let attr = attr.trim().strip_prefix("profile.")?;
            let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            Some((attr.to_string(), value.to_lowercase()))
        })
        .collect()
}

/// Whether a user matches one of the search's terms.
fn matches_search(u: &FakeOktaUser, terms: &[(String, String)]) -> bool {
    terms.iter().any(|(attr, value)| {
        u.profile
            .get(attr)
            .and_then(Value::as_str)
            .is_some_and(|v| v.to_lowercase() == *value)
    })
}

/// getUser by login: the spec takes "an id, login, or login shortname". It does not say
/// whether a login is matched case-insensitively; the harsher reading is modelled: exactly
/// (a client that relies on it misses a holder written in another case; the search does
/// not).
fn by_login<'a>(users: &'a [FakeOktaUser], login: &str) -> Option<&'a FakeOktaUser> {
    users
        .iter()
        .find(|u| u.profile.get("login").and_then(Value::as_str) == Some(login))
}
