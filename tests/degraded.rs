//! A pass that could not see a target selection is not converged: it lists the selection
//! with the call and the error, the environment is degraded (since the first such pass) until
//! a discovery reads everything again, and the service tries again within seconds, backing
//! off, rather than at the next tick.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use curfew::api::Tokens;
use curfew::audit::AuditLog;
use curfew::clock::{Clock, ManualClock};
use curfew::config::Config;
use curfew::domain::Action;
use curfew::overrides::FileOverrideStore;
use curfew::providers::sim::SimProvider;
use curfew::providers::{Discovery, Error, Provider, Undiscovered};
use curfew::reconciler::Reconciler;
use curfew::state::StateDir;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

const ESTATE: &str = r#"
timezone: Europe/Berlin
schedules:
  berlin: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  eu:
    schedule: berlin
    targets:
      - aws_asg: { names: [eu-nodes], region: eu-central-1 }
      - kubernetes: { namespaces: [shop] }
  us:
    schedule: berlin
    targets:
      - kubernetes: { namespaces: [us-shop] }
simulation:
  node_groups:
    - { name: eu-nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096,
        min: 1, max: 4, desired: 2, pods_per_node: 10 }
  namespaces:
    - { name: shop, node_group: eu-nodes, deployments: 2, replicas: 2 }
    - { name: us-shop, node_group: eu-nodes, deployments: 1, replicas: 1 }
"#;

/// Monday 22:00 in Berlin.
const NIGHT: &str = "2026-11-30T21:00:00Z";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The simulated estate, whose instances in `eu` cannot be read for the first `blind`
/// discoveries; records the clock at each discovery.
struct Blind {
    inner: Arc<SimProvider>,
    clock: Arc<ManualClock>,
    blind: AtomicUsize,
    discoveries: Mutex<Vec<DateTime<Utc>>>,
}

#[async_trait::async_trait]
impl Provider for Blind {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn discover(&self) -> curfew::providers::Result<Discovery> {
        self.discoveries.lock().push(self.clock.now());
        let mut discovery = self.inner.discover().await?;
        let blind = self
            .blind
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if blind {
            discovery
                .targets
                .retain(|t| !t.id.starts_with("auto_scaling_group/"));
            discovery.undiscovered.push(Undiscovered {
                environment: "eu".into(),
                selection: "aws_asg eu-nodes in eu-central-1".into(),
                error: Error::Throttled {
                    operation: "DescribeAutoScalingGroups".into(),
                    target: "*".into(),
                    detail: "Throttling: Rate exceeded".into(),
                    retry_after: None,
                },
            });
        }
        Ok(discovery)
    }

    async fn apply(&self, action: &Action) -> curfew::providers::Result<()> {
        self.inner.apply(action).await
    }

    async fn ready(&self, target: &str) -> curfew::providers::Result<bool> {
        self.inner.ready(target).await
    }
}

fn setup(blind: usize) -> (Arc<Blind>, Arc<ManualClock>, Reconciler, tempfile::TempDir) {
    let config = Arc::new(
        Config::from_yaml(ESTATE, Path::new("test.yaml")).unwrap_or_else(|e| panic!("{e}")),
    );
    let dir = tempfile::tempdir().unwrap();
    let (clock, sim) = crate::support::sim_provider(&config, utc(NIGHT));
    let provider = Arc::new(Blind {
        inner: sim,
        clock: clock.clone(),
        blind: AtomicUsize::new(blind),
        discoveries: Mutex::default(),
    });
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap());
    let reconciler = Reconciler::new(
        config,
        provider.clone(),
        clock.clone(),
        overrides,
        crate::support::fast_settings(),
    );
    (provider, clock, reconciler, dir)
}

#[tokio::test]
async fn a_pass_that_could_not_see_a_selection_is_not_converged_and_its_environment_is_degraded_until_seen()
 {
    let (_, clock, reconciler, _dir) = setup(2);

    let first = reconciler.reconcile().await.unwrap();
    assert!(!first.converged(), "a blind pass never converges");
    let [unseen] = first.undiscovered.as_slice() else {
        panic!("one unseen selection: {:?}", first.undiscovered);
    };
    assert_eq!(unseen.environment, "eu");
    assert_eq!(unseen.operation, "DescribeAutoScalingGroups");
    assert!(
        unseen.error.to_string().contains("throttled"),
        "{}",
        unseen.error
    );
    assert_eq!(unseen.since, utc(NIGHT));
    assert!(
        first.outcomes.iter().all(|o| o.error.is_none()),
        "what was seen was scaled: {:?}",
        first.failures()
    );
    assert!(!first.outcomes.is_empty());
    {
        let status = reconciler.status();
        let status = status.read();
        assert_eq!(status.degraded.len(), 1);
        assert!(
            status.degraded.iter().all(|u| u.environment == "eu"),
            "us is not degraded"
        );
    }

    clock.set(utc(NIGHT) + Duration::seconds(5));
    let second = reconciler.reconcile().await.unwrap();
    assert_eq!(
        second.undiscovered[0].since,
        utc(NIGHT),
        "since the first pass that missed it"
    );

    clock.set(utc(NIGHT) + Duration::seconds(10));
    let third = reconciler.reconcile().await.unwrap();
    assert!(third.undiscovered.is_empty());
    assert!(third.converged(), "{:?}", third.failures());
    assert!(
        third
            .outcomes
            .iter()
            .any(|o| o.planned.action.target().starts_with("auto_scaling_group/")),
        "the group, seen again, goes down"
    );
    assert!(reconciler.status().read().degraded.is_empty());
}

#[tokio::test]
async fn the_service_retries_discovery_within_seconds_backing_off_then_waits_for_the_tick() {
    let (provider, clock, reconciler, _dir) = setup(4);
    let shutdown = CancellationToken::new();
    let reconciler = Arc::new(reconciler.with_shutdown(shutdown.clone()));
    let running = {
        let reconciler = reconciler.clone();
        tokio::spawn(async move { reconciler.run().await })
    };
    let start = utc(NIGHT);
    while clock.now() < start + Duration::minutes(2) {
        tokio::task::yield_now().await;
    }
    shutdown.cancel();
    running.await.unwrap();
    let offsets: Vec<i64> = provider
        .discoveries
        .lock()
        .iter()
        .map(|at| (*at - start).num_seconds())
        .collect();
    // Blind at 0, 1, 3 and 7 s (1, 2, 4 s apart); seen at 15 s (8 s later); then the 30 s
    // tick.
    assert_eq!(&offsets[..6], [0, 1, 3, 7, 15, 45], "{offsets:?}");
}

/// `GET uri` on `app` without a token: the status and the body.
async fn get(app: &axum::Router, uri: &str) -> (u16, String) {
    use tower::ServiceExt;
    let request = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn anyone_sees_what_of_a_degraded_environment_is_unseen_and_since_when_until_it_is_seen() {
    let (_, clock, reconciler, dir) = setup(1);
    let config = Arc::new(Config::from_yaml(ESTATE, Path::new("test.yaml")).unwrap());
    let state_dir = StateDir::open(dir.path()).unwrap();
    let app = curfew::api::router(crate::support::api_state(
        config,
        reconciler.status(),
        clock.clone(),
        Arc::new(FileOverrideStore::open(state_dir.clone()).unwrap()),
        Arc::new(AuditLog::open(state_dir).unwrap()),
        Arc::default(),
        Tokens::none(),
    ));
    let environment = |list: &serde_json::Value, name: &str| {
        list["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };

    reconciler.reconcile().await.unwrap();
    let (status, body) = get(&app, "/api/v1/environments").await;
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let degraded = &environment(&list, "eu")["degraded"];
    let since =
        |value: &serde_json::Value| utc(value.as_str().unwrap_or_else(|| panic!("{value}")));
    assert_eq!(since(&degraded["since"]), utc(NIGHT), "{degraded}");
    let unseen = &degraded["unseen"][0];
    assert_eq!(unseen["selection"], "aws_asg eu-nodes in eu-central-1");
    assert_eq!(unseen["operation"], "DescribeAutoScalingGroups");
    // Without a token only the kind of error: AWS messages name accounts and roles.
    assert_eq!(
        unseen["error"], "throttled (details with a token)",
        "{unseen}"
    );
    assert_eq!(since(&unseen["since"]), utc(NIGHT));
    assert!(
        environment(&list, "us")["degraded"].is_null(),
        "us was seen"
    );

    // The service itself is fine: it stays ready.
    assert_eq!(get(&app, "/readyz").await.0, 200);
    // `curfew status` prints the same under its table.
    let parsed: curfew::api::EnvironmentList = serde_json::from_str(&body).unwrap();
    assert_eq!(
        curfew::cli::degraded_text(&parsed),
        "eu is degraded since Mon 2026-11-30 22:00 CET: not seen, so not scaled:\n  \
         aws_asg eu-nodes in eu-central-1: throttled (details with a token)\n"
    );

    let (status, page) = get(&app, "/").await;
    assert_eq!(status, 200);
    let section = |name: &str| {
        let start = page.find(&format!("id=\"env-{name}\"")).expect("a section");
        let end = page[start..]
            .find("</section>")
            .map_or(page.len(), |e| start + e);
        page[start..end].to_string()
    };
    let eu = section("eu");
    assert!(eu.contains("degraded"), "{eu}");
    assert!(eu.contains("aws_asg eu-nodes in eu-central-1"), "{eu}");
    assert!(!section("us").contains("degraded"));

    clock.set(utc(NIGHT) + Duration::seconds(5));
    reconciler.reconcile().await.unwrap();
    let (_, body) = get(&app, "/api/v1/environments").await;
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        environment(&list, "eu")["degraded"].is_null(),
        "seen again: {list}"
    );
    let (_, page) = get(&app, "/").await;
    assert!(!page.contains("class=\"degraded\""));
}

/// Runs one pass on a current-thread runtime with `recorder` as its metrics recorder.
fn reconcile_recorded(
    runtime: &tokio::runtime::Runtime,
    reconciler: &Reconciler,
    recorder: &metrics_exporter_prometheus::PrometheusRecorder,
) {
    metrics::with_local_recorder(recorder, || runtime.block_on(reconciler.reconcile())).unwrap();
}

#[test]
fn the_degraded_gauge_is_one_while_a_selection_is_unseen_and_zero_once_it_is_seen() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let gauge = |environment: &str| {
        crate::support::rendered_value(
            &metrics,
            &format!("curfew_environment_degraded{{environment=\"{environment}\"}}"),
        )
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let (_, clock, reconciler, _dir) = setup(1);

    reconcile_recorded(&runtime, &reconciler, &recorder);
    assert_eq!(gauge("eu"), Some(1.0), "{}", metrics.render());
    assert_eq!(gauge("us"), Some(0.0), "{}", metrics.render());

    clock.set(utc(NIGHT) + Duration::seconds(5));
    reconcile_recorded(&runtime, &reconciler, &recorder);
    assert_eq!(gauge("eu"), Some(0.0), "{}", metrics.render());
}
