//! Injectable faults for the fakes: a middleware that, for requests matching a method and
//! path prefix, answers 429 or 503 with the API's own error body, answers a malformed or
//! truncated body, or answers late. Every request is recorded with the status it got.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which API's error body a fault answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Okta,
    RingCentral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// 429 with `Retry-After` (seconds) and the API's rate-limit error.
    TooManyRequests { retry_after: u64 },
    /// 503 with the API's "service unavailable" error.
    Unavailable,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with `Content-Type: text/html` and an HTML body, as a proxy error page would.
    WrongContentType,
    /// Handles the request at once but answers only after this long.
    Slow(Duration),
    /// Answers with this status and JSON body (an API error of the test's choosing).
    Error { status: u16, body: String },
    /// Handles the request, then sends a response whose body stops short of its declared
    /// length: the connection closes mid-body, as with a reset or a dying proxy.
    Truncated,
    /// Handles the request (the work is done), then a gateway answers 502 with its own HTML
    /// page: the client sees a 5xx although the change landed.
    DoneThen5xx,
    /// Handles the request (the work is done), then never answers: the client gives up on
    /// its timeout, as when a gateway drops the answer.
    DoneThenSilence,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_prefix: String,
    pub kind: FaultKind,
    /// How many matching requests it affects.
    pub times: u32,
}

impl Fault {
    pub fn new(method: &str, path_prefix: &str, kind: FaultKind, times: u32) -> Fault {
        Fault {
            method: method.into(),
            path_prefix: path_prefix.into(),
            kind,
            times,
        }
    }
}

#[derive(Debug)]
pub struct FaultState {
    pub dialect: Dialect,
    pub faults: Vec<Fault>,
    /// Every request, `(method, path, status, when it arrived)`, in arrival order.
    pub log: Vec<(String, String, u16, std::time::Instant)>,
}

pub type Faults = Arc<Mutex<FaultState>>;

pub fn new(dialect: Dialect) -> Faults {
    Arc::new(Mutex::new(FaultState {
        dialect,
        faults: Vec::new(),
        log: Vec::new(),
    }))
}

/// Whether `path` is `prefix` or lies under it, whole path segments only: the prefix
/// `.../extension` takes `.../extension/62001` but not `.../extension-bulk-update`.
pub fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
}

fn take(faults: &Faults, method: &str, path: &str) -> Option<(FaultKind, Dialect)> {
    let mut st = faults.lock().unwrap_or_else(|e| e.into_inner());
    let dialect = st.dialect;
    let f = st
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method && under(path, &f.path_prefix))?;
    f.times -= 1;
    Some((f.kind.clone(), dialect))
}

fn error_body(dialect: Dialect, status: StatusCode) -> serde_json::Value {
    match (dialect, status.as_u16()) {
        (Dialect::Okta, 429) => serde_json::json!({
            "errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests.",
            "errorLink": "E0000047", "errorId": "oaefault", "errorCauses": []}),
        (Dialect::Okta, _) => serde_json::json!({
            "errorCode": "E0000009", "errorSummary": "Internal Server Error",
            "errorLink": "E0000009", "errorId": "oaefault", "errorCauses": []}),
        (Dialect::RingCentral, 429) => serde_json::json!({
            "errorCode": "CMN-301", "message": "Request rate exceeded",
            "errors": [{"errorCode": "CMN-301", "message": "Request rate exceeded"}]}),
        (Dialect::RingCentral, _) => serde_json::json!({
            "errorCode": "CMN-201", "message": "Service Temporary Unavailable",
            "errors": [{"errorCode": "CMN-201", "message": "Service Temporary Unavailable"}]}),
    }
}

pub async fn layer(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let arrived = std::time::Instant::now();
    let resp = match take(&faults, &method, &path) {
        None => next.run(req).await,
        Some((FaultKind::Slow(d), _)) => {
            // Processed at once, answered late: a client that gives up has still changed
            // the server's state, as with a real slow server.
            let resp = next.run(req).await;
            tokio::time::sleep(d).await;
            resp
        }
        Some((FaultKind::TooManyRequests { retry_after }, dialect)) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(error_body(dialect, StatusCode::TOO_MANY_REQUESTS)),
            )
                .into_response();
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after));
            if dialect == Dialect::Okta {
                let reset = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    + retry_after;
                r.headers_mut()
                    .insert("x-rate-limit-remaining", HeaderValue::from(0u64));
                r.headers_mut()
                    .insert("x-rate-limit-reset", HeaderValue::from(reset));
            }
            r
        }
        Some((FaultKind::Unavailable, dialect)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(error_body(dialect, StatusCode::SERVICE_UNAVAILABLE)),
        )
            .into_response(),
        Some((FaultKind::Malformed, _)) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from("{\"records\": [ {\"id\": 1, \"contact\": "))
            .unwrap_or_default(),
        Some((FaultKind::Truncated, _)) => {
            let _ = next.run(req).await;
            // The body's stream fails after its first chunk: the server drops the connection
            // with the body unfinished.
            let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
                Ok(axum::body::Bytes::from_static(b"{\"records\": [")),
                Err(std::io::Error::other("connection reset by the fake")),
            ];
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap_or_default()
        }
        Some((FaultKind::DoneThen5xx, _)) => {
            let _ = next.run(req).await;
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .header("content-type", "text/html")
                .body(Body::from(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                ))
                .unwrap_or_default()
        }
        Some((FaultKind::DoneThenSilence, _)) => {
            let _ = next.run(req).await;
            // The connection stays open and silent until the client hangs up (which drops
            // this future).
            std::future::pending::<()>().await;
            Response::default()
        }
        Some((FaultKind::Error { status, body }, _)) => Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap_or_default(),
        Some((FaultKind::WrongContentType, _)) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .body(Body::from("<html><body>Gateway says hello</body></html>"))
            .unwrap_or_default(),
    };
    faults.lock().unwrap_or_else(|e| e.into_inner()).log.push((
        method,
        path,
        resp.status().as_u16(),
        arrived,
    ));
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_takes_whole_path_segments_only() {
        use super::under;
        assert!(under("/a/extension", "/a/extension"));
        assert!(under("/a/extension/62001", "/a/extension"));
        assert!(under("/a/extension/62001", "/a/extension/"));
        assert!(!under("/a/extension-bulk-update", "/a/extension"));
        assert!(!under("/a/ext", "/a/extension"));
    }
}
