//! The fakes' route tables: which handler answers which path of each API (Okta's users,
//! schema, token and System Log; RingCentral's OAuth, directory, writes, bulk tasks and
//! notification gateway). Kept apart so that no handler file needs another's routes.

use super::faults::Dialect;
use super::okta::{FakeOkta, OktaState};
use super::telus::{FakeTelus, TelusState};
use super::{okta, okta_apps, okta_import, okta_logs, telus, telus_ws};
use axum::Router;
use axum::routing::{get, post};
use std::sync::{Arc, Mutex};

impl FakeOkta {
    pub async fn start(state: OktaState) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route(
                "/api/v1/users",
                get(okta::list_users).post(okta_import::create_user),
            )
            .route("/api/v1/groups/{id}/users", get(okta::list_members))
            .route(
                "/api/v1/apps/{id}/users",
                get(okta::list_members).post(okta_import::assign_user),
            )
            .route(
                "/api/v1/users/{id}",
                get(okta::get_user).post(okta::update_user),
            )
            .route("/oauth2/v1/token", post(okta::oauth_token))
            .route("/api/v1/meta/schemas/user/default", get(okta::schema))
            .route("/api/v1/logs", get(okta_logs::logs))
            .route("/api/v1/apps/{id}", get(okta_apps::get_app))
            .route("/api/v1/meta/types/user", get(okta_apps::user_types))
            .route("/api/v1/mappings", get(okta_apps::list_mappings))
            .route("/api/v1/mappings/{id}", get(okta_apps::get_mapping))
            .with_state(state.clone());
        Self::serve(state, app, Dialect::Okta).await
    }
}

impl FakeTelus {
    pub async fn start(state: TelusState) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/restapi/oauth/token", post(telus::token))
            .route("/restapi/oauth/authorize", get(telus::authorize))
            .route("/restapi/oauth/wstoken", post(telus_ws::ws_token))
            .route("/ws", get(telus_ws::ws))
            .route(
                "/restapi/v1.0/account/{account}/extension/{id}/phone-number",
                get(telus_ws::extension_numbers),
            )
            .route(
                "/restapi/v1.0/account/{account}/extension",
                get(telus::list_extensions).post(telus::create_extension),
            )
            .route(
                "/restapi/v1.0/account/{account}/extension/{id}",
                get(telus::get_extension).put(telus::update_extension),
            )
            .route(
                "/restapi/v1.0/account/{account}/phone-number",
                get(telus::list_numbers),
            )
            .route(
                "/restapi/v1.0/account/{account}/directory/entries",
                get(telus::directory_entries),
            )
            .route(
                "/restapi/v1.0/account/{account}/custom-fields",
                get(telus::custom_fields),
            )
            .route(
                "/restapi/v1.0/account/{account}/extension-bulk-update",
                post(telus::bulk_update),
            )
            .route(
                "/restapi/v1.0/account/{account}/extension-bulk-update/tasks/{task}",
                get(telus::bulk_task),
            )
            .with_state(state.clone());
        Self::serve(state, app, Dialect::RingCentral).await
    }
}
