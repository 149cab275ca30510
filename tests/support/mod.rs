//! Shared test support: each integration test crate includes it with `mod support;` and uses
//! what it needs, so unused items are expected here.
#![allow(dead_code)]

pub mod fake_apiserver;
pub mod fixtures;
pub mod kube;
