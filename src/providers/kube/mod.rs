//! The Kubernetes provider: Deployments, StatefulSets and CronJobs selected by namespace and
//! labels, observed through watches, scaled with merge patches that carry the original.
//!
//! * `selector` — label selectors in string form and namespace globs.

pub mod selector;
