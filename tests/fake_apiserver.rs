//! The fake API server itself, driven through the real kube client: selectors, optimistic
//! concurrency, the scale subresource, watches with bookmarks, and 410 Gone.

use std::time::Duration;

use crate::support::fake_apiserver::{FakeApiServer, Fault, Verb};
use crate::support::fixtures;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn mk_namespace(server: &FakeApiServer, name: &str) {
    server.add(fixtures::namespace(name));
}

fn mk_deployment(server: &FakeApiServer, namespace: &str, name: &str, labels: &[(&str, &str)]) {
    server.add(fixtures::labelled(
        fixtures::deployment(namespace, name, 2),
        labels,
    ));
}

async fn names(api: &Api<Deployment>, params: &ListParams) -> Vec<String> {
    let list = api.list(params).await.expect("lists");
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let server = FakeApiServer::start().await;
    mk_namespace(&server, "shop");
    mk_namespace(&server, "other");
    mk_deployment(
        &server,
        "shop",
        "web",
        &[("tier", "front"), ("env", "staging")],
    );
    mk_deployment(
        &server,
        "shop",
        "api",
        &[("tier", "back"), ("env", "staging")],
    );
    mk_deployment(
        &server,
        "shop",
        "legacy",
        &[("tier", "back"), ("legacy", "yes")],
    );
    mk_deployment(&server, "other", "web", &[("tier", "front")]);
    let all: Api<Deployment> = Api::all(server.client());
    let shop: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let by_labels = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(&shop, &by_labels("tier=back")).await,
        ["api", "legacy"]
    );
    assert_eq!(names(&shop, &by_labels("tier!=back")).await, ["web"]);
    assert_eq!(
        names(&shop, &by_labels("env in (staging,dev)")).await,
        ["api", "web"]
    );
    assert_eq!(
        names(&shop, &by_labels("env notin (staging)")).await,
        ["legacy"]
    );
    assert_eq!(names(&shop, &by_labels("legacy")).await, ["legacy"]);
    assert_eq!(names(&shop, &by_labels("!legacy,tier=back")).await, ["api"]);
    let fields = ListParams::default().fields("metadata.namespace=other");
    assert_eq!(names(&all, &fields).await, ["web"]);
    let fields = ListParams::default().fields("metadata.name!=web");
    assert_eq!(names(&all, &fields).await, ["api", "legacy"]);
}

#[tokio::test]
async fn a_stale_resource_version_is_a_conflict_and_a_fresh_one_is_not() {
    let server = FakeApiServer::start().await;
    mk_namespace(&server, "shop");
    mk_deployment(&server, "shop", "web", &[]);
    let api: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let before = api.get("web").await.expect("exists");
    let stale = before
        .metadata
        .resource_version
        .clone()
        .expect("has a version");
    server.merge_patch(
        "apps",
        "v1",
        "deployments",
        "shop",
        "web",
        json!({"spec": {"replicas": 3}}),
    );
    let patch = json!({"metadata": {"resourceVersion": stale}, "spec": {"replicas": 0}});
    let error = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("stale version");
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 409),
        "{error:?}"
    );
    let fresh = api.get("web").await.expect("exists");
    let mut replace = fresh.clone();
    replace.spec.as_mut().expect("has spec").replicas = Some(1);
    let replaced = api
        .replace("web", &PostParams::default(), &replace)
        .await
        .expect("fresh version");
    assert_eq!(replaced.spec.and_then(|s| s.replicas), Some(1));
    assert_eq!(
        replaced.metadata.generation,
        Some(3),
        "every spec change bumps the generation"
    );
    assert_eq!(replaced.metadata.uid, before.metadata.uid);
    let mut stale_replace = fresh;
    stale_replace.spec.as_mut().expect("has spec").replicas = Some(5);
    let error = api
        .replace("web", &PostParams::default(), &stale_replace)
        .await
        .expect_err("stale");
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 409),
        "{error:?}"
    );
    let missing = api.get("nope").await.expect_err("missing");
    assert!(
        matches!(&missing, kube::Error::Api(s) if s.code == 404),
        "{missing:?}"
    );
}

#[tokio::test]
async fn scale_subresource_and_json_patch_change_replicas_and_status_follows() {
    let server = FakeApiServer::start().await;
    mk_namespace(&server, "shop");
    mk_deployment(&server, "shop", "web", &[]);
    let api: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let scale = api.get_scale("web").await.expect("has scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
    let patch = json!({"spec": {"replicas": 4}});
    api.patch_scale("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("scales");
    let web = api.get("web").await.expect("exists");
    assert_eq!(web.spec.as_ref().and_then(|s| s.replicas), Some(4));
    assert_eq!(web.status.as_ref().and_then(|s| s.ready_replicas), Some(4));
    let ops = json!([
        {"op": "test", "path": "/spec/replicas", "value": 4},
        {"op": "replace", "path": "/spec/replicas", "value": 0}
    ]);
    let request = axum::http::Request::builder()
        .method("PATCH")
        .uri("/apis/apps/v1/namespaces/shop/deployments/web")
        .header("content-type", "application/json-patch+json")
        .body(ops.to_string().into_bytes())
        .expect("valid request");
    let raw: Deployment = server.client().request(request).await.expect("patches");
    assert_eq!(raw.spec.as_ref().and_then(|s| s.replicas), Some(0));
    assert_eq!(
        raw.status.as_ref().and_then(|s| s.ready_replicas),
        None,
        "zero ready is omitted"
    );
    let namespaces: Api<Namespace> = Api::all(server.client());
    assert_eq!(
        namespaces
            .list(&ListParams::default())
            .await
            .expect("lists")
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn watches_stream_changes_and_bookmarks_and_expire_past_the_history() {
    let server = FakeApiServer::start().await;
    server.set_bookmark_interval(Duration::from_millis(50));
    mk_namespace(&server, "shop");
    mk_deployment(&server, "shop", "web", &[]);
    let api: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let list = api.list(&ListParams::default()).await.expect("lists");
    let rv = list.metadata.resource_version.expect("list has a version");
    let mut params = WatchParams::default().timeout(10);
    params.bookmarks = true;
    let mut events = api.watch(&params, &rv).await.expect("watches").boxed();
    server.merge_patch(
        "apps",
        "v1",
        "deployments",
        "shop",
        "web",
        json!({"spec": {"replicas": 5}}),
    );
    let mut modified = None;
    let mut bookmark = None;
    while modified.is_none() || bookmark.is_none() {
        let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("an event in time")
            .expect("no error")
            .expect("stream open");
        match event {
            WatchEvent::Modified(d) => modified = d.spec.and_then(|s| s.replicas),
            WatchEvent::Bookmark(b) => bookmark = Some(b.metadata.resource_version),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(modified, Some(5));
    let bookmark: u64 = bookmark.and_then(|b| b.parse().ok()).expect("numeric");
    assert!(bookmark > rv.parse::<u64>().expect("numeric"));

    server.store().set_history_limit(2);
    for replicas in 0..5 {
        server.merge_patch(
            "apps",
            "v1",
            "deployments",
            "shop",
            "web",
            json!({"spec": {"replicas": replicas}}),
        );
    }
    let mut expired = api.watch(&params, &rv).await.expect("watch opens").boxed();
    let event = expired
        .try_next()
        .await
        .expect("no transport error")
        .expect("an event");
    assert!(
        matches!(&event, WatchEvent::Error(e) if e.code == 410),
        "{event:?}"
    );
    assert!(server.count(Verb::Watch) >= 2);
}

#[tokio::test]
async fn injected_faults_answer_with_their_status_and_run_out() {
    let server = FakeApiServer::start().await;
    mk_namespace(&server, "shop");
    mk_deployment(&server, "shop", "web", &[]);
    server.inject(Some(Verb::Get), Fault::ServerError, Some(1));
    let api: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let error = api.get("web").await.expect_err("fails once");
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 500),
        "{error:?}"
    );
    api.get("web").await.expect("then succeeds");
    server.inject(
        None,
        Fault::TooManyRequests {
            retry_after_secs: 0,
        },
        Some(2),
    );
    api.list(&ListParams::default())
        .await
        .expect("the client retries 429 by itself");
    assert_eq!(server.count(Verb::List), 3);
}

#[tokio::test]
async fn a_crd_makes_its_group_discoverable_and_its_objects_servable() {
    let server = FakeApiServer::start().await;
    mk_namespace(&server, "shop");
    let client = server.client();
    let before = kube::discovery::group(&client, "keda.sh").await;
    assert!(before.is_err(), "no CRD, no group");
    server.create(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        json!({
            "metadata": {"name": "scaledobjects.keda.sh"},
            "spec": {
                "group": "keda.sh", "scope": "Namespaced",
                "names": {"plural": "scaledobjects", "singular": "scaledobject", "kind": "ScaledObject"},
                "versions": [{"name": "v1alpha1", "served": true, "storage": true}],
            },
        }),
    );
    let group = kube::discovery::group(&client, "keda.sh")
        .await
        .expect("discovered");
    let (resource, _) = group
        .recommended_kind("ScaledObject")
        .expect("serves ScaledObject");
    assert_eq!(resource.plural, "scaledobjects");
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client, "shop", &resource);
    let object: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "web", "annotations": {"autoscaling.keda.sh/paused-replicas": "0"}},
        "spec": {"scaleTargetRef": {"name": "web"}},
    }))
    .expect("valid object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("creates");
    let listed = api.list(&ListParams::default()).await.expect("lists");
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn a_watch_with_a_selector_sees_objects_enter_and_leave_it() {
    let server = FakeApiServer::start().await;
    server.set_bookmark_interval(Duration::from_secs(60));
    mk_namespace(&server, "shop");
    mk_deployment(&server, "shop", "web", &[("tier", "front")]);
    let api: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let params = WatchParams::default().labels("tier=back").timeout(10);
    let rv = server.store().resource_version().to_string();
    let mut events = api.watch(&params, &rv).await.expect("watches").boxed();
    let relabel = |tier: &str| json!({"metadata": {"labels": {"tier": tier}}});
    server.merge_patch("apps", "v1", "deployments", "shop", "web", relabel("back"));
    server.merge_patch("apps", "v1", "deployments", "shop", "web", relabel("front"));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("an event in time")
            .expect("no error")
            .expect("stream open");
        seen.push(match event {
            WatchEvent::Added(_) => "added",
            WatchEvent::Deleted(_) => "deleted",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(seen, ["added", "deleted"]);
}

#[tokio::test]
async fn lists_are_paged_by_limit_and_continue_at_one_resource_version() {
    let server = FakeApiServer::start().await;
    mk_namespace(&server, "shop");
    for name in ["a", "b", "c", "d", "e"] {
        mk_deployment(&server, "shop", name, &[]);
    }
    let api: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("lists");
    let token = first.metadata.continue_.clone().expect("more to come");
    let mut seen: Vec<String> = first
        .items
        .iter()
        .filter_map(|d| d.metadata.name.clone())
        .collect();
    let mut params = ListParams::default().limit(2).continue_token(&token);
    loop {
        let page = api.list(&params).await.expect("lists");
        assert_eq!(
            page.metadata.resource_version,
            first.metadata.resource_version
        );
        seen.extend(page.items.iter().filter_map(|d| d.metadata.name.clone()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => params = ListParams::default().limit(2).continue_token(&next),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(server.count(Verb::List), 3);
}
