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
            }
            TargetConfig::AwsEksNodegroup(n) => {
                require_region(&n.region);
                if n.cluster.trim().is_empty() {
                    problems.push(("cluster", "cluster must not be empty".to_string()));
                }
                if n.names.is_empty() && n.tags.is_empty() {
                    problems.push((
                        "names",
                        "select node groups with 'names' or 'tags'".to_string(),
                    ));
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
