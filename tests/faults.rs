//! A partial outage, end to end: `curfew run --once` (the real SDK and the real kube client)
//! talks to moto and to the fake API server through proxies that fail a seeded share of the
//! calls of every kind, reads included (429 with a plain-text body, 500, 503, connections
//! dropped mid-answer, stalls), and DescribeInstances is down for its first calls. Passes are
//! repeated until one converges, at night and in the morning. No pass that could not see a
//! target selection may say "converged" or exit 0; the pass that does must leave the estate
//! exactly as it should be, and the morning must restore every original exactly.
//!
//! The seed is printed; `CURFEW_FAULT_SEED=N` replays a run.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::fake_apiserver::FakeApiServer;
use crate::support::fixtures::{deployment, namespace, stateful_set};
use crate::support::moto::{
    Moto, add_nodegroup, create_cluster, create_group, group_size, instance_state,
    nodegroup_size_of, office_config,
};
use crate::support::proxy::Proxy;
use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use serde_json::Value;

/// The share of calls that fail.
const SHARE: f64 = 0.3;
/// Passes allowed before one must converge.
const MAX_PASSES: usize = 25;
const DEPLOYMENTS: usize = 12;

const TARGETS: &str = r#"
      - aws_asg: { names: [web], region: eu-central-1 }
      - aws_eks_nodegroup: { cluster: staging, names: [general], region: eu-central-1 }
      - aws_ec2: { tags: { env: staging }, region: eu-central-1 }
      - kubernetes: { namespaces: [shop] }
"#;

/// One `run --once` and what it said.
struct Pass {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Pass {
    fn undiscovered(&self) -> bool {
        self.stderr.contains("targets not discovered:")
    }

    fn says_converged(&self) -> bool {
        self.stdout.contains("converged:")
    }
}

fn run_once(dir: &Path, moto: &Moto, aws: &Proxy, at: &str) -> Pass {
    let config = dir.join("curfew.yaml");
    std::fs::write(&config, office_config(TARGETS)).unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "-c"])
        .arg(&config)
        .args(["--once", "--at", at, "--state-dir"])
        .arg(dir.join("state"))
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &aws.url)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    Pass {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Repeats passes at `at` until one converges; checks every pass on the way. Returns the
/// passes that could not see a target selection.
fn until_converged(dir: &Path, moto: &Moto, aws: &Proxy, at: &str, seed: u64) -> usize {
    let mut blind = 0;
    for attempt in 1..=MAX_PASSES {
        let pass = run_once(dir, moto, aws, at);
        let context = format!(
            "seed {seed}, pass {attempt} at {at}, exit {:?}\nstdout:\n{}\nstderr:\n{}",
            pass.code, pass.stdout, pass.stderr
        );
        println!("{context}");
        if pass.undiscovered() {
            blind += 1;
            assert_eq!(
                pass.code,
                Some(1),
                "an undiscovered selection exits 1: {context}"
            );
            assert!(
                !pass.says_converged(),
                "a pass that did not see everything said converged: {context}"
            );
        }
        match pass.code {
            Some(0) => {
                assert!(pass.says_converged(), "{context}");
                return blind;
            }
            Some(1) => assert!(!pass.says_converged(), "{context}"),
            other => panic!("unexpected exit {other:?}: {context}"),
        }
    }
    panic!("seed {seed}: no pass at {at} converged within {MAX_PASSES} passes");
}

/// A night (22:00 in Berlin, a Monday to Thursday) and the next morning (08:00), far enough
/// after `now` (moto's clock, the one the fake API server stamps its objects with too) that no
/// object is young enough to be spared for its grace period.
fn boundaries(now: DateTime<Utc>) -> (String, String) {
    let berlin = chrono_tz::Europe::Berlin;
    let mut day = (now + Duration::days(2))
        .with_timezone(&berlin)
        .date_naive();
    while matches!(day.weekday(), Weekday::Fri | Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().expect("a next day");
    }
    let at = |day: chrono::NaiveDate, hour| {
        let local = day.and_time(NaiveTime::from_hms_opt(hour, 0, 0).expect("a time"));
        berlin
            .from_local_datetime(&local)
            .earliest()
            .expect("no gap at this hour")
            .with_timezone(&Utc)
            .to_rfc3339()
    };
    (at(day, 22), at(day.succ_opt().expect("a next day"), 8))
}

fn replicas(server: &FakeApiServer, plural: &str, name: &str) -> (u64, Option<String>) {
    let object: Value = server
        .get("apps", "v1", plural, "shop", name)
        .unwrap_or_else(|| panic!("{plural} {name} exists"));
    (
        object["spec"]["replicas"].as_u64().expect("replicas"),
        object["metadata"]["annotations"]["curfew.dev/original-replicas"]
            .as_str()
            .map(str::to_string),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_partial_outage_no_pass_that_missed_targets_converges_and_the_morning_restores_exactly()
 {
    let seed: u64 = std::env::var("CURFEW_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_130);
    println!("fault seed {seed} (replay with CURFEW_FAULT_SEED={seed})");
    let moto = Moto::start();
    let (night, morning) = boundaries(moto.now());
    create_group(&moto, "eu-central-1", "web", 1, 4, 2).await;
    create_cluster(&moto).await;
    add_nodegroup(&moto, "general", None, (2, 5, 3)).await;
    let instances = [
        moto.run_instance(aws_sdk_ec2::types::InstanceType::T3Large)
            .await,
        moto.run_instance(aws_sdk_ec2::types::InstanceType::T3Medium)
            .await,
    ];
    let server = FakeApiServer::start().await;
    server.add(namespace("shop"));
    for n in 0..DEPLOYMENTS {
        server.add(deployment("shop", &format!("app-{n}"), 2));
    }
    server.add(stateful_set("shop", "db", 1));

    let aws = Proxy::start(&moto.endpoint).await;
    let kube = Proxy::start(&server.url()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        server.kubeconfig().replace(&server.url(), &kube.url),
    )
    .unwrap();
    aws.fail(SHARE, seed);
    kube.fail(SHARE, seed.wrapping_add(1));
    // The SDK tries a call five times: the first discovery of the instances fails for good.
    aws.outage("DescribeInstances", 5);
    // Which calls the share hits depends on how the concurrent calls interleave; the first
    // list of Deployments fails whatever they do.
    kube.outage("GET /apis/apps/v1/deployments", 1);

    // Night: repeated until converged; then everything is down with its original stored.
    let blind = until_converged(dir.path(), &moto, &aws, &night, seed);
    assert!(blind >= 1, "the outage left a selection undiscovered");
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((0, 0, 0), Some("min=1,max=4,desired=2".into()))
    );
    assert_eq!(
        nodegroup_size_of(&moto, "general").await,
        ((0, 5, 0), Some("min2_max5_desired3".into()))
    );
    for id in &instances {
        let (state, tag) = instance_state(&moto, id).await;
        assert!(state == "stopped" || state == "stopping", "{id}: {state}");
        assert_eq!(tag.as_deref(), Some("running"));
    }
    for n in 0..DEPLOYMENTS {
        assert_eq!(
            replicas(&server, "deployments", &format!("app-{n}")),
            (0, Some("2".into()))
        );
    }
    assert_eq!(
        replicas(&server, "statefulsets", "db"),
        (0, Some("1".into()))
    );

    // Morning: the same outage again; then every original is back exactly.
    aws.outage("DescribeInstances", 5);
    // Which calls the share hits depends on how the concurrent calls interleave; the first
    // list of Deployments fails whatever they do.
    kube.outage("GET /apis/apps/v1/deployments", 1);
    until_converged(dir.path(), &moto, &aws, &morning, seed);
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((1, 4, 2), None)
    );
    assert_eq!(nodegroup_size_of(&moto, "general").await, ((2, 5, 3), None));
    for id in &instances {
        let (state, tag) = instance_state(&moto, id).await;
        assert!(state == "running" || state == "pending", "{id}: {state}");
        assert_eq!(tag, None);
    }
    for n in 0..DEPLOYMENTS {
        assert_eq!(
            replicas(&server, "deployments", &format!("app-{n}")),
            (2, None)
        );
    }
    assert_eq!(replicas(&server, "statefulsets", "db"), (1, None));

    // Calls of every kind met faults: reads and writes, lists and watches.
    let kube_faults = kube.tally(false).faults;
    let aws_faults = aws.tally(false).faults;
    let met =
        |faults: &std::collections::BTreeMap<(String, crate::support::proxy::Fault), usize>,
         prefix: &str| faults.keys().any(|(name, _)| name.starts_with(prefix));
    assert!(met(&aws_faults, "Describe"), "{aws_faults:?}");
    assert!(
        met(&kube_faults, "GET /apis/apps/v1/deployments"),
        "{kube_faults:?}"
    );
    assert!(met(&kube_faults, "PATCH"), "{kube_faults:?}");
}
