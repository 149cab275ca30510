//! The simulated estate: node groups with joining nodes, the workloads running on them, and
//! databases that take a while to start (and that the cloud starts again by itself after
//! seven days stopped, as RDS does).
//!
//! The estate is pure: it never reads a clock, `now` is always a parameter. It plays the cloud,
//! so it keeps what a real cloud keeps on its objects (capacity and the stored original) and
//! survives the scaler being killed through [`Estate::save`] and [`Estate::load`].

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::mem::discriminant;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::config::{Environment, TargetConfig, targets::KubernetesTarget};
use crate::domain::simulation::{
    DatabaseConfig, DatabaseKind, GroupKind, NodeGroupConfig, SimulationConfig, database_id,
    group_id,
};
use crate::domain::{Action, Capacity, Footprint, Kind, Lifecycle, StopRecord, Target};

/// Version of the persisted format.
const FORMAT_VERSION: u32 = 1;

/// Largest group size the simulated API accepts.
pub const MAX_GROUP_SIZE: u32 = 10_000;

/// How long workloads of a fresh estate have existed: the estate models a running staging
/// estate, not one created this instant.
const PREEXISTING_AGE: TimeDelta = TimeDelta::days(7);

/// Why an estate operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `simulation:` section is invalid.
    #[error("invalid simulation config: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    /// No object has this id.
    #[error("target {0} not found")]
    NotFound(String),
    /// The capacity does not fit the kind of target.
    #[error("{target}: a {kind} cannot have capacity {given}")]
    WrongCapacity {
        /// The target's id.
        target: String,
        /// Its kind, as in [`Kind::as_str`].
        kind: &'static str,
        /// The capacity it was given.
        given: Capacity,
    },
    /// A group size outside `min <= desired <= max <= MAX_GROUP_SIZE`.
    #[error("{target}: invalid group size {given}, need min <= desired <= max <= {MAX_GROUP_SIZE}")]
    InvalidGroupSize {
        /// The target's id.
        target: String,
        /// The capacity it was given.
        given: Capacity,
    },
    /// The estate file could not be read.
    #[error("{}: cannot read estate: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The estate file could not be written.
    #[error("{}: cannot write estate: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The estate file is not a valid estate.
    #[error("{}: corrupt estate file: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The estate file parses but contradicts itself.
    #[error("{}: inconsistent estate file: {problem}", path.display())]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The estate could not be turned into JSON.
    #[error("cannot serialize estate: {0}")]
    Serialize(serde_json::Error),
}

/// Result type of estate operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The simulated cloud and cluster.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "Stored")]
pub struct Estate {
    version: u32,
    node_join_seconds: u64,
    advanced_to: Option<DateTime<Utc>>,
    groups: BTreeMap<String, NodeGroup>,
    databases: BTreeMap<String, Database>,
    /// Every workload with its id, sorted by id. Workloads are never added, removed or moved
    /// to another group, so the indexes below are built once.
    workloads: Vec<(String, Workload)>,
    /// Derived: the position of each workload in `workloads`.
    positions: HashMap<String, usize>,
    /// Derived: the positions of the workloads on each node group, in scheduling order
    /// (StatefulSets first, then by id).
    members: HashMap<String, Vec<usize>>,
}

/// The persisted fields of an [`Estate`], as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    node_join_seconds: u64,
    advanced_to: Option<DateTime<Utc>>,
    groups: BTreeMap<String, NodeGroup>,
    #[serde(default)]
    databases: BTreeMap<String, Database>,
    workloads: BTreeMap<String, Workload>,
}

/// The persisted fields of an [`Estate`], as written (same shape as [`Stored`]).
#[derive(Serialize)]
struct StoredRef<'a> {
    version: u32,
    node_join_seconds: u64,
    advanced_to: Option<DateTime<Utc>>,
    groups: &'a BTreeMap<String, NodeGroup>,
    databases: &'a BTreeMap<String, Database>,
    workloads: WorkloadMap<'a>,
}

/// Workloads written as a map from id to workload.
struct WorkloadMap<'a>(&'a [(String, Workload)]);

impl Serialize for WorkloadMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(id, workload)| (id, workload)))
    }
}

impl Serialize for Estate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stored = StoredRef {
            version: self.version,
            node_join_seconds: self.node_join_seconds,
            advanced_to: self.advanced_to,
            groups: &self.groups,
            databases: &self.databases,
            workloads: WorkloadMap(&self.workloads),
        };
        stored.serialize(serializer)
    }
}

impl From<Stored> for Estate {
    fn from(stored: Stored) -> Estate {
        let workloads: Vec<(String, Workload)> = stored.workloads.into_iter().collect();
        let positions = workloads
            .iter()
            .enumerate()
            .map(|(position, (id, _))| (id.clone(), position))
            .collect();
        let mut members: HashMap<String, Vec<usize>> = HashMap::new();
        for stateful_pass in [true, false] {
            for (position, (_, workload)) in workloads.iter().enumerate() {
                if (workload.kind == Kind::StatefulSet) == stateful_pass {
                    let on_group = members.entry(workload.node_group.clone()).or_default();
                    on_group.push(position);
                }
            }
        }
        Estate {
            version: stored.version,
            node_join_seconds: stored.node_join_seconds,
            advanced_to: stored.advanced_to,
            groups: stored.groups,
            databases: stored.databases,
            workloads,
            positions,
            members,
        }
    }
}

/// What curfew sees and changes on an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// Current capacity.
    pub capacity: Capacity,
    /// The stored original (`curfew.dev/original-replicas`, `curfew:original-capacity`).
    pub original: Option<Capacity>,
    /// The environment managing it, if any selects it.
    pub management: Option<Management>,
}

/// How an environment manages an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Management {
    /// The environment's name.
    pub environment: String,
    /// The capacity while down.
    pub down: Capacity,
    /// The AWS region the selecting target names, for node groups.
    #[serde(default)]
    pub region: Option<String>,
}

/// A simulated Auto Scaling group or EKS managed node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// Group name.
    pub name: String,
    /// Auto Scaling group or EKS node group.
    pub kind: GroupKind,
    /// EC2 instance type.
    pub instance_type: String,
    /// On-demand or spot.
    pub lifecycle: Lifecycle,
    /// Price of one node per hour, in dollars.
    pub hourly_price: f64,
    /// Pods one ready node can run.
    pub pods_per_node: u32,
    /// Min/max/desired ([`Capacity::Group`]) and the stored original.
    pub scaling: Scaling,
    /// Launched nodes, oldest first.
    pub nodes: Vec<Node>,
    /// Nodes launched so far; names the next one.
    pub launched: u64,
}

/// One node of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Node name, `<group>-<n>`.
    pub name: String,
    /// When it joins the cluster and can run pods.
    pub ready_at: DateTime<Utc>,
}

/// A simulated RDS DB instance or Aurora DB cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Its identifier.
    pub name: String,
    /// A DB instance or a DB cluster.
    pub kind: DatabaseKind,
    /// The class of its instances.
    pub instance_class: String,
    /// How many instances it runs (a cluster's members).
    pub instances: u32,
    /// Allocated storage in GiB.
    pub storage_gib: u32,
    /// Seconds a start takes.
    pub start_seconds: u64,
    /// Running or stopped ([`Capacity::Running`]) and the stored original.
    pub scaling: Scaling,
    /// When the start in progress completes, if one is.
    pub available_at: Option<DateTime<Utc>>,
    /// When curfew stopped it (the stop tag); the cloud starts it again
    /// [`Kind::max_stopped`] later.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A simulated Deployment, StatefulSet or CronJob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Deployment, StatefulSet or CronJob.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Id of the node group its pods run on.
    pub node_group: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// CPU each pod requests, in millicores.
    #[serde(default = "crate::domain::simulation::default_cpu_millis")]
    pub cpu_millis: u32,
    /// Memory each pod requests, in MiB.
    #[serde(default = "crate::domain::simulation::default_memory_mib")]
    pub memory_mib: u32,
    /// Replicas ([`Capacity::Replicas`]) or suspension ([`Capacity::Suspended`]) and the stored
    /// original.
    pub scaling: Scaling,
}

/// What [`Estate::advance`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Advance {
    /// Nodes launched because groups wanted more.
    pub launched: usize,
    /// Nodes removed because groups wanted fewer.
    pub removed: usize,
    /// Nodes that became ready since the previous advance.
    pub joined: usize,
    /// Databases the cloud started by itself after too long stopped.
    pub restarted: usize,
}

impl Advance {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.launched + self.removed + self.joined + self.restarted > 0
    }
}

// === impl Estate ===

impl Estate {
    /// Builds the estate described by `sim` as it is at `now` (every group at its desired size
    /// with its nodes ready, every workload a week old), managed by `environments`.
    pub fn from_config<'a>(
        sim: &SimulationConfig,
        environments: impl IntoIterator<Item = &'a Environment>,
        now: DateTime<Utc>,
    ) -> Result<Estate> {
        let problems = sim.validate();
        if !problems.is_empty() {
            return Err(Error::InvalidConfig(problems));
        }
        let groups: BTreeMap<String, NodeGroup> = sim
            .node_groups
            .iter()
            .map(|group| (group.id(), NodeGroup::new(group, now)))
            .collect();
        let group_ids: HashMap<&str, String> = sim
            .node_groups
            .iter()
            .map(|group| (group.name.as_str(), group.id()))
            .collect();
        let databases = sim
            .databases
            .iter()
            .map(|database| (database.id(), Database::new(database)))
            .collect();
        let created_at = now.checked_sub_signed(PREEXISTING_AGE).unwrap_or(now);
        let mut workloads = BTreeMap::new();
        for namespace in &sim.namespaces {
            let Some(node_group) = group_ids.get(namespace.node_group.as_str()) else {
                continue; // validate() rejects unknown node groups
            };
            for spec in namespace.workloads() {
                let capacity = match spec.kind {
                    Kind::CronJob => Capacity::Suspended(false),
                    _ => Capacity::Replicas(namespace.replicas),
                };
                let workload = Workload {
                    kind: spec.kind,
                    namespace: namespace.name.clone(),
                    name: spec.name.clone(),
                    node_group: node_group.clone(),
                    created_at,
                    cpu_millis: namespace.cpu_millis,
                    memory_mib: namespace.memory_mib,
                    scaling: Scaling::unmanaged(capacity),
                };
                workloads.insert(spec.id(&namespace.name), workload);
            }
        }
        let mut estate = Estate::from(Stored {
            version: FORMAT_VERSION,
            node_join_seconds: sim.node_join_seconds,
            advanced_to: Some(now),
            groups,
            databases,
            workloads,
        });
        estate.select(environments);
        Ok(estate)
    }

    /// Assigns every object to the first environment (in the given order) whose targets select
    /// it; objects no environment selects are left unmanaged.
    ///
    /// `aws_asg.names` selects Auto Scaling groups and `aws_eks_nodegroup.names` EKS node groups
    /// by name; `kubernetes.namespaces` selects namespaces by name or glob, minus
    /// `exclude_namespaces`; `aws_rds.instances` and `aws_rds.clusters` select databases by
    /// name. Tags, label selectors and `aws_ec2` select nothing here.
    pub fn select<'a>(&mut self, environments: impl IntoIterator<Item = &'a Environment>) {
        for scaling in self.scalings_mut() {
            scaling.management = None;
        }
        for environment in environments {
            for target in &environment.targets {
                self.select_target(&environment.name, target);
            }
        }
    }

    fn select_target(&mut self, environment: &str, target: &TargetConfig) {
        let manage = |scaling: &mut Scaling, down: Capacity, region: Option<&str>| {
            if scaling.management.is_none() {
                scaling.management = Some(Management {
                    environment: environment.to_string(),
                    down,
                    region: region.map(str::to_string),
                });
            }
        };
        match target {
            TargetConfig::Kubernetes(kubernetes) => {
                for (_, workload) in &mut self.workloads {
                    if selects_namespace(kubernetes, &workload.namespace) {
                        let down = match workload.kind {
                            Kind::CronJob => Capacity::Suspended(true),
                            _ => Capacity::Replicas(kubernetes.down_replicas),
                        };
                        manage(&mut workload.scaling, down, None);
                    }
                }
            }
            TargetConfig::AwsAsg(asg) => {
                let down = asg.down.map_or(group_capacity(0, 0, 0), |down| {
                    group_capacity(down.min, down.max, down.desired)
                });
                for name in &asg.names {
                    let id = group_id(GroupKind::AutoScalingGroup, name);
                    if let Some(group) = self.groups.get_mut(&id) {
                        manage(&mut group.scaling, down, Some(&asg.region));
                    }
                }
            }
            TargetConfig::AwsEksNodegroup(nodegroup) => {
                for name in &nodegroup.names {
                    let id = group_id(GroupKind::EksNodegroup, name);
                    if let Some(group) = self.groups.get_mut(&id) {
                        let (_, max, _) = group.size();
                        manage(
                            &mut group.scaling,
                            group_capacity(0, max.max(1), 0),
                            Some(&nodegroup.region),
                        );
                    }
                }
            }
            TargetConfig::AwsRds(rds) => {
                let named = [
                    (DatabaseKind::DbInstance, &rds.instances),
                    (DatabaseKind::DbCluster, &rds.clusters),
                ];
                for (kind, names) in named {
                    for name in names {
                        if let Some(database) = self.databases.get_mut(&database_id(kind, name)) {
                            manage(
                                &mut database.scaling,
                                Capacity::Running(false),
                                Some(&rds.region),
                            );
                        }
                    }
                }
            }
            TargetConfig::AwsEc2(_) => {}
        }
    }

    /// Takes over which environment manages each object (and its down capacity) from `other`,
    /// matching objects by id; objects `other` does not have become unmanaged. Used when an
    /// estate loaded from disk meets the current configuration.
    pub fn adopt_management(&mut self, other: &Estate) {
        for (id, group) in &mut self.groups {
            group.scaling.management = other
                .groups
                .get(id)
                .and_then(|theirs| theirs.scaling.management.clone());
        }
        for (id, workload) in &mut self.workloads {
            workload.scaling.management = other
                .workload(id)
                .and_then(|theirs| theirs.scaling.management.clone());
        }
        for (id, database) in &mut self.databases {
            database.scaling.management = other
                .databases
                .get(id)
                .and_then(|theirs| theirs.scaling.management.clone());
        }
    }

    fn scalings_mut(&mut self) -> impl Iterator<Item = &mut Scaling> {
        let groups = self.groups.values_mut().map(|group| &mut group.scaling);
        let databases = self.databases.values_mut().map(|db| &mut db.scaling);
        let workloads = self.workloads.iter_mut().map(|(_, w)| &mut w.scaling);
        groups.chain(databases).chain(workloads)
    }

    /// Seconds a launched node takes to become ready.
    pub fn node_join_seconds(&self) -> u64 {
        self.node_join_seconds
    }

    /// The node group with this id.
    pub fn node_group(&self, id: &str) -> Option<&NodeGroup> {
        self.groups.get(id)
    }

    /// The database with this id.
    pub fn database(&self, id: &str) -> Option<&Database> {
        self.databases.get(id)
    }

    /// The workload with this id.
    pub fn workload(&self, id: &str) -> Option<&Workload> {
        let position = *self.positions.get(id)?;
        self.workloads.get(position).map(|(_, workload)| workload)
    }

    fn workload_mut(&mut self, id: &str) -> Option<&mut Workload> {
        let position = *self.positions.get(id)?;
        self.workloads
            .get_mut(position)
            .map(|(_, workload)| workload)
    }

    /// Every node group by id, managed or not.
    pub fn node_groups(&self) -> impl Iterator<Item = (&str, &NodeGroup)> {
        self.groups.iter().map(|(id, group)| (id.as_str(), group))
    }

    /// Every workload by id, managed or not.
    pub fn workloads(&self) -> impl Iterator<Item = (&str, &Workload)> {
        self.workloads.iter().map(|(id, w)| (id.as_str(), w))
    }

    /// Brings node counts to the groups' desired sizes at `now` (launched nodes join
    /// `node_join_seconds` later, surplus nodes go at once, newest first) and reports what
    /// changed since the previous advance.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Advance {
        let since = self.advanced_to;
        let mut report = Advance::default();
        for group in self.groups.values_mut() {
            let (launched, removed) = group.reconcile_nodes(now, self.node_join_seconds);
            report.launched += launched;
            report.removed += removed;
            report.joined += group
                .nodes
                .iter()
                .filter(|node| node.ready_at <= now && since.is_none_or(|s| node.ready_at > s))
                .count();
        }
        for database in self.databases.values_mut() {
            report.restarted += usize::from(database.restart_if_stopped_too_long(now));
        }
        self.advanced_to = Some(since.map_or(now, |since| since.max(now)));
        report
    }

    /// Every managed target as observed at `now`, sorted by id.
    pub fn targets(&self, now: DateTime<Utc>) -> Vec<Target> {
        let mut ready_replicas = vec![0; self.workloads.len()];
        for group_id in self.groups.keys() {
            for (position, scheduled) in self.scheduled_on(group_id, now) {
                if let Some(ready) = ready_replicas.get_mut(position) {
                    *ready = scheduled;
                }
            }
        }
        let groups = self.groups.iter().filter_map(|(id, group)| {
            let footprint = Footprint::Instances {
                instance_type: group.instance_type.clone(),
                lifecycle: group.lifecycle,
                count: group.nodes.len() as u32,
                region: group
                    .scaling
                    .management
                    .as_ref()
                    .and_then(|m| m.region.clone()),
            };
            group
                .scaling
                .target(id, group.kind.kind(), group.is_ready(now), None, footprint)
        });
        let workloads = self.workloads.iter().zip(ready_replicas).filter_map(
            |((id, workload), ready_replicas)| {
                let ready = workload.is_ready(ready_replicas);
                let created_at = Some(workload.created_at);
                workload.scaling.target(
                    id,
                    workload.kind,
                    ready,
                    created_at,
                    workload.footprint(ready_replicas),
                )
            },
        );
        let databases = self
            .databases
            .iter()
            .filter_map(|(id, database)| database.target(id, now));
        let mut targets: Vec<Target> = groups.chain(databases).chain(workloads).collect();
        // Sorted runs: the stable sort merges them in linear time.
        targets.sort_by(|a, b| a.id.cmp(&b.id));
        targets
    }

    /// Whether the object has reached its current capacity at `now`: a group has all its nodes
    /// joined, a workload has all its replicas scheduled on ready nodes. Costs time in the
    /// number of workloads on the same group, not in the size of the estate.
    pub fn ready(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        if let Some(group) = self.groups.get(id) {
            return Ok(group.is_ready(now));
        }
        if let Some(database) = self.databases.get(id) {
            return Ok(database.is_ready(now));
        }
        let not_found = || Error::NotFound(id.to_string());
        let position = *self.positions.get(id).ok_or_else(not_found)?;
        let (_, workload) = self.workloads.get(position).ok_or_else(not_found)?;
        let mut scheduled = self.scheduled_on(&workload.node_group, now);
        let mine = scheduled.find(|(member, _)| *member == position);
        Ok(workload.is_ready(mine.map_or(0, |(_, ready)| ready)))
    }

    /// Ready replicas of the workloads on `group_id` by position, in scheduling order: the
    /// group offers `pods_per_node` pods per ready node, taken by its StatefulSets first, then
    /// by the other workloads, each in id order.
    fn scheduled_on(
        &self,
        group_id: &str,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (usize, u32)> + '_ {
        let mut slots = self.groups.get(group_id).map_or(0, |g| g.pod_slots(now));
        let members = self.members.get(group_id).into_iter().flatten();
        members.filter_map(move |&position| {
            let (_, workload) = self.workloads.get(position)?;
            let scheduled = workload.pods().min(slots);
            slots -= scheduled;
            Some((position, scheduled))
        })
    }

    /// Applies `action` at `now`: a scale-down stores the original and sets the capacity in
    /// one write, a scale-up restores the capacity and removes the original. Groups launch or
    /// remove nodes at once. Returns whether anything changed (applying twice changes nothing).
    pub fn apply(&mut self, action: &Action, now: DateTime<Utc>) -> Result<bool> {
        let id = action.target();
        if let Some(group) = self.groups.get_mut(id) {
            let changed = group.scaling.apply(id, group.kind.kind(), action)?;
            group.reconcile_nodes(now, self.node_join_seconds);
            return Ok(changed);
        }
        if let Some(database) = self.databases.get_mut(id) {
            return database.apply(id, action, now);
        }
        match self.workload_mut(id) {
            Some(workload) => workload.scaling.apply(id, workload.kind, action),
            None => Err(Error::NotFound(id.to_string())),
        }
    }

    /// Hourly price of the launched nodes (joining or ready) per managing environment; `None`
    /// collects the groups no environment manages.
    pub fn hourly_cost(&self) -> BTreeMap<Option<String>, f64> {
        let mut cost = BTreeMap::new();
        for group in self.groups.values() {
            let environment = group.scaling.environment().map(str::to_string);
            *cost.entry(environment).or_insert(0.0) +=
                group.hourly_price * group.nodes.len() as f64;
        }
        cost
    }

    /// Spot prices of the managed spot groups, keyed by (region, instance type), the way a
    /// cloud's spot price history reports them.
    pub fn spot_prices(&self) -> HashMap<(String, String), f64> {
        self.groups
            .values()
            .filter(|group| group.lifecycle == Lifecycle::Spot)
            .filter_map(|group| {
                let region = group.scaling.management.as_ref()?.region.clone()?;
                Some(((region, group.instance_type.clone()), group.hourly_price))
            })
            .collect()
    }

    /// Launched nodes (joining or ready) in every group.
    pub fn running_nodes(&self) -> usize {
        self.groups.values().map(|group| group.nodes.len()).sum()
    }

    /// The estate as compact JSON, the format of [`Estate::save`].
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(Error::Serialize)
    }

    /// Writes the estate to `path` atomically (see [`write_atomically`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomically(path, &self.to_json()?)
    }

    /// Reads an estate written by [`Estate::save`]. A file that is not a consistent estate is an
    /// error naming the file, never a fresh estate.
    pub fn load(path: &Path) -> Result<Estate> {
        let bytes = fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let estate: Estate = serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
        match estate.inconsistency() {
            Some(problem) => Err(Error::Inconsistent {
                path: path.to_path_buf(),
                problem,
            }),
            None => Ok(estate),
        }
    }

    /// The first way in which the estate contradicts itself, if any.
    fn inconsistency(&self) -> Option<String> {
        if self.version != FORMAT_VERSION {
            return Some(format!(
                "format version {} (expected {FORMAT_VERSION})",
                self.version
            ));
        }
        let groups = self.groups.iter().filter_map(|(id, group)| {
            let kind = group.kind.kind();
            (!fits(kind, group.scaling.capacity)).then(|| format!("{id}: not a group size"))
        });
        let workloads = self.workloads.iter().filter_map(|(id, workload)| {
            if !fits(workload.kind, workload.scaling.capacity) {
                Some(format!(
                    "{id}: capacity does not fit a {}",
                    workload.kind.as_str()
                ))
            } else if !self.groups.contains_key(&workload.node_group) {
                Some(format!("{id}: unknown node group {}", workload.node_group))
            } else {
                None
            }
        });
        let databases = self.databases.iter().filter_map(|(id, database)| {
            let kind = database.kind.kind();
            (!fits(kind, database.scaling.capacity))
                .then(|| format!("{id}: not running or stopped"))
        });
        groups.chain(databases).chain(workloads).next()
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file: a temporary
/// file in the same folder is written and synced, renamed over `path`, and the folder synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::state::write_atomically(path, bytes).map_err(|err| match err {
        crate::state::Error::Io { path, source } => Error::Write { path, source },
        other => Error::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

/// Whether a kubernetes target selects `namespace`.
fn selects_namespace(target: &KubernetesTarget, namespace: &str) -> bool {
    let matches = |patterns: &[String]| patterns.iter().any(|p| glob_match(p, namespace));
    matches(&target.namespaces) && !matches(&target.exclude_namespaces)
}

/// Shell-style matching of `name` against `pattern`: `*` is any run of characters, `?` one.
fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = name.get(n) {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&want) if want == '?' || want == c => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    star = Some((star_p, star_n + 1));
                    p = star_p + 1;
                    n = star_n + 1;
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&c| c == '*')
}

fn group_capacity(min: u32, max: u32, desired: u32) -> Capacity {
    Capacity::Group { min, max, desired }
}

/// Whether `capacity` is the kind of capacity a `kind` has.
fn fits(kind: Kind, capacity: Capacity) -> bool {
    let expected = match kind {
        Kind::AutoScalingGroup | Kind::EksNodegroup => group_capacity(0, 0, 0),
        Kind::Deployment
        | Kind::StatefulSet
        | Kind::Rollout
        | Kind::HorizontalPodAutoscaler
        | Kind::ScaledObject => Capacity::Replicas(0),
        Kind::CronJob => Capacity::Suspended(false),
        Kind::Ec2Instance | Kind::DbInstance | Kind::DbCluster => Capacity::Running(false),
    };
    discriminant(&expected) == discriminant(&capacity)
}

// === impl Scaling ===

impl Scaling {
    fn unmanaged(capacity: Capacity) -> Scaling {
        Scaling {
            capacity,
            original: None,
            management: None,
        }
    }

    /// The managing environment's name.
    pub fn environment(&self) -> Option<&str> {
        self.management.as_ref().map(|m| m.environment.as_str())
    }

    /// The target as curfew sees it, if an environment manages it.
    fn target(
        &self,
        id: &str,
        kind: Kind,
        ready: bool,
        created_at: Option<DateTime<Utc>>,
        footprint: Footprint,
    ) -> Option<Target> {
        let management = self.management.as_ref()?;
        Some(Target {
            id: id.to_string(),
            kind,
            environment: management.environment.clone(),
            capacity: self.capacity,
            original: self.original,
            down: management.down,
            ready,
            created_at,
            footprint,
            rules: crate::domain::TargetRules::default(),
        })
    }

    /// Writes capacity and original together; returns whether they changed.
    fn apply(&mut self, id: &str, kind: Kind, action: &Action) -> Result<bool> {
        let (capacity, original) = match action {
            Action::ScaleDown { original, to, .. } => (*to, Some(*original)),
            Action::ScaleUp { to, .. } => (*to, None),
        };
        for given in [Some(capacity), original].into_iter().flatten() {
            if !fits(kind, given) {
                return Err(Error::WrongCapacity {
                    target: id.to_string(),
                    kind: kind.as_str(),
                    given,
                });
            }
        }
        if let Capacity::Group { min, max, desired } = capacity
            && !(min <= desired && desired <= max && max <= MAX_GROUP_SIZE)
        {
            return Err(Error::InvalidGroupSize {
                target: id.to_string(),
                given: capacity,
            });
        }
        let changed = self.capacity != capacity || self.original != original;
        self.capacity = capacity;
        self.original = original;
        Ok(changed)
    }
}

// === impl NodeGroup ===

impl NodeGroup {
    /// A group as configured, its desired nodes already ready at `now`.
    fn new(config: &NodeGroupConfig, now: DateTime<Utc>) -> NodeGroup {
        let capacity = group_capacity(config.min, config.max, config.desired);
        let mut group = NodeGroup {
            name: config.name.clone(),
            kind: config.kind,
            instance_type: config.instance_type.clone(),
            lifecycle: config.lifecycle,
            hourly_price: config.hourly_price,
            pods_per_node: config.pods_per_node,
            scaling: Scaling::unmanaged(capacity),
            nodes: Vec::new(),
            launched: 0,
        };
        group.reconcile_nodes(now, 0);
        group
    }

    /// Current `(min, max, desired)`.
    pub fn size(&self) -> (u32, u32, u32) {
        match self.scaling.capacity {
            Capacity::Group { min, max, desired } => (min, max, desired),
            _ => (0, 0, 0),
        }
    }

    /// Nodes that have joined by `now`.
    pub fn ready_nodes(&self, now: DateTime<Utc>) -> usize {
        self.nodes
            .iter()
            .filter(|node| node.ready_at <= now)
            .count()
    }

    /// Whether the group has exactly its desired nodes, all joined, at `now`.
    pub fn is_ready(&self, now: DateTime<Utc>) -> bool {
        let (_, _, desired) = self.size();
        self.nodes.len() == desired as usize && self.ready_nodes(now) == self.nodes.len()
    }

    fn pod_slots(&self, now: DateTime<Utc>) -> u32 {
        let ready = u32::try_from(self.ready_nodes(now)).unwrap_or(u32::MAX);
        ready.saturating_mul(self.pods_per_node)
    }

    /// Launches or removes nodes to match the desired size; returns `(launched, removed)`.
    fn reconcile_nodes(&mut self, now: DateTime<Utc>, join_seconds: u64) -> (usize, usize) {
        let (_, _, desired) = self.size();
        let desired = desired as usize;
        let have = self.nodes.len();
        if have >= desired {
            self.nodes.truncate(desired);
            return (0, have - desired);
        }
        let ready_at = i64::try_from(join_seconds)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .and_then(|delay| now.checked_add_signed(delay))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        for _ in have..desired {
            self.launched += 1;
            self.nodes.push(Node {
                name: format!("{}-{}", self.name, self.launched),
                ready_at,
            });
        }
        (desired - have, 0)
    }
}

// === impl Database ===

impl Database {
    /// A database as configured, available.
    fn new(config: &DatabaseConfig) -> Database {
        Database {
            name: config.name.clone(),
            kind: config.kind,
            instance_class: config.instance_class.clone(),
            instances: config.instances,
            storage_gib: config.storage_gib,
            start_seconds: config.start_seconds,
            scaling: Scaling::unmanaged(Capacity::Running(true)),
            available_at: None,
            stopped_at: None,
        }
    }

    /// Whether it runs (starting included).
    pub fn running(&self) -> bool {
        self.scaling.capacity == Capacity::Running(true)
    }

    /// Whether it has settled at `now`: stopped, or started and available.
    pub fn is_ready(&self, now: DateTime<Utc>) -> bool {
        !self.running() || self.available_at.is_none_or(|at| at <= now)
    }

    /// When a start at `now` completes.
    fn available_after_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        i64::try_from(self.start_seconds)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .and_then(|delay| now.checked_add_signed(delay))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Starts it as the cloud does once it has been stopped for [`Kind::max_stopped`];
    /// curfew's tags stay. Returns whether it started.
    fn restart_if_stopped_too_long(&mut self, now: DateTime<Utc>) -> bool {
        let limit = self.kind.kind().max_stopped();
        let Some(restart_at) = self
            .stopped_at
            .zip(limit)
            .and_then(|(at, limit)| at.checked_add_signed(limit))
        else {
            return false;
        };
        if self.running() || now < restart_at {
            return false;
        }
        self.scaling.capacity = Capacity::Running(true);
        self.available_at = Some(self.available_after_start(restart_at));
        true
    }

    /// A stop records when it happened; a start takes `start_seconds` and forgets the stop.
    fn apply(&mut self, id: &str, action: &Action, now: DateTime<Utc>) -> Result<bool> {
        let was_running = self.running();
        let changed = self.scaling.apply(id, self.kind.kind(), action)?;
        match (was_running, self.running()) {
            (true, false) => self.stopped_at = Some(now),
            (false, true) => self.available_at = Some(self.available_after_start(now)),
            _ => {}
        }
        if matches!(action, Action::ScaleUp { .. }) {
            self.stopped_at = None;
        }
        Ok(changed)
    }

    /// The target it stands for at `now`, if an environment manages it.
    fn target(&self, id: &str, now: DateTime<Utc>) -> Option<Target> {
        let region = self.scaling.management.as_ref()?.region.clone();
        let cluster = self.kind == DatabaseKind::DbCluster;
        let footprint = Footprint::Database {
            instance_classes: vec![self.instance_class.clone(); self.instances as usize],
            engine: self.kind.engine(),
            running: self.running(),
            multi_az: false,
            storage_gib: self.storage_gib,
            storage_type: if cluster { "aurora" } else { "gp3" }.to_string(),
            region,
        };
        let mut target =
            self.scaling
                .target(id, self.kind.kind(), self.is_ready(now), None, footprint)?;
        target.rules.stopped = self.stopped_at.map(|at| StopRecord {
            at,
            restarted_by_cloud: false,
        });
        Some(target)
    }
}

// === impl Workload ===

impl Workload {
    /// Pods it asks for (CronJobs run no long-lived pods).
    pub fn pods(&self) -> u32 {
        match self.scaling.capacity {
            Capacity::Replicas(replicas) => replicas,
            _ => 0,
        }
    }

    fn is_ready(&self, ready_replicas: u32) -> bool {
        ready_replicas >= self.pods()
    }

    /// What it runs with `ready_replicas` pods scheduled.
    fn footprint(&self, ready_replicas: u32) -> Footprint {
        if self.pods() == 0 {
            return Footprint::Nothing;
        }
        Footprint::Pods {
            count: ready_replicas.min(self.pods()),
            cpu_millis: self.cpu_millis,
            memory_mib: self.memory_mib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::simulation::{FaultConfig, NamespaceConfig};
    use crate::domain::testing::{at, mk_namespace, mk_node_group};

    /// A node group of `desired` nodes between 0 and 6.
    fn mk_group(name: &str, kind: GroupKind, desired: u32) -> NodeGroupConfig {
        mk_node_group(name, kind, 0, desired, 6)
    }

    fn mk_environment(name: &str, yaml_targets: &str) -> Environment {
        Environment {
            name: name.to_string(),
            schedule: "office-hours".to_string(),
            max_override: None,
            targets: serde_saphyr::from_str(yaml_targets).expect("valid targets"),
            wake: None,
        }
    }

    fn mk_sim(groups: Vec<NodeGroupConfig>, namespaces: Vec<NamespaceConfig>) -> SimulationConfig {
        SimulationConfig {
            node_join_seconds: 90,
            node_groups: groups,
            databases: Vec::new(),
            namespaces,
            faults: FaultConfig::default(),
        }
    }

    /// One ASG `general` with 2 nodes (8 pods) and a namespace `shop` managed by `staging`.
    fn mk_estate(deployments: u32) -> Estate {
        let sim = mk_sim(
            vec![mk_group("general", GroupKind::AutoScalingGroup, 2)],
            vec![mk_namespace("shop", "general", deployments)],
        );
        let staging = mk_environment(
            "staging",
            "- kubernetes: { namespaces: [shop] }\n- aws_asg: { names: [general], region: eu-central-1 }",
        );
        Estate::from_config(&sim, [&staging], at(0)).expect("valid estate")
    }

    const GROUP: &str = "auto_scaling_group/general";

    fn resize(estate: &mut Estate, desired: u32, now: DateTime<Utc>) {
        let to = group_capacity(0, 6, desired);
        let action = Action::ScaleUp {
            target: GROUP.to_string(),
            to,
        };
        estate.apply(&action, now).expect("valid resize");
    }

    fn target(estate: &Estate, id: &str, now: DateTime<Utc>) -> Target {
        let targets = estate.targets(now);
        let found = targets.into_iter().find(|t| t.id == id);
        found.unwrap_or_else(|| panic!("{id} is not discovered"))
    }

    #[test]
    fn a_fresh_estate_is_converged_and_ready() {
        let estate = mk_estate(3);
        let targets = estate.targets(at(0));
        assert_eq!(targets.len(), 4);
        assert!(targets.iter().all(|t| t.ready && t.original.is_none()));
        let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                GROUP,
                "deployment/shop/api",
                "deployment/shop/web",
                "deployment/shop/worker"
            ]
        );
        assert_eq!(estate.running_nodes(), 2);
    }

    #[test]
    fn nodes_join_after_node_join_seconds_not_before() {
        let mut estate = mk_estate(0);
        resize(&mut estate, 4, at(100));
        assert_eq!(estate.node_group(GROUP).map(|g| g.nodes.len()), Some(4));
        assert!(!estate.ready(GROUP, at(100)).expect("exists"));
        assert!(!estate.ready(GROUP, at(189)).expect("exists"));
        assert!(estate.ready(GROUP, at(190)).expect("exists"));
        let joined = estate.advance(at(190));
        assert_eq!(joined.joined, 2);
        assert_eq!(estate.advance(at(200)), Advance::default());
    }

    #[test]
    fn removing_capacity_removes_the_newest_nodes_at_once() {
        let mut estate = mk_estate(0);
        resize(&mut estate, 3, at(10));
        resize(&mut estate, 1, at(20));
        let group = estate.node_group(GROUP).expect("exists");
        let names: Vec<&str> = group.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["general-1"]);
        assert!(estate.ready(GROUP, at(20)).expect("exists"));
        assert_eq!(estate.running_nodes(), 1);
    }

    #[test]
    fn advance_launches_nodes_missing_from_a_loaded_estate() {
        let mut estate = mk_estate(0);
        if let Some(group) = estate.groups.get_mut(GROUP) {
            group.nodes.clear();
        }
        let report = estate.advance(at(50));
        assert_eq!(report.launched, 2);
        assert!(!estate.ready(GROUP, at(139)).expect("exists"));
        assert!(estate.ready(GROUP, at(140)).expect("exists"));
    }

    #[test]
    fn a_workload_woken_before_its_nodes_join_stays_unready_until_they_do() {
        let mut estate = mk_estate(2);
        let api = "deployment/shop/api";
        resize(&mut estate, 0, at(0));
        let down = Action::ScaleDown {
            target: api.to_string(),
            original: Capacity::Replicas(2),
            to: Capacity::Replicas(0),
        };
        estate.apply(&down, at(0)).expect("applies");
        assert!(estate.ready(api, at(0)).expect("exists"), "0 of 0 is ready");
        resize(&mut estate, 2, at(1000));
        let up = Action::ScaleUp {
            target: api.to_string(),
            to: Capacity::Replicas(2),
        };
        estate.apply(&up, at(1000)).expect("applies");
        assert!(!estate.ready(api, at(1000)).expect("exists"));
        assert!(!target(&estate, api, at(1089)).ready);
        assert!(estate.ready(api, at(1090)).expect("exists"));
        assert!(target(&estate, api, at(1090)).ready);
    }

    #[test]
    fn pods_go_to_statefulsets_first_then_by_id() {
        let mut namespace = mk_namespace("shop", "general", 2);
        namespace.statefulsets = 1;
        namespace.replicas = 3;
        let mut group = mk_group("general", GroupKind::AutoScalingGroup, 2);
        group.pods_per_node = 3; // 6 pods for 9 replicas
        let sim = mk_sim(vec![group], vec![namespace]);
        let staging = mk_environment("staging", "- kubernetes: { namespaces: [shop] }");
        let estate = Estate::from_config(&sim, [&staging], at(0)).expect("valid");
        assert!(
            estate
                .ready("stateful_set/shop/postgres", at(0))
                .expect("exists")
        );
        assert!(estate.ready("deployment/shop/api", at(0)).expect("exists"));
        assert!(!estate.ready("deployment/shop/web", at(0)).expect("exists"));
        let ready: Vec<bool> = estate.targets(at(0)).iter().map(|t| t.ready).collect();
        assert_eq!(ready, [true, false, true]);
    }

    #[test]
    fn scale_down_stores_the_original_and_scale_up_restores_and_clears_it() {
        let mut estate = mk_estate(1);
        let api = "deployment/shop/api";
        let down = Action::ScaleDown {
            target: api.to_string(),
            original: Capacity::Replicas(2),
            to: Capacity::Replicas(0),
        };
        assert!(estate.apply(&down, at(0)).expect("applies"));
        let observed = target(&estate, api, at(0));
        assert_eq!(observed.capacity, Capacity::Replicas(0));
        assert_eq!(observed.original, Some(Capacity::Replicas(2)));
        assert!(
            !estate.apply(&down, at(1)).expect("applies"),
            "twice is a no-op"
        );
        let up = Action::ScaleUp {
            target: api.to_string(),
            to: Capacity::Replicas(2),
        };
        assert!(estate.apply(&up, at(2)).expect("applies"));
        let observed = target(&estate, api, at(2));
        assert_eq!(observed.capacity, Capacity::Replicas(2));
        assert_eq!(observed.original, None);
        let before = estate.clone();
        assert!(
            !estate.apply(&up, at(3)).expect("applies"),
            "twice is a no-op"
        );
        assert_eq!(estate, before);
    }

    #[test]
    fn group_scale_down_and_up_round_trips_min_max_desired() {
        let mut estate = mk_estate(0);
        let original = group_capacity(0, 6, 2);
        let down = Action::ScaleDown {
            target: GROUP.to_string(),
            original,
            to: group_capacity(0, 0, 0),
        };
        estate.apply(&down, at(0)).expect("applies");
        assert_eq!(estate.running_nodes(), 0);
        assert_eq!(target(&estate, GROUP, at(0)).original, Some(original));
        let up = Action::ScaleUp {
            target: GROUP.to_string(),
            to: original,
        };
        estate.apply(&up, at(10)).expect("applies");
        let observed = target(&estate, GROUP, at(10));
        assert_eq!((observed.capacity, observed.original), (original, None));
        assert!(!observed.ready);
    }

    #[test]
    fn mismatched_capacities_and_unknown_targets_are_rejected() {
        let mut estate = mk_estate(1);
        let wrong = Action::ScaleUp {
            target: "deployment/shop/api".to_string(),
            to: Capacity::Suspended(true),
        };
        assert!(matches!(
            estate.apply(&wrong, at(0)),
            Err(Error::WrongCapacity { .. })
        ));
        let too_big = Action::ScaleUp {
            target: GROUP.to_string(),
            to: group_capacity(0, 2, 3),
        };
        assert!(matches!(
            estate.apply(&too_big, at(0)),
            Err(Error::InvalidGroupSize { .. })
        ));
        let missing = Action::ScaleUp {
            target: "deployment/shop/nope".to_string(),
            to: Capacity::Replicas(1),
        };
        assert!(matches!(
            estate.apply(&missing, at(0)),
            Err(Error::NotFound(_))
        ));
        assert_eq!(estate, mk_estate(1), "nothing changed");
    }

    #[test]
    fn environments_select_by_name_glob_and_exclude() {
        let sim = mk_sim(
            vec![
                mk_group("general", GroupKind::EksNodegroup, 1),
                mk_group("batch", GroupKind::AutoScalingGroup, 1),
                mk_group("spare", GroupKind::AutoScalingGroup, 1),
            ],
            ["eu-shop", "eu-pay", "eu-monitoring", "us-shop", "tools"]
                .iter()
                .map(|name| mk_namespace(name, "general", 1))
                .collect(),
        );
        let eu = mk_environment(
            "staging-eu",
            "- kubernetes: { namespaces: [\"eu-*\"], exclude_namespaces: [eu-monitoring] }
- aws_eks_nodegroup: { cluster: staging, names: [general, batch], region: eu-central-1 }",
        );
        let us = mk_environment(
            "staging-us",
            "- kubernetes: { namespaces: [us-shop, eu-shop], down_replicas: 1 }
- aws_asg: { names: [batch], region: us-east-1, down: { min: 0, max: 1, desired: 0 } }",
        );
        let estate = Estate::from_config(&sim, [&eu, &us], at(0)).expect("valid");
        let environments: Vec<(String, String)> = estate
            .targets(at(0))
            .into_iter()
            .map(|t| (t.id, t.environment))
            .collect();
        let expected = [
            ("auto_scaling_group/batch", "staging-us"),
            ("deployment/eu-pay/api", "staging-eu"),
            ("deployment/eu-shop/api", "staging-eu"),
            ("deployment/us-shop/api", "staging-us"),
            ("eks_nodegroup/general", "staging-eu"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(id, env)| (id.to_string(), env.to_string()))
            .collect();
        assert_eq!(environments, expected);
        let down = |id: &str| target(&estate, id, at(0)).down;
        assert_eq!(down("eks_nodegroup/general"), group_capacity(0, 6, 0));
        assert_eq!(down("auto_scaling_group/batch"), group_capacity(0, 1, 0));
        assert_eq!(down("deployment/us-shop/api"), Capacity::Replicas(1));
        assert!(estate.workload("deployment/tools/api").is_some(), "exists");
    }

    #[test]
    fn cronjobs_are_suspended_while_down() {
        let mut namespace = mk_namespace("shop", "general", 0);
        namespace.cronjobs = 1;
        let sim = mk_sim(
            vec![mk_group("general", GroupKind::AutoScalingGroup, 0)],
            vec![namespace],
        );
        let staging = mk_environment("staging", "- kubernetes: { namespaces: [shop] }");
        let estate = Estate::from_config(&sim, [&staging], at(0)).expect("valid");
        let cron = target(&estate, "cron_job/shop/report", at(0));
        assert_eq!(cron.capacity, Capacity::Suspended(false));
        assert_eq!(cron.down, Capacity::Suspended(true));
        assert!(cron.ready, "cron jobs need no nodes");
    }

    #[test]
    fn an_invalid_config_builds_no_estate() {
        let sim = mk_sim(vec![], vec![mk_namespace("shop", "nowhere", 1)]);
        let result = Estate::from_config(&sim, std::iter::empty(), at(0));
        assert!(matches!(result, Err(Error::InvalidConfig(problems)) if problems.len() == 1));
    }

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob_match("eu-*", "eu-shop"));
        assert!(glob_match("eu-*", "eu-"));
        assert!(!glob_match("eu-*", "us-shop"));
        assert!(glob_match("*-shop", "eu-shop"));
        assert!(glob_match("e?-*p", "eu-shop"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b", "xxaxxbxx"));
        assert!(glob_match("shop", "shop"));
        assert!(!glob_match("shop", "shops"));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("estate.json");
        let mut estate = mk_estate(2);
        resize(&mut estate, 4, at(5));
        estate.save(&path).expect("saves");
        let loaded = Estate::load(&path).expect("loads");
        assert_eq!(loaded, estate);
        assert!(!dir.path().join("estate.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("estate.json");
        fs::write(&path, b"{\"version\": 1, \"groups\": [").expect("writes");
        let err = Estate::load(&path).expect_err("corrupt");
        assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn an_inconsistent_file_is_an_error_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("estate.json");
        let mut estate = mk_estate(1);
        if let Some(workload) = estate.workload_mut("deployment/shop/api") {
            workload.node_group = "auto_scaling_group/gone".to_string();
        }
        estate.save(&path).expect("saves");
        let err = Estate::load(&path).expect_err("inconsistent");
        assert!(err.to_string().contains("unknown node group"), "{err}");
    }

    #[test]
    fn adopting_management_follows_the_current_config() {
        let mut loaded = mk_estate(1);
        let sim = mk_sim(
            vec![mk_group("general", GroupKind::AutoScalingGroup, 2)],
            vec![mk_namespace("shop", "general", 1)],
        );
        let other = mk_environment("other", "- kubernetes: { namespaces: [shop] }");
        let current = Estate::from_config(&sim, [&other], at(0)).expect("valid");
        loaded.adopt_management(&current);
        let environments: Vec<String> = loaded
            .targets(at(0))
            .into_iter()
            .map(|t| t.environment)
            .collect();
        assert_eq!(environments, ["other"]);
    }

    #[test]
    fn hourly_cost_counts_joining_and_ready_nodes_per_environment() {
        let mut estate = mk_estate(0);
        resize(&mut estate, 4, at(0));
        let cost = estate.hourly_cost();
        assert_eq!(cost.get(&Some("staging".to_string())), Some(&1.0));
        assert_eq!(cost.len(), 1);
    }

    #[test]
    fn ten_thousand_workloads_on_two_hundred_groups_are_all_discovered() {
        let groups: Vec<NodeGroupConfig> = (0..200)
            .map(|i| mk_group(&format!("group-{i}"), GroupKind::AutoScalingGroup, 3))
            .collect();
        let namespaces: Vec<NamespaceConfig> = (0..200)
            .map(|i| mk_namespace(&format!("team-{i}"), &format!("group-{i}"), 50))
            .collect();
        let sim = mk_sim(groups, namespaces);
        let names: Vec<String> = (0..200).map(|i| format!("group-{i}")).collect();
        let yaml = format!(
            "- kubernetes: {{ namespaces: [\"team-*\"] }}\n- aws_asg: {{ names: [{}], region: x }}",
            names.join(", ")
        );
        let staging = mk_environment("staging", &yaml);
        let estate = Estate::from_config(&sim, [&staging], at(0)).expect("valid");
        let targets = estate.targets(at(0));
        assert_eq!(targets.len(), 10_200);
        let ready = targets.iter().filter(|t| t.ready).count();
        // 3 nodes x 4 pods = 12 pods per group: 6 of 50 two-replica deployments fit.
        assert_eq!(ready, 200 + 200 * 6);
        assert!(targets.windows(2).all(|w| w[0].id < w[1].id), "sorted");
    }
}
