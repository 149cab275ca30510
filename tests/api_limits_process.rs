//! The API's limits as a process, at the settings a user gets: active overrides per token and
//! per environment, small public answers that name no one, expiry of a thousand overrides at
//! once while `/healthz` keeps answering, failed authentication throttled per client with
//! `Retry-After`, and the security headers of the status page.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::http::exchange;
use crate::support::process::{Process, curfew, run_args, simulated_config, tokens_file};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";
const VIEWER: &str = "vera-token-0123456789";
const OPERATORS: [(&str, &str); 3] = [
    ("otto", "otto-token-0123456789"),
    ("olga", "olga-token-0123456789"),
    ("omar", "omar-token-0123456789"),
];

/// `curfew demo --tokens` with an admin, a viewer of staging-eu and three operators of it.
fn demo(dir: &Path) -> Process {
    let mut tokens = vec![
        ("root", "admin", "['*']", ADMIN),
        ("vera", "viewer", "[staging-eu]", VIEWER),
    ];
    tokens.extend(
        OPERATORS
            .iter()
            .map(|(name, token)| (*name, "operator", "[staging-eu]", *token)),
    );
    let tokens = tokens_file(dir, &tokens);
    let mut command = curfew(["demo", "--listen", "127.0.0.1:0", "--state-dir"]);
    command.arg(dir.join("state")).arg("--tokens").arg(tokens);
    Process::start(command, &dir.join("service.log"))
}

/// One request; the status, the response head and the body.
fn call(
    service: &Process,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    exchange(&service.addr, method, path, &headers, &body)
}

fn create(service: &Process, token: &str, reason: &str) -> (u16, Value) {
    let body =
        json!({"environment": "staging-eu", "state": "up", "duration": "1h", "reason": reason});
    let (status, _, answer) = call(
        service,
        "POST",
        "/api/v1/overrides",
        Some(token),
        Some(body),
    );
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn active_overrides_are_capped_and_public_answers_stay_small_and_name_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let service = demo(dir.path());
    let secret_reason = "private reason of";
    for (name, token) in &OPERATORS[..2] {
        for n in 0..10 {
            let (status, body) = create(&service, token, &format!("{secret_reason} {name} {n}"));
            assert_eq!(status, 201, "{name} #{n}: {body}");
        }
    }
    let (status, body) = create(&service, OPERATORS[0].1, "one more");
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("staging-eu has 20 active overrides, the most allowed"),
        "{detail}"
    );
    let (status, body) = create(&service, OPERATORS[2].1, "a third operator");
    assert_eq!(status, 422, "the environment is full for everyone: {body}");

    let (_, _, public) = call(&service, "GET", "/api/v1/environments", None, None);
    let (_, _, page) = call(&service, "GET", "/", None, None);
    for (what, text) in [("environments", &public), ("status page", &page)] {
        assert!(text.len() < 16 * 1024, "{what} is {} bytes", text.len());
        for secret in [secret_reason, "otto", "olga"] {
            assert!(!text.contains(secret), "{what} shows {secret:?}");
        }
    }
    let public: Value = serde_json::from_str(&public).unwrap();
    assert_eq!(public["environments"][0]["override_count"], 20);
    assert!(page.contains("20 active overrides"), "{page}");
    assert!(
        page.contains("and 15 more"),
        "the page lists the newest five"
    );

    // The viewer of staging-eu sees who and why, as GET /api/v1/overrides shows it.
    let (_, _, scoped) = call(&service, "GET", "/api/v1/environments", Some(VIEWER), None);
    let scoped: Value = serde_json::from_str(&scoped).unwrap();
    let (_, _, listed) = call(&service, "GET", "/api/v1/overrides", Some(VIEWER), None);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        scoped["environments"][0]["overrides"], listed["overrides"],
        "one scope for both"
    );
    assert!(
        scoped["environments"][1]["overrides"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let stored = std::fs::metadata(dir.path().join("state/overrides.json")).unwrap();
    assert!(
        stored.len() < 16 * 1024,
        "overrides.json is {} bytes",
        stored.len()
    );
}

#[test]
fn a_thousand_overrides_ending_together_are_expired_at_once_while_healthz_answers() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(dir.path(), &[("vera", "viewer", "['*']", VIEWER)]);
    let config = simulated_config(dir.path(), &format!("  tokens_file: {}", tokens.display()));
    // Stored before the limits existed, all ending 3 s from now by the service's clock (the
    // system clock, which `run` uses).
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    let stored: Vec<Value> = (0..1000)
        .map(|n| {
            json!({
                "id": format!("{n:012x}"), "environment": "staging", "state": "down",
                "created_at": "2000-01-01T00:00:00Z", "until": until.to_rfc3339(),
                "reason": "x".repeat(400), "created_by": format!("user-{n}")
            })
        })
        .collect();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("overrides.json"),
        Value::from(stored).to_string(),
    )
    .unwrap();
    let service = Process::start(
        curfew(run_args(&config, dir.path())),
        &dir.path().join("service.log"),
    );

    let stored_now = || -> Value {
        serde_json::from_slice(&std::fs::read(state.join("overrides.json")).unwrap()).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut probes = 0;
    while stored_now() != json!([]) {
        let asked = Instant::now();
        let (status, _) = service.get("/healthz");
        assert_eq!(status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "/healthz took {:?}",
            asked.elapsed()
        );
        probes += 1;
        assert!(
            Instant::now() < deadline,
            "after {probes} probes {} overrides are still stored",
            stored_now().as_array().map_or(0, Vec::len)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Only the expiries: the passes after them append entries of their own, which would
    // shift pages of the whole log between two requests.
    let expired: Vec<String> = (0..3)
        .flat_map(|page| {
            let path = format!(
                "/api/v1/audit?event=override_expired&limit=500&offset={}",
                page * 500
            );
            let (_, _, body) = call(&service, "GET", &path, Some(VIEWER), None);
            let body: Value = serde_json::from_str(&body).unwrap();
            body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["target"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = expired.iter().collect();
    assert_eq!(expired.len(), 1000, "each expiry is audited once");
    assert_eq!(distinct.len(), 1000, "each expiry is audited once");
}

#[test]
fn failed_authentication_is_throttled_per_client_and_every_429_says_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let service = demo(dir.path());

    // The page and the API carry the security headers.
    let (_, head, _) = call(&service, "GET", "/", None, None);
    for (name, value) in [
        ("content-security-policy", "default-src 'none'"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert!(
            header(&head, name).is_some_and(|v| v.starts_with(value)),
            "{name} on the status page: {head}"
        );
    }

    // A token over its rate limit (10 a second, bursts of 20) is told when to come back.
    let throttled = (0..40)
        .map(|_| call(&service, "GET", "/api/v1/overrides", Some(ADMIN), None))
        .find(|(status, _, _)| *status == 429)
        .expect("the admin token was throttled");
    assert!(
        header(&throttled.1, "retry-after").is_some(),
        "{}",
        throttled.1
    );

    // Wrong tokens: 401 ten times, then 429 with Retry-After, for the form as well.
    let statuses: Vec<(u16, String)> = (0..14)
        .map(|n| {
            let (status, head, _) = call(
                &service,
                "GET",
                "/api/v1/audit",
                Some(&format!("guess-{n}")),
                None,
            );
            (status, head)
        })
        .collect();
    let codes: Vec<u16> = statuses.iter().map(|(s, _)| *s).collect();
    assert_eq!(&codes[..10], &[401; 10], "{codes:?}");
    assert_eq!(&codes[10..], &[429; 4], "{codes:?}");
    let retry: u64 = header(&statuses[13].1, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=6).contains(&retry), "Retry-After: {retry}");
    let (status, head, page) = exchange(
        &service.addr,
        "POST",
        "/keep-up",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "environment=staging-eu&until=23%3A30&reason=form&token=guess",
    );
    assert_eq!(status, 429, "{page}");
    assert!(header(&head, "retry-after").is_some(), "{head}");
    assert!(
        page.contains("too many failed authentication attempts"),
        "{page}"
    );
    // While this client is throttled even a good token is not looked at.
    let (status, _, _) = call(&service, "GET", "/api/v1/overrides", Some(VIEWER), None);
    assert_eq!(status, 429);
}
