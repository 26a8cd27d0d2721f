//! The fake Okta's Apps and Mappings APIs as the management spec (okta-sdk-python's
//! `openapi/management.yaml`) gives them: `GET /api/v1/apps/{appId}` with `features`,
//! `GET /api/v1/meta/types/user`, `GET /api/v1/mappings` (filtered by `sourceId` and
//! `targetId`, without properties, as listProfileMappings answers) and
//! `GET /api/v1/mappings/{id}` (with them); and the built-in TELUS app a real org has.

pub use super::okta::{FakeApp, FakeMapping};
use super::okta::{OktaState, Shared, admit, base_url, error};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The org's default user type: the `type.id` every fake user carries.
pub const USER_TYPE: &str = "oty1fakeusertype";

fn end(st: &OktaState, (id, kind): &(String, &'static str)) -> Value {
    let name = st
        .app_meta
        .get(id)
        .map(|a| a.name.clone())
        .unwrap_or_else(|| "user".into());
    json!({"id": id, "name": name, "type": kind})
}

/// `GET /api/v1/apps/{appId}`.
pub(super) async fn get_app(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "apps") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(app) = st.app_meta.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {id} (AppInstance)"),
            &[],
        );
    };
    let base = base_url(&headers);
    let body = json!({
        "id": id, "name": app.name, "label": app.label, "status": "ACTIVE",
        "signOnMode": "SAML_2_0", "features": app.features,
        "_links": {"users": {"href": format!("{base}/api/v1/apps/{id}/users")}},
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// `GET /api/v1/meta/types/user`: the default type only.
pub(super) async fn user_types(
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
    let body = json!([{"id": USER_TYPE, "name": "user", "displayName": "User", "default": true}]);
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// `GET /api/v1/mappings?sourceId&targetId&limit`: the matching mappings, without their
/// properties (listProfileMappings answers "a subset of the profile mapping object's
/// parameters").
pub(super) async fn list_mappings(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "schemas") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let body: Vec<Value> = st
        .mappings
        .iter()
        .filter(|m| q.get("sourceId").is_none_or(|s| *s == m.source.0))
        .filter(|m| q.get("targetId").is_none_or(|t| *t == m.target.0))
        .map(|m| json!({"id": m.id, "source": end(&st, &m.source), "target": end(&st, &m.target)}))
        .collect();
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// `GET /api/v1/mappings/{mappingId}`.
pub(super) async fn get_mapping(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let rate = match admit(&mut st, &method, &uri, &headers, b"", "schemas") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(m) = st.mappings.iter().find(|m| m.id == id) else {
        return error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {id} (ProfileMapping)"),
            &[],
        );
    };
    let body = json!({"id": m.id, "source": end(&st, &m.source), "target": end(&st, &m.target), "properties": m.properties});
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().extend(rate);
    resp
}

/// The built-in TELUS Business Connect app of a real org, as Okta's guide "Configuring
/// Provisioning for TELUS Business Connect" sets it up: push features on, the guide's ten
/// attributes pushed (department create only: `DONT_PUSH`), primaryPhone mapped back with the
/// guide's null-guarded expression and overridden by the app in the schema, and one mapping
/// no tool can translate (the mobile number falling back to the primary one).
pub const BUILTIN_APP: &str = "0oaTelusBC";

pub fn install_builtin_app(st: &mut OktaState) {
    st.app_meta.insert(
        BUILTIN_APP.into(),
        FakeApp {
            name: "telusbusinessconnect".into(),
            label: "TELUS Business Connect".into(),
            features: [
                "PUSH_NEW_USERS",
                "PUSH_PROFILE_UPDATES",
                "PUSH_USER_DEACTIVATION",
                "REACTIVATE_USERS",
                "IMPORT_NEW_USERS",
            ]
            .map(String::from)
            .to_vec(),
        },
    );
    let push = |expr: &str, status: &str| json!({"expression": expr, "pushStatus": status});
    let mut to_app = Map::new();
    for (app_attr, okta_attr) in [
        ("firstName", "firstName"),
        ("lastName", "lastName"),
        ("email", "email"),
        ("street", "streetAddress"),
        ("city", "city"),
        ("state", "state"),
        ("zip", "zipCode"),
        ("country", "countryCode"),
    ] {
        to_app.insert(app_attr.into(), push(&format!("user.{okta_attr}"), "PUSH"));
    }
    to_app.insert("department".into(), push("user.department", "DONT_PUSH"));
    // A fallback no translation can carry: the mobile number, else the primary one.
    to_app.insert(
        "mobilePhone".into(),
        push(
            "(user.mobilePhone != null ? user.mobilePhone : user.primaryPhone)",
            "PUSH",
        ),
    );
    let mut to_okta = Map::new();
    to_okta.insert(
        "primaryPhone".into(),
        json!({"expression": "(appuser.directNumber != null ? appuser.directNumber : \"\") + \"#\" + appuser.extensionNumber"}),
    );
    st.mappings.push(FakeMapping {
        id: "prm1okta2telus".into(),
        source: (USER_TYPE.into(), "user"),
        target: (BUILTIN_APP.into(), "appuser"),
        properties: to_app,
    });
    st.mappings.push(FakeMapping {
        id: "prm2telus2okta".into(),
        source: (BUILTIN_APP.into(), "appuser"),
        target: (USER_TYPE.into(), "user"),
        properties: to_okta,
    });
    st.masters
        .insert("primaryPhone".into(), format!("OVERRIDE:{BUILTIN_APP}"));
}
