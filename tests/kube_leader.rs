//! Leader election over a Lease in the fake API server: one holder at a time, renewal,
//! takeover after expiry, release on shutdown.

use std::time::Duration as StdDuration;

use crate::support::fake_apiserver::FakeApiServer;
use crate::support::fixtures::namespace;
use crate::support::kube::utc;
use chrono::Duration;
use curfew::leadership::{LeaderElector, LeaseSettings};
use tokio_util::sync::CancellationToken;

const T0: &str = "2026-11-30T12:00:00Z";

fn elector(server: &FakeApiServer, identity: &str) -> LeaderElector {
    LeaderElector::new(server.client(), LeaseSettings::new("curfew", identity))
}

fn holder(server: &FakeApiServer) -> Option<String> {
    let lease = server.get("coordination.k8s.io", "v1", "leases", "curfew", "curfew")?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}

async fn started() -> FakeApiServer {
    let server = FakeApiServer::start().await;
    server.add(namespace("curfew"));
    server
}

#[tokio::test]
async fn one_replica_holds_and_renews_the_lease_while_the_other_waits() {
    let server = started().await;
    let (a, b) = (elector(&server, "a"), elector(&server, "b"));
    let t0 = utc(T0);
    assert!(a.try_acquire(t0).await.expect("answers"));
    assert!(!b.try_acquire(t0).await.expect("answers"));
    assert!(
        a.try_acquire(t0 + Duration::seconds(5))
            .await
            .expect("renews")
    );
    assert!(
        !b.try_acquire(t0 + Duration::seconds(19))
            .await
            .expect("answers")
    );
    assert_eq!(holder(&server).as_deref(), Some("a"));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_holder_is_told() {
    let server = started().await;
    let (a, b) = (elector(&server, "a"), elector(&server, "b"));
    let t0 = utc(T0);
    assert!(a.try_acquire(t0).await.expect("answers"));
    assert!(
        b.try_acquire(t0 + Duration::seconds(15))
            .await
            .expect("takes over")
    );
    assert!(
        !a.try_acquire(t0 + Duration::seconds(16))
            .await
            .expect("answers")
    );
    let lease = server
        .get("coordination.k8s.io", "v1", "leases", "curfew", "curfew")
        .expect("exists");
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn a_released_lease_passes_to_a_follower_at_once() {
    let server = started().await;
    let (a, b) = (elector(&server, "a"), elector(&server, "b"));
    let t0 = utc(T0);
    assert!(a.try_acquire(t0).await.expect("answers"));
    b.release()
        .await
        .expect("releasing a lease one does not hold is a no-op");
    assert_eq!(holder(&server).as_deref(), Some("a"));
    a.release().await.expect("releases");
    assert_eq!(holder(&server), None);
    assert!(
        b.try_acquire(t0 + Duration::seconds(1))
            .await
            .expect("acquires")
    );
}

#[tokio::test]
async fn holding_stops_when_the_lease_is_taken_over_and_releases_on_shutdown() {
    let server = started().await;
    let fast = |identity: &str| {
        let mut settings = LeaseSettings::new("curfew", identity);
        settings.renew_every = StdDuration::from_millis(20);
        LeaderElector::new(server.client(), settings)
    };
    let a = fast("a");
    let shutdown = CancellationToken::new();
    assert!(a.acquire(&shutdown).await);
    let lost = CancellationToken::new();
    let holding = tokio::spawn({
        let (shutdown, lost) = (shutdown.clone(), lost.clone());
        async move { a.hold(shutdown, lost).await }
    });
    server.merge_patch(
        "coordination.k8s.io",
        "v1",
        "leases",
        "curfew",
        "curfew",
        serde_json::json!({"spec": {"holderIdentity": "usurper"}}),
    );
    tokio::time::timeout(StdDuration::from_secs(5), lost.cancelled())
        .await
        .expect("notices the takeover");
    holding.await.expect("joins");
    assert_eq!(
        holder(&server).as_deref(),
        Some("usurper"),
        "not released: not ours"
    );

    let b = fast("b");
    let shutdown = CancellationToken::new();
    let lost = CancellationToken::new();
    server.merge_patch(
        "coordination.k8s.io",
        "v1",
        "leases",
        "curfew",
        "curfew",
        serde_json::json!({"spec": {"holderIdentity": null}}),
    );
    assert!(b.acquire(&shutdown).await);
    let holding = tokio::spawn({
        let (shutdown, lost) = (shutdown.clone(), lost.clone());
        async move { b.hold(shutdown, lost).await }
    });
    tokio::time::sleep(StdDuration::from_millis(60)).await;
    shutdown.cancel();
    holding.await.expect("joins");
    assert!(!lost.is_cancelled());
    assert_eq!(holder(&server), None, "released on shutdown");
}
