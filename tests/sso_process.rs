//! Single sign-on through a trusted authenticating proxy, through the real binary: identity
//! headers count only from `trusted_sources` (here 127.0.0.2; the test's other requests come
//! from 127.0.0.1), a person acts with the role of their entry, the audit log names them, and
//! the status page's form asks them for no token.

use std::net::SocketAddr;
use std::path::Path;

use crate::support::process::{Process, curfew, run_args, simulated_config};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const TRUSTED: &str = "127.0.0.2";
const UNTRUSTED: &str = "127.0.0.1";

/// The proxy's identity headers for Ada, of group `platform`.
const ADA: &[(&str, &str)] = &[
    ("X-Forwarded-User", "1029384756"),
    ("X-Forwarded-Email", "ada@example.com"),
    ("X-Forwarded-Groups", "everyone,platform"),
];

/// `curfew run` trusting identity headers from 127.0.0.2 only; group `platform` operates
/// staging, and nobody else has a role.
fn start(dir: &Path) -> Process {
    let config = simulated_config(
        dir,
        &format!(
            "  auth:\n    proxy:\n      trusted_sources: [{TRUSTED}/32]\n      groups: [{{ name: platform, role: operator, environments: [staging] }}]\n"
        ),
    );
    Process::start(curfew(run_args(&config, dir)), &dir.join("curfew.log"))
}

/// One HTTP/1.0 request to `addr` from source address `from`, with `headers` and `body`:
/// the status and the body.
fn send_from(
    from: &str,
    addr: &str,
    request: (&str, &str),
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (method, path) = request;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let source: SocketAddr = format!("{from}:0").parse().unwrap();
    let target: SocketAddr = addr.parse().unwrap();
    let response = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind(source).unwrap();
            let mut stream = socket.connect(target).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        });
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// `headers` with a JSON content type.
fn json_headers<'a>(headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = headers.to_vec();
    all.push(("Content-Type", "application/json"));
    all
}

const KEEP_UP: &str =
    r#"{"environment": "staging", "state": "up", "duration": "1h", "reason": "sso check"}"#;

#[test]
fn identity_headers_count_only_from_the_trusted_proxy_and_the_audit_log_names_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path());
    let create = ("POST", "/api/v1/overrides");

    let (status, body) = send_from(
        UNTRUSTED,
        &service.addr,
        create,
        &json_headers(ADA),
        KEEP_UP,
    );
    assert_eq!(
        status, 401,
        "the same headers from elsewhere are ignored: {body}"
    );

    let (status, body) = send_from(TRUSTED, &service.addr, create, &json_headers(ADA), KEEP_UP);
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["created_by"], "ada@example.com");

    let stranger = [
        ("X-Forwarded-User", "mallory"),
        ("X-Forwarded-Groups", "everyone"),
    ];
    let (status, body) = send_from(
        TRUSTED,
        &service.addr,
        create,
        &json_headers(&stranger),
        KEEP_UP,
    );
    assert_eq!(status, 403, "signed in, but no role: {body}");
    assert!(body.contains("mallory"), "{body}");

    let (status, body) = send_from(TRUSTED, &service.addr, ("GET", "/api/v1/audit"), ADA, "");
    assert_eq!(status, 200, "{body}");
    let audit: Value = serde_json::from_str(&body).unwrap();
    let created = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["reason"] == "sso check")
        .unwrap_or_else(|| panic!("no audit entry: {audit}"));
    assert_eq!(created["actor"], "ada@example.com", "{created}");
}

#[test]
fn the_page_asks_a_signed_in_person_for_no_token_and_their_form_keeps_staging_up() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path());

    let form_page = ("GET", "/keep-up?environment=staging");
    let (status, page) = send_from(TRUSTED, &service.addr, form_page, ADA, "");
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/keep-up\""), "{page}");
    assert!(
        !page.contains("type=\"password\""),
        "no token field: {page}"
    );
    assert!(page.contains("Acting as ada@example.com"), "{page}");
    let (_, page) = send_from(UNTRUSTED, &service.addr, form_page, ADA, "");
    assert!(
        page.contains("type=\"password\""),
        "a token field elsewhere"
    );

    let mut form = ADA.to_vec();
    form.push(("Content-Type", "application/x-www-form-urlencoded"));
    let fields = "environment=staging&until=23%3A59&reason=from+the+page";
    let keep_up = ("POST", "/keep-up");
    let (status, body) = send_from(UNTRUSTED, &service.addr, keep_up, &form, fields);
    assert_eq!(status, 401, "{body}");
    // Another site's form would carry the person's sign-in too: the browser says where it
    // came from, and curfew refuses it.
    for (name, value) in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "https://elsewhere.example"),
    ] {
        let mut forged = form.clone();
        forged.push((name, value));
        let (status, body) = send_from(TRUSTED, &service.addr, keep_up, &forged, fields);
        assert_eq!(status, 403, "{name}: {body}");
    }
    let mut same_site = form.clone();
    same_site.push(("Sec-Fetch-Site", "same-origin"));
    let (status, body) = send_from(TRUSTED, &service.addr, keep_up, &same_site, fields);
    assert_eq!(status, 303, "{body}");

    let (_, body) = send_from(
        TRUSTED,
        &service.addr,
        ("GET", "/api/v1/overrides"),
        ADA,
        "",
    );
    let list: Value = serde_json::from_str(&body).unwrap();
    let overrides = list["overrides"].as_array().unwrap();
    assert_eq!(overrides.len(), 1, "{list}");
    assert_eq!(overrides[0]["created_by"], "ada@example.com");
    assert_eq!(overrides[0]["reason"], "from the page");
}
