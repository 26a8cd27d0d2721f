//! Reading the TELUS directory: the extension listing and the Company Directory pages
//! (direct numbers, custom field values, `ETag`/304), joined into users; the account's custom
//! fields; the page decoders (public for the fuzz targets).

use super::client::{CachedPage, Client, DirectoryEntry, LIST_EXTENSIONS};
use super::error::Error;
use super::pacing::RateGroup;
use super::transport::decode;
use super::wire::{
    CustomFieldDefDto, DIRECTORY_REF, DirectoryEntryDto, ExtensionDto, ListDto, flatten_contact,
};
use crate::http::same_origin_link;
use crate::model::{
    ExtId, TELUS_DIRECT_NUMBER, TELUS_EXTENSION_NUMBER, TelusCustomField, TelusStatus, TelusUser,
};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Records per page: RingCentral's maximum.
pub const PER_PAGE: u32 = 1000;

/// Pages read of one listing at most: a server that never ends one is not followed for ever.
pub(super) const MAX_PAGES: u64 = 10_000;

pub(super) const DIRECTORY_ENTRIES: &str = "/restapi/v1.0/account/~/directory/entries";

/// Company Directory records per page: its maximum.
pub(super) const DIRECTORY_PER_PAGE: u32 = 2000;

impl Client {
    /// The account's custom user fields (`GET /restapi/v1.0/account/~/custom-fields`).
    pub async fn fetch_custom_fields(&self) -> Result<Vec<TelusCustomField>, Error> {
        let endpoint = "GET custom-fields";
        let mut url = self.base.clone();
        url.set_path("/restapi/v1.0/account/~/custom-fields");
        let resp = self
            .send(RateGroup::Light, endpoint, true, || {
                self.http.get(url.clone())
            })
            .await?;
        let list: ListDto<CustomFieldDefDto> = decode(resp, endpoint).await?;
        let fields: Vec<TelusCustomField> = list
            .records
            .into_iter()
            .filter(|f| f.category.as_deref().is_none_or(|c| c == "User"))
            .filter_map(|f| {
                Some(TelusCustomField {
                    id: f.id,
                    display_name: f.display_name?,
                })
            })
            .collect();
        if let Ok(mut ids) = self.custom_ids.lock() {
            for f in &fields {
                ids.insert(f.display_name.clone(), f.id.clone());
            }
        }
        Ok(fields)
    }

    /// Reads every user extension and the Company Directory, and joins them: the directory
    /// gives each user's direct number and, with `custom_fields`, custom field values. The
    /// two listings are read side by side (both Medium: 1,000 extensions and 2,000 directory
    /// entries a page); no request is made per user, and no Heavy listing at all.
    pub async fn fetch_users_with(&self, custom_fields: bool) -> Result<Vec<TelusUser>, Error> {
        if custom_fields && self.custom_ids.lock().map(|m| m.is_empty()).unwrap_or(true) {
            self.fetch_custom_fields().await?;
        }
        let (users, directory) =
            tokio::join!(self.fetch_extensions(), self.fetch_directory(custom_fields));
        let (mut users, directory) = (users?, directory?);
        let mut listed: HashMap<&str, &DirectoryEntry> = directory
            .iter()
            .flat_map(|page| page.iter())
            .map(|e| (&*e.id, e))
            .collect();
        let mut unlisted = 0usize;
        for u in users.iter_mut() {
            // The directory lists only Enabled, Disabled and NotActivated users, and not one
            // created between the two reads: for a user it leaves out, the direct number and
            // custom fields are unknown (left alone this pass), never empty.
            let Some(entry) = listed.remove(u.id.0.as_str()) else {
                u.in_directory = false;
                unlisted += 1;
                continue;
            };
            if let Some(n) = &entry.direct_number {
                u.fields.insert(TELUS_DIRECT_NUMBER, n.to_string());
            }
            if custom_fields
                && !u
                    .fields
                    .iter()
                    .any(|(k, _)| k.starts_with(crate::model::TELUS_CUSTOM_PREFIX))
            {
                for (k, v) in self.custom_values(&entry.custom) {
                    u.fields.insert(&k, v);
                }
            }
        }
        if unlisted > 0 {
            tracing::debug!(
                unlisted,
                "users not in the Company Directory (Frozen, Unassigned or just created): their direct number and custom fields are left alone this pass"
            );
        }
        Ok(users)
    }

    /// Every Company Directory page: `GET directory/entries?showFederated=false&type=User&
    /// perPage=2000`, paged by page number up to `paging.totalPages` (the directory sends no
    /// navigation links). A page read before is asked for with `If-None-Match`; a 304
    /// reuses what that page gave then and decodes nothing.
    pub(super) async fn fetch_directory(
        &self,
        custom: bool,
    ) -> Result<Vec<Arc<[DirectoryEntry]>>, Error> {
        let endpoint = "GET directory/entries";
        let mut pages = Vec::new();
        let mut page = 1u64;
        loop {
            if page > MAX_PAGES {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("more than {MAX_PAGES} pages: not followed further"),
                });
            }
            let cached = self.directory_cache.lock().ok().and_then(|c| {
                c.get(&page)
                    .filter(|p| p.custom == custom)
                    .map(|p| (p.etag.clone(), p.total_pages, p.entries.clone()))
            });
            let mut url = self.base.clone();
            url.set_path(DIRECTORY_ENTRIES);
            url.query_pairs_mut()
                .append_pair("showFederated", "false")
                .append_pair("type", "User")
                .append_pair("perPage", &DIRECTORY_PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let resp = self
                .send(RateGroup::Medium, endpoint, true, || {
                    let req = self.http.get(url.clone());
                    match &cached {
                        Some((etag, _, _)) => {
                            req.header(reqwest::header::IF_NONE_MATCH, etag.as_str())
                        }
                        None => req,
                    }
                })
                .await?;
            let (entries, total) = match (resp.status().as_u16(), cached) {
                (304, Some((_, total, entries))) => {
                    self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                    (entries, total)
                }
                _ => self.directory_page(resp, endpoint, page, custom).await?,
            };
            let empty = entries.is_empty();
            pages.push(entries);
            if page >= total || empty {
                if let Ok(mut c) = self.directory_cache.lock() {
                    c.retain(|k, _| *k <= page);
                }
                return Ok(pages);
            }
            page += 1;
        }
    }

    /// Decodes one directory page (remembering it with its `ETag`); answers its entries and
    /// the server's page count.
    pub(super) async fn directory_page(
        &self,
        resp: reqwest::Response,
        endpoint: &str,
        page: u64,
        custom: bool,
    ) -> Result<(Arc<[DirectoryEntry]>, u64), Error> {
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 256)
            .map(str::to_string);
        let dto: ListDto<DirectoryEntryDto> = decode(resp, endpoint).await?;
        let total = dto.paging.as_ref().and_then(|p| p.total_pages).unwrap_or(1);
        if dto
            .paging
            .as_ref()
            .and_then(|p| p.page)
            .is_some_and(|p| p != page)
        {
            return Err(Error::Paging {
                endpoint: endpoint.to_string(),
                message: format!("asked for page {page}, was served another"),
            });
        }
        let entries: Arc<[DirectoryEntry]> = dto
            .records
            .into_iter()
            .map(|e| DirectoryEntry {
                direct_number: e.direct_number().map(Into::into),
                custom: match (custom, e.custom_fields) {
                    (true, Some(values)) => values.into_iter().map(Into::into).collect(),
                    _ => Box::default(),
                },
                id: e.id.into(),
            })
            .collect();
        if let Ok(mut c) = self.directory_cache.lock() {
            match etag {
                Some(etag) => {
                    c.insert(
                        page,
                        CachedPage {
                            etag,
                            total_pages: total,
                            custom,
                            entries: entries.clone(),
                        },
                    );
                }
                None => {
                    c.remove(&page);
                }
            }
        }
        Ok((entries, total))
    }

    /// `customFields` of a record as `customFields.<name>` fields, learning their ids.
    pub(super) fn custom_values(
        &self,
        fields: &[super::wire::CustomFieldValueDto],
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(mut ids) = self.custom_ids.lock() else {
            return out;
        };
        for f in fields {
            let name = match &f.display_name {
                Some(n) => n.clone(),
                None => match ids.iter().find(|(_, id)| **id == f.id) {
                    Some((n, _)) => n.clone(),
                    None => continue,
                },
            };
            ids.insert(name.clone(), f.id.clone());
            out.push((
                format!("{}{name}", crate::model::TELUS_CUSTOM_PREFIX),
                crate::model::capped(f.value.clone().unwrap_or_default()),
            ));
        }
        out
    }

    /// Every user with its direct number (custom fields not read): `fetch_users_with(false)`.
    pub async fn fetch_users(&self) -> Result<Vec<TelusUser>, Error> {
        self.fetch_users_with(false).await
    }

    /// Every user extension (`GET extension?type=User`, Medium). Each page becomes users as it
    /// arrives, so no page's JSON outlives its page.
    pub(super) async fn fetch_extensions(&self) -> Result<Vec<TelusUser>, Error> {
        self.fetch_all(
            LIST_EXTENSIONS,
            &[("type", "User")],
            RateGroup::Medium,
            "GET extension",
            |e: ExtensionDto| {
                if e.kind.as_deref().is_some_and(|k| k != "User") {
                    return None;
                }
                let custom = self.custom_values(e.custom_fields.as_deref().unwrap_or_default());
                let mut user = to_user(e);
                for (k, v) in custom {
                    user.fields.insert(&k, v);
                }
                Some(user)
            },
        )
        .await
    }

    /// Follows `navigation.nextPage.uri` from the first page; refuses loops, other origins and
    /// paging past `totalPages`.
    /// Reads every page of a listing, keeping what `keep` makes of each record.
    pub(super) async fn fetch_all<T: DeserializeOwned, U>(
        &self,
        path: &str,
        params: &[(&str, &str)],
        group: RateGroup,
        endpoint: &str,
        mut keep: impl FnMut(T) -> Option<U>,
    ) -> Result<Vec<U>, Error> {
        let mut url = self.base.clone();
        url.set_path(path);
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            q.append_pair("perPage", &PER_PAGE.to_string());
            q.append_pair("page", "1");
        }
        let mut seen = HashSet::new();
        let mut seen_pages = HashSet::new();
        let mut out = Vec::new();
        let mut pages = 0u64;
        loop {
            if !seen.insert(url.to_string()) {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("page {url} was already read: the listing loops"),
                });
            }
            let resp = self
                .send(group, endpoint, true, || self.http.get(url.clone()))
                .await?;
            let page: ListDto<T> = decode(resp, endpoint).await?;
            pages += 1;
            if let Some(n) = page.paging.as_ref().and_then(|p| p.page)
                && !seen_pages.insert(n)
            {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("page {n} was served twice: the listing loops"),
                });
            }
            out.extend(page.records.into_iter().filter_map(&mut keep));
            if let Some(total) = page.paging.as_ref().and_then(|p| p.total_pages)
                && pages > total.max(1)
            {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("read {pages} pages but the server reported {total}"),
                });
            }
            let next = page.navigation.and_then(|n| n.next_page).map(|p| p.uri);
            match next {
                Some(uri) => {
                    url = same_origin_link(&self.base, &uri).map_err(|message| Error::Paging {
                        endpoint: endpoint.to_string(),
                        message,
                    })?;
                }
                None => {
                    // A listing must reach its last page: one that stops early would read as
                    // users deleted (deactivations, holds) or missing (creations).
                    if let Some(total) = page.paging.as_ref().and_then(|p| p.total_pages)
                        && pages < total
                    {
                        return Err(Error::Paging {
                            endpoint: endpoint.to_string(),
                            message: format!(
                                "the listing ended after {pages} of the {total} pages the server reported"
                            ),
                        });
                    }
                    return Ok(out);
                }
            }
        }
    }
}

/// Decodes one page of the extension listing into users (without direct numbers), and the
/// next page's link. Public for the fuzz targets.
pub fn decode_extension_page(
    body: &[u8],
) -> Result<(Vec<TelusUser>, Option<String>), serde_json::Error> {
    let page: ListDto<ExtensionDto> = serde_json::from_slice(body)?;
    let next = page.navigation.and_then(|n| n.next_page).map(|p| p.uri);
    Ok((page.records.into_iter().map(to_user).collect(), next))
}

/// Decodes one Company Directory page into (extension id, direct number) pairs (for fuzzing).
pub fn decode_directory_page(
    body: &[u8],
) -> Result<Vec<(String, Option<String>)>, serde_json::Error> {
    let page: ListDto<DirectoryEntryDto> = serde_json::from_slice(body)?;
    Ok(page
        .records
        .into_iter()
        .map(|e| (e.direct_number(), e.id))
        .map(|(n, id)| (id, n))
        .collect())
}

pub(super) fn to_user(e: ExtensionDto) -> TelusUser {
    let mut flat = Vec::new();
    if let Some(contact) = &e.contact {
        flatten_contact(contact, &mut flat);
    }
    let mut fields: crate::model::Fields = flat.into_iter().collect();
    if let Some(n) = e.extension_number {
        fields.insert(TELUS_EXTENSION_NUMBER, n);
    }
    let directory_ref = e
        .references
        .iter()
        .flatten()
        .find(|r| r.kind.as_deref() == Some(DIRECTORY_REF))
        .and_then(|r| r.reference.clone())
        .filter(|r| !r.trim().is_empty())
        .map(crate::model::OktaId);
    TelusUser {
        id: ExtId(e.id),
        status: TelusStatus::parse(e.status.as_deref().unwrap_or("")),
        directory_ref,
        fields,
        // A listing read sets it from the directory. A user just created is known to have no
        // direct number: `POST extension` assigns none (numbers are assigned separately).
        in_directory: true,
    }
}
