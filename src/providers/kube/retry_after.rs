//! Keeps the API server's `Retry-After` for the provider's retry layer.
//!
//! The provider's client does not retry (the reconciler does, see [`super::ClientRetries`]),
//! and the client turns an error response into a `Status` without its headers. A busy API
//! server answers 429 with a `Retry-After` header and often a plain-text body (API Priority
//! and Fairness does), so the wait it asks for would be lost. This response hook copies the
//! header into the `Status` body's `details.retryAfterSeconds`, where
//! [`super::provider::provider_error`] reads it.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use kube::client::DynBody;
use serde_json::{Value, json};
use tower::BoxError;

/// The largest error body rewritten; a longer one passes unchanged.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What the client's service stack answers.
pub type Answer = Result<Response<Box<DynBody>>, BoxError>;

/// Wraps a response future: an error response that carries `Retry-After` gets the same wait
/// in its `Status` body.
pub fn carry(response: BoxFuture<'static, Answer>) -> BoxFuture<'static, Answer> {
    Box::pin(async move {
        let response = response.await?;
        let status = response.status();
        let Some(seconds) = retry_after_seconds(response.headers()) else {
            return Ok(response);
        };
        if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        let rewritten = if bytes.len() > MAX_ERROR_BODY {
            bytes
        } else {
            Bytes::from(with_retry_after(&bytes, status, seconds).to_string())
        };
        let body: Box<DynBody> = Box::new(Full::new(rewritten).map_err(|never| match never {}));
        let mut response = Response::from_parts(parts, body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response.headers_mut().remove(header::CONTENT_LENGTH);
        Ok(response)
    })
}

/// The delay of a `Retry-After` header in seconds (the HTTP-date form is not used by the
/// API server and is ignored).
fn retry_after_seconds(headers: &HeaderMap) -> Option<u32> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The error body as a `Status` with `details.retryAfterSeconds`: a `Status` keeps what it
/// says (and its own wait, when it names one); any other body becomes the message.
fn with_retry_after(body: &[u8], status: StatusCode, seconds: u32) -> Value {
    let mut parsed = match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.get("kind").and_then(Value::as_str) == Some("Status") => value,
        _ => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": status.canonical_reason().unwrap_or_default().replace(' ', ""),
            "code": status.as_u16(),
        }),
    };
    let details = &mut parsed["details"];
    if details
        .get("retryAfterSeconds")
        .and_then(Value::as_u64)
        .is_none_or(|s| s == 0)
    {
        if !details.is_object() {
            *details = json!({});
        }
        details["retryAfterSeconds"] = json!(seconds);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_text_429_becomes_a_status_with_the_wait_it_asked_for() {
        let status = with_retry_after(
            b"Too many requests, please try again later.\n",
            StatusCode::TOO_MANY_REQUESTS,
            3,
        );
        assert_eq!(status["code"], 429);
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(
            status["message"],
            "Too many requests, please try again later."
        );
        assert_eq!(status["details"]["retryAfterSeconds"], 3);
    }

    #[test]
    fn a_status_body_keeps_its_message_and_its_own_wait() {
        let body = json!({"kind": "Status", "code": 429, "message": "slow down",
            "details": {"retryAfterSeconds": 7}});
        let status = with_retry_after(
            body.to_string().as_bytes(),
            StatusCode::TOO_MANY_REQUESTS,
            1,
        );
        assert_eq!(status["message"], "slow down");
        assert_eq!(status["details"]["retryAfterSeconds"], 7);
        let body = json!({"kind": "Status", "code": 503, "message": "later"});
        let status = with_retry_after(
            body.to_string().as_bytes(),
            StatusCode::SERVICE_UNAVAILABLE,
            2,
        );
        assert_eq!(status["details"]["retryAfterSeconds"], 2);
    }

    #[test]
    fn only_a_delay_in_seconds_is_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after_seconds(&headers), None);
        headers.insert(header::RETRY_AFTER, "4".parse().unwrap());
        assert_eq!(retry_after_seconds(&headers), Some(4));
        headers.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_seconds(&headers), None);
    }
}
