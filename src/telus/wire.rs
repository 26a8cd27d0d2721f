//! RingCentral's JSON: extension listings, Company Directory entries, token and error bodies, and the
//! contact update body. Private to `telus/`.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// RingCentral ids are int64 on the wire; accept a string too.
fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!(
            "id is {other}, expected a number"
        ))),
    }
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct ListDto<T> {
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
    #[serde(default)]
    pub paging: Option<PagingDto>,
    #[serde(default)]
    pub navigation: Option<NavigationDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PagingDto {
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub total_pages: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NavigationDto {
    #[serde(default)]
    pub next_page: Option<UriDto>,
}

#[derive(Debug, Deserialize)]
pub(super) struct UriDto {
    pub uri: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExtensionDto {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub extension_number: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub status: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "opt_text")]
    pub kind: Option<String>,
    #[serde(default)]
    pub contact: Option<Map<String, Value>>,
    /// Present on the single-extension GET (and on listings of some accounts).
    #[serde(default)]
    pub custom_fields: Option<Vec<CustomFieldValueDto>>,
    /// `references: [{ref, type}]` (spec: ReferenceInfo on GetExtensionListInfoResponse).
    #[serde(default)]
    pub references: Option<Vec<ReferenceDto>>,
}

/// One external id of an extension; this tool reads and writes type `CustomerDirectoryId`.
#[derive(Debug, Deserialize)]
pub(super) struct ReferenceDto {
    #[serde(rename = "ref", default, deserialize_with = "opt_text")]
    pub reference: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "opt_text")]
    pub kind: Option<String>,
}

/// The `references` type that carries an identity directory's user id.
pub(super) const DIRECTORY_REF: &str = "CustomerDirectoryId";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CustomFieldValueDto {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub value: Option<String>,
}

/// A record of the Company Directory (`ContactResource`); only what this tool reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DirectoryEntryDto {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default)]
    pub custom_fields: Option<Vec<DirectoryCustomFieldDto>>,
    /// `AdgPhoneNumberResource`s: every number of the user, with its usage type.
    #[serde(default)]
    pub phone_numbers: Option<Vec<DirectoryPhoneDto>>,
}

/// `AdgPhoneNumberResource` of a directory entry: only what this tool reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DirectoryPhoneDto {
    #[serde(default, deserialize_with = "opt_text")]
    pub phone_number: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub e164: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub usage_type: Option<String>,
    #[serde(default)]
    pub primary: Option<bool>,
}

impl DirectoryEntryDto {
    /// The user's direct number: its primary `DirectNumber`, else the lowest one by number.
    pub fn direct_number(&self) -> Option<String> {
        direct_number(self.phone_numbers.iter().flatten())
    }
}

/// Among a user's numbers (`AdgPhoneNumberResource`s of a directory entry, or
/// `UserPhoneNumberInfo`s of `GET extension/{id}/phone-number`: both carry `phoneNumber`,
/// `usageType` and `primary`), the direct number: the primary `DirectNumber`, else the
/// lowest one by number.
pub(super) fn direct_number<'a>(
    numbers: impl Iterator<Item = &'a DirectoryPhoneDto>,
) -> Option<String> {
    let mut best: Option<(bool, String)> = None;
    for n in numbers {
        if n.usage_type.as_deref() != Some("DirectNumber") {
            continue;
        }
        let Some(number) = n.phone_number.clone().or_else(|| n.e164.clone()) else {
            continue;
        };
        let primary = n.primary.unwrap_or(false);
        let better = match &best {
            None => true,
            Some((p, cur)) => (primary && !p) || (primary == *p && number < *cur),
        };
        if better {
            best = Some((primary, number));
        }
    }
    best.map(|(_, n)| n)
}

/// `CustomFieldResource` of a directory entry: `{id, name, value}` (the name, where the
/// single-extension GET says `displayName`).
#[derive(Debug, Deserialize)]
pub(super) struct DirectoryCustomFieldDto {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub value: Option<String>,
}

impl From<DirectoryCustomFieldDto> for CustomFieldValueDto {
    fn from(d: DirectoryCustomFieldDto) -> Self {
        CustomFieldValueDto {
            id: d.id,
            display_name: d.name,
            value: d.value,
        }
    }
}

/// An item of `GET /restapi/v1.0/account/~/custom-fields`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CustomFieldDefDto {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub display_name: Option<String>,
}

/// `ExtensionBulkUpdateTaskResource`: a bulk update's task, and once it has run, each
/// record's outcome (`result.affectedItems.result`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkTaskDto {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub status: Option<String>,
    #[serde(default)]
    pub result: Option<BulkResultDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkResultDto {
    #[serde(default)]
    pub affected_items: Option<BulkAffectedDto>,
    #[serde(default)]
    pub errors: Vec<ErrorItemDto>,
}

#[derive(Debug, Deserialize)]
pub(super) struct BulkAffectedDto {
    #[serde(default)]
    pub result: Vec<BulkRecordResultDto>,
}

/// `ExtensionUpdateShortResult`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkRecordResultDto {
    #[serde(default, deserialize_with = "opt_text")]
    pub extension_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub status: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItemDto>,
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenDto {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_token_expires_in: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorDto {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItemDto>,
    /// OAuth errors (`invalid_grant`, ...).
    #[serde(default, rename = "error")]
    pub oauth_error: Option<String>,
    #[serde(default, rename = "error_description")]
    pub oauth_description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorItemDto {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub parameter_name: Option<String>,
}

/// Flattens a `contact` object into `contact.*` paths (`contact.businessAddress.city`).
pub(super) fn flatten_contact(contact: &Map<String, Value>, out: &mut Vec<(String, String)>) {
    for (k, v) in contact {
        match v {
            Value::Object(inner) if k == "businessAddress" => {
                for (ik, iv) in inner {
                    if let Some(text) = scalar(iv) {
                        out.push((format!("contact.businessAddress.{ik}"), text));
                    }
                }
            }
            other => {
                if let Some(text) = scalar(other) {
                    out.push((format!("contact.{k}"), text));
                }
            }
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    Some(crate::model::capped(text))
}

/// Builds `{"contact": {...}, "customFields": [...]}` for a set of `contact.*` and
/// `customFields.<name>` paths. RingCentral replaces `businessAddress` as a whole, so an
/// address change sends every address field, taking the unchanged ones from `current`. A
/// cleared value is sent as the empty string. Custom fields are sent by id (`custom_ids` maps
/// display names to ids); an unknown name is an error naming it.
pub(super) fn contact_body(
    changes: &[(String, Option<String>)],
    current: &[(String, String)],
    custom_ids: &std::collections::HashMap<String, String>,
) -> Result<Value, String> {
    let mut custom = Vec::new();
    for (path, value) in changes {
        if let Some(name) = path.strip_prefix(crate::model::TELUS_CUSTOM_PREFIX) {
            let id = custom_ids.get(name).ok_or_else(|| {
                format!("the TELUS account has no custom user field named {name:?}")
            })?;
            custom.push(serde_json::json!({"id": id, "value": value.clone().unwrap_or_default()}));
        }
    }
    let mut body = contact_only(changes, current);
    if !custom.is_empty() {
        body["customFields"] = Value::Array(custom);
    }
    Ok(body)
}

fn contact_only(changes: &[(String, Option<String>)], current: &[(String, String)]) -> Value {
    let mut contact = Map::new();
    let mut address: Option<Map<String, Value>> = None;
    for (path, value) in changes {
        let value = Value::String(value.clone().unwrap_or_default());
        if let Some(field) = path.strip_prefix("contact.businessAddress.") {
            let addr = address.get_or_insert_with(|| {
                current
                    .iter()
                    .filter_map(|(p, v)| {
                        p.strip_prefix("contact.businessAddress.")
                            .map(|f| (f.to_string(), Value::String(v.clone())))
                    })
                    .collect()
            });
            addr.insert(field.to_string(), value);
        } else if let Some(field) = path.strip_prefix("contact.") {
            contact.insert(field.to_string(), value);
        }
    }
    if let Some(addr) = address {
        contact.insert("businessAddress".into(), Value::Object(addr));
    }
    serde_json::json!({ "contact": contact })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_change_sends_the_whole_address() {
        let current = vec![
            (
                "contact.businessAddress.city".to_string(),
                "Vancouver".to_string(),
            ),
            (
                "contact.businessAddress.zip".to_string(),
                "V6B 1A1".to_string(),
            ),
            ("contact.firstName".to_string(), "Ana".to_string()),
        ];
        let body = contact_body(
            &[
                (
                    "contact.businessAddress.city".into(),
                    Some("Victoria".into()),
                ),
                ("contact.department".into(), None),
            ],
            &current,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"contact": {
                "department": "",
                "businessAddress": {"city": "Victoria", "zip": "V6B 1A1"}
            }})
        );
    }

    #[test]
    fn custom_fields_are_sent_by_id_and_unknown_names_refused() {
        let ids = [("Cost Center".to_string(), "cf1".to_string())].into();
        let body = contact_body(
            &[("customFields.Cost Center".into(), Some("4410".into()))],
            &[],
            &ids,
        )
        .unwrap();
        assert_eq!(
            body["customFields"],
            serde_json::json!([{"id": "cf1", "value": "4410"}])
        );
        let err = contact_body(&[("customFields.Nope".into(), None)], &[], &ids).unwrap_err();
        assert!(err.contains("Nope"));
    }

    #[test]
    fn ids_decode_from_numbers_or_strings() {
        let e: ExtensionDto =
            serde_json::from_str(r#"{"id": 12345678901, "extensionNumber": "101"}"#).unwrap();
        assert_eq!(e.id, "12345678901");
        let e: ExtensionDto = serde_json::from_str(r#"{"id": "77"}"#).unwrap();
        assert_eq!(e.id, "77");
        assert!(serde_json::from_str::<ExtensionDto>(r#"{"id": null}"#).is_err());
    }
}

/// The WebSocket token (spec: `WsTokenResponse`).
#[derive(Debug, Deserialize)]
pub(super) struct WsTokenDto {
    pub ws_access_token: String,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}
