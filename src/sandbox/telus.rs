//! A fake TELUS / RingCentral platform API on loopback: the jwt-bearer token grant with Basic
//! client auth, expiring access tokens, extension and phone-number listings with page
//! navigation, Company Directory pages with `ETag`/304, extension updates one by one and in
//! bulk tasks that run after acceptance, rate-limit groups with RingCentral's penalty rule,
//! and RingCentral error bodies. It records every request so tests can count them.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::okta::Request;

#[derive(Debug, Clone)]
pub struct FakeExtension {
    pub id: i64,
    pub extension_number: String,
    pub status: String,
    pub kind: String,
    pub contact: Map<String, Value>,
    /// `references` of type `CustomerDirectoryId` (spec: ReferenceInfo, set on
    /// ExtensionCreationRequest and ExtensionUpdateRequest, shown on list records).
    pub directory_ref: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FakeNumber {
    pub id: i64,
    pub phone_number: String,
    pub usage_type: String,
    pub primary: bool,
    pub extension_id: Option<i64>,
}

/// A rate-limit group's budget per window and its current state.
#[derive(Debug, Clone)]
struct Group {
    limit: u64,
    used: u64,
    window_start: Instant,
    penalty_until: Option<Instant>,
}

#[derive(Debug)]
pub struct TelusState {
    pub extensions: Vec<FakeExtension>,
    pub numbers: Vec<FakeNumber>,
    pub client_id: String,
    pub client_secret: String,
    pub jwt: String,
    pub token_ttl: Duration,
    pub window: Duration,
    tokens: HashMap<String, Instant>,
    groups: HashMap<&'static str, Group>,
    issued: u64,
    pub requests: Vec<Request>,
    pub rate_limited: u64,
    /// Requests that arrived while their group was in a penalty (each restarts it).
    pub sent_during_penalty: u64,
    /// Delay before each write is handled (to catch a process mid-apply).
    pub write_delay: Duration,
    /// Budgets per window by group, overriding RingCentral's published ones.
    pub limits: HashMap<&'static str, u64>,
    /// A fault: the extension listing stops offering `nextPage` from this page on, while
    /// `paging.totalPages` still counts every page (a listing cut short).
    pub listing_stops_after_page: Option<u64>,
    /// Life of a refresh token; renewed with each rotation.
    pub refresh_ttl: Duration,
    /// Refresh tokens: expiry, and whether already used (they are single-use).
    refresh_tokens: HashMap<String, (Instant, bool)>,
    /// Authorization codes issued: code → (redirect_uri, code_challenge).
    codes: HashMap<String, (String, String)>,
    /// Refresh tokens presented a second time: a client bug that ends a real session.
    pub reused_refresh_tokens: u64,
    pub refreshes: u64,
    /// The account's custom user fields: (id, displayName).
    pub custom_field_defs: Vec<(String, String)>,
    /// Custom field values: extension id → field id → value.
    pub custom_values: HashMap<i64, std::collections::BTreeMap<String, String>>,
    /// Whether listings carry `customFields` (the official spec documents them on the
    /// single-extension GET only; off by default).
    pub list_custom_fields: bool,
    /// Directory pages answered 304 Not Modified.
    pub not_modified: u64,
    /// Whether this account takes `extension-bulk-update` (the spec marks it
    /// `x-availability: Limited`): an account without it refuses the request whole.
    pub bulk: BulkAvailability,
    /// How long after acceptance a bulk task runs; its records change nothing before.
    pub task_delay: Duration,
    /// A task that would run waits while this is set (a test's stand-in for a task TELUS
    /// takes long over, without depending on the machine's speed).
    pub hold_tasks: bool,
    /// Bulk-update tasks by id.
    pub tasks: HashMap<String, FakeTask>,
    /// Whether a bulk request with a field over its length is refused whole with a 400 that
    /// names the record (else the record fails when the task runs).
    pub bulk_checks_upfront: bool,
    /// Contact values (field, value) this account refuses with `CMN-101` for a reason the
    /// spec's bounds do not cover (an account's own validation; RingCentral documents no
    /// such case, so this is a test knob). The client checks the spec's bounds itself before
    /// sending, so tests reach TELUS's refusal handling through these.
    pub refused_values: Vec<(String, String)>,
    /// With up-front checks, whether a refusal lists every bad record in its `errors` (else
    /// only the first). RingCentral's docs do not say; both are modelled.
    pub bulk_names_every_bad_record: bool,
    /// Records accepted in bulk requests.
    pub bulk_records: u64,
    /// The notification gateway (WebSocket).
    pub gateway: super::telus_gateway::Gateway,
}

/// How the fake answers `POST extension-bulk-update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAvailability {
    Available,
    /// 403 `FeatureNotAvailable`: the account's plan lacks the feature.
    FeatureNotAvailable,
    /// 403 `CMN-408`: the app lacks the `EditExtensions` permission.
    Forbidden,
    /// 404: the endpoint is not offered to this account at all.
    NotFound,
}

/// A bulk-update task (spec: ExtensionBulkUpdateTaskResource).
#[derive(Debug, Clone)]
pub struct FakeTask {
    pub status: String,
    pub records: Vec<Value>,
    /// `ExtensionUpdateShortResult`s, once the task has run.
    pub results: Vec<Value>,
    pub created: String,
    pub modified: String,
}

impl TelusState {
    pub fn new(
        extensions: Vec<FakeExtension>,
        numbers: Vec<FakeNumber>,
        client_id: &str,
        client_secret: &str,
        jwt: &str,
    ) -> TelusState {
        TelusState {
            extensions,
            numbers,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            jwt: jwt.into(),
            token_ttl: Duration::from_secs(3600),
            window: Duration::from_secs(60),
            tokens: HashMap::new(),
            groups: HashMap::new(),
            issued: 0,
            requests: Vec::new(),
            rate_limited: 0,
            sent_during_penalty: 0,
            write_delay: Duration::ZERO,
            listing_stops_after_page: None,
            limits: HashMap::new(),
            // Real answers say a little under 7 days: 604799 in RingCentral's developer
            // guide, 603917 from a real account (both under a 7-day warning threshold).
            refresh_ttl: Duration::from_secs(603_917),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
            reused_refresh_tokens: 0,
            refreshes: 0,
            custom_field_defs: vec![("cf1".into(), "Cost Center".into())],
            custom_values: HashMap::new(),
            list_custom_fields: false,
            not_modified: 0,
            bulk: BulkAvailability::Available,
            task_delay: Duration::from_millis(200),
            hold_tasks: false,
            tasks: HashMap::new(),
            bulk_checks_upfront: false,
            refused_values: Vec::new(),
            bulk_names_every_bad_record: false,
            bulk_records: 0,
            gateway: Default::default(),
        }
    }

    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.method == method && super::faults::under(&r.path, prefix))
            .count()
    }

    pub fn extension(&self, id: i64) -> Option<&FakeExtension> {
        self.extensions.iter().find(|e| e.id == id)
    }

    /// Says an admin changed extension `id` in the portal (tests edit the state directly):
    /// the gateway sends the extension-list event with `hints` (e.g. `ExtensionInfo`,
    /// `CompanyNumbers`).
    pub fn changed(&mut self, id: i64, hints: &[&str]) {
        self.gateway.notify(id, "Update", hints);
    }

    pub fn extension_by_email(&self, email: &str) -> Option<&FakeExtension> {
        self.extensions.iter().find(|e| {
            e.contact
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case(email))
        })
    }
}

/// RingCentral's published budgets per window.
fn group_limit(group: &str) -> u64 {
    match group {
        "Light" => 50,
        "Medium" => 40,
        "Heavy" => 10,
        _ => 5,
    }
}

pub type Shared = Arc<Mutex<TelusState>>;

/// The fake, served on loopback.
pub type FakeTelus = super::served::Served<TelusState>;

pub(super) fn rc_error(
    status: StatusCode,
    code: &str,
    message: &str,
    parameter: Option<&str>,
) -> Response {
    let mut item = json!({"errorCode": code, "message": message});
    if let Some(p) = parameter {
        item["parameterName"] = json!(p);
    }
    let body = json!({"errorCode": code, "message": message, "errors": [item]});
    (status, axum::Json(body)).into_response()
}

fn log(st: &mut TelusState, method: &Method, uri: &Uri, body: &[u8]) {
    st.requests.push(Request {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

/// Applies the group's budget. During a penalty every request is refused and restarts it.
fn throttle(st: &mut TelusState, group: &'static str) -> Result<HeaderMap, Response> {
    let now = Instant::now();
    let window = st.window;
    let limit = st
        .limits
        .get(group)
        .copied()
        .unwrap_or_else(|| group_limit(group));
    let g = st.groups.entry(group).or_insert(Group {
        limit,
        used: 0,
        window_start: now,
        penalty_until: None,
    });
    let mut headers = HeaderMap::new();
    headers.insert("x-rate-limit-group", HeaderValue::from_static(group));
    headers.insert("x-rate-limit-limit", HeaderValue::from(g.limit));
    headers.insert(
        "x-rate-limit-window",
        HeaderValue::from(window.as_secs().max(1)),
    );
    if let Some(until) = g.penalty_until {
        if now < until {
            st.sent_during_penalty += 1;
            st.rate_limited += 1;
            g.penalty_until = Some(now + window);
            return Err(too_many(headers, window));
        }
        g.penalty_until = None;
        g.used = 0;
        g.window_start = now;
    }
    if now.duration_since(g.window_start) >= window {
        g.used = 0;
        g.window_start = now;
    }
    if g.used >= g.limit {
        g.penalty_until = Some(now + window);
        st.rate_limited += 1;
        return Err(too_many(headers, window));
    }
    g.used += 1;
    headers.insert(
        "x-rate-limit-remaining",
        HeaderValue::from(g.limit - g.used),
    );
    Ok(headers)
}

fn too_many(mut headers: HeaderMap, window: Duration) -> Response {
    headers.insert("x-rate-limit-remaining", HeaderValue::from(0u64));
    headers.insert("retry-after", HeaderValue::from(window.as_secs().max(1)));
    let mut resp = rc_error(
        StatusCode::TOO_MANY_REQUESTS,
        "CMN-301",
        "Request rate exceeded",
        None,
    );
    resp.headers_mut().extend(headers);
    resp
}

/// Checks the Bearer token, then the group budget.
pub(super) fn admit(
    st: &mut TelusState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    group: &'static str,
) -> Result<HeaderMap, Response> {
    log(st, method, uri, body);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| st.tokens.get(t)) {
        None => {
            return Err(rc_error(
                StatusCode::UNAUTHORIZED,
                "OAU-232",
                "Extension not authenticated",
                None,
            ));
        }
        Some(exp) if *exp <= Instant::now() => {
            return Err(rc_error(
                StatusCode::UNAUTHORIZED,
                "OAU-213",
                "Token is expired",
                None,
            ));
        }
        Some(_) => {}
    }
    throttle(st, group)
}

pub(super) async fn token(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    // Never log the form: it carries the JWT.
    log(&mut st, &method, &uri, b"");
    let rate = match throttle(&mut st, "Auth") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let oauth_error = |status: StatusCode, error: &str, code: &str, message: &str| {
        let body = json!({
            "error": error,
            "error_description": message,
            "errors": [{"errorCode": code, "message": message}],
        });
        (status, axum::Json(body)).into_response()
    };
    use base64::Engine as _;
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{}:{}", st.client_id, st.client_secret);
    if basic.as_deref() != Some(expected.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "OAU-123",
            "Invalid client: client credentials are incorrect",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            if form.get("assertion") != Some(&st.jwt) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-140",
                    "Invalid assertion: JWT token is invalid",
                );
            }
            // A JWT credential may be made with an expiry ("Credentials do not expire
            // (unless you elect otherwise)", docs/authentication/jwt-flow.md). The docs do
            // not give the error for an expired one: modelled as refused like a wrong one.
            if jwt_exp(&st.jwt).is_some_and(|exp| exp <= chrono::Utc::now().timestamp()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-140",
                    "Invalid assertion: JWT token is expired",
                );
            }
            // The JWT grant answers with a refresh token too (RingCentral's JWT flow guide,
            // docs/authentication/jwt-flow.md: the response carries refresh_token and
            // refresh_token_expires_in), single-use like any other.
        }
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((redirect, challenge)) = st.codes.remove(&code) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-109",
                    "Authorization code is invalid or expired",
                );
            };
            if form.get("redirect_uri") != Some(&redirect) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-110",
                    "Redirect URI does not match",
                );
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if crate::telus::auth::challenge_for(&verifier) != challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-111",
                    "Code verifier does not match the challenge",
                );
            }
        }
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            match st.refresh_tokens.get_mut(&rt) {
                Some((_, used)) if *used => {
                    st.reused_refresh_tokens += 1;
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "OAU-211",
                        "Token is revoked",
                    );
                }
                Some((exp, _)) if *exp <= Instant::now() => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "OAU-213",
                        "Token is expired",
                    );
                }
                Some((_, used)) => *used = true,
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "OAU-210",
                        "Token not found",
                    );
                }
            }
            st.refreshes += 1;
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "OAU-250",
                "Unsupported grant type",
            );
        }
    }
    st.issued += 1;
    let access = format!("fake-at-{}-{}", st.issued, std::process::id());
    let ttl = st.token_ttl;
    st.tokens.insert(access.clone(), Instant::now() + ttl);
    let mut body = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ttl.as_secs(),
        "scope": "ReadAccounts EditExtensions",
        "owner_id": "100",
        "endpoint_id": "fake-endpoint",
    });
    // Every grant answers with a single-use refresh token.
    let refresh = format!("fake-rt-{}-{}", st.issued, std::process::id());
    let rttl = st.refresh_ttl;
    st.refresh_tokens
        .insert(refresh.clone(), (Instant::now() + rttl, false));
    body["refresh_token"] = json!(refresh);
    body["refresh_token_expires_in"] = json!(rttl.as_secs());
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().extend(rate);
    resp
}

fn extension_json(e: &FakeExtension, base: &str) -> Value {
    let first = e
        .contact
        .get("firstName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let last = e
        .contact
        .get("lastName")
        .and_then(Value::as_str)
        .unwrap_or("");
    json!({
        "uri": format!("{base}/restapi/v1.0/account/100/extension/{}", e.id),
        "id": e.id,
        "extensionNumber": e.extension_number,
        "contact": e.contact,
        "name": format!("{first} {last}").trim(),
        "type": e.kind,
        "status": e.status,
        "references": e.directory_ref.iter().map(|r| json!({"ref": r, "type": "CustomerDirectoryId"})).collect::<Vec<_>>(),
        "permissions": {"admin": {"enabled": false}, "internationalCalling": {"enabled": false}},
        "profileImage": {"uri": format!("{base}/restapi/v1.0/account/100/extension/{}/profile-image", e.id)},
        "hidden": false,
    })
}

/// Reads `references` from a create or update body: `Ok(None)` when absent, the
/// `CustomerDirectoryId` ref when present, an error body when malformed.
#[allow(clippy::result_large_err)]
fn directory_ref(body: &Value) -> Result<Option<Option<String>>, RcErr> {
    let Some(refs) = body.get("references") else {
        return Ok(None);
    };
    let Some(items) = refs.as_array() else {
        return Err(RcErr::invalid("references"));
    };
    let mut found = None;
    for item in items {
        match (
            item.get("type").and_then(Value::as_str),
            item.get("ref").and_then(Value::as_str),
        ) {
            (Some("CustomerDirectoryId"), Some(r)) => found = Some(r.to_string()),
            (Some("PartnerId"), Some(_)) => {}
            _ => return Err(RcErr::invalid("references")),
        }
    }
    Ok(Some(found))
}

/// `customFields` of an extension as RingCentral shows them.
fn custom_json(st: &TelusState, ext: i64) -> Value {
    let values = st.custom_values.get(&ext);
    Value::Array(
        st.custom_field_defs
            .iter()
            .filter_map(|(id, name)| {
                let v = values?.get(id)?;
                Some(json!({"id": id, "displayName": name, "value": v}))
            })
            .collect(),
    )
}

pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Pages `items` the RingCentral way: `page` 1-based, `perPage` at most 1000.
pub(super) fn paged<T>(
    items: &[T],
    render: impl Fn(&T) -> Value,
    q: &HashMap<String, String>,
    base: &str,
    uri: &Uri,
) -> Result<Value, Response> {
    let per_page = match q.get("perPage").map(|v| v.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return Err(rc_error(
                StatusCode::BAD_REQUEST,
                "CMN-101",
                "Parameter [perPage] value is invalid",
                Some("perPage"),
            ));
        }
    };
    let page = match q.get("page").map(|v| v.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            return Err(rc_error(
                StatusCode::BAD_REQUEST,
                "CMN-101",
                "Parameter [page] value is invalid",
                Some("page"),
            ));
        }
    };
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let start = (page - 1) * per_page;
    let records: Vec<Value> = items
        .iter()
        .skip(start)
        .take(per_page)
        .map(render)
        .collect();
    let page_uri = |n: usize| {
        let mut u = url::Url::parse(&format!("{base}{}", uri.path())).ok();
        if let Some(u) = u.as_mut() {
            let mut qp = u.query_pairs_mut();
            for (k, v) in q {
                if k != "page" {
                    qp.append_pair(k, v);
                }
            }
            qp.append_pair("page", &n.to_string());
        }
        json!({"uri": u.map(|u| u.to_string()).unwrap_or_default()})
    };
    let mut navigation = Map::new();
    navigation.insert("firstPage".into(), page_uri(1));
    navigation.insert("lastPage".into(), page_uri(total_pages));
    if page < total_pages {
        navigation.insert("nextPage".into(), page_uri(page + 1));
    }
    if page > 1 {
        navigation.insert("previousPage".into(), page_uri(page - 1));
    }
    let count = records.len();
    Ok(json!({
        "uri": format!("{base}{uri}"),
        "records": records,
        "paging": {
            "page": page,
            "totalPages": total_pages,
            "perPage": per_page,
            "totalElements": total,
            "pageStart": start,
            "pageEnd": if count == 0 { start } else { start + count - 1 },
        },
        "navigation": navigation,
    }))
}

pub(super) async fn list_extensions(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Medium") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let base = base_url(&headers);
    let mut exts: Vec<&FakeExtension> = st
        .extensions
        .iter()
        .filter(|e| q.get("type").is_none_or(|t| *t == e.kind))
        .collect();
    if !exts.is_sorted_by_key(|e| e.id) {
        exts.sort_by_key(|e| e.id);
    }
    let with_custom = st.list_custom_fields;
    let render = |e: &&FakeExtension| {
        let mut v = extension_json(e, &base);
        if with_custom {
            v["customFields"] = custom_json(&st, e.id);
        }
        v
    };
    match paged(&exts, render, &q, &base, &uri) {
        Ok(mut body) => {
            if let Some(stop) = st.listing_stops_after_page
                && body["paging"]["page"].as_u64().is_some_and(|p| p >= stop)
                && let Some(nav) = body["navigation"].as_object_mut()
            {
                nav.remove("nextPage");
            }
            let mut resp = axum::Json(body).into_response();
            resp.headers_mut().extend(rate);
            resp
        }
        Err(resp) => resp,
    }
}

/// `GET directory/entries` (Medium), the Company Directory, as the spec describes it
/// (listDirectoryEntries): `ContactResource` records with `customFields: [{id, name, value}]`
/// and `phoneNumbers` (usage type, primary), paged by page number up to 2,000 a page with
/// `paging` and no navigation links; only Enabled, Disabled and NotActivated extensions.
pub(super) async fn directory_entries(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Medium") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let per_page = match q.get("perPage").map(|v| v.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) if (1..=2000).contains(&n) => n,
        Some(_) => {
            return rc_error(
                StatusCode::BAD_REQUEST,
                "CMN-101",
                "Parameter [perPage] value is invalid",
                Some("perPage"),
            );
        }
    };
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let mut listed: Vec<&FakeExtension> = st
        .extensions
        .iter()
        .filter(|e| e.kind == "User")
        .filter(|e| matches!(e.status.as_str(), "Enabled" | "Disabled" | "NotActivated"))
        .collect();
    listed.sort_by_key(|e| e.id);
    let total = listed.len();
    let mut numbers_of: HashMap<i64, Vec<&FakeNumber>> = HashMap::new();
    for n in &st.numbers {
        if let Some(ext) = n.extension_id {
            numbers_of.entry(ext).or_default().push(n);
        }
    }
    let records: Vec<Value> = listed
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|e| {
            let text = |k: &str| e.contact.get(k).cloned().unwrap_or(Value::Null);
            let numbers: Vec<Value> = numbers_of
                .get(&e.id)
                .into_iter()
                .flatten()
                .map(|n| {
                    json!({"phoneNumber": n.phone_number, "usageType": n.usage_type,
                           "primary": n.primary, "type": "VoiceFax"})
                })
                .collect();
            let custom: Vec<Value> = st
                .custom_field_defs
                .iter()
                .filter_map(|(id, name)| {
                    let v = st.custom_values.get(&e.id)?.get(id)?;
                    Some(json!({"id": id, "name": name, "value": v}))
                })
                .collect();
            json!({
                "id": e.id.to_string(), "type": "User", "status": e.status,
                "extensionNumber": e.extension_number, "firstName": text("firstName"),
                "lastName": text("lastName"), "email": text("email"),
                "department": text("department"), "phoneNumbers": numbers,
                "customFields": custom, "hidden": false,
            })
        })
        .collect();
    let body = json!({
        "records": records,
        "paging": {
            "page": page,
            "perPage": per_page,
            "totalPages": total.div_ceil(per_page).max(1),
            "totalElements": total,
        },
    })
    .to_string();
    // The spec's IfNoneMatch parameter: 304 when the page is what the tag names. The tag
    // covers the whole page, paging included. Whether a 304 costs a request of the group
    // the docs do not say: the harsher case is modelled (it does; `admit` counted it).
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        format!("\"{:016x}\"", h.finish())
    };
    let matches = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if matches {
        st.not_modified += 1;
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    resp.headers_mut().extend(rate);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(axum::http::header::ETAG, v);
    }
    resp
}

pub(super) async fn list_numbers(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Heavy") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let base = base_url(&headers);
    let mut nums: Vec<&FakeNumber> = st
        .numbers
        .iter()
        .filter(|n| q.get("usageType").is_none_or(|t| *t == n.usage_type))
        .collect();
    if !nums.is_sorted_by_key(|n| n.id) {
        nums.sort_by_key(|n| n.id);
    }
    let by_id: HashMap<i64, &FakeExtension> = st.extensions.iter().map(|e| (e.id, e)).collect();
    let render = |n: &&FakeNumber| {
        let mut v = number_json(n, &base);
        if let Some(ext) = n.extension_id.and_then(|id| by_id.get(&id)) {
            v["extension"] = json!({
                "uri": format!("{base}/restapi/v1.0/account/100/extension/{}", ext.id),
                "id": ext.id,
                "extensionNumber": ext.extension_number,
            });
        }
        v
    };
    paged_response(&nums, render, &q, &base, &uri, rate)
}

/// A phone number as the number listings show it (spec: PhoneNumberInfo /
/// UserPhoneNumberInfo, the fields this tool and the fakes use).
pub(super) fn number_json(n: &FakeNumber, base: &str) -> Value {
    json!({
        "uri": format!("{base}/restapi/v1.0/account/100/phone-number/{}", n.id),
        "id": n.id,
        "phoneNumber": n.phone_number,
        "paymentType": "Local",
        "type": "VoiceFax",
        "usageType": n.usage_type,
        "status": "Normal",
        "primary": n.primary,
    })
}

/// A page of `items` as JSON with the rate-limit headers, or the paging error.
pub(super) fn paged_response<T>(
    items: &[T],
    render: impl Fn(&T) -> Value,
    q: &HashMap<String, String>,
    base: &str,
    uri: &Uri,
    rate: HeaderMap,
) -> Response {
    match paged(items, render, q, base, uri) {
        Ok(body) => {
            let mut resp = axum::Json(body).into_response();
            resp.headers_mut().extend(rate);
            resp
        }
        Err(resp) => resp,
    }
}

fn extension_not_found(id: &str) -> Response {
    rc_error(
        StatusCode::NOT_FOUND,
        "CMN-102",
        &format!("Resource for parameter [extensionId] is not found: {id}"),
        Some("extensionId"),
    )
}

pub(super) async fn get_extension(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((_account, id)): Path<(String, String)>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Light") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let base = base_url(&headers);
    match id.parse::<i64>().ok().and_then(|n| st.extension(n)) {
        Some(e) => {
            let mut v = extension_json(e, &base);
            v["customFields"] = custom_json(&st, e.id);
            let mut resp = axum::Json(v).into_response();
            resp.headers_mut().extend(rate);
            resp
        }
        None => extension_not_found(&id),
    }
}

/// `PUT extension/{id}`: top-level contact fields merge; `businessAddress` is replaced whole.
pub(super) async fn update_extension(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((_account, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let delay = state.lock().map(|s| s.write_delay).unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, &body, "Medium") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        _ => return RcErr::bad("CMN-103", "JSON can not be parsed", None).response(),
    };
    match apply_update(&mut st, &id, &parsed) {
        Ok(idx) => {
            let base = base_url(&headers);
            let mut resp = axum::Json(extension_json(&st.extensions[idx], &base)).into_response();
            resp.headers_mut().extend(rate);
            resp
        }
        Err(e) => e.response(),
    }
}

/// A RingCentral error: its status and one `errors` item.
struct RcErr {
    status: StatusCode,
    code: String,
    message: String,
    parameter: Option<String>,
}

impl RcErr {
    fn bad(code: &str, message: &str, parameter: Option<&str>) -> RcErr {
        RcErr {
            status: StatusCode::BAD_REQUEST,
            code: code.into(),
            message: message.into(),
            parameter: parameter.map(Into::into),
        }
    }

    fn invalid(parameter: &str) -> RcErr {
        RcErr::bad(
            "CMN-101",
            &format!("Parameter [{parameter}] value is invalid"),
            Some(parameter),
        )
    }

    fn item(&self) -> Value {
        let mut item = json!({"errorCode": self.code, "message": self.message});
        if let Some(p) = &self.parameter {
            item["parameterName"] = json!(p);
        }
        item
    }

    fn response(&self) -> Response {
        rc_error(
            self.status,
            &self.code,
            &self.message,
            self.parameter.as_deref(),
        )
    }
}

/// A contact field over its `maxLength` (spec: ContactInfoUpdateRequest: 64 characters
/// for the names, job title and department, 254 for the email).
fn refused<'a>(
    refused_values: &[(String, String)],
    contact: &'a Map<String, Value>,
) -> Option<&'a str> {
    too_long(contact).or_else(|| {
        contact
            .iter()
            .find(|(k, v)| {
                refused_values
                    .iter()
                    .any(|(f, x)| f == *k && v.as_str() == Some(x.as_str()))
            })
            .map(|(k, _)| k.as_str())
    })
}

fn too_long(contact: &Map<String, Value>) -> Option<&str> {
    contact.iter().find_map(|(k, v)| {
        let max = match k.as_str() {
            "firstName" | "lastName" | "jobTitle" | "department" | "company" => 64,
            "email" => 254,
            _ => return None,
        };
        let len = v.as_str().map(|t| t.chars().count()).unwrap_or(0);
        (len > max).then_some(k.as_str())
    })
}

/// One extension update, as `PUT extension/{id}` and each bulk-update record apply it:
/// top-level contact fields merge, `businessAddress` is replaced whole, custom fields by id,
/// status; nothing changes unless all of it is valid. Answers the extension's index.
fn apply_update(st: &mut TelusState, id: &str, parsed: &Value) -> Result<usize, RcErr> {
    let Some(idx) = id
        .parse::<i64>()
        .ok()
        .and_then(|n| st.extensions.iter().position(|e| e.id == n))
    else {
        return Err(RcErr {
            status: StatusCode::NOT_FOUND,
            code: "CMN-102".into(),
            message: format!("Resource for parameter [extensionId] is not found: {id}"),
            parameter: Some("extensionId".into()),
        });
    };
    let mut ext = st.extensions[idx].clone();
    if let Some(contact) = parsed.get("contact") {
        let Some(contact) = contact.as_object() else {
            return Err(RcErr::invalid("contact"));
        };
        if let Some(k) = refused(&st.refused_values, contact) {
            return Err(RcErr::invalid(&format!("contact.{k}")));
        }
        for (k, v) in contact {
            match (k.as_str(), v) {
                ("businessAddress", Value::Object(_)) | (_, Value::String(_)) => {
                    ext.contact.insert(k.clone(), v.clone());
                }
                _ => return Err(RcErr::invalid(&format!("contact.{k}"))),
            }
        }
    }
    if let Some(r) = directory_ref(parsed)? {
        ext.directory_ref = r;
    }
    let mut custom_updates = Vec::new();
    if let Some(custom) = parsed.get("customFields") {
        for item in custom.as_array().into_iter().flatten() {
            let id = item.get("id").and_then(Value::as_str).unwrap_or("");
            if !st.custom_field_defs.iter().any(|(d, _)| d == id) {
                return Err(RcErr::invalid("customFields.id"));
            }
            let value = item.get("value").and_then(Value::as_str).unwrap_or("");
            custom_updates.push((id.to_string(), value.to_string()));
        }
    }
    if let Some(status) = parsed.get("status") {
        match status.as_str() {
            Some(s @ ("Enabled" | "Disabled" | "NotActivated" | "Frozen")) => {
                ext.status = s.to_string();
            }
            _ => return Err(RcErr::invalid("status")),
        }
    }
    let text = |k: &str| ext.contact.get(k).and_then(Value::as_str).unwrap_or("");
    if text("firstName").trim().is_empty() {
        return Err(RcErr::invalid("contact.firstName"));
    }
    let email = text("email");
    if email.trim().is_empty() || !email.contains('@') {
        return Err(RcErr::invalid("contact.email"));
    }
    let ext_id = ext.id;
    st.extensions[idx] = ext;
    for (id, value) in custom_updates {
        st.custom_values
            .entry(ext_id)
            .or_default()
            .insert(id, value);
    }
    // The extension-list event: contact info and status changes raise an Update (custom
    // fields raise none, per DESIGN). Whether an update that changes nothing raises one, the
    // guide does not say: the harsher case (an event) is modelled.
    st.gateway.notify(ext_id, "Update", &["ExtensionInfo"]);
    Ok(idx)
}

/// Records one bulk request takes at most (spec: extensionBulkUpdate).
const BULK_MAX: usize = 500;

/// `POST extension-bulk-update` (Heavy): validates the request's shape, then answers an
/// `Accepted` task at once. The records are applied when the task runs, `task_delay` later,
/// each on its own: a bad record is a `Fail` result with its errors, the others `Success`.
/// Nothing changes before the task runs, so a read taken meanwhile shows the old values.
pub(super) async fn bulk_update(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, &body, "Heavy") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    // The spec's x-availability: Limited. The codes are RingCentral's for a feature the
    // account lacks and for a missing app permission; the docs do not list this endpoint's.
    match st.bulk {
        BulkAvailability::Available => {}
        BulkAvailability::FeatureNotAvailable => {
            return rc_error(
                StatusCode::FORBIDDEN,
                "FeatureNotAvailable",
                "Feature [EditExtensionInfo] is not available for current account",
                None,
            );
        }
        BulkAvailability::Forbidden => {
            return rc_error(
                StatusCode::FORBIDDEN,
                "CMN-408",
                "In order to call this API endpoint, application needs to have [EditExtensions] permission",
                None,
            );
        }
        BulkAvailability::NotFound => {
            return rc_error(StatusCode::NOT_FOUND, "CMN-102", "Resource not found", None);
        }
    }
    let records = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match v.get("records").and_then(Value::as_array) {
            Some(r) if !r.is_empty() && r.len() <= BULK_MAX => r.clone(),
            _ => return RcErr::invalid("records").response(),
        },
        Err(_) => return RcErr::bad("CMN-103", "JSON can not be parsed", None).response(),
    };
    // A record the request cannot carry at all (no id, or not an object) is refused up
    // front, naming it, and nothing is accepted: the docs are silent, so the harsher case.
    let mut bad = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.get("id").and_then(Value::as_str).is_none() {
            return RcErr::invalid(&format!("records[{i}].id")).response();
        }
        // Whether TELUS checks field lengths when it accepts the request or when the task
        // runs, the docs do not say: the fake does either (`bulk_checks_upfront`).
        if st.bulk_checks_upfront
            && let Some(k) = r
                .get("contact")
                .and_then(Value::as_object)
                .and_then(|c| refused(&st.refused_values, c))
        {
            let e = RcErr::invalid(&format!("records[{i}].contact.{k}"));
            if !st.bulk_names_every_bad_record {
                return e.response();
            }
            bad.push(e);
        }
    }
    if let Some(first) = bad.first() {
        let body = json!({"errorCode": first.code, "message": first.message,
                          "errors": bad.iter().map(RcErr::item).collect::<Vec<_>>()});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    st.bulk_records += records.len() as u64;
    let id = format!("task-{}", st.tasks.len() + 1);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    st.tasks.insert(
        id.clone(),
        FakeTask {
            status: "Accepted".into(),
            records,
            results: Vec::new(),
            created: now.clone(),
            modified: now,
        },
    );
    let delay = st.task_delay;
    let base = base_url(&headers);
    let answer = task_json(&st.tasks[&id], &id, &base);
    drop(st);
    let shared = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        while shared.lock().unwrap_or_else(|e| e.into_inner()).hold_tasks {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        run_task(&shared, &id);
    });
    let mut resp = axum::Json(answer).into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// Runs a task: each record applied alone, its result kept.
fn run_task(state: &Shared, id: &str) {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(records) = st.tasks.get(id).map(|t| t.records.clone()) else {
        return;
    };
    let mut results = Vec::new();
    for r in &records {
        let ext = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match apply_update(&mut st, &ext, r) {
            Ok(_) => results.push(json!({"extensionId": ext, "status": "Success"})),
            Err(e) => {
                results.push(json!({"extensionId": ext, "status": "Fail", "errors": [e.item()]}))
            }
        }
    }
    if let Some(t) = st.tasks.get_mut(id) {
        t.status = "Completed".into();
        t.results = results;
        t.modified = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
}

fn task_json(t: &FakeTask, id: &str, base: &str) -> Value {
    let mut v = json!({
        "uri": format!("{base}/restapi/v1.0/account/100/extension-bulk-update/tasks/{id}"),
        "id": id,
        "status": t.status,
        "creationTime": t.created,
        "lastModifiedTime": t.modified,
    });
    if t.status == "Completed" {
        v["result"] = json!({"affectedItems": {"result": t.results}});
    }
    v
}

/// `GET extension-bulk-update/tasks/{taskId}` (Light).
pub(super) async fn bulk_task(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((_account, task)): Path<(String, String)>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Light") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let base = base_url(&headers);
    match st.tasks.get(&task) {
        Some(t) => {
            let mut resp = axum::Json(task_json(t, &task, &base)).into_response();
            resp.headers_mut().extend(rate);
            resp
        }
        None => rc_error(
            StatusCode::NOT_FOUND,
            "CMN-102",
            &format!("Resource for parameter [taskId] is not found: {task}"),
            Some("taskId"),
        ),
    }
}

/// `POST extension`: creates a `User` extension; the extension number is the next free one
/// unless given (and then it must be free).
pub(super) async fn create_extension(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = state.lock().map(|s| s.write_delay).unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, &body, "Medium") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let parsed: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return rc_error(
                StatusCode::BAD_REQUEST,
                "CMN-103",
                "JSON can not be parsed",
                None,
            );
        }
    };
    let Some(contact) = parsed.get("contact").and_then(Value::as_object).cloned() else {
        return rc_error(
            StatusCode::BAD_REQUEST,
            "CMN-102",
            "Resource for parameter [contact] is not found",
            Some("contact"),
        );
    };
    let text = |k: &str| {
        contact
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if text("firstName").trim().is_empty() {
        return rc_error(
            StatusCode::BAD_REQUEST,
            "CMN-101",
            "Parameter [contact.firstName] value is invalid",
            Some("contact.firstName"),
        );
    }
    if !text("email").contains('@') {
        return rc_error(
            StatusCode::BAD_REQUEST,
            "CMN-101",
            "Parameter [contact.email] value is invalid",
            Some("contact.email"),
        );
    }
    let number = match parsed.get("extensionNumber").and_then(Value::as_str) {
        Some(n) if st.extensions.iter().any(|e| e.extension_number == n) => {
            return rc_error(
                StatusCode::BAD_REQUEST,
                "CMN-101",
                &format!("Extension number [{n}] is already in use"),
                Some("extensionNumber"),
            );
        }
        Some(n) => n.to_string(),
        None => {
            let max = st
                .extensions
                .iter()
                .filter_map(|e| e.extension_number.parse::<u64>().ok())
                .max()
                .unwrap_or(100);
            (max + 1).to_string()
        }
    };
    let directory_ref = match directory_ref(&Value::Object(parsed.clone())) {
        Ok(r) => r.flatten(),
        Err(e) => return e.response(),
    };
    let id = st.extensions.iter().map(|e| e.id).max().unwrap_or(60_000) + 1;
    let ext = FakeExtension {
        directory_ref,
        id,
        extension_number: number,
        status: parsed
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("NotActivated")
            .to_string(),
        kind: parsed
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("User")
            .to_string(),
        contact,
    };
    st.extensions.push(ext);
    st.gateway.notify(id, "Create", &[]);
    let base = base_url(&headers);
    let created = st
        .extensions
        .last()
        .map(|e| extension_json(e, &base))
        .unwrap_or_default();
    let mut resp = axum::Json(created).into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// `GET /restapi/oauth/authorize`: the fake approves at once and redirects with a code, as
/// the real login page does once the admin signs in and accepts.
pub(super) async fn authorize(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    log(&mut st, &method, &uri, b"");
    let bad = |msg: &str| (StatusCode::BAD_REQUEST, msg.to_string()).into_response();
    if q.get("response_type").map(String::as_str) != Some("code") {
        return bad("response_type must be code");
    }
    if q.get("client_id") != Some(&st.client_id) {
        return bad("unknown client_id");
    }
    if q.get("brand_id").map(String::as_str) != Some("7310") {
        return bad("brand_id 7310 (TELUS) expected");
    }
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return bad("PKCE with S256 is required");
    }
    let (Some(redirect), Some(challenge), Some(state_param)) = (
        q.get("redirect_uri"),
        q.get("code_challenge"),
        q.get("state"),
    ) else {
        return bad("redirect_uri, code_challenge and state are required");
    };
    st.issued += 1;
    let code = format!("fake-code-{}", st.issued);
    st.codes
        .insert(code.clone(), (redirect.clone(), challenge.clone()));
    let mut location = match url::Url::parse(redirect) {
        Ok(u) => u,
        Err(_) => return bad("redirect_uri is not a URL"),
    };
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state_param);
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location.as_str())
        .body(axum::body::Body::empty())
        .unwrap_or_default()
}

/// `GET /restapi/v1.0/account/~/custom-fields`.
pub(super) async fn custom_fields(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "Light") {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let records: Vec<Value> = st
        .custom_field_defs
        .iter()
        .map(|(id, name)| json!({"id": id, "category": "User", "displayName": name}))
        .collect();
    let mut resp = axum::Json(json!({"records": records})).into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// The `exp` claim of a JWT credential, when it is a readable JWT that has one (the
/// sandbox's default credential is not: it never expires).
fn jwt_exp(jwt: &str) -> Option<i64> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}
