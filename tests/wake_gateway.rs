//! The wake gateway in process, over a real reconciler pass on the simulated estate: when a
//! wake on request counts as ready.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use curfew::activity::Activity;
use curfew::api::Tokens;
use curfew::api::wake::{Gateway, router};
use curfew::audit::AuditLog;
use curfew::clock::Clock;
use curfew::config::Config;
use curfew::overrides::FileOverrideStore;
use curfew::reconciler::Reconciler;
use curfew::state::StateDir;
use tokio::sync::Notify;

/// The host people use for the environment behind the gateway.
const HOST: &str = "preview.staging.test";
/// Monday 09:00 in Berlin: inside the schedule's uptime.
const MONDAY_MORNING: &str = "2026-11-30T08:00:00Z";

/// One environment on office hours behind the gateway, forwarding to `upstream`.
fn estate(upstream: &str) -> String {
    format!(
        r#"
timezone: Europe/Berlin
schedules:
  office-hours: {{ uptime: ["Mon-Fri 07:00-20:00"] }}
environments:
  preview:
    schedule: office-hours
    targets:
      - kubernetes: {{ namespaces: [preview] }}
    wake:
      hosts: [{HOST}]
      upstream: http://{upstream}
      auto: true
      keep_up_for: 2h
simulation:
  node_groups:
    - {{ name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096,
        min: 1, max: 4, desired: 2, pods_per_node: 10 }}
  namespaces:
    - {{ name: preview, node_group: nodes, deployments: 2, replicas: 1 }}
"#
    )
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid")
        .with_timezone(&Utc)
}

/// An upstream that answers every request with one line; returns its address.
async fn start_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address").to_string();
    let app = axum::Router::new().fallback(|| async { "hello from preview\n" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// One GET of `path` for [`HOST`] through `gateway`: status and body.
async fn get(gateway: &axum::Router, path: &str) -> (u16, String) {
    use tower::ServiceExt;
    let request = axum::http::Request::get(path)
        .header("host", HOST)
        .header("user-agent", "curl/8.5.0")
        .body(axum::body::Body::empty())
        .expect("a request");
    let response = gateway.clone().oneshot(request).await.expect("answers");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The traffic of a request alone can end an idle sleep, so a pass may see the environment
/// ready before the wake the same request causes is noted. The gateway's first forward then
/// counts the wake as ready, once, rather than leaving it to a later pass.
#[test]
fn a_wake_noted_after_a_pass_saw_the_environment_ready_counts_at_the_first_forward() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let series = |name: &str| {
        crate::support::rendered_value(&metrics, &format!("{name}{{environment=\"preview\"}}"))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let upstream = start_upstream().await;
            let config = Arc::new(
                Config::from_yaml(&estate(&upstream), Path::new("wake.yaml"))
                    .unwrap_or_else(|e| panic!("{e}")),
            );
            let dir = tempfile::tempdir().expect("temp dir");
            let state = StateDir::open(dir.path()).expect("state dir");
            let overrides = Arc::new(FileOverrideStore::open(state.clone()).expect("overrides"));
            let audit = Arc::new(AuditLog::open(state).expect("audit"));
            let (clock, sim) = crate::support::sim_provider(&config, utc(MONDAY_MORNING));
            let reconciler = Reconciler::new(
                config.clone(),
                sim,
                clock.clone(),
                overrides.clone(),
                crate::support::fast_settings(),
            );
            reconciler.reconcile().await.expect("a pass");

            let activity = Arc::new(Activity::new(clock.now()));
            activity.woke("preview", clock.now());
            clock.set(utc(MONDAY_MORNING) + Duration::seconds(7));
            let mut app = crate::support::api_state(
                config,
                reconciler.status(),
                clock.clone(),
                overrides,
                audit,
                Arc::new(Notify::new()),
                Tokens::none(),
            );
            app.activity = Some(activity.clone());
            let gateway = router(Gateway::new(app));

            let (status, body) = get(&gateway, "/hello").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body, "hello from preview\n");
            assert!(!activity.waking("preview"), "the wake is counted");
            assert_eq!(series("curfew_wake_ready_seconds_count"), Some(1.0));
            assert_eq!(series("curfew_wake_ready_seconds_sum"), Some(7.0));

            // Later requests and passes count it no more.
            let (status, _) = get(&gateway, "/again").await;
            assert_eq!(status, 200);
            reconciler.reconcile().await.expect("a pass");
            assert_eq!(series("curfew_wake_ready_seconds_count"), Some(1.0));
        })
    });
}
