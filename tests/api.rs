//! The HTTP API in process: authentication, roles and scopes, override policy, cancelling,
//! error bodies, limits, the audit log and plans.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use curfew::api::{self, Tokens, auth::sha256_hex};
use curfew::audit::AuditLog;
use curfew::clock::ManualClock;
use curfew::config::Config;
use curfew::overrides::{FileOverrideStore, OverrideStore};
use curfew::reconciler::SharedStatus;
use curfew::state::StateDir;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

const CONFIG: &str = r#"
timezone: Europe/Berlin
schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office
    overrides: { max_duration: 12h }
  qa:
    schedule: office
server:
  body_limit_bytes: 2048
  rate_limit: { per_second: 1, burst: 30 }
"#;

/// Saturday noon in Berlin: the calendar says down.
const SATURDAY: &str = "2026-12-05T11:00:00Z";

fn tokens(config: &Config) -> Tokens {
    let yaml = format!(
        "tokens:\n\
         - {{ name: vera, role: viewer, environments: [staging], sha256: {} }}\n\
         - {{ name: otto, role: operator, environments: [staging], sha256: {} }}\n\
         - {{ name: olga, role: operator, environments: ['*'], sha256: {} }}\n\
         - {{ name: root, role: admin, environments: ['*'], sha256: {} }}\n",
        sha256_hex("vera-token"),
        sha256_hex("otto-token"),
        sha256_hex("olga-token"),
        sha256_hex("root-token"),
    );
    Tokens::from_yaml(&yaml, Path::new("tokens.yaml"), config).unwrap()
}

struct Harness {
    app: Router,
    clock: Arc<ManualClock>,
    trigger: Arc<Notify>,
    overrides: Arc<FileOverrideStore>,
    audit: Arc<AuditLog>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    harness_with(CONFIG)
}

fn harness_with(config: &str) -> Harness {
    let config = Arc::new(Config::from_yaml(config, Path::new("api.yaml")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let overrides = Arc::new(FileOverrideStore::open(state_dir.clone()).unwrap());
    let audit = Arc::new(AuditLog::open(state_dir).unwrap());
    let clock = Arc::new(ManualClock::new(utc(SATURDAY)));
    let trigger = Arc::new(Notify::new());
    let app = api::router(crate::support::api_state(
        config.clone(),
        SharedStatus::default(),
        clock.clone(),
        overrides.clone(),
        audit.clone(),
        trigger.clone(),
        tokens(&config),
    ));
    Harness {
        app,
        clock,
        trigger,
        overrides,
        audit,
        _dir: dir,
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

impl Harness {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Body::from(body.unwrap_or_default())).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            assert!(
                value["error"].is_string() && value["detail"].is_string(),
                "{method} {uri}: error {status} without a JSON error body: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        (status, value)
    }

    async fn create(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/api/v1/overrides",
            Some(token),
            Some(body.to_string()),
        )
        .await
    }

    /// The environment as an admin sees it.
    async fn environment(&self, name: &str) -> Value {
        let (status, list) = self
            .call("GET", "/api/v1/environments", Some("root-token"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        list["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap()
    }
}

fn keep_up(environment: &str, duration: &str) -> Value {
    json!({"environment": environment, "state": "up", "duration": duration, "reason": "release rehearsal"})
}

#[tokio::test]
async fn environments_need_no_token_but_overrides_and_audit_do() {
    let h = harness();
    assert_eq!(
        h.call("GET", "/api/v1/environments", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        h.call("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    for uri in ["/api/v1/overrides", "/api/v1/audit"] {
        assert_eq!(
            h.call("GET", uri, None, None).await.0,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        let (status, body) = h.call("GET", uri, Some("guess"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(
            h.call("GET", uri, Some("vera-token"), None).await.0,
            StatusCode::OK,
            "{uri}"
        );
    }
    let (status, _) = h.create("nobody", keep_up("staging", "1h")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_override_answers_201_wakes_the_reconciler_and_is_audited() {
    let h = harness();
    let (status, created) = h.create("otto-token", keep_up("staging", "3h")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["created_by"], "otto");
    assert_eq!(
        utc(created["until"].as_str().unwrap()),
        utc(SATURDAY) + Duration::hours(3)
    );
    tokio::time::timeout(StdDuration::from_secs(2), h.trigger.notified())
        .await
        .expect("creating an override must trigger a reconcile");
    let staging = h.environment("staging").await;
    assert_eq!(staging["state"], "up");
    assert_eq!(staging["override_id"], id.as_str());
    assert_eq!(staging["overrides"][0]["reason"], "release rehearsal");
    assert!(staging["cost_per_hour"].is_null());
    let entries = h.audit.page(0, 10, |_| true);
    assert_eq!(entries[0].event, "override_created");
    assert_eq!(entries[0].actor, "otto");
    assert_eq!(entries[0].before.as_deref(), Some("down"));
    assert!(entries[0].after.as_deref().unwrap().starts_with("up until"));
    assert_eq!(h.overrides.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn override_policy_violations_are_422_and_admins_may_exceed_max_duration() {
    let h = harness();
    let past = (utc(SATURDAY) - Duration::minutes(1)).to_rfc3339();
    let cases = [
        keep_up("staging", "13h"),
        json!({"environment": "staging", "state": "up", "until": past, "reason": "late"}),
        json!({"environment": "staging", "state": "up", "until": "2026-12-05T20:00:00Z", "duration": "1h", "reason": "both"}),
        json!({"environment": "staging", "state": "up", "reason": "neither"}),
        json!({"environment": "staging", "state": "up", "duration": "1h", "reason": "  "}),
        json!({"environment": "staging", "state": "up", "duration": "soon", "reason": "bad"}),
        json!({"environment": "staging", "state": "up", "duration": "1h", "reason": "x".repeat(501)}),
    ];
    for body in cases {
        let (status, answer) = h.create("otto-token", body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {answer}"
        );
    }
    let (status, _) = h.create("otto-token", keep_up("prod", "1h")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, created) = h.create("root-token", keep_up("staging", "13h")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        h.overrides.list().await.unwrap().len() == 1,
        "nothing half-applied"
    );
}

#[tokio::test]
async fn viewers_and_operators_outside_their_scope_get_403() {
    let h = harness();
    let (status, body) = h.create("vera-token", keep_up("staging", "1h")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
    let (status, _) = h.create("otto-token", keep_up("qa", "1h")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.create("olga-token", keep_up("qa", "1h")).await;
    assert_eq!(status, StatusCode::CREATED);
    // Otto sees only staging's overrides.
    let (_, list) = h
        .call("GET", "/api/v1/overrides", Some("otto-token"), None)
        .await;
    assert_eq!(list["overrides"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn operators_cancel_only_their_own_overrides_and_admins_cancel_anyones() {
    let h = harness();
    let (_, by_olga) = h.create("olga-token", keep_up("staging", "1h")).await;
    let olga_id = by_olga["id"].as_str().unwrap();
    let uri = format!("/api/v1/overrides/{olga_id}");
    assert_eq!(
        h.call("DELETE", &uri, Some("otto-token"), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.call("DELETE", &uri, Some("vera-token"), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, cancelled) = h.call("DELETE", &uri, Some("root-token"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["id"], olga_id);
    assert_eq!(
        h.call("DELETE", &uri, Some("root-token"), None).await.0,
        StatusCode::NOT_FOUND
    );

    let (_, by_otto) = h.create("otto-token", keep_up("staging", "1h")).await;
    let uri = format!("/api/v1/overrides/{}", by_otto["id"].as_str().unwrap());
    assert_eq!(
        h.call("DELETE", &uri, Some("otto-token"), None).await.0,
        StatusCode::OK
    );
    let cancelled = h.audit.page(0, 10, |e| e.event == "override_cancelled");
    assert_eq!(cancelled.len(), 2);
    assert_eq!(cancelled[0].actor, "otto");
    assert_eq!(cancelled[1].actor, "root");
}

#[tokio::test]
async fn a_new_override_extends_and_cancelling_returns_to_the_calendar_at_once() {
    let h = harness();
    let (_, first) = h.create("otto-token", keep_up("staging", "1h")).await;
    h.clock.advance(Duration::minutes(1));
    let (_, second) = h.create("otto-token", keep_up("staging", "5h")).await;
    let staging = h.environment("staging").await;
    assert_eq!(staging["override_id"], second["id"]);
    h.clock.advance(Duration::hours(2));
    let staging = h.environment("staging").await;
    assert_eq!(
        staging["state"], "up",
        "the newer, longer override still holds"
    );
    let uri = format!("/api/v1/overrides/{}", second["id"].as_str().unwrap());
    assert_eq!(
        h.call("DELETE", &uri, Some("otto-token"), None).await.0,
        StatusCode::OK
    );
    let staging = h.environment("staging").await;
    assert_eq!(staging["state"], "down");
    assert!(staging["override_id"].is_null());
    assert!(first["id"].is_string());
}

#[tokio::test]
async fn an_override_ends_at_its_until_and_the_calendar_decides_again() {
    let h = harness();
    h.create("otto-token", keep_up("staging", "2h")).await;
    h.clock.advance(Duration::hours(2) - Duration::seconds(1));
    assert_eq!(h.environment("staging").await["state"], "up");
    h.clock.advance(Duration::seconds(1));
    assert_eq!(h.environment("staging").await["state"], "down");
    let (_, list) = h
        .call("GET", "/api/v1/overrides", Some("otto-token"), None)
        .await;
    assert!(list["overrides"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_json_is_400_an_oversized_body_413_and_both_answer_json() {
    let h = harness();
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/overrides",
            Some("otto-token"),
            Some("{\"environment\":".into()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request");
    let huge = json!({"environment": "staging", "state": "up", "duration": "1h", "reason": "x".repeat(4096)});
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/overrides",
            Some("otto-token"),
            Some(huge.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");
    let (status, _) = h
        .call(
            "POST",
            "/api/v1/overrides",
            Some("otto-token"),
            Some("{\"environment\": 5}".into()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = h
        .call("PUT", "/api/v1/overrides", Some("otto-token"), None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_a_json_body() {
    let h = harness();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(
            h.call("GET", "/api/v1/overrides", Some("vera-token"), None)
                .await
                .0,
        );
    }
    assert!(statuses[..25].iter().all(|s| *s == StatusCode::OK));
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
    let request = Request::get("/api/v1/overrides")
        .header(header::AUTHORIZATION, "Bearer vera-token")
        .body(Body::empty())
        .unwrap();
    let refused = h.app.clone().oneshot(request).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers()[header::RETRY_AFTER],
        "1",
        "one request a second comes back within a second"
    );
    // Another token is not affected.
    assert_eq!(
        h.call("GET", "/api/v1/overrides", Some("otto-token"), None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_within_the_callers_scope() {
    let h = harness();
    for hours in ["1h", "2h", "3h"] {
        h.create("olga-token", keep_up("staging", hours)).await;
    }
    h.create("olga-token", keep_up("qa", "1h")).await;
    let (status, page) = h
        .call(
            "GET",
            "/api/v1/audit?offset=1&limit=2",
            Some("root-token"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 4);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    // People read the end in the environment's local time, to the minute, with the zone.
    assert_eq!(
        entries[0]["after"], "up until Sat 2026-12-05 15:00 CET",
        "{page}"
    );
    assert_eq!(entries[0]["at"], "2026-12-05T11:00:00Z", "{page}");
    let (_, scoped) = h
        .call("GET", "/api/v1/audit", Some("vera-token"), None)
        .await;
    assert_eq!(scoped["total"], 3, "vera sees staging only");
    assert_eq!(
        h.call("GET", "/api/v1/audit?limit=0", Some("root-token"), None)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        h.call("GET", "/api/v1/audit?limit=x", Some("root-token"), None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_plan_endpoint_lists_transitions_and_rejects_bad_spans() {
    let h = harness();
    let (status, plan) = h
        .call(
            "GET",
            "/api/v1/environments/staging/plan?from=2026-12-07T00:00:00Z&to=2026-12-08T00:00:00Z",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let transitions = plan["transitions"].as_array().unwrap();
    assert_eq!(transitions.len(), 2);
    assert_eq!(transitions[0]["at"], "2026-12-07T06:00:00Z");
    assert_eq!(transitions[0]["direction"], "up");
    let (status, _) = h
        .call(
            "GET",
            "/api/v1/environments/staging/plan?from=2026-12-08T00:00:00Z&to=2026-12-07T00:00:00Z",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = h
        .call("GET", "/api/v1/environments/prod/plan", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .call(
            "GET",
            "/api/v1/environments/staging/plan?from=yesterday",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let h = harness();
    let (status, document) = h.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
}

#[tokio::test]
async fn without_a_token_environments_show_state_and_counts_but_not_who_or_why() {
    let h = harness();
    let (_, created) = h.create("otto-token", keep_up("staging", "3h")).await;
    h.create("olga-token", keep_up("qa", "1h")).await;
    let (status, public) = h.call("GET", "/api/v1/environments", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = public.to_string();
    for secret in [
        "release rehearsal",
        "otto",
        "olga",
        created["id"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "{secret} is public: {text}");
    }
    let staging = &public["environments"][0];
    assert_eq!(staging["state"], "up");
    assert_eq!(staging["override_count"], 1);
    assert!(staging["overrides"].as_array().unwrap().is_empty());
    assert!(
        staging["reason"]
            .as_str()
            .unwrap()
            .starts_with("override until Sat 2026-12-05 15:00 CET"),
        "{staging}"
    );

    // A viewer of staging sees staging's overrides, not qa's.
    let (_, scoped) = h
        .call("GET", "/api/v1/environments", Some("vera-token"), None)
        .await;
    let (staging, qa) = (&scoped["environments"][0], &scoped["environments"][1]);
    assert_eq!(staging["overrides"][0]["reason"], "release rehearsal");
    assert_eq!(staging["override_id"], created["id"]);
    assert!(staging["reason"].as_str().unwrap().contains("by otto"));
    assert_eq!(qa["override_count"], 1);
    assert!(qa["overrides"].as_array().unwrap().is_empty());
    assert!(!qa["reason"].as_str().unwrap().contains("olga"));
    // A wrong token is refused, not treated as no token.
    let (status, _) = h
        .call("GET", "/api/v1/environments", Some("guess"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn active_overrides_are_limited_per_environment_and_per_token() {
    let config = format!(
        "{CONFIG}  overrides: {{ max_active_per_environment: 3, max_active_per_token: 2 }}\n"
    );
    let h = harness_with(&config);
    for token in ["otto-token", "otto-token", "olga-token"] {
        let (status, body) = h.create(token, keep_up("staging", "1h")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = h.create("otto-token", keep_up("staging", "1h")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("staging has 3 active overrides, the most allowed (server.overrides.max_active_per_environment)"),
        "{body}"
    );
    let (status, _) = h.create("olga-token", keep_up("qa", "1h")).await;
    assert_eq!(status, StatusCode::CREATED, "qa has room");
    let (status, body) = h.create("olga-token", keep_up("qa", "1h")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("token 'olga' has 2 active overrides"),
        "{body}"
    );
    assert_eq!(h.overrides.list().await.unwrap().len(), 4, "nothing beyond");
    // Once one ends there is room again.
    h.clock.advance(Duration::hours(1));
    let (status, _) = h.create("otto-token", keep_up("staging", "1h")).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn failed_authentication_is_limited_per_client_and_every_429_says_when_to_retry() {
    let h = harness();
    let mut answers = Vec::new();
    for n in 0..15 {
        let request = Request::get("/api/v1/overrides")
            .header(header::AUTHORIZATION, format!("Bearer guess-{n}"))
            .body(Body::empty())
            .unwrap();
        answers.push(h.app.clone().oneshot(request).await.unwrap());
    }
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let retry: u64 = answers[14].headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry), "Retry-After: {retry}");
    // While the client is over its limit even a good token is not checked.
    assert_eq!(
        h.call("GET", "/api/v1/overrides", Some("vera-token"), None)
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let h = harness();
    for uri in ["/", "/api/v1/environments", "/nope"] {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = h.app.clone().oneshot(request).await.unwrap();
        let headers = response.headers();
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            api::headers::CONTENT_SECURITY_POLICY,
            "{uri}"
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{uri}");
    }
}
