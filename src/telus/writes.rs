//! Writes to one TELUS user: contact updates (the unchanged address fields kept, custom
//! fields by id, the Okta id as a reference), creation, and enabling or disabling.

use super::client::{Client, LIST_EXTENSIONS, extension_url};
use super::directory::to_user;
use super::error::Error;
use super::pacing::RateGroup;
use super::transport::decode;
use super::wire::{DIRECTORY_REF, ExtensionDto, contact_body};
use crate::model::{OktaId, TelusStatus, TelusUser};

impl Client {
    /// The `contact` (and `customFields`) part of a write of `changes`: the unchanged address
    /// fields come from `current` (RingCentral replaces the address whole), custom fields go by
    /// the ids learnt from the account. A custom field the account lacks is `Unsendable`.
    pub(super) fn contact_request(
        &self,
        changes: &[(String, Option<String>)],
        current: Option<&TelusUser>,
        endpoint: &str,
    ) -> Result<serde_json::Value, Error> {
        let flat: Vec<(String, String)> = current
            .into_iter()
            .flat_map(|c| c.fields.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ids = self.custom_ids.lock().unwrap_or_else(|e| e.into_inner());
        contact_body(changes, &flat, &ids).map_err(|message| Error::Unsendable {
            endpoint: endpoint.to_string(),
            message,
        })
    }

    /// `PUT extension/{id}` with the changed contact fields. `current` supplies the unchanged
    /// address fields, which RingCentral needs because it replaces the address whole.
    pub async fn update_contact(
        &self,
        current: &TelusUser,
        changes: &[(String, Option<String>)],
        okta_id: Option<&OktaId>,
    ) -> Result<(), Error> {
        let endpoint = format!("PUT extension/{}", current.id);
        let url = extension_url(&self.base, &current.id);
        let mut body = self.contact_request(changes, Some(current), &endpoint)?;
        backfill_reference(&mut body, current, okta_id);
        let resp = self
            .send(RateGroup::Medium, &endpoint, true, || {
                self.http.put(url.clone()).json(&body)
            })
            .await?;
        // The answer is the updated extension; one that cannot be read leaves the write unconfirmed.
        let _: ExtensionDto = decode(resp, &endpoint).await?;
        Ok(())
    }

    /// `POST extension`: a new `User` extension, `Enabled`, with these contact fields; the
    /// extension number is assigned by TELUS. Returns the created user.
    pub async fn create_user(
        &self,
        changes: &[(String, Option<String>)],
        okta_id: &OktaId,
    ) -> Result<TelusUser, Error> {
        let endpoint = "POST extension";
        let mut url = self.base.clone();
        url.set_path(LIST_EXTENSIONS);
        let mut body = self.contact_request(changes, None, endpoint)?;
        body["type"] = serde_json::json!("User");
        body["status"] = serde_json::json!("Enabled");
        // The Okta id travels with the user: it settles a create whose answer was lost, and
        // links users again without the store.
        body["references"] = references(okta_id);
        let resp = self
            .send(RateGroup::Medium, endpoint, false, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        let e: ExtensionDto = decode(resp, endpoint).await?;
        Ok(to_user(e))
    }

    /// `PUT extension/{id}` with `{"status": ...}`: `Disabled` never deletes the user.
    pub async fn set_status(
        &self,
        current: &TelusUser,
        status: &TelusStatus,
        okta_id: Option<&OktaId>,
    ) -> Result<(), Error> {
        let id = &current.id;
        let endpoint = format!("PUT extension/{id} status");
        let url = extension_url(&self.base, id);
        let mut body = serde_json::json!({ "status": status.as_str() });
        backfill_reference(&mut body, current, okta_id);
        let resp = self
            .send(RateGroup::Medium, &endpoint, true, || {
                self.http.put(url.clone()).json(&body)
            })
            .await?;
        let _: ExtensionDto = decode(resp, &endpoint).await?;
        Ok(())
    }
}

/// `references` naming the Okta user (type `CustomerDirectoryId`).
pub(super) fn references(okta_id: &OktaId) -> serde_json::Value {
    serde_json::json!([{ "type": DIRECTORY_REF, "ref": okta_id.0 }])
}

/// Adds the Okta id to a write's body when the record does not carry it yet: links made
/// before references existed (or by email) get theirs at their next write.
pub(super) fn backfill_reference(
    body: &mut serde_json::Value,
    current: &TelusUser,
    okta_id: Option<&OktaId>,
) {
    if let Some(okta_id) = okta_id
        && current.directory_ref.as_ref() != Some(okta_id)
    {
        body["references"] = references(okta_id);
    }
}
