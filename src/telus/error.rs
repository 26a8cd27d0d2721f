//! The TELUS client's typed errors, what each means for an admin (by RingCentral's error
//! code), and the error a refused request's body names.

use super::wire::ErrorDto;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("telus {endpoint}: {message}")]
    Network { endpoint: String, message: String },
    /// No answer in time: the request may or may not have been processed.
    #[error("telus {endpoint}: timed out")]
    Timeout { endpoint: String },
    /// The connection failed after the request was sent (reset, body cut short): the
    /// request may or may not have been processed.
    #[error("telus {endpoint}: connection lost after sending: {message}")]
    Interrupted { endpoint: String, message: String },
    #[error("telus {endpoint}: HTTP {status} {code}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
        parameter: Option<String>,
        /// The `parameterName`s of the body's further `errors` items with their code and
        /// message: a bulk request refused for several records names each.
        also: Vec<(String, String, String)>,
    },
    /// A write that is not safe to repeat (a create) drew a 5xx: a gateway may answer so
    /// after the work was done, so its outcome is unknown until the next read.
    #[error(
        "telus {endpoint}: HTTP {status} after sending; the outcome is checked on the next read"
    )]
    Unconfirmed {
        endpoint: String,
        status: u16,
        /// The `errorCode` of RingCentral's JSON error body, when the answer carried one
        /// (`CMN-201`), else empty.
        code: String,
    },
    #[error("telus {endpoint}: request rate exceeded (CMN-301) after waiting")]
    RateLimited { endpoint: String },
    /// The request could not be built here (a custom field the account does not have): it
    /// was never sent, so it is not a server's error.
    #[error("telus {endpoint}: not sent: {message}")]
    Unsendable { endpoint: String, message: String },
    #[error("telus {endpoint}: unreadable response: {message}")]
    Decode { endpoint: String, message: String },
    #[error("telus {endpoint}: {message}")]
    Paging { endpoint: String, message: String },
    #[error("telus authentication failed: HTTP {status} {code}: {message}")]
    Auth {
        status: u16,
        code: String,
        message: String,
    },
}

impl Error {
    /// A request that got no answer, as this API's error.
    pub fn no_answer(endpoint: &str, failure: crate::http::NoAnswer) -> Error {
        let endpoint = endpoint.to_string();
        match failure {
            crate::http::NoAnswer::Timeout => Error::Timeout { endpoint },
            crate::http::NoAnswer::Connect(message) => Error::Network { endpoint, message },
            crate::http::NoAnswer::Interrupted(message) => Error::Interrupted { endpoint, message },
        }
    }

    /// For a write: whether it may have been processed although no readable answer came
    /// back (then it is settled against a fresh read, not sent again blindly).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::Interrupted { .. }
                | Error::Decode { .. }
                | Error::Unconfirmed { .. }
        )
    }

    /// The whole system is unusable this pass.
    pub fn is_systemic(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 401 || *status >= 500,
            Error::Timeout { .. } | Error::Unconfirmed { .. } | Error::Unsendable { .. } => false,
            Error::Interrupted { .. } => true,
            Error::Network { .. }
            | Error::RateLimited { .. }
            | Error::Decode { .. }
            | Error::Paging { .. }
            | Error::Auth { .. } => true,
        }
    }

    /// The account or app refuses bulk updates as such (the spec marks the endpoint
    /// `x-availability: Limited`): a 403, a 404, or a feature-unavailable code. Per-user
    /// writes are the way then.
    pub fn refuses_bulk(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => {
                matches!(status, 403 | 404) || code.eq_ignore_ascii_case("FeatureNotAvailable")
            }
            _ => false,
        }
    }

    /// The records a refused bulk request names (`parameterName` `records[N]...`, in each
    /// of its `errors`), each with an error of its own.
    pub fn bulk_record_errors(&self) -> Vec<(usize, Error)> {
        let Error::Api {
            endpoint,
            status: 400,
            code,
            message,
            parameter: Some(p),
            also,
        } = self
        else {
            return Vec::new();
        };
        let index = |p: &str| -> Option<usize> {
            let rest = p.strip_prefix("records[")?;
            rest[..rest.find(']')?].parse().ok()
        };
        std::iter::once((code, message, p))
            .chain(also.iter().map(|(c, m, p)| (c, m, p)))
            .filter_map(|(code, message, p)| {
                let i = index(p)?;
                Some((
                    i,
                    Error::Api {
                        endpoint: endpoint.clone(),
                        status: 400,
                        code: code.clone(),
                        message: message.clone(),
                        parameter: Some(p.clone()),
                        also: Vec::new(),
                    },
                ))
            })
            .collect()
    }

    /// The field a 400 names as invalid (`parameterName` such as `contact.email`, or
    /// `records[3].contact.email` in a bulk request refused for one record's value).
    pub fn invalid_field(&self) -> Option<&str> {
        match self {
            Error::Api {
                status: 400,
                parameter: Some(p),
                code,
                ..
            } if code.starts_with("CMN-1") => match p.strip_prefix("records[") {
                Some(rest) => rest.split_once("].").map(|(_, field)| field),
                None => Some(p),
            },
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. }
            | Error::Auth { code, .. }
            | Error::Unconfirmed { code, .. }
                if !code.is_empty() =>
            {
                Some(code)
            }
            Error::RateLimited { .. } => Some("CMN-301"),
            _ => None,
        }
    }

    /// The admin-facing explanation (DESIGN.md's table).
    pub fn explanation(&self) -> String {
        match self {
            Error::Api {
                status,
                code,
                message,
                parameter,
                ..
            } => explain(*status, code, message, parameter.as_deref()),
            Error::RateLimited { .. } => {
                "TELUS request rate exceeded; the change will be retried.".into()
            }
            Error::Unconfirmed { status, code, .. } if !code.is_empty() => {
                explain(*status, code, "", None)
            }
            Error::Auth { .. } => "TELUS authentication failed: check telus.client_id, client_secret and jwt (or run `auth telus`).".into(),
            Error::Unsendable { message, .. } => format!(
                "Not sent to TELUS: {message}. Check the mapping row and the account's custom fields (`schema`)."
            ),
            other => other.to_string(),
        }
    }
}

/// Maps a RingCentral error to what an identity admin should read.
pub fn explain(status: u16, code: &str, message: &str, parameter: Option<&str>) -> String {
    let param = parameter.unwrap_or("value");
    let lower = message.to_ascii_lowercase();
    if lower.contains("extension") && (lower.contains("already") || lower.contains("in use")) {
        return "Extension already in use: see which extensions are free in the TELUS portal."
            .into();
    }
    match code {
        "CMN-101" => {
            format!("The [{param}] is invalid. Please correct the value in Okta/Active Directory.")
        }
        "CMN-102" => format!(
            "Resource for parameter [{param}] is not found: the value is missing in Okta/Active Directory."
        ),
        "CMN-103" => {
            "JSON can not be parsed. Check the user's data in Okta/Active Directory.".into()
        }
        "CMN-201" => "Service temporarily unavailable; will retry.".into(),
        "CMN-301" => "TELUS request rate exceeded; the change will be retried.".into(),
        _ if status == 503 => "Service temporarily unavailable; will retry.".into(),
        _ if code.starts_with("OAU-") => format!(
            "TELUS rejected the credentials ({code}): check the app's client id, secret and JWT."
        ),
        _ => format!("TELUS answered {status} {code}: {message}"),
    }
}

/// A refused request's error, from RingCentral's error body (`errors[0]`, else the top-level
/// `errorCode`/`message`).
pub(super) async fn api_error(endpoint: &str, resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let body = crate::http::read_capped(resp).await.unwrap_or_default();
    let dto: ErrorDto = serde_json::from_slice(&body).unwrap_or_default();
    let mut errors = dto.errors.into_iter();
    let first = errors.next();
    let also = errors
        .filter_map(|e| {
            Some((
                e.error_code.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.parameter_name?,
            ))
        })
        .collect();
    Error::Api {
        endpoint: endpoint.to_string(),
        status,
        code: first
            .as_ref()
            .and_then(|e| e.error_code.clone())
            .or(dto.error_code)
            .unwrap_or_default(),
        message: first
            .as_ref()
            .and_then(|e| e.message.clone())
            .or(dto.message)
            .unwrap_or_default(),
        parameter: first.and_then(|e| e.parameter_name),
        also,
    }
}
