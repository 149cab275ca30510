//! Headers on every answer: a strict content security policy and its companions (the status
//! page loads nothing but its own stylesheet and posts only to itself), and `Retry-After` on
//! every 429.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

/// No scripts, no frames, no foreign anything: the page's own stylesheet and form only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every answer carries.
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Middleware: adds the security headers, and `Retry-After: 1` to a 429 that names no wait.
pub async fn secure(mut response: Response) -> Response {
    let too_many = response.status() == StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if too_many && !headers.contains_key(header::RETRY_AFTER) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
