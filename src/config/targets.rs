//! What an environment scales: Kubernetes workloads and AWS capacity.

use serde::{Deserialize, Serialize};

use super::raw::Labels;

/// One entry of an environment's `targets` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetConfig {
    /// Workloads in Kubernetes namespaces.
    Kubernetes(KubernetesTarget),
    /// EC2 Auto Scaling groups.
    AwsAsg(AsgTarget),
    /// EKS managed node groups.
    AwsEksNodegroup(NodegroupTarget),
    /// Standalone EC2 instances chosen by tags.
    AwsEc2(Ec2Target),
}

impl TargetConfig {
    /// The config key of this kind of target.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::Kubernetes(_) => "kubernetes",
            TargetConfig::AwsAsg(_) => "aws_asg",
            TargetConfig::AwsEksNodegroup(_) => "aws_eks_nodegroup",
            TargetConfig::AwsEc2(_) => "aws_ec2",
        }
    }

    /// A short human description, e.g. `kubernetes namespaces shop, payments`.
    pub fn describe(&self) -> String {
        match self {
            TargetConfig::Kubernetes(k) => {
                let mut parts = Vec::new();
                if !k.namespaces.is_empty() {
                    parts.push(format!("namespaces {}", k.namespaces.join(", ")));
                }
                if let Some(selector) = &k.namespace_selector {
                    parts.push(format!("namespaces matching {selector}"));
                }
                format!("kubernetes {}", parts.join("; "))
            }
            TargetConfig::AwsAsg(a) => {
                format!("aws_asg {} in {}", selection(&a.names, &a.tags), a.region)
            }
            TargetConfig::AwsEksNodegroup(n) => format!(
                "aws_eks_nodegroup {}/{} in {}",
                n.cluster,
                selection(&n.names, &n.tags),
                n.region
            ),
            TargetConfig::AwsEc2(e) => {
                format!("aws_ec2 {} in {}", selection(&[], &e.tags), e.region)
            }
        }
    }

    /// What is wrong with this target's settings, as `(field, message)` pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let mut require_region = |region: &str| {
            if region.trim().is_empty() {
                problems.push(("region", "region must not be empty".to_string()));
            }
        };
        match self {
            TargetConfig::Kubernetes(k) => {
                if k.namespaces.is_empty() && k.namespace_selector.is_none() {
                    problems.push((
                        "namespaces",
                        "select namespaces with 'namespaces' (names or globs) or 'namespace_selector'"
                            .to_string(),
                    ));
                }
            }
            TargetConfig::AwsAsg(a) => {
                require_region(&a.region);
                if a.names.is_empty() && a.tags.is_empty() {
                    problems.push(("names", "select groups with 'names' or 'tags'".to_string()));
                }
                if let Some(down) = &a.down
                    && (down.min > down.desired || down.desired > down.max)
                {
                    problems.push((
                        "down",
                        "down capacity needs min <= desired <= max".to_string(),
                    ));
                }
                for process in &a.suspend_processes {
                    if !SCALING_PROCESSES.contains(&process.as_str()) {
                        problems.push((
                            "suspend_processes",
                            format!(
                                "unknown scaling process '{process}' (one of {})",
                                SCALING_PROCESSES.join(", ")
                            ),
                        ));
                    }
                }
                if let Some(spot) = &a.spot {
                    problems.extend(spot.problems().into_iter().map(|p| ("spot", p)));
                }
            }
            TargetConfig::AwsEksNodegroup(n) => {
                require_region(&n.region);
                if n.cluster.trim().is_empty() {
                    problems.push(("cluster", "cluster must not be empty".to_string()));
                }
                if n.names.is_empty() && n.tags.is_empty() && n.pair.is_none() {
                    problems.push((
                        "names",
                        "select node groups with 'names', 'tags' or 'pair'".to_string(),
                    ));
                }
                if let Some(pair) = &n.pair {
                    problems.extend(pair.problems().into_iter().map(|p| ("pair", p)));
                }
            }
            TargetConfig::AwsEc2(e) => {
                require_region(&e.region);
                if e.tags.is_empty() {
                    problems.push(("tags", "select instances with at least one tag".to_string()));
                }
            }
        }
        problems
    }
}

fn selection(names: &[String], tags: &Labels) -> String {
    let mut parts: Vec<String> = names.to_vec();
    parts.extend(tags.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(", ")
}

/// Kubernetes workloads selected by namespace and labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    /// Namespace names or globs (`team-*`).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// A label selector for namespaces.
    pub namespace_selector: Option<String>,
    /// Namespaces never touched.
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// A label selector for workloads.
    pub selector: Option<String>,
    /// Replicas while down.
    #[serde(default)]
    pub down_replicas: u32,
    /// Workloads younger than this are not scaled down (default 15m).
    pub grace_period: Option<String>,
}

/// EC2 Auto Scaling groups selected by name or tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsgTarget {
    /// Group names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Tags every selected group carries.
    #[serde(default)]
    pub tags: Labels,
    /// AWS region.
    pub region: String,
    /// Role to assume (another account).
    pub assume_role_arn: Option<String>,
    /// Capacity while down (default 0/0/0).
    pub down: Option<Capacity>,
    /// Scaling processes suspended while down.
    #[serde(default)]
    pub suspend_processes: Vec<String>,
    /// Spot/on-demand mix per window.
    pub spot: Option<SpotPolicy>,
}

/// EKS managed node groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodegroupTarget {
    /// EKS cluster name.
    pub cluster: String,
    /// Node group names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Tags every selected node group carries.
    #[serde(default)]
    pub tags: Labels,
    /// AWS region.
    pub region: String,
    /// Role to assume (another account).
    pub assume_role_arn: Option<String>,
    /// A spot node group and an on-demand node group of the cluster scaled as a pair.
    pub pair: Option<NodegroupPair>,
}

/// A spot node group paired with an on-demand one: while up the spot group wakes to its
/// original size and the on-demand group is held at its base; while down both are parked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodegroupPair {
    /// The spot node group.
    pub spot: String,
    /// The on-demand node group.
    pub on_demand: String,
    /// Nodes the on-demand group keeps while up (its min and desired size; default 1).
    #[serde(default = "default_on_demand_base")]
    pub on_demand_base: u32,
}

fn default_on_demand_base() -> u32 {
    1
}

impl NodegroupPair {
    /// What is wrong with the pair, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.spot.trim().is_empty() || self.on_demand.trim().is_empty() {
            problems.push("name both the 'spot' and the 'on_demand' node group".to_string());
        }
        if self.spot == self.on_demand {
            problems.push(format!(
                "'{}' cannot be both the spot and the on-demand node group",
                self.spot
            ));
        }
        problems
    }
}

/// Standalone EC2 instances chosen by tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Target {
    /// Tags every selected instance carries.
    pub tags: Labels,
    /// AWS region.
    pub region: String,
    /// Role to assume (another account).
    pub assume_role_arn: Option<String>,
    /// Hibernate instead of stop where the instance supports it.
    #[serde(default)]
    pub hibernate: bool,
}

/// A group's min, max and desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Minimum size.
    pub min: u32,
    /// Maximum size.
    pub max: u32,
    /// Desired capacity.
    pub desired: u32,
}

/// The spot/on-demand distribution while up and while down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotPolicy {
    /// Distribution while up.
    pub uptime: Option<SpotDistribution>,
    /// Distribution while down.
    pub downtime: Option<SpotDistribution>,
    /// Raising the on-demand share for a while when spot capacity is short.
    pub fallback: Option<SpotFallback>,
}

/// Scaling processes Auto Scaling can suspend.
pub const SCALING_PROCESSES: [&str; 9] = [
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

/// Spot allocation strategies Auto Scaling accepts.
pub const SPOT_ALLOCATION_STRATEGIES: [&str; 4] = [
    "lowest-price",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "price-capacity-optimized",
];

impl SpotPolicy {
    /// What is wrong with the policy, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.uptime.is_none() {
            problems.push(
                "give an 'uptime' distribution: the mix while up, and the one a group returns to on waking or after a fallback"
                    .to_string(),
            );
        }
        for (window, distribution) in [("uptime", &self.uptime), ("downtime", &self.downtime)] {
            if let Some(distribution) = distribution {
                problems.extend(
                    distribution
                        .problems()
                        .into_iter()
                        .map(|p| format!("{window}: {p}")),
                );
            }
        }
        if let Some(fallback) = &self.fallback {
            problems.extend(
                fallback
                    .problems()
                    .into_iter()
                    .map(|p| format!("fallback: {p}")),
            );
        }
        problems
    }
}

/// How long and how far the on-demand share is raised after spot capacity failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotFallback {
    /// The on-demand percentage above the base during the fallback (default 100).
    #[serde(default = "default_fallback_percent")]
    pub on_demand_percent_above_base: u32,
    /// How long after the latest spot capacity failure the fallback lasts (default `30m`).
    #[serde(default = "default_fallback_cooldown")]
    pub cooldown: String,
}

fn default_fallback_percent() -> u32 {
    100
}

fn default_fallback_cooldown() -> String {
    "30m".to_string()
}

impl SpotFallback {
    /// The cooldown as a duration (the default when it does not parse; validation reports it).
    pub fn cooldown(&self) -> chrono::Duration {
        super::duration::parse(&self.cooldown).unwrap_or_else(|_| chrono::Duration::minutes(30))
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.on_demand_percent_above_base > 100 {
            problems.push(format!(
                "on_demand_percent_above_base {} is above 100",
                self.on_demand_percent_above_base
            ));
        }
        if let Err(err) = super::duration::parse(&self.cooldown) {
            problems.push(format!("cooldown: {err}"));
        }
        problems
    }
}

/// An Auto Scaling group's instances distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotDistribution {
    /// On-demand instances before any spot.
    pub on_demand_base: Option<u32>,
    /// Percentage of on-demand above the base.
    pub on_demand_percent_above_base: Option<u32>,
    /// Spot allocation strategy, e.g. `price-capacity-optimized`.
    pub spot_allocation_strategy: Option<String>,
}

impl SpotDistribution {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.on_demand_base.is_none()
            && self.on_demand_percent_above_base.is_none()
            && self.spot_allocation_strategy.is_none()
        {
            problems.push(
                "set on_demand_base, on_demand_percent_above_base or spot_allocation_strategy"
                    .to_string(),
            );
        }
        if let Some(percent) = self.on_demand_percent_above_base
            && percent > 100
        {
            problems.push(format!(
                "on_demand_percent_above_base {percent} is above 100"
            ));
        }
        if let Some(strategy) = &self.spot_allocation_strategy
            && !SPOT_ALLOCATION_STRATEGIES.contains(&strategy.as_str())
        {
            problems.push(format!(
                "unknown spot_allocation_strategy '{strategy}' (one of {})",
                SPOT_ALLOCATION_STRATEGIES.join(", ")
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn load(target: &str) -> Result<Config, crate::config::Error> {
        let text = format!(
            "schedules:\n  office: {{ uptime: [\"Mon-Fri 07:00-20:00\"] }}\nenvironments:\n  staging:\n    schedule: office\n    targets:\n{target}"
        );
        Config::from_yaml(&text, Path::new("c.yaml"))
    }

    #[test]
    fn spot_policies_with_a_fallback_and_node_group_pairs_are_read_with_defaults() {
        let config = load(
            "      - aws_asg: { names: [nodes], region: eu-central-1, spot: { uptime: { on_demand_base: 1 }, fallback: {} } }\n      - aws_eks_nodegroup: { cluster: c, region: eu-central-1, pair: { spot: s, on_demand: o } }\n",
        )
        .unwrap();
        let targets = &config.environments["staging"].targets;
        let super::TargetConfig::AwsAsg(asg) = &targets[0] else {
            panic!("{targets:?}")
        };
        let fallback = asg.spot.as_ref().unwrap().fallback.as_ref().unwrap();
        assert_eq!(fallback.on_demand_percent_above_base, 100);
        assert_eq!(fallback.cooldown(), chrono::Duration::minutes(30));
        let super::TargetConfig::AwsEksNodegroup(eks) = &targets[1] else {
            panic!("{targets:?}")
        };
        assert_eq!(eks.pair.as_ref().unwrap().on_demand_base, 1);
    }

    #[test]
    fn bad_spot_policies_and_pairs_are_every_one_reported_with_their_location() {
        let err = load(
            "      - aws_asg: { names: [nodes], region: eu-central-1, spot: { downtime: { on_demand_percent_above_base: 140, spot_allocation_strategy: cheapest }, fallback: { cooldown: soon } } }\n      - aws_eks_nodegroup: { cluster: c, region: eu-central-1, pair: { spot: same, on_demand: same } }\n      - aws_asg: { names: [n], region: eu-central-1, suspend_processes: [AZRebalance, Sleep] }\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "c.yaml:7:",
            "downtime: on_demand_percent_above_base 140 is above 100",
            "unknown spot_allocation_strategy 'cheapest'",
            "give an 'uptime' distribution",
            "fallback: cooldown: bad duration 'soon'",
            "c.yaml:8:",
            "'same' cannot be both the spot and the on-demand node group",
            "c.yaml:9:",
            "unknown scaling process 'Sleep'",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
    }
}
