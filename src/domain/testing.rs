//! Builders of domain values for unit tests, in one place (`mk_*`).

use chrono::{DateTime, Duration, Utc};

use super::simulation::{GroupKind, NamespaceConfig, NodeGroupConfig};
use super::{
    Capacity, DatabaseEngine, EnvironmentDecision, Footprint, Kind, Lifecycle, Override, Target,
    TargetRules,
};
use crate::calendar::State;

/// The instant `seconds` after the fixed instant unit tests start from (2027-01-15T08:00:00Z).
pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("in range")
}

/// The decision `state` for `staging`, for reason "test", with no next change.
pub(crate) fn mk_decision(state: State) -> EnvironmentDecision {
    EnvironmentDecision {
        environment: "staging".to_string(),
        state,
        reason: "test".to_string(),
        next_change: None,
        override_id: None,
        idle_since: None,
    }
}

/// A workload `id` of `kind` at `replicas`, scaled down from `original` replicas when that
/// is given, in `staging`, created three days before [`at`]`(0)`.
pub(crate) fn mk_target(id: &str, kind: Kind, replicas: u32, original: Option<u32>) -> Target {
    Target {
        id: id.to_string(),
        kind,
        environment: "staging".to_string(),
        capacity: Capacity::Replicas(replicas),
        original: original.map(Capacity::Replicas),
        down: Capacity::Replicas(0),
        ready: true,
        created_at: Some(at(0) - Duration::days(3)),
        footprint: Footprint::Nothing,
        rules: TargetRules::default(),
    }
}

/// An Auto Scaling group of `count` m6i.large nodes in `region`, scaled down from
/// `original` nodes when that is given.
pub(crate) fn mk_group_target(
    count: u32,
    original: Option<u32>,
    lifecycle: Lifecycle,
    region: &str,
) -> Target {
    let group = |desired| Capacity::Group {
        min: 0,
        max: 10,
        desired,
    };
    Target {
        id: "auto_scaling_group/nodes".into(),
        kind: Kind::AutoScalingGroup,
        environment: "staging".into(),
        capacity: group(count),
        original: original.map(group),
        down: group(0),
        ready: true,
        created_at: None,
        footprint: Footprint::Instances {
            instance_type: "m6i.large".into(),
            lifecycle,
            count,
            region: Some(region.into()),
        },
        rules: TargetRules::default(),
    }
}

/// An Aurora cluster `db_cluster/eu-central-1/orders` of two db.r6g.large instances and
/// 100 GiB of storage in eu-central-1, running or stopped, stopped by curfew from `original`
/// when that is given.
pub(crate) fn mk_database_target(running: bool, original: Option<bool>) -> Target {
    Target {
        id: "db_cluster/eu-central-1/orders".into(),
        kind: Kind::DbCluster,
        environment: "staging".into(),
        capacity: Capacity::Running(running),
        original: original.map(Capacity::Running),
        down: Capacity::Running(false),
        ready: true,
        created_at: None,
        footprint: Footprint::Database {
            instance_classes: vec!["db.r6g.large".into(), "db.r6g.large".into()],
            engine: DatabaseEngine::Aurora,
            running,
            multi_az: false,
            storage_gib: 100,
            storage_type: "aurora".into(),
            region: Some("eu-central-1".into()),
        },
        rules: TargetRules::default(),
    }
}

/// An override of `environment` to `state` by otto, from `created_at` until `until`.
pub(crate) fn mk_override(
    id: &str,
    environment: &str,
    state: State,
    created_at: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Override {
    Override {
        id: id.into(),
        environment: environment.into(),
        state,
        created_at,
        until,
        reason: "release rehearsal".into(),
        created_by: "otto".into(),
    }
}

/// A simulated node group of on-demand m6i.xlarge nodes at $0.25 an hour, 4 pods each.
pub(crate) fn mk_node_group(
    name: &str,
    kind: GroupKind,
    min: u32,
    desired: u32,
    max: u32,
) -> NodeGroupConfig {
    NodeGroupConfig {
        name: name.to_string(),
        kind,
        instance_type: "m6i.xlarge".to_string(),
        lifecycle: Lifecycle::OnDemand,
        hourly_price: 0.25,
        min,
        max,
        desired,
        pods_per_node: 4,
    }
}

/// A simulated namespace on `node_group` with `deployments` Deployments of 2 replicas, each
/// pod requesting 500 millicores and 1 GiB.
pub(crate) fn mk_namespace(name: &str, node_group: &str, deployments: u32) -> NamespaceConfig {
    NamespaceConfig {
        name: name.to_string(),
        node_group: node_group.to_string(),
        deployments,
        statefulsets: 0,
        cronjobs: 0,
        replicas: 2,
        cpu_millis: 500,
        memory_mib: 1024,
    }
}
