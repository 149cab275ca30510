//! What an environment scales: Kubernetes workloads and AWS capacity.
//!
//! Targets are read as written ([`RawTargetConfig`]: durations and selectors as text) and
//! compiled once, when the configuration is validated, into [`TargetConfig`]: durations,
//! compiled selectors. A validated target is never parsed again.

use std::fmt;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::duration;
use super::raw::Labels;
use super::selector::LabelSelector;

/// One entry of an environment's `targets` list, validated.
///
/// It deserialises through [`RawTargetConfig`], failing at the first problem; the
/// configuration's validation compiles the raw form itself and reports every problem.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawTargetConfig")]
pub enum TargetConfig {
    /// Workloads in Kubernetes namespaces.
    Kubernetes(KubernetesTarget),
    /// EC2 Auto Scaling groups.
    AwsAsg(AsgTarget),
    /// EKS managed node groups.
    AwsEksNodegroup(NodegroupTarget),
    /// Standalone EC2 instances chosen by tags.
    AwsEc2(Ec2Target),
    /// RDS DB instances and Aurora DB clusters.
    AwsRds(RdsTarget),
}

impl TargetConfig {
    /// The config key of this kind of target.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::Kubernetes(_) => "kubernetes",
            TargetConfig::AwsAsg(_) => "aws_asg",
            TargetConfig::AwsEksNodegroup(_) => "aws_eks_nodegroup",
            TargetConfig::AwsEc2(_) => "aws_ec2",
            TargetConfig::AwsRds(_) => "aws_rds",
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
            TargetConfig::AwsRds(r) => {
                let mut names = r.instances.clone();
                names.extend(r.clusters.iter().map(|c| format!("cluster {c}")));
                format!("aws_rds {} in {}", selection(&names, &r.tags), r.region)
            }
        }
    }
}

/// One entry of an environment's `targets` list as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawTargetConfig {
    /// Workloads in Kubernetes namespaces.
    Kubernetes(RawKubernetesTarget),
    /// EC2 Auto Scaling groups.
    AwsAsg(RawAsgTarget),
    /// EKS managed node groups.
    AwsEksNodegroup(NodegroupTarget),
    /// Standalone EC2 instances chosen by tags.
    AwsEc2(Ec2Target),
    /// RDS DB instances and Aurora DB clusters.
    AwsRds(RdsTarget),
}

/// What is wrong with a target's settings, as `(field, message)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<(&'static str, String)>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(field, problem)| format!("'{field}': {problem}"))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl TryFrom<RawTargetConfig> for TargetConfig {
    type Error = Problems;

    /// Checks the target and compiles its durations and selectors; every problem is listed.
    fn try_from(raw: RawTargetConfig) -> Result<Self, Problems> {
        let mut problems = raw.problems();
        let compiled = match raw {
            RawTargetConfig::Kubernetes(k) => {
                k.compile(&mut problems).map(TargetConfig::Kubernetes)
            }
            RawTargetConfig::AwsAsg(a) => a.compile(&mut problems).map(TargetConfig::AwsAsg),
            RawTargetConfig::AwsEksNodegroup(n) => Some(TargetConfig::AwsEksNodegroup(n)),
            RawTargetConfig::AwsEc2(e) => Some(TargetConfig::AwsEc2(e)),
            RawTargetConfig::AwsRds(r) => Some(TargetConfig::AwsRds(r)),
        };
        match compiled {
            Some(target) if problems.is_empty() => Ok(target),
            _ => Err(Problems(problems)),
        }
    }
}

// === impl RawTargetConfig ===

impl RawTargetConfig {
    /// The config key of this kind of target.
    pub fn kind(&self) -> &'static str {
        match self {
            RawTargetConfig::Kubernetes(_) => "kubernetes",
            RawTargetConfig::AwsAsg(_) => "aws_asg",
            RawTargetConfig::AwsEksNodegroup(_) => "aws_eks_nodegroup",
            RawTargetConfig::AwsEc2(_) => "aws_ec2",
            RawTargetConfig::AwsRds(_) => "aws_rds",
        }
    }

    /// The Cargo feature that builds this kind's provider in, when this build leaves it out.
    pub fn left_out(&self) -> Option<&'static str> {
        match self {
            RawTargetConfig::Kubernetes(_) => left_out("kubernetes", cfg!(feature = "kubernetes")),
            _ => left_out("aws", cfg!(feature = "aws")),
        }
    }

    /// What is wrong with this target's settings apart from its durations and selectors, as
    /// `(field, message)` pairs.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let mut require_region = |region: &str| {
            if region.trim().is_empty() {
                problems.push(("region", "region must not be empty".to_string()));
            }
        };
        match self {
            RawTargetConfig::Kubernetes(k) => {
                if k.namespaces.is_empty() && k.namespace_selector.is_none() {
                    problems.push((
                        "namespaces",
                        "select namespaces with 'namespaces' (names or globs) or 'namespace_selector'"
                            .to_string(),
                    ));
                }
            }
            RawTargetConfig::AwsAsg(a) => {
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
            RawTargetConfig::AwsEksNodegroup(n) => {
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
            RawTargetConfig::AwsEc2(e) => {
                require_region(&e.region);
                if e.tags.is_empty() {
                    problems.push(("tags", "select instances with at least one tag".to_string()));
                }
            }
            RawTargetConfig::AwsRds(r) => {
                require_region(&r.region);
                if r.instances.is_empty() && r.clusters.is_empty() && r.tags.is_empty() {
                    problems.push((
                        "instances",
                        "select databases with 'instances', 'clusters' or 'tags'".to_string(),
                    ));
                }
                let named = r.instances.iter().chain(&r.clusters);
                if named.clone().any(|name| name.trim().is_empty()) {
                    problems.push((
                        "instances",
                        "database identifiers must not be empty".to_string(),
                    ));
                }
            }
        }
        problems
    }
}

/// `feature` when it is not `built_in`.
pub fn left_out(feature: &'static str, built_in: bool) -> Option<&'static str> {
    (!built_in).then_some(feature)
}

fn selection(names: &[String], tags: &Labels) -> String {
    let mut parts: Vec<String> = names.to_vec();
    parts.extend(tags.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(", ")
}

/// Kubernetes workloads selected by namespace and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesTarget {
    /// Namespace names or globs (`team-*`).
    pub namespaces: Vec<String>,
    /// A label selector for namespaces.
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces never touched.
    pub exclude_namespaces: Vec<String>,
    /// A label selector for workloads (the empty one selects all).
    pub selector: LabelSelector,
    /// Replicas while down.
    pub down_replicas: u32,
    /// Workloads younger than this are not scaled down; `None`: the planner's default.
    pub grace_period: Option<Duration>,
}

/// A `kubernetes` target as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetesTarget {
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

impl RawKubernetesTarget {
    /// The target with its selectors and grace period parsed; what does not parse goes to
    /// `problems`.
    fn compile(self, problems: &mut Vec<(&'static str, String)>) -> Option<KubernetesTarget> {
        let mut selector = |field: &'static str, text: Option<String>| match text
            .as_deref()
            .map(str::parse::<LabelSelector>)
            .transpose()
        {
            Ok(parsed) => parsed,
            Err(err) => {
                problems.push((field, err.to_string()));
                None
            }
        };
        let namespace_selector = selector("namespace_selector", self.namespace_selector);
        let workloads = selector("selector", self.selector);
        let grace_period = match self.grace_period.as_deref().map(duration::parse) {
            Some(Err(err)) => {
                problems.push(("grace_period", err.to_string()));
                None
            }
            Some(Ok(parsed)) => Some(parsed),
            None => None,
        };
        Some(KubernetesTarget {
            namespaces: self.namespaces,
            namespace_selector,
            exclude_namespaces: self.exclude_namespaces,
            selector: workloads.unwrap_or_default(),
            down_replicas: self.down_replicas,
            grace_period,
        })
    }
}

/// EC2 Auto Scaling groups selected by name or tag, with their spot policy `P`: as written
/// ([`RawAsgTarget`]) or validated.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsgTarget<P = SpotPolicy> {
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
    pub spot: Option<P>,
}

/// An `aws_asg` target as written.
pub type RawAsgTarget = AsgTarget<RawSpotPolicy>;

impl RawAsgTarget {
    /// The target with its spot fallback's cooldown parsed; `None` when it does not parse
    /// (the target's problems say why).
    fn compile(self, _problems: &mut [(&'static str, String)]) -> Option<AsgTarget> {
        let spot = match self.spot {
            Some(spot) => Some(spot.compile()?),
            None => None,
        };
        Some(AsgTarget {
            names: self.names,
            tags: self.tags,
            region: self.region,
            assume_role_arn: self.assume_role_arn,
            down: self.down,
            suspend_processes: self.suspend_processes,
            spot,
        })
    }
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

/// RDS DB instances and Aurora DB clusters, by identifier or by tag (either selects).
///
/// A cluster is stopped and started as one; its member instances cannot be selected on
/// their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsTarget {
    /// DB instance identifiers.
    #[serde(default)]
    pub instances: Vec<String>,
    /// DB cluster identifiers.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Tags every selected instance or cluster carries.
    #[serde(default)]
    pub tags: Labels,
    /// AWS region.
    pub region: String,
    /// Role to assume (another account).
    pub assume_role_arn: Option<String>,
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

/// The spot/on-demand distribution while up and while down, with the fallback `F`: as
/// written ([`RawSpotPolicy`]) or validated.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotPolicy<F = SpotFallback> {
    /// Distribution while up.
    pub uptime: Option<SpotDistribution>,
    /// Distribution while down.
    pub downtime: Option<SpotDistribution>,
    /// Raising the on-demand share for a while when spot capacity is short.
    pub fallback: Option<F>,
}

/// A spot policy as written.
pub type RawSpotPolicy = SpotPolicy<RawSpotFallback>;

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

impl RawSpotPolicy {
    /// The policy with its fallback's cooldown parsed; `None` when it does not parse.
    fn compile(self) -> Option<SpotPolicy> {
        let fallback = match self.fallback {
            Some(fallback) => Some(fallback.compile()?),
            None => None,
        };
        Some(SpotPolicy {
            uptime: self.uptime,
            downtime: self.downtime,
            fallback,
        })
    }

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
#[derive(Debug, Clone, PartialEq)]
pub struct SpotFallback {
    /// The on-demand percentage above the base during the fallback.
    pub on_demand_percent_above_base: u32,
    /// How long after the latest spot capacity failure the fallback lasts.
    pub cooldown: Duration,
}

/// A spot fallback as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpotFallback {
    /// The on-demand percentage above the base during the fallback (default 100).
    #[serde(default = "default_fallback_percent")]
    pub on_demand_percent_above_base: u32,
    /// How long after the latest spot capacity failure the fallback lasts (default `30m`).
    pub cooldown: Option<String>,
}

/// The on-demand percentage above the base during a fallback, unless configured.
const DEFAULT_FALLBACK_PERCENT: u32 = 100;

/// How long a fallback lasts after the latest spot capacity failure, unless configured.
pub const DEFAULT_FALLBACK_COOLDOWN: Duration = Duration::minutes(30);

fn default_fallback_percent() -> u32 {
    DEFAULT_FALLBACK_PERCENT
}

impl RawSpotFallback {
    /// The fallback with its cooldown parsed; `None` when it does not parse.
    fn compile(self) -> Option<SpotFallback> {
        let cooldown = match self.cooldown.as_deref().map(duration::parse) {
            Some(parsed) => parsed.ok()?,
            None => DEFAULT_FALLBACK_COOLDOWN,
        };
        Some(SpotFallback {
            on_demand_percent_above_base: self.on_demand_percent_above_base,
            cooldown,
        })
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.on_demand_percent_above_base > 100 {
            problems.push(format!(
                "on_demand_percent_above_base {} is above 100",
                self.on_demand_percent_above_base
            ));
        }
        if let Some(Err(err)) = self.cooldown.as_deref().map(duration::parse) {
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
        assert_eq!(fallback.cooldown, chrono::Duration::minutes(30));
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

    #[test]
    fn kubernetes_targets_hold_compiled_selectors_and_a_parsed_grace_period() {
        let config = load(
            "      - kubernetes: { namespaces: [shop], selector: 'tier in (web,api)', grace_period: 1h }\n",
        )
        .unwrap();
        let super::TargetConfig::Kubernetes(k) = &config.environments["staging"].targets[0] else {
            panic!("not kubernetes")
        };
        assert_eq!(k.grace_period, Some(chrono::Duration::hours(1)));
        assert_eq!(k.selector.to_string(), "tier in (web,api)");
        assert_eq!(k.namespace_selector, None);
    }

    #[test]
    fn bad_selectors_and_grace_periods_are_errors_with_their_location() {
        let err = load(
            "      - kubernetes: { namespaces: [shop], selector: 'tier in (a', namespace_selector: '!', grace_period: soon }\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "c.yaml:7:",
            "kubernetes target, 'selector': bad label selector 'tier in (a'",
            "kubernetes target, 'namespace_selector': bad label selector '!'",
            "kubernetes target, 'grace_period': bad duration 'soon'",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        assert_eq!(err.diagnostics().len(), 3, "{text}");
    }
}
