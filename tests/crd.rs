//! The committed CustomResourceDefinition of `overrides.curfew.dev` matches the one the code
//! generates, and the fake API server serves it.

use std::path::Path;

use crate::support::fake_apiserver::FakeApiServer;

const COMMITTED: &str = "deploy/kubernetes/base/crd.yaml";

#[test]
fn committed_override_crd_matches_the_code() {
    let generated = curfew::overrides::resource::crd_yaml();
    crate::support::committed::check(COMMITTED, &generated, "crd");
}

#[tokio::test]
async fn the_committed_crd_registers_overrides_for_discovery() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED))
        .expect("the CRD is committed");
    let crd: serde_json::Value = serde_saphyr::from_str(&text).expect("the CRD is YAML");
    assert_eq!(crd["spec"]["names"]["kind"], "Override");
    let server = FakeApiServer::start().await;
    server.add(crd);
    let discovery = kube::Discovery::new(server.client())
        .run()
        .await
        .expect("discovery runs");
    let (resource, _) = discovery
        .get("curfew.dev")
        .and_then(|group| group.recommended_kind("Override"))
        .expect("overrides.curfew.dev is discovered");
    assert_eq!(resource.plural, "overrides");
}
