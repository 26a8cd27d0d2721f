//! The Okta calls of an import: who in the whole org holds a login or an email (a read by
//! login, a search), creating a user (`STAGED` or activated, into a group), and assigning
//! it to the scope's app. Knows these requests' URLs and bodies.

use super::client::{BUCKET_APPS, BUCKET_LIST, Client, Error, decode_users, read_body, to_model};
use super::wire::UserDto;
use crate::model::{OktaId, OktaUser};
use std::collections::BTreeMap;

/// Where the created user goes besides the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateInto {
    /// `groupIds` of the create (a `group:<id>` scope).
    pub group: Option<String>,
    /// The app to assign it to afterwards (an `app:<id>` scope with `import.assign_to_app`).
    pub app: Option<String>,
}

impl Client {
    /// `GET /api/v1/users/{login}`: the user holding this login now, any status (the
    /// management spec's getUser takes an id, a login or a login shortname; a read by id is
    /// current, unlike a search). `None` when none does. A login with a `/` cannot be read
    /// this way (the spec says so): `None`, and the search covers it.
    pub async fn get_user_by_login(&self, login: &str) -> Result<Option<OktaUser>, Error> {
        if login.contains('/') || login.trim().is_empty() {
            return Ok(None);
        }
        let found = self.get_user(&OktaId(login.to_string())).await?;
        // An id that happens to equal the login is not a holder of it.
        Ok(found.filter(|u| {
            u.profile
                .get("login")
                .is_some_and(|l| l.eq_ignore_ascii_case(login))
        }))
    }

    /// The users of the whole org whose login or email is `email`: `search` (management
    /// spec, listUsers: "Returned users include those with the DEPROVISIONED status";
    /// string values compare case-insensitively; eventually consistent, hence the read by
    /// login beside it). One page: a handful of users hold one address at most.
    pub async fn search_holders(&self, email: &str) -> Result<Vec<OktaUser>, Error> {
        let endpoint = "GET users?search".to_string();
        if email.contains(['"', '\\']) {
            return Ok(Vec::new());
        }
        let mut url = self.base.clone();
        url.set_path("/api/v1/users");
        url.query_pairs_mut()
            .append_pair(
                "search",
                &format!("profile.login eq \"{email}\" or profile.email eq \"{email}\""),
            )
            .append_pair("limit", "200");
        let (body, _) = self.get_page(BUCKET_LIST, &endpoint, &url).await?;
        decode_users(&body, false).map_err(|e| Error::Decode {
            endpoint,
            message: e.to_string(),
        })
    }

    /// `POST /api/v1/users?activate=…` with a profile and no credentials: `STAGED` with
    /// `activate=false` (no email, no provisioning); `PROVISIONED` with `activate=true`, and
    /// Okta emails an activation link (management spec, createUser, "User creation
    /// scenarios"; `activate` defaults to true, so it is always sent). Okta's rate-limit
    /// table counts `POST /api/v1/users` in the users bucket with the listing.
    pub async fn create_user(
        &self,
        profile: &BTreeMap<String, String>,
        activate: bool,
        into: &CreateInto,
    ) -> Result<OktaUser, Error> {
        let endpoint = "POST users".to_string();
        let mut url = self.base.clone();
        url.set_path("/api/v1/users");
        url.query_pairs_mut()
            .append_pair("activate", if activate { "true" } else { "false" });
        let mut body = serde_json::json!({ "profile": profile });
        if let Some(group) = &into.group {
            body["groupIds"] = serde_json::json!([group]);
        }
        let resp = self
            .send_with(BUCKET_LIST, &endpoint, false, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        self.remember_own_request(&resp);
        let bytes = read_body(resp, &endpoint).await?;
        let dto: UserDto = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            endpoint,
            message: e.to_string(),
        })?;
        Ok(to_model(dto))
    }

    /// `POST /api/v1/apps/{appId}/users` with `{id, scope: "USER"}`: assigns the user to
    /// the app (Apps API, assignUserToApplication), paced by the apps bucket. Sent again
    /// after a 5xx like any request: the docs do not say what a repeated assignment answers;
    /// an error there leaves the user unassigned and unlinked, which the journal says.
    pub async fn assign_to_app(&self, app: &str, id: &OktaId) -> Result<(), Error> {
        let endpoint = format!("POST apps/{app}/users");
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| Error::Paging {
                endpoint: endpoint.clone(),
                message: "base URL cannot take a path".into(),
            })?
            .extend(["api", "v1", "apps", app, "users"]);
        let body = serde_json::json!({ "id": id.0, "scope": "USER" });
        let resp = self
            .send(BUCKET_APPS, &endpoint, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        self.remember_own_request(&resp);
        read_body(resp, &endpoint).await?;
        Ok(())
    }
}
