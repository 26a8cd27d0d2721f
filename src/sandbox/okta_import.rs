//! The fake Okta's part of an import, as Okta's management spec describes it: `createUser`
//! (`POST /api/v1/users`, `STAGED` or `PROVISIONED`, login uniqueness, `groupIds`), the
//! `search` of `listUsers` on login and email, reads by login, and app assignment.

use super::okta::{FakeOktaUser, Shared, admit, app_user_json, base_url, error, user_json};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// `POST /api/v1/users?activate=…`, a profile and no credentials (createUser):
/// - `activate` defaults to true (spec: "default: true"); `activate=false` creates a
///   `STAGED` user, `activate=true` without credentials a `PROVISIONED` one, who is emailed an
///   activation link ("User creation scenarios");
/// - `login`, `email`, `firstName` and `lastName` are required: 400 `E0000001` naming each;
/// - a login another user holds, whatever its status (a DEPROVISIONED user keeps its login
///   until deleted), is 400 `E0000001` "login: An object with this field already exists in
///   the current organization".
///   The spec does not say whether uniqueness ignores case; Okta's logins are matched
///   case-insensitively at sign-in, so the harsher reading is modelled: it does;
/// - `groupIds` adds the user to each group (an unknown one: 400 `E0000001`);
/// - the new user is in listings and in the System Log (`user.lifecycle.create`, its
///   `transaction.id` the answer's `X-Okta-Request-Id`).
pub(super) async fn create_user(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, &body, "users-list") {
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
    let profile: Map<String, Value> = parsed
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut causes = Vec::new();
    for required in ["login", "email", "firstName", "lastName"] {
        if profile
            .get(required)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            causes.push(format!("{required}: The field cannot be left blank"));
        }
    }
    let login = profile.get("login").and_then(Value::as_str).unwrap_or("");
    if !login.is_empty()
        && st.users.iter().any(|u| {
            u.profile
                .get("login")
                .and_then(Value::as_str)
                .is_some_and(|l| l.eq_ignore_ascii_case(login))
        })
    {
        // Real answers (as SDKs and apps match them): summary "Api validation failed: login",
        // cause "login: An object with this field already exists in the current organization".
        causes.push(
            "login: An object with this field already exists in the current organization".into(),
        );
    }
    let groups: Vec<String> = parsed
        .get("groupIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for g in &groups {
        if !st.groups.contains_key(g) {
            causes.push(format!("groupIds: Group {g} not found"));
        }
    }
    if !causes.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: login",
            &causes,
        );
    }
    let activate = q.get("activate").is_none_or(|a| a != "false");
    let id = format!("00unew{:04}", st.users.len() + 1);
    let stamp = st.tick();
    let user = FakeOktaUser {
        id: id.clone(),
        status: if activate { "PROVISIONED" } else { "STAGED" }.into(),
        last_updated: stamp,
        provider: "OKTA",
        profile,
    };
    for g in &groups {
        if let Some(members) = st.groups.get_mut(g) {
            members.push(id.clone());
        }
    }
    let pos = st.users.partition_point(|u| u.id < id);
    st.users.insert(pos, user.clone());
    if activate {
        st.activation_emails.push(id.clone());
    }
    let request_id = format!("req-create-{id}");
    st.log_event("user.lifecycle.create", &id, Some(&request_id));
    let base = base_url(&headers);
    let mut resp = (StatusCode::OK, axum::Json(user_json(&user, &base))).into_response();
    resp.headers_mut().extend(rate);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-okta-request-id", v);
    }
    resp
}

/// `POST /api/v1/apps/{appId}/users` with `{id, scope: "USER"}` (assignUserToApplication):
/// the user joins the app's assignments; an unknown app or user is 404 `E0000007`.
pub(super) async fn assign_user(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(app): Path<String>,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, &body, "apps") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let Some(user) = st.users.iter().find(|u| u.id == id).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {id} (User)"),
            &[],
        );
    };
    let Some(assigned) = st.apps.get_mut(&app) else {
        return error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {app} (AppInstance)"),
            &[],
        );
    };
    if !assigned.iter().any(|(u, _)| *u == id) {
        assigned.push((id.clone(), Map::new()));
    }
    // The System Log event's `transaction.id` is the request's `X-Okta-Request-Id`, as for
    // every write.
    let request_id = format!("req-assign-{id}");
    st.log_event("application.user_membership.add", &id, Some(&request_id));
    if let Some(e) = st.log.last_mut() {
        e.scope_target = Some(("AppInstance".into(), app.clone()));
    }
    let base = base_url(&headers);
    let mut resp = axum::Json(app_user_json(&user, Map::new(), false, &base)).into_response();
    resp.headers_mut().extend(rate);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-okta-request-id", v);
    }
    resp
}
