//! The `simulation:` section of a curfew config: the node groups, namespaces and faults of the
//! simulated estate, and the deterministic names of the workloads it generates.
//!
//! Plain data read by the configuration and modelled by the simulated provider.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::domain::{Kind, Lifecycle};

/// The simulated estate as written in the `simulation:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationConfig {
    /// Seconds between a node being launched and it being ready (default 90).
    #[serde(default = "default_node_join_seconds")]
    pub node_join_seconds: u64,
    /// Node capacity: Auto Scaling groups and EKS managed node groups.
    #[serde(default)]
    pub node_groups: Vec<NodeGroupConfig>,
    /// Kubernetes namespaces and the workloads generated in them.
    #[serde(default)]
    pub namespaces: Vec<NamespaceConfig>,
    /// Injected API failures.
    #[serde(default)]
    pub faults: FaultConfig,
}

fn default_node_join_seconds() -> u64 {
    90
}

/// Which AWS API a simulated node group stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// An EC2 Auto Scaling group, selected by `aws_asg` targets.
    AutoScalingGroup,
    /// An EKS managed node group, selected by `aws_eks_nodegroup` targets.
    EksNodegroup,
}

impl GroupKind {
    /// The provider kind of targets of this group kind.
    pub fn kind(self) -> Kind {
        match self {
            GroupKind::AutoScalingGroup => Kind::AutoScalingGroup,
            GroupKind::EksNodegroup => Kind::EksNodegroup,
        }
    }
}

/// One simulated node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroupConfig {
    /// Group name, unique among node groups.
    pub name: String,
    /// Auto Scaling group or EKS node group.
    pub kind: GroupKind,
    /// EC2 instance type, e.g. `m6i.xlarge`.
    pub instance_type: String,
    /// On-demand (default) or spot.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Price of one instance per hour, in dollars.
    pub hourly_price: f64,
    /// Minimum size.
    pub min: u32,
    /// Maximum size.
    pub max: u32,
    /// Desired capacity at start.
    pub desired: u32,
    /// Pods one ready node can run.
    pub pods_per_node: u32,
}

impl NodeGroupConfig {
    /// The target id of this group: `auto_scaling_group/<name>` or `eks_nodegroup/<name>`.
    pub fn id(&self) -> String {
        group_id(self.kind, &self.name)
    }
}

/// The target id of a node group of `kind` called `name`.
pub fn group_id(kind: GroupKind, name: &str) -> String {
    format!("{}/{name}", kind.kind().as_str())
}

/// One simulated namespace and the workloads generated in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Namespace name, unique among namespaces.
    pub name: String,
    /// Name of the node group its pods run on.
    pub node_group: String,
    /// Number of Deployments (default 0).
    #[serde(default)]
    pub deployments: u32,
    /// Number of StatefulSets (default 0).
    #[serde(default)]
    pub statefulsets: u32,
    /// Number of CronJobs (default 0).
    #[serde(default)]
    pub cronjobs: u32,
    /// Replicas of every Deployment and StatefulSet (default 1).
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// CPU each pod requests, in millicores (default 250).
    #[serde(default = "default_cpu_millis")]
    pub cpu_millis: u32,
    /// Memory each pod requests, in MiB (default 512).
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u32,
}

fn default_replicas() -> u32 {
    1
}

/// Default CPU request per simulated pod, in millicores.
pub(crate) fn default_cpu_millis() -> u32 {
    250
}

/// Default memory request per simulated pod, in MiB.
pub(crate) fn default_memory_mib() -> u32 {
    512
}

/// Realistic service names for Deployments, used in order.
const DEPLOYMENT_NAMES: &[&str] = &[
    "api",
    "web",
    "worker",
    "cart",
    "search",
    "checkout",
    "auth",
    "catalog",
    "payments",
    "notifications",
    "gateway",
    "inventory",
    "orders",
    "recommendations",
    "shipping",
    "users",
    "frontend",
    "admin",
    "media",
    "reviews",
];

/// Realistic names for StatefulSets, used in order.
const STATEFULSET_NAMES: &[&str] = &[
    "postgres",
    "redis",
    "kafka",
    "rabbitmq",
    "elasticsearch",
    "mongodb",
    "zookeeper",
    "mysql",
    "minio",
    "nats",
];

/// Realistic names for CronJobs, used in order.
const CRONJOB_NAMES: &[&str] = &[
    "report", "cleanup", "backup", "sync", "digest", "reindex", "invoice", "export", "prune",
    "rotate",
];

/// The `index`-th name from `names`: plain on the first pass through the list, then with a
/// numeric suffix (`api`, ..., `reviews`, `api-1`, ...).
fn nth_name(names: &[&str], index: u32) -> String {
    let len = names.len().max(1);
    let index = index as usize;
    let base = names.get(index % len).copied().unwrap_or("app");
    match index / len {
        0 => base.to_string(),
        round => format!("{base}-{round}"),
    }
}

/// A workload generated from a namespace's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Deployment, StatefulSet or CronJob.
    pub kind: Kind,
    /// Its name inside the namespace.
    pub name: String,
}

impl WorkloadSpec {
    /// The target id, e.g. `deployment/shop/api`.
    pub fn id(&self, namespace: &str) -> String {
        format!("{}/{namespace}/{}", self.kind.as_str(), self.name)
    }
}

impl NamespaceConfig {
    /// Every workload of the namespace, deterministically named: Deployments, then
    /// StatefulSets, then CronJobs.
    pub fn workloads(&self) -> impl Iterator<Item = WorkloadSpec> + '_ {
        let of = |kind: Kind, names: &'static [&'static str], count: u32| {
            (0..count).map(move |index| WorkloadSpec {
                kind,
                name: nth_name(names, index),
            })
        };
        of(Kind::Deployment, DEPLOYMENT_NAMES, self.deployments)
            .chain(of(Kind::StatefulSet, STATEFULSET_NAMES, self.statefulsets))
            .chain(of(Kind::CronJob, CRONJOB_NAMES, self.cronjobs))
    }
}

/// Injected API failures; every rate is a probability per `apply` call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the random draws; the same seed gives the same failures.
    #[serde(default)]
    pub seed: u64,
    /// Probability of a throttling error.
    #[serde(default)]
    pub throttle_rate: f64,
    /// Probability of a server error (500).
    #[serde(default)]
    pub server_error_rate: f64,
    /// Probability of a timeout.
    #[serde(default)]
    pub timeout_rate: f64,
    /// Target ids whose every apply fails with `AccessDenied`.
    #[serde(default)]
    pub failing_targets: Vec<String>,
    /// Real milliseconds every apply call takes.
    #[serde(default)]
    pub latency_ms: u64,
}

// === impl SimulationConfig ===

impl SimulationConfig {
    /// Every problem with this section, as human-readable sentences; empty when valid.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut group_names = HashSet::new();
        for group in &self.node_groups {
            let name = &group.name;
            if name.trim().is_empty() {
                problems.push("a node group has an empty name".to_string());
            }
            if !group_names.insert(name.as_str()) {
                problems.push(format!("node group '{name}' is defined more than once"));
            }
            if group.min > group.desired || group.desired > group.max {
                problems.push(format!(
                    "node group '{name}' needs min <= desired <= max, got {}/{}/{}",
                    group.min, group.desired, group.max
                ));
            }
            if !group.hourly_price.is_finite() || group.hourly_price < 0.0 {
                problems.push(format!(
                    "node group '{name}' has hourly_price {}, expected a price >= 0",
                    group.hourly_price
                ));
            }
            if group.pods_per_node == 0 {
                problems.push(format!("node group '{name}' has pods_per_node 0"));
            }
        }
        let mut namespace_names = HashSet::new();
        for namespace in &self.namespaces {
            let name = &namespace.name;
            if name.trim().is_empty() {
                problems.push("a namespace has an empty name".to_string());
            }
            if !namespace_names.insert(name.as_str()) {
                problems.push(format!("namespace '{name}' is defined more than once"));
            }
            if !group_names.contains(namespace.node_group.as_str()) {
                problems.push(format!(
                    "namespace '{name}' runs on unknown node group '{}'",
                    namespace.node_group
                ));
            }
        }
        problems.extend(self.faults.problems());
        problems
    }
}

// === impl FaultConfig ===

impl FaultConfig {
    /// The rates by config key.
    fn rates(&self) -> [(&'static str, f64); 3] {
        [
            ("throttle_rate", self.throttle_rate),
            ("server_error_rate", self.server_error_rate),
            ("timeout_rate", self.timeout_rate),
        ]
    }

    fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .rates()
            .iter()
            .filter(|(_, rate)| !(0.0..=1.0).contains(rate))
            .map(|(key, rate)| format!("faults.{key} is {rate}, expected a value in [0, 1]"))
            .collect();
        let total: f64 = self.rates().iter().map(|(_, rate)| rate).sum();
        if problems.is_empty() && total > 1.0 {
            problems.push(format!(
                "faults rates add up to {total}, expected at most 1 (one draw decides each call)"
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{mk_namespace, mk_node_group};

    fn mk_config() -> SimulationConfig {
        SimulationConfig {
            node_join_seconds: 90,
            node_groups: vec![mk_node_group(
                "eu-general",
                GroupKind::AutoScalingGroup,
                2,
                3,
                6,
            )],
            namespaces: vec![mk_namespace("shop", "eu-general", 2)],
            faults: FaultConfig::default(),
        }
    }

    #[test]
    fn yaml_section_parses_with_defaults() {
        let yaml = "
node_groups:
  - { name: eu-general, kind: eks_nodegroup, instance_type: m6i.xlarge, lifecycle: spot,
      hourly_price: 0.23, min: 2, max: 6, desired: 3, pods_per_node: 8 }
namespaces:
  - { name: shop, node_group: eu-general, deployments: 8, statefulsets: 2, cronjobs: 2, replicas: 2 }
faults: { seed: 1, failing_targets: [deployment/shop/cart] }
";
        let config: SimulationConfig = serde_saphyr::from_str(yaml).expect("valid section");
        assert_eq!(config.node_join_seconds, 90);
        assert_eq!(config.node_groups[0].kind, GroupKind::EksNodegroup);
        assert_eq!(config.node_groups[0].lifecycle, Lifecycle::Spot);
        assert_eq!(config.node_groups[0].id(), "eks_nodegroup/eu-general");
        assert_eq!(config.faults.seed, 1);
        assert_eq!(config.faults.throttle_rate, 0.0);
        assert!(config.validate().is_empty(), "{:?}", config.validate());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let yaml = "node_groups: []\nnamespace: []\n";
        assert!(serde_saphyr::from_str::<SimulationConfig>(yaml).is_err());
        let yaml = "faults: { seed: 1, throttle: 0.5 }\n";
        assert!(serde_saphyr::from_str::<SimulationConfig>(yaml).is_err());
    }

    #[test]
    fn workload_names_come_from_the_list_then_get_a_suffix() {
        let namespace = NamespaceConfig {
            statefulsets: 1,
            cronjobs: 1,
            ..mk_namespace("shop", "eu-general", DEPLOYMENT_NAMES.len() as u32 + 2)
        };
        let ids: Vec<String> = namespace.workloads().map(|w| w.id("shop")).collect();
        assert_eq!(ids[0], "deployment/shop/api");
        assert_eq!(ids[1], "deployment/shop/web");
        assert_eq!(ids[DEPLOYMENT_NAMES.len()], "deployment/shop/api-1");
        assert_eq!(ids[DEPLOYMENT_NAMES.len() + 1], "deployment/shop/web-1");
        assert!(ids.contains(&"stateful_set/shop/postgres".to_string()));
        assert!(ids.contains(&"cron_job/shop/report".to_string()));
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut config = mk_config();
        config.node_groups.push(mk_node_group(
            "eu-general",
            GroupKind::AutoScalingGroup,
            3,
            2,
            6,
        ));
        config.namespaces.push(mk_namespace("shop", "nowhere", 2));
        config.faults.throttle_rate = 1.5;
        let problems = config.validate();
        let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
        assert!(has("node group 'eu-general' is defined more than once"));
        assert!(has("min <= desired <= max"));
        assert!(has("namespace 'shop' is defined more than once"));
        assert!(has("unknown node group 'nowhere'"));
        assert!(has("faults.throttle_rate is 1.5"));
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn rates_adding_up_to_more_than_one_are_a_problem() {
        let mut config = mk_config();
        config.faults.throttle_rate = 0.6;
        config.faults.timeout_rate = 0.6;
        assert_eq!(config.validate().len(), 1);
        config.faults.timeout_rate = 0.4;
        assert!(config.validate().is_empty());
    }
}
