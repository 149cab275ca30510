//! Shared test support: each integration test crate includes it with `mod support;` and uses
//! what it needs, so unused items are expected here.
#![allow(dead_code)]

/// A fake Kubernetes API server.
pub mod fake_apiserver;
/// Kubernetes objects for tests.
pub mod fixtures;
/// A reconciler over the Kubernetes provider and the fake.
pub mod kube;
