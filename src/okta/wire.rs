//! Okta's JSON and header formats: user DTOs, error bodies, the `Link` header. Private to `okta/`.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserDto {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub credentials: Option<CredentialsDto>,
    #[serde(default)]
    pub profile: BTreeMap<String, Value>,
}

/// `credentials` of a user: only the provider is read (never a password or recovery field).
#[derive(Debug, Deserialize)]
pub(super) struct CredentialsDto {
    #[serde(default)]
    pub provider: Option<ProviderDto>,
}

/// `credentials.provider`: `{type: OKTA | ACTIVE_DIRECTORY | LDAP | IMPORT | FEDERATION | SOCIAL, name}`.
#[derive(Debug, Deserialize)]
pub(super) struct ProviderDto {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// An item of `/api/v1/apps/{id}/users?expand=user`: the Okta user is embedded.
#[derive(Debug, Deserialize)]
pub(super) struct ListItemDto {
    #[serde(rename = "_embedded", default)]
    pub embedded: Option<EmbeddedDto>,
    #[serde(flatten)]
    pub user: Value,
}

#[derive(Debug, Deserialize)]
pub(super) struct EmbeddedDto {
    pub user: Option<Value>,
}

/// `GET /api/v1/meta/schemas/user/default`.
#[derive(Debug, Deserialize)]
pub(super) struct SchemaDto {
    #[serde(default)]
    pub definitions: SchemaDefinitionsDto,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SchemaDefinitionsDto {
    #[serde(default)]
    pub base: SchemaGroupDto,
    #[serde(default)]
    pub custom: SchemaGroupDto,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SchemaGroupDto {
    #[serde(default)]
    pub properties: BTreeMap<String, SchemaPropertyDto>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SchemaPropertyDto {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub mutability: Option<String>,
    #[serde(default)]
    pub master: Option<SchemaMasterDto>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SchemaMasterDto {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub priority: Vec<SchemaPriorityDto>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SchemaPriorityDto {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The app's id, for `type: APP`.
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorDto {
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_summary: String,
    #[serde(default)]
    pub error_id: String,
    #[serde(default)]
    pub error_causes: Vec<ErrorCauseDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorCauseDto {
    #[serde(default)]
    pub error_summary: String,
}

/// Finds the `rel="next"` target among `Link` headers, whether sent as several headers or one
/// comma-joined value. Commas inside `<...>` belong to the URL.
pub fn next_link<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            let params_all = &after[close + 1..];
            let params_end = params_all.find('<').unwrap_or(params_all.len());
            let params = &params_all[..params_end];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',').trim();
                let Some((k, v)) = p.split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(target.to_string());
            }
            rest = &params_all[params_end..];
        }
    }
    None
}

/// A profile value as text: strings as they are, numbers and booleans printed, null absent;
/// arrays and objects are kept marked `UNREADABLE`, so the planner reports them.
pub(super) fn profile_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => return None,
        other => format!("{}{other}", crate::model::UNREADABLE),
    };
    Some(crate::model::capped(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_in_separate_headers() {
        let headers = [
            r#"<https://acme.okta.com/api/v1/users?limit=200>; rel="self""#,
            r#"<https://acme.okta.com/api/v1/users?after=00u2&limit=200>; rel="next""#,
        ];
        assert_eq!(
            next_link(headers).as_deref(),
            Some("https://acme.okta.com/api/v1/users?after=00u2&limit=200")
        );
    }

    #[test]
    fn next_link_in_one_comma_joined_header() {
        let header = r#"<https://acme.okta.com/api/v1/users?limit=200>; rel="self", <https://acme.okta.com/api/v1/users?after=00u2&limit=200>; rel="next""#;
        assert_eq!(
            next_link([header]).as_deref(),
            Some("https://acme.okta.com/api/v1/users?after=00u2&limit=200")
        );
    }

    #[test]
    fn last_page_has_only_self() {
        let header = r#"<https://acme.okta.com/api/v1/users?limit=200>; rel="self""#;
        assert_eq!(next_link([header]), None);
        assert_eq!(next_link(Vec::<&str>::new()), None);
    }

    #[test]
    fn comma_inside_url_and_unquoted_rel() {
        let header = r#"<https://acme.okta.com/api/v1/users?filter=a,b&after=x>;rel=next"#;
        assert_eq!(
            next_link([header]).as_deref(),
            Some("https://acme.okta.com/api/v1/users?filter=a,b&after=x")
        );
    }

    #[test]
    fn malformed_link_yields_none() {
        assert_eq!(
            next_link(["<https://acme.okta.com/api; rel=\"next\""]),
            None
        );
        assert_eq!(next_link(["garbage"]), None);
    }
}

/// A System Log `LogEvent`, only the parts a change hint needs (Okta's System Log API:
/// `uuid`, `published`, `eventType`, `transaction.id`, `target[]` with `id` and `type`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogEventDto {
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub published: String,
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub transaction: Option<LogTransactionDto>,
    #[serde(default)]
    pub target: Option<Vec<LogTargetDto>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LogTransactionDto {
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LogTargetDto {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}
