//! Which namespaces and workloads an environment's `kubernetes` target selects.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::config::selector::{LabelSelector, Labels, glob_matches};
use crate::config::targets::{KubernetesTarget, TargetConfig};

/// One `kubernetes` entry of an environment, compiled.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The environment it belongs to.
    pub environment: String,
    namespaces: Vec<String>,
    namespace_selector: Option<LabelSelector>,
    exclude_namespaces: Vec<String>,
    selector: LabelSelector,
    /// Replicas while down, unless annotations say otherwise.
    pub down_replicas: u32,
    /// Workloads younger than this are not scaled down; `None` leaves the planner's default.
    pub grace_period: Option<chrono::Duration>,
    /// The name of the environment's schedule (empty when compiled outside a configuration).
    pub schedule: String,
    /// The selection as the configuration writes it, for reports.
    pub description: String,
}

/// Whether and how a namespace is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceMatch {
    /// Not selected.
    No,
    /// Selected.
    Yes,
    /// Selected but listed in `exclude_namespaces` (annotations may still opt workloads in).
    Excluded,
}

// === impl Selection ===

impl Selection {
    /// One `kubernetes` target of `environment` (its selectors were compiled with the
    /// configuration).
    pub fn new(environment: &str, target: &KubernetesTarget) -> Self {
        Selection {
            environment: environment.to_string(),
            namespaces: target.namespaces.clone(),
            namespace_selector: target.namespace_selector.clone(),
            exclude_namespaces: target.exclude_namespaces.clone(),
            selector: target.selector.clone(),
            down_replicas: target.down_replicas,
            grace_period: target.grace_period,
            schedule: String::new(),
            description: TargetConfig::Kubernetes(target.clone()).describe(),
        }
    }

    /// Every `kubernetes` target of every environment in `config`, in file order.
    pub fn from_config(config: &Config) -> Vec<Self> {
        config
            .environments
            .values()
            .flat_map(|env| {
                env.targets.iter().filter_map(move |target| match target {
                    TargetConfig::Kubernetes(k) => Some(Selection {
                        schedule: env.schedule.clone(),
                        ..Selection::new(&env.name, k)
                    }),
                    _ => None,
                })
            })
            .collect()
    }

    /// Whether the namespace `name` with `labels` is selected.
    pub fn namespace(&self, name: &str, labels: &BTreeMap<String, String>) -> NamespaceMatch {
        let by_name = self.namespaces.iter().any(|p| glob_matches(p, name));
        let by_labels = self
            .namespace_selector
            .as_ref()
            .is_some_and(|s| s.matches(labels));
        if !by_name && !by_labels {
            NamespaceMatch::No
        } else if self
            .exclude_namespaces
            .iter()
            .any(|p| glob_matches(p, name))
        {
            NamespaceMatch::Excluded
        } else {
            NamespaceMatch::Yes
        }
    }

    /// Whether a workload with `labels` is selected (within a selected namespace).
    pub fn workload(&self, labels: &dyn Labels) -> bool {
        self.selector.matches(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::selector::mk_labels as labels;

    fn mk(yaml: &str) -> Selection {
        let target: TargetConfig =
            serde_saphyr::from_str(&format!("kubernetes: {yaml}")).expect("valid target");
        let TargetConfig::Kubernetes(target) = target else {
            panic!("{target:?}")
        };
        Selection::new("staging", &target)
    }

    #[test]
    fn namespaces_are_chosen_by_name_glob_or_labels_minus_exclusions() {
        let selection = mk(
            "{ namespaces: [shop, 'team-*'], namespace_selector: 'env=staging', exclude_namespaces: ['team-secret*'] }",
        );
        let none = labels(&[]);
        assert_eq!(selection.namespace("shop", &none), NamespaceMatch::Yes);
        assert_eq!(selection.namespace("team-a", &none), NamespaceMatch::Yes);
        assert_eq!(
            selection.namespace("team-secrets", &none),
            NamespaceMatch::Excluded
        );
        assert_eq!(selection.namespace("payments", &none), NamespaceMatch::No);
        let staging = labels(&[("env", "staging")]);
        assert_eq!(
            selection.namespace("payments", &staging),
            NamespaceMatch::Yes
        );
    }

    #[test]
    fn workloads_are_chosen_by_the_selector() {
        let selection = mk("{ namespaces: [shop], selector: 'tier!=db' }");
        assert!(selection.workload(&labels(&[("tier", "web")])));
        assert!(!selection.workload(&labels(&[("tier", "db")])));
        let everything = mk("{ namespaces: [shop] }");
        assert!(everything.workload(&labels(&[])));
    }

    #[test]
    fn the_grace_period_comes_from_the_target() {
        let selection = mk("{ namespaces: [shop], grace_period: 1h }");
        assert_eq!(selection.grace_period, Some(chrono::Duration::hours(1)));
        assert_eq!(mk("{ namespaces: [shop] }").grace_period, None);
    }
}
