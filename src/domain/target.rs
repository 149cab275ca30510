//! Targets: what curfew scales, as providers observe them, and what their capacity means.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Action;
use crate::calendar::Schedule;

/// The order in which targets wake (and, reversed, sleep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Node capacity: Auto Scaling groups, node groups, EC2 instances.
    Nodes,
    /// StatefulSets.
    Stateful,
    /// Everything else.
    Workloads,
}

impl Tier {
    /// Every tier in waking order.
    pub const WAKE_ORDER: [Tier; 3] = [Tier::Nodes, Tier::Stateful, Tier::Workloads];
}

/// What kind of thing a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An EC2 Auto Scaling group.
    AutoScalingGroup,
    /// An EKS managed node group.
    EksNodegroup,
    /// A standalone EC2 instance.
    Ec2Instance,
    /// A Kubernetes Deployment.
    Deployment,
    /// A Kubernetes StatefulSet.
    StatefulSet,
    /// A Kubernetes CronJob.
    CronJob,
    /// A Kubernetes HorizontalPodAutoscaler (its `minReplicas`).
    HorizontalPodAutoscaler,
    /// A KEDA ScaledObject (its `autoscaling.keda.sh/paused-replicas`).
    ScaledObject,
    /// An Argo Rollout.
    Rollout,
}

impl Kind {
    /// The tier this kind wakes in.
    pub fn tier(self) -> Tier {
        match self {
            Kind::AutoScalingGroup | Kind::EksNodegroup | Kind::Ec2Instance => Tier::Nodes,
            Kind::StatefulSet => Tier::Stateful,
            Kind::Deployment
            | Kind::CronJob
            | Kind::HorizontalPodAutoscaler
            | Kind::ScaledObject
            | Kind::Rollout => Tier::Workloads,
        }
    }

    /// The snake_case name used in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AutoScalingGroup => "auto_scaling_group",
            Kind::EksNodegroup => "eks_nodegroup",
            Kind::Ec2Instance => "ec2_instance",
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "stateful_set",
            Kind::CronJob => "cron_job",
            Kind::HorizontalPodAutoscaler => "horizontal_pod_autoscaler",
            Kind::ScaledObject => "scaled_object",
            Kind::Rollout => "rollout",
        }
    }
}

/// A target's capacity in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capacity {
    /// Replicas of a workload.
    Replicas(u32),
    /// A group's min, max and desired size.
    Group {
        /// Minimum size.
        min: u32,
        /// Maximum size.
        max: u32,
        /// Desired capacity.
        desired: u32,
    },
    /// Whether a CronJob is suspended.
    Suspended(bool),
    /// Whether an instance is running.
    Running(bool),
}

impl Capacity {
    /// Whether this capacity runs anything at all.
    pub fn is_zero(self) -> bool {
        match self {
            Capacity::Replicas(n) => n == 0,
            Capacity::Group { desired, .. } => desired == 0,
            Capacity::Suspended(suspended) => suspended,
            Capacity::Running(running) => !running,
        }
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capacity::Replicas(n) => write!(f, "{n} replicas"),
            Capacity::Group { min, max, desired } => {
                write!(f, "{min}/{max}/{desired} (min/max/desired)")
            }
            Capacity::Suspended(true) => f.write_str("suspended"),
            Capacity::Suspended(false) => f.write_str("active"),
            Capacity::Running(true) => f.write_str("running"),
            Capacity::Running(false) => f.write_str("stopped"),
        }
    }
}

/// How instances are bought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// On-demand instances (the default).
    #[default]
    OnDemand,
    /// Spot instances.
    Spot,
}

impl Lifecycle {
    /// `on_demand` or `spot`, as in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::OnDemand => "on_demand",
            Lifecycle::Spot => "spot",
        }
    }
}

/// What a target runs right now, for the cost model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "runs", rename_all = "snake_case")]
pub enum Footprint {
    /// Running instances: a group's nodes (joining ones included) or a standalone instance.
    Instances {
        /// EC2 instance type, e.g. `m6i.large`.
        instance_type: String,
        /// On-demand or spot.
        lifecycle: Lifecycle,
        /// Instances billed now.
        count: u32,
        /// The AWS region, when known.
        region: Option<String>,
    },
    /// Running pods and what each requests.
    Pods {
        /// Pods running now.
        count: u32,
        /// CPU requested per pod, in millicores.
        cpu_millis: u32,
        /// Memory requested per pod, in MiB.
        memory_mib: u32,
    },
    /// Nothing billable (a CronJob between runs).
    Nothing,
}

/// A target as a provider observes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Unique, stable id, e.g. `asg/eu-central-1/staging-nodes` or `deployment/shop/web`.
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// The environment it belongs to.
    pub environment: String,
    /// Current capacity.
    pub capacity: Capacity,
    /// The capacity curfew stored on the target when it scaled it down, if it did.
    pub original: Option<Capacity>,
    /// The capacity it should have while down.
    pub down: Capacity,
    /// Whether it has reached its current capacity (all replicas ready, all nodes joined).
    pub ready: bool,
    /// When it was created, if known (young workloads are not scaled down).
    pub created_at: Option<DateTime<Utc>>,
    /// What it runs now, for the cost model.
    pub footprint: Footprint,
    /// Where it deviates from its environment's rules (its own calendar, grace period).
    #[serde(skip)]
    pub rules: TargetRules,
}

/// Rules of one target that differ from its environment's (from annotations or its target
/// group's configuration). The default follows the environment in everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetRules {
    /// Its own calendar, when it does not follow its environment's.
    pub calendar: Option<Arc<TargetCalendar>>,
    /// Its own grace period ("too young to scale down"), when it has one.
    pub grace_period: Option<chrono::Duration>,
}

/// A calendar that decides one target instead of its environment's schedule.
///
/// An active override of the environment still beats it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCalendar {
    /// Where it comes from, for reasons, e.g. `downscaler/uptime on namespace shop`.
    pub source: String,
    /// The schedule that decides the target, forced states included as exceptions.
    pub schedule: Schedule,
}

// === impl Target ===

impl Target {
    /// The target as it runs once `action` has taken effect: the capacity it was given, the
    /// original it stored (or none after a wake), and its footprint scaled to that capacity.
    /// The cost model books this after a pass instead of discovering everything again.
    pub fn after(&self, action: &Action) -> Target {
        match action {
            Action::ScaleDown { original, to, .. } => self.at_capacity(*to, Some(*original)),
            Action::ScaleUp { to, .. } => self.at_capacity(*to, None),
        }
    }

    /// The target at `capacity` with `original` stored, its footprint counting the units
    /// that capacity runs (instances, pods) at the same type and prices.
    pub fn at_capacity(&self, capacity: Capacity, original: Option<Capacity>) -> Target {
        let units = match capacity {
            Capacity::Replicas(n) => n,
            Capacity::Group { desired, .. } => desired,
            Capacity::Running(running) => u32::from(running),
            Capacity::Suspended(_) => 0,
        };
        let footprint = match &self.footprint {
            Footprint::Instances {
                instance_type,
                lifecycle,
                region,
                ..
            } => Footprint::Instances {
                instance_type: instance_type.clone(),
                lifecycle: *lifecycle,
                count: units,
                region: region.clone(),
            },
            Footprint::Pods {
                cpu_millis,
                memory_mib,
                ..
            } => Footprint::Pods {
                count: units,
                cpu_millis: *cpu_millis,
                memory_mib: *memory_mib,
            },
            Footprint::Nothing => Footprint::Nothing,
        };
        Target {
            capacity,
            original,
            footprint,
            ..self.clone()
        }
    }
}
