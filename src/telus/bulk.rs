//! TELUS bulk updates (`extension-bulk-update`): records of up to 500 extensions sent as one
//! task, and the task polled with each record's outcome.

use super::client::Client;
use super::error::Error;
use super::pacing::RateGroup;
use super::transport::decode;
use super::wire::BulkTaskDto;
use super::writes::backfill_reference;
use crate::model::{ExtId, OktaId, TelusStatus, TelusUser};

pub(super) const BULK_UPDATE: &str = "/restapi/v1.0/account/~/extension-bulk-update";

/// Records one bulk update takes at most (spec: extensionBulkUpdate).
pub const BULK_MAX: usize = 500;

/// One extension's record in a bulk update.
pub struct BulkRecord {
    pub ext_id: ExtId,
    pub(super) body: serde_json::Value,
}

/// A bulk update's task (spec: ExtensionBulkUpdateTaskResource).
#[derive(Debug)]
pub struct BulkTask {
    pub id: String,
    pub status: TaskStatus,
    /// Each record's outcome, once the task has run: `Ok` for `Success`, else the record's
    /// first error.
    pub results: Vec<(ExtId, Result<(), Error>)>,
    /// The task's own errors (a task that `Failed` as a whole).
    pub errors: Vec<Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Accepted,
    InProgress,
    Completed,
    Failed,
}

impl TaskStatus {
    /// Whether the task has run: only then do its results, or a read, say anything.
    pub fn finished(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

/// A task from the wire; an unknown status reads as still running (the harsher case).
pub(super) fn bulk_task(dto: super::wire::BulkTaskDto, endpoint: &str) -> BulkTask {
    let status = match dto.status.as_deref() {
        Some("Completed") => TaskStatus::Completed,
        Some("Failed") => TaskStatus::Failed,
        Some("InProgress") => TaskStatus::InProgress,
        _ => TaskStatus::Accepted,
    };
    let error = |e: super::wire::ErrorItemDto| Error::Api {
        endpoint: endpoint.to_string(),
        status: 400,
        code: e.error_code.unwrap_or_default(),
        message: e.message.unwrap_or_default(),
        parameter: e.parameter_name,
        also: Vec::new(),
    };
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    if let Some(result) = dto.result {
        for r in result.affected_items.map(|a| a.result).unwrap_or_default() {
            let Some(ext) = r.extension_id else { continue };
            let outcome = match r.status.as_deref() {
                Some("Success") => Ok(()),
                _ => Err(r
                    .errors
                    .into_iter()
                    .next()
                    .map(error)
                    .unwrap_or_else(|| Error::Api {
                        endpoint: endpoint.to_string(),
                        status: 400,
                        code: String::new(),
                        message: "the bulk update failed this record without saying why".into(),
                        parameter: None,
                        also: Vec::new(),
                    })),
            };
            results.push((ExtId(ext), outcome));
        }
        errors = result.errors.into_iter().map(error).collect();
    }
    BulkTask {
        id: dto.id,
        status,
        results,
        errors,
    }
}

impl Client {
    /// One extension's record for a bulk update: its changed contact fields (the whole
    /// address when any part of it changed, as for a PUT), custom fields by id, a new status,
    /// and the Okta id reference when the record lacks it.
    pub fn bulk_record(
        &self,
        current: &TelusUser,
        changes: &[(String, Option<String>)],
        status: Option<&TelusStatus>,
        okta_id: Option<&OktaId>,
    ) -> Result<BulkRecord, Error> {
        let endpoint = format!("POST extension-bulk-update record {}", current.id);
        let mut body = match changes.is_empty() {
            true => serde_json::json!({}),
            false => self.contact_request(changes, Some(current), &endpoint)?,
        };
        if let Some(status) = status {
            body["status"] = serde_json::json!(status.as_str());
        }
        backfill_reference(&mut body, current, okta_id);
        body["id"] = serde_json::json!(current.id.0);
        Ok(BulkRecord {
            ext_id: current.id.clone(),
            body,
        })
    }

    /// `POST extension-bulk-update` (Heavy) with up to 500 records: answers the task it
    /// started. Never sent twice: a 5xx or a lost answer is `outcome_unknown`, since the
    /// task may have been accepted.
    pub async fn bulk_update(&self, records: &[&BulkRecord]) -> Result<BulkTask, Error> {
        let endpoint = "POST extension-bulk-update";
        let mut url = self.base.clone();
        url.set_path(BULK_UPDATE);
        let body = serde_json::json!({
            "records": records.iter().map(|r| &r.body).collect::<Vec<_>>()
        });
        let resp = self
            .send(RateGroup::Heavy, endpoint, false, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        let dto: BulkTaskDto = decode(resp, endpoint).await?;
        Ok(bulk_task(dto, endpoint))
    }

    /// `GET extension-bulk-update/tasks/{id}` (Light): the task's state, with each record's
    /// outcome once it has run.
    pub async fn bulk_task(&self, id: &str) -> Result<BulkTask, Error> {
        let endpoint = "GET extension-bulk-update/tasks";
        let mut url = self.base.clone();
        url.set_path(BULK_UPDATE);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("tasks").push(id);
        }
        let resp = self
            .send(RateGroup::Light, endpoint, true, || {
                self.http.get(url.clone())
            })
            .await?;
        let dto: BulkTaskDto = decode(resp, endpoint).await?;
        Ok(bulk_task(dto, endpoint))
    }
}
