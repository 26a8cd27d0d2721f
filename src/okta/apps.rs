//! What `init` reads of an Okta app (Apps and Mappings APIs, okta-sdk-python's
//! `openapi/management.yaml`): the app and its features, the org's default user type, the
//! profile mappings to and from the app, and the app's assignments with their `externalId`.
//! Knows these answers' JSON.

use super::client::{BUCKET_APPS, BUCKET_SCHEMA, Client, Error, read_body};
use crate::http::same_origin_link;
use crate::model::{AppAssignment, OktaApp, OktaId, ProfileMapping};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Deserialize)]
struct AppDto {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct UserTypeDto {
    id: String,
    #[serde(default)]
    default: bool,
}

#[derive(Debug, Deserialize)]
struct MappingEndDto {
    #[serde(default)]
    id: String,
}

#[derive(Debug, Deserialize)]
struct MappingPropertyDto {
    #[serde(default)]
    expression: String,
    #[serde(default, rename = "pushStatus")]
    push_status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MappingDto {
    id: String,
    source: MappingEndDto,
    target: MappingEndDto,
    #[serde(default)]
    properties: BTreeMap<String, MappingPropertyDto>,
}

#[derive(Debug, Deserialize)]
struct AppUserDto {
    id: String,
    #[serde(default, rename = "externalId")]
    external_id: Option<String>,
    #[serde(default)]
    status: String,
}

impl Client {
    fn api_url(&self, segments: &[&str], endpoint: &str) -> Result<url::Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| Error::Paging {
                endpoint: endpoint.to_string(),
                message: "base URL cannot take a path".into(),
            })?
            .extend(["api", "v1"])
            .extend(segments);
        Ok(url)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &'static str,
        endpoint: &str,
        url: url::Url,
    ) -> Result<T, Error> {
        let resp = self
            .send(bucket, endpoint, || self.http.get(url.clone()))
            .await?;
        let body = read_body(resp, endpoint).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Decode {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        })
    }

    /// `GET /api/v1/apps/{appId}` (getApplication): its `features[]`.
    pub async fn get_app(&self, app: &str) -> Result<OktaApp, Error> {
        let endpoint = format!("GET apps/{app}");
        let url = self.api_url(&["apps", app], &endpoint)?;
        let d: AppDto = self.get_json(BUCKET_APPS, &endpoint, url).await?;
        Ok(OktaApp {
            id: d.id,
            name: d.name,
            label: d.label,
            status: d.status,
            features: d.features,
        })
    }

    /// `GET /api/v1/meta/types/user` (listUserTypes): the default user type's id, the
    /// `sourceId` of the mapping from Okta to an app.
    pub async fn default_user_type(&self) -> Result<Option<String>, Error> {
        let endpoint = "GET meta/types/user".to_string();
        let url = self.api_url(&["meta", "types", "user"], &endpoint)?;
        let types: Vec<UserTypeDto> = self.get_json(BUCKET_SCHEMA, &endpoint, url).await?;
        Ok(types.into_iter().find(|t| t.default).map(|t| t.id))
    }

    /// The mapping from `source` to `target`: `GET /api/v1/mappings?sourceId&targetId`
    /// (listProfileMappings, which gives each mapping without its properties), then
    /// `GET /api/v1/mappings/{id}` (getProfileMapping). `None` when there is none.
    pub async fn mapping(
        &self,
        source: &str,
        target: &str,
    ) -> Result<Option<ProfileMapping>, Error> {
        let endpoint = "GET mappings".to_string();
        let mut url = self.api_url(&["mappings"], &endpoint)?;
        url.query_pairs_mut()
            .append_pair("sourceId", source)
            .append_pair("targetId", target)
            .append_pair("limit", "200");
        let list: Vec<MappingDto> = self.get_json(BUCKET_SCHEMA, &endpoint, url).await?;
        let Some(found) = list
            .into_iter()
            .find(|m| m.source.id == source && m.target.id == target)
        else {
            return Ok(None);
        };
        let endpoint = format!("GET mappings/{}", found.id);
        let url = self.api_url(&["mappings", &found.id], &endpoint)?;
        let d: MappingDto = self.get_json(BUCKET_SCHEMA, &endpoint, url).await?;
        Ok(Some(ProfileMapping {
            id: d.id,
            source_id: d.source.id,
            target_id: d.target.id,
            properties: d
                .properties
                .into_iter()
                .map(|(k, p)| {
                    let pushed = p.push_status.as_deref() != Some("DONT_PUSH");
                    (k, (p.expression, pushed))
                })
                .collect(),
        }))
    }

    /// `GET /api/v1/apps/{appId}/users` (listApplicationUsers), every page by `Link`: each
    /// assignment's Okta user id and `externalId`.
    pub async fn app_assignments(&self, app: &str) -> Result<Vec<AppAssignment>, Error> {
        let endpoint = format!("GET apps/{app}/users");
        let mut url = self.api_url(&["apps", app, "users"], &endpoint)?;
        url.query_pairs_mut().append_pair("limit", "500");
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        loop {
            if !seen.insert(url.to_string()) {
                return Err(Error::Paging {
                    endpoint,
                    message: format!("page {url} was already read: the listing loops"),
                });
            }
            let (body, next) = self.get_page(BUCKET_APPS, &endpoint, &url).await?;
            let page: Vec<AppUserDto> =
                serde_json::from_slice(&body).map_err(|e| Error::Decode {
                    endpoint: endpoint.clone(),
                    message: e.to_string(),
                })?;
            out.extend(page.into_iter().map(|u| AppAssignment {
                okta_id: OktaId(u.id),
                external_id: u.external_id.filter(|e| !e.is_empty()),
                status: u.status,
            }));
            match next {
                Some(next) => {
                    url = same_origin_link(&self.base, &next).map_err(|message| Error::Paging {
                        endpoint: endpoint.clone(),
                        message,
                    })?;
                }
                None => return Ok(out),
            }
        }
    }
}
