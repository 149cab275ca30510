//! The AWS provider: Auto Scaling groups, EKS managed node groups, standalone EC2 instances,
//! and RDS DB instances and Aurora DB clusters, through the official SDKs.
//!
//! Credentials and endpoints come from the standard chain and environment (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, profiles); each target names its region and may name a role to assume
//! in another account. The SDK retries in its adaptive mode; calls to each service are bounded
//! in concurrency. Every object's original capacity is kept in a tag on the object itself.
//!
//! A group's spot/on-demand mix ([`spot`]) and the base of a paired on-demand node group are
//! part of the desired state and are written in the same call as the capacity. When only they
//! differ (a [`fallback`] begins or ends, the policy changed), discovery reports the current
//! capacity as the target's original, so the planner plans one write that keeps the capacity
//! and fixes the rest. A converged group costs no write.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::retry::RetryConfig;
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Discovery, Error, Provider, Result, Retries, Undiscovered};
use crate::clock::{Clock, SystemClock};
use crate::config::targets::{AsgTarget, Ec2Target, NodegroupTarget};
use crate::config::{Config, TargetConfig};
use crate::domain::{Action, Capacity, Footprint, Target};
use crate::telemetry;

mod asg;
mod batch;
mod ec2;
mod eks;
mod errors;
pub mod fallback;
mod preview;
mod prices;
mod rds;
pub mod spot;
pub mod tags;
#[cfg(test)]
mod tests;

/// Calls in flight at once per service and region.
const CALLS_PER_SERVICE: usize = 8;

/// The AWS services curfew calls, each bounded on its own in every region.
const SERVICES: [&str; 4] = ["autoscaling", "ec2", "eks", "rds"];

/// Attempts per SDK call, the first included.
const MAX_ATTEMPTS: u32 = 5;

/// A region and the role to assume there (none: the ambient credentials).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Account {
    region: String,
    role: Option<String>,
}

/// The SDK clients of one account and region.
#[derive(Debug, Clone)]
struct Clients {
    autoscaling: aws_sdk_autoscaling::Client,
    ec2: aws_sdk_ec2::Client,
    eks: aws_sdk_eks::Client,
    rds: aws_sdk_rds::Client,
}

/// One configured AWS target of one environment.
#[derive(Debug, Clone)]
struct Scope {
    environment: String,
    account: Account,
    target: TargetConfig,
}

/// What a group's spot policy wants and what the group has.
#[derive(Debug, Clone)]
struct GroupSpot {
    wanted: spot::Wanted,
    current: Option<aws_sdk_autoscaling::types::MixedInstancesPolicy>,
    fallback_until: Option<DateTime<Utc>>,
}

impl GroupSpot {
    /// Whether an up group lacks the mix it should have.
    fn drifted_while_up(&self) -> bool {
        match (&self.wanted.up, &self.current) {
            (Some(mix), Some(current)) => !mix.holds_in(current.instances_distribution()),
            _ => false,
        }
    }

    /// The whole policy to send with a resize in the window `mix` belongs to.
    fn update(
        &self,
        mix: Option<&spot::Mix>,
        name: &str,
    ) -> Result<Option<aws_sdk_autoscaling::types::MixedInstancesPolicy>> {
        let Some(mix) = mix else { return Ok(None) };
        mix.update(self.current.as_ref())
            .map_err(|detail| Error::Permanent {
                operation: "UpdateAutoScalingGroup".to_string(),
                target: name.to_string(),
                code: spot::NO_MIXED_POLICY.to_string(),
                detail,
            })
    }
}

/// The scaling processes a group keeps suspended while parked.
#[derive(Debug, Clone, Default)]
struct Processes {
    /// Configured (`suspend_processes`).
    wanted: Vec<String>,
    /// Of those, the ones the group has suspended now.
    suspended: Vec<String>,
}

impl Processes {
    /// The wanted processes not suspended yet.
    fn to_suspend(&self) -> Vec<String> {
        let mut missing = self.wanted.clone();
        missing.retain(|p| !self.suspended.contains(p));
        missing
    }
}

/// How to act on a discovered object.
#[derive(Debug, Clone)]
enum Object {
    Group {
        account: Account,
        name: String,
        /// Whether it carries the original capacity tag.
        tagged: bool,
        spot: Option<Box<GroupSpot>>,
        processes: Processes,
    },
    Nodegroup {
        account: Account,
        cluster: String,
        name: String,
        /// The size the on-demand node group of a pair keeps while up.
        on_demand_base: Option<u32>,
    },
    Instance {
        account: Account,
        id: String,
        hibernate: bool,
    },
    Database {
        account: Account,
        database: rds::Handle,
    },
}

/// An EC2 call that many instances of one account share (see [`batch`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Ec2Call {
    /// CreateTags of the original state, with its encoded value.
    Tag(Account, String),
    /// DeleteTags of the original state.
    Untag(Account),
    /// StopInstances, hibernating or not.
    Stop(Account, bool),
    /// StartInstances.
    Start(Account),
}

impl Ec2Call {
    fn account(&self) -> &Account {
        match self {
            Ec2Call::Tag(account, _)
            | Ec2Call::Untag(account)
            | Ec2Call::Stop(account, _)
            | Ec2Call::Start(account) => account,
        }
    }

    /// Makes the call for `ids`.
    async fn send(&self, client: &aws_sdk_ec2::Client, ids: &[String]) -> Result<()> {
        match self {
            Ec2Call::Tag(_, value) => ec2::tag_original(client, ids, value).await,
            Ec2Call::Untag(_) => ec2::untag_original(client, ids).await,
            Ec2Call::Stop(_, hibernate) => ec2::stop(client, ids, *hibernate).await,
            Ec2Call::Start(_) => ec2::start(client, ids).await,
        }
    }
}

/// The Auto Scaling tag calls that the groups of one account share (see [`batch`]): writing
/// the original capacity tag (`true`) or removing it (`false`).
type GroupTagCall = (Account, bool);

/// Instance types in use by region, with an account to ask for their prices.
type TypesInUse = HashMap<String, (Account, BTreeSet<String>)>;

/// The AWS provider.
pub struct AwsProvider {
    scopes: Vec<Scope>,
    clients: HashMap<Account, Clients>,
    objects: RwLock<HashMap<String, Object>>,
    /// Instance types seen by the latest discovery, by region, with an account to ask;
    /// `None` until the first discovery.
    types_in_use: RwLock<Option<TypesInUse>>,
    prices: prices::PriceCache,
    /// Calls in flight by region and service.
    limits: HashMap<(String, &'static str), Arc<Semaphore>>,
    /// EC2 calls shared by the actions that run at once.
    ec2_batches: batch::Batcher<Ec2Call>,
    /// Auto Scaling tag calls shared by the actions that run at once.
    group_tags: batch::Batcher<GroupTagCall, asg::OriginalTag>,
    /// The time curfew records when it stops a database.
    clock: Arc<dyn Clock>,
    /// Unusable databases already logged.
    unusable_reported: Mutex<HashSet<String>>,
}

// === impl AwsProvider ===

impl AwsProvider {
    /// The provider for the AWS targets of `config`, or `None` when it has none.
    pub async fn from_config(config: &Config) -> Option<AwsProvider> {
        let scopes = scopes(config);
        if scopes.is_empty() {
            return None;
        }
        let mut clients = HashMap::new();
        for scope in &scopes {
            if !clients.contains_key(&scope.account) {
                clients.insert(scope.account.clone(), connect(&scope.account).await);
            }
        }
        Some(AwsProvider::with_clients(scopes, clients))
    }

    fn with_clients(scopes: Vec<Scope>, clients: HashMap<Account, Clients>) -> AwsProvider {
        let limits = clients
            .keys()
            .flat_map(|account| {
                SERVICES.map(|service| {
                    let permits = Arc::new(Semaphore::new(CALLS_PER_SERVICE));
                    ((account.region.clone(), service), permits)
                })
            })
            .collect();
        AwsProvider {
            scopes,
            clients,
            objects: RwLock::default(),
            types_in_use: RwLock::default(),
            prices: prices::PriceCache::default(),
            limits,
            ec2_batches: batch::Batcher::default(),
            group_tags: batch::Batcher::default(),
            clock: Arc::new(SystemClock),
            unusable_reported: Mutex::default(),
        }
    }

    /// Records stops at `clock`'s time (the system clock unless given).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AwsProvider {
        self.clock = clock;
        self
    }

    fn clients(&self, account: &Account) -> &Clients {
        // Every account in an object or scope was connected at construction.
        &self.clients[account]
    }

    fn object(&self, operation: &str, id: &str) -> Result<Object> {
        self.objects
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                operation: operation.to_string(),
                target: id.to_string(),
            })
    }

    async fn discover_scope(&self, scope: &Scope) -> Result<Vec<(Target, Object)>> {
        match &scope.target {
            TargetConfig::AwsAsg(config) => self.discover_groups(scope, config).await,
            TargetConfig::AwsEksNodegroup(config) => self.discover_nodegroups(scope, config).await,
            TargetConfig::AwsEc2(config) => self.discover_instances(scope, config).await,
            TargetConfig::AwsRds(config) => self.discover_databases(scope, config).await,
            TargetConfig::Kubernetes(_) => Ok(Vec::new()),
        }
    }

    /// Standalone instances carrying the target's tags.
    async fn discover_instances(
        &self,
        scope: &Scope,
        config: &Ec2Target,
    ) -> Result<Vec<(Target, Object)>> {
        let client = &self.clients(&scope.account).ec2;
        let region = scope.account.region.as_str();
        let tags: Vec<(String, String)> = config.tags.clone().into_iter().collect();
        let mut found = Vec::new();
        for instance in ec2::describe(client, &tags).await? {
            let instance_id = instance.instance_id().unwrap_or_default().to_string();
            let id = format!("ec2_instance/{region}/{instance_id}");
            let target = ec2::target(&instance, id, &scope.environment, region);
            let object = Object::Instance {
                account: scope.account.clone(),
                id: instance_id,
                hibernate: config.hibernate,
            };
            found.push((target, object));
        }
        Ok(found)
    }

    /// Auto Scaling groups with their spot mix: the one they have, the one they want now.
    async fn discover_groups(
        &self,
        scope: &Scope,
        config: &AsgTarget,
    ) -> Result<Vec<(Target, Object)>> {
        let client = &self.clients(&scope.account).autoscaling;
        let region = scope.account.region.as_str();
        let tags: Vec<(String, String)> = config.tags.clone().into_iter().collect();
        let down = config.down.map_or(
            Capacity::Group {
                min: 0,
                max: 0,
                desired: 0,
            },
            |d| Capacity::Group {
                min: d.min,
                max: d.max,
                desired: d.desired,
            },
        );
        let groups = asg::describe(client, &config.names, &tags).await?;
        let now = Utc::now();
        let fallback = config.spot.as_ref().and_then(|s| s.fallback.as_ref());
        // A fallback only matters while a group is up (untagged).
        let failures = match fallback {
            Some(fallback) if groups.iter().any(|g| !asg::is_tagged(g)) => {
                let since = now - fallback.cooldown;
                fallback::latest_failures(&fallback::recent_activities(client, since).await?)
            }
            _ => HashMap::new(),
        };
        let mut found = Vec::new();
        for group in groups {
            let name = group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .to_string();
            let id = format!("auto_scaling_group/{region}/{name}");
            let mut target = asg::target(&group, id, &scope.environment, region, down);
            let tagged = asg::is_tagged(&group);
            let spot = config.spot.as_ref().map(|policy| {
                let fallback_until = policy.fallback.as_ref().and_then(|f| {
                    fallback::active_until(failures.get(&name).copied(), f.cooldown, now)
                });
                Box::new(GroupSpot {
                    wanted: spot::wanted(policy, fallback_until.is_some()),
                    current: group.mixed_instances_policy().cloned(),
                    fallback_until,
                })
            });
            if !tagged && spot.as_ref().is_some_and(|s| s.drifted_while_up()) {
                // Up, at the right capacity, with the wrong mix: a write that keeps the
                // capacity and sets the mix (see the module docs).
                target.original = Some(target.capacity);
            }
            let processes = Processes {
                wanted: config.suspend_processes.clone(),
                suspended: asg::suspended(&group, &config.suspend_processes)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            };
            let object = Object::Group {
                account: scope.account.clone(),
                name,
                tagged,
                spot,
                processes,
            };
            found.push((target, object));
        }
        Ok(found)
    }

    /// EKS node groups, the members of a pair included.
    async fn discover_nodegroups(
        &self,
        scope: &Scope,
        config: &NodegroupTarget,
    ) -> Result<Vec<(Target, Object)>> {
        let client = &self.clients(&scope.account).eks;
        let region = scope.account.region.as_str();
        let tags: Vec<(String, String)> = config.tags.clone().into_iter().collect();
        let mut names = config.names.clone();
        if let Some(pair) = &config.pair {
            names.extend([pair.spot.clone(), pair.on_demand.clone()]);
        }
        let mut found = Vec::new();
        for group in eks::describe(client, &config.cluster, &names, &tags).await? {
            let name = group.nodegroup_name().unwrap_or_default().to_string();
            let id = format!("eks_nodegroup/{region}/{}/{name}", config.cluster);
            let mut target = eks::target(&group, id, &scope.environment, region);
            let on_demand_base = config
                .pair
                .as_ref()
                .filter(|pair| pair.on_demand == name)
                .map(|pair| pair.on_demand_base);
            if let Some(base) = on_demand_base
                && target.original.is_none()
                && !eks::at_base(target.capacity, base)
            {
                // Up but not at its base: a write that sets the base (see the module docs).
                target.original = Some(target.capacity);
            }
            let object = Object::Nodegroup {
                account: scope.account.clone(),
                cluster: config.cluster.clone(),
                name,
                on_demand_base,
            };
            found.push((target, object));
        }
        Ok(found)
    }

    /// A place among the calls in flight to `service` in `account`'s region.
    async fn permit(
        &self,
        account: &Account,
        service: &'static str,
    ) -> Option<OwnedSemaphorePermit> {
        acquire(self.limit(account, service)).await
    }

    /// The bound on calls in flight to `service` in `account`'s region.
    fn limit(&self, account: &Account, service: &'static str) -> Option<Arc<Semaphore>> {
        self.limits.get(&(account.region.clone(), service)).cloned()
    }

    /// Sends `call` for instance `id`, in one call with the other instances that ask for the
    /// same call meanwhile.
    async fn ec2_call(&self, call: Ec2Call, id: &str) -> Result<()> {
        let ec2 = self.clients(call.account()).ec2.clone();
        let limit = self.limit(call.account(), "ec2");
        let key = call.clone();
        self.ec2_batches
            .submit(key, id.to_string(), move |ids| {
                let (ec2, limit, call) = (ec2.clone(), limit.clone(), call.clone());
                async move {
                    let _permit = acquire(limit).await;
                    call.send(&ec2, &ids).await
                }
            })
            .await
    }

    /// Writes or removes a group's original capacity tag, in one call with the other groups
    /// of `account` that ask meanwhile.
    async fn group_tag(&self, account: &Account, tag: asg::OriginalTag) -> Result<()> {
        let autoscaling = self.clients(account).autoscaling.clone();
        let limit = self.limit(account, "autoscaling");
        let write = tag.value.is_some();
        self.group_tags
            .submit((account.clone(), write), tag, move |tags| {
                let (autoscaling, limit) = (autoscaling.clone(), limit.clone());
                async move {
                    let _permit = acquire(limit).await;
                    if write {
                        asg::tag_original(&autoscaling, &tags).await
                    } else {
                        asg::untag_original(&autoscaling, &tags).await
                    }
                }
            })
            .await
    }

    /// Scales a group and, in the same call, sets the mix of the window it enters. Each call
    /// takes its own place among the calls in flight, and the tag calls are shared with the
    /// groups that change at the same time.
    async fn apply_group(
        &self,
        account: &Account,
        name: &str,
        tagged: bool,
        spot: Option<&GroupSpot>,
        processes: &Processes,
        action: &Action,
    ) -> Result<()> {
        let client = &self.clients(account).autoscaling;
        let wanted = spot.map(|s| &s.wanted);
        let (mix, capacity) = match action {
            Action::ScaleDown { original, to, .. } => {
                self.group_tag(account, asg::OriginalTag::write(name, *original))
                    .await?;
                // Suspended before the resize: a crash in between leaves the tag and the full
                // size, which the next pass finishes as an interrupted scale-down.
                let missing = processes.to_suspend();
                if !missing.is_empty() {
                    let _permit = self.permit(account, "autoscaling").await;
                    asg::suspend(client, name, missing).await?;
                }
                (wanted.and_then(|w| w.down.as_ref()), *to)
            }
            Action::ScaleUp { to, .. } => (wanted.and_then(|w| w.up.as_ref()), *to),
        };
        // Without a mixed policy the capacity still changes; the mix is reported afterwards.
        let (policy, mix_error) = match spot.map(|s| s.update(mix, name)) {
            Some(Ok(policy)) => (policy, None),
            Some(Err(err)) => (None, Some(err)),
            None => (None, None),
        };
        let fallback_written = policy.is_some() && matches!(action, Action::ScaleUp { .. });
        {
            let _permit = self.permit(account, "autoscaling").await;
            asg::resize(client, name, capacity, policy).await?;
        }
        if matches!(action, Action::ScaleUp { .. }) {
            // Resumed before the tag goes: until then the next pass sees an unfinished wake.
            if tagged && !processes.suspended.is_empty() {
                let _permit = self.permit(account, "autoscaling").await;
                asg::resume(client, name, processes.suspended.clone()).await?;
            }
            if tagged {
                self.group_tag(account, asg::OriginalTag::remove(name))
                    .await?;
            }
        }
        if let Some(spot) = spot.filter(|s| s.wanted.fallback && fallback_written) {
            metrics::counter!(telemetry::SPOT_FALLBACKS, "region" => account.region.clone())
                .increment(1);
            tracing::warn!(
                group = name,
                region = %account.region,
                until = ?spot.fallback_until,
                "spot capacity is short: on-demand share raised until the cooldown ends"
            );
        }
        mix_error.map_or(Ok(()), Err)
    }

    /// Whether each of `names` in `batch` is ready, by name; names not found are missing.
    async fn ready_batch(
        &self,
        batch: &ReadinessBatch,
        names: &[String],
    ) -> Result<HashMap<String, bool>> {
        let answers = match batch {
            ReadinessBatch::Groups(account) => {
                asg::describe(&self.clients(account).autoscaling, names, &[])
                    .await?
                    .iter()
                    .map(|g| (g.auto_scaling_group_name(), asg::is_ready(g)))
                    .filter_map(|(name, ready)| Some((name?.to_string(), ready)))
                    .collect()
            }
            ReadinessBatch::Nodegroups(account, cluster) => {
                eks::describe(&self.clients(account).eks, cluster, names, &[])
                    .await?
                    .iter()
                    .map(|g| (g.nodegroup_name(), eks::is_ready(g)))
                    .filter_map(|(name, ready)| Some((name?.to_string(), ready)))
                    .collect()
            }
            ReadinessBatch::Instances(account) => {
                ec2::describe_ids(&self.clients(account).ec2, names)
                    .await?
                    .iter()
                    .map(|i| (i.instance_id(), ec2::is_ready(i)))
                    .filter_map(|(id, ready)| Some((id?.to_string(), ready)))
                    .collect()
            }
            ReadinessBatch::Databases(account) => self.databases_ready(account).await?,
        };
        Ok(answers)
    }

    /// The spot prices of the instance types in use in `region`, from the cache when fresh.
    async fn region_prices(
        &self,
        account: &Account,
        types: BTreeSet<String>,
    ) -> Result<HashMap<String, f64>> {
        if let Some(prices) = self.prices.fresh(&account.region, &types) {
            return Ok(prices);
        }
        let _permit = self.permit(account, "ec2").await;
        let prices = prices::current(&self.clients(account).ec2, &types).await?;
        self.prices.store(&account.region, types, prices.clone());
        Ok(prices)
    }
}

/// Objects whose readiness one batched describe can answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReadinessBatch {
    /// Auto Scaling groups of one account, by name.
    Groups(Account),
    /// Node groups of one cluster, by name.
    Nodegroups(Account, String),
    /// Standalone instances of one account, by id.
    Instances(Account),
    /// DB instances and clusters of one account, by [`rds::readiness_key`].
    Databases(Account),
}

impl ReadinessBatch {
    /// The batch an object is asked about in, and its name within the batch.
    fn of(object: Object) -> (ReadinessBatch, String) {
        match object {
            Object::Group { account, name, .. } => (ReadinessBatch::Groups(account), name),
            Object::Nodegroup {
                account,
                cluster,
                name,
                ..
            } => (ReadinessBatch::Nodegroups(account, cluster), name),
            Object::Instance { account, id, .. } => (ReadinessBatch::Instances(account), id),
            Object::Database { account, database } => (
                ReadinessBatch::Databases(account),
                rds::readiness_key(database.kind, &database.identifier),
            ),
        }
    }
}

/// A place among the calls `limit` allows in flight (none to wait for without a limit).
async fn acquire(limit: Option<Arc<Semaphore>>) -> Option<OwnedSemaphorePermit> {
    limit?.acquire_owned().await.ok()
}

/// Every configured AWS target with its account.
fn scopes(config: &Config) -> Vec<Scope> {
    config
        .environments
        .values()
        .flat_map(|env| {
            env.targets.iter().filter_map(|target| {
                let (region, role) = match target {
                    TargetConfig::AwsAsg(t) => (&t.region, &t.assume_role_arn),
                    TargetConfig::AwsEksNodegroup(t) => (&t.region, &t.assume_role_arn),
                    TargetConfig::AwsEc2(t) => (&t.region, &t.assume_role_arn),
                    TargetConfig::AwsRds(t) => (&t.region, &t.assume_role_arn),
                    TargetConfig::Kubernetes(_) => return None,
                };
                Some(Scope {
                    environment: env.name.clone(),
                    account: Account {
                        region: region.clone(),
                        role: role.clone(),
                    },
                    target: target.clone(),
                })
            })
        })
        .collect()
}

/// The SDK's adaptive retry mode: backoff with jitter, and a client-side rate that slows down
/// when AWS throttles.
fn retry_config() -> RetryConfig {
    RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS)
}

/// Builds the clients for an account: the standard chain, adaptive retries, and an assumed
/// role when one is named.
async fn connect(account: &Account) -> Clients {
    let region = Region::new(account.region.clone());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .retry_config(retry_config());
    if let Some(role) = &account.role {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        let assumed = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("curfew")
            .configure(&base)
            .build()
            .await;
        loader = loader.credentials_provider(assumed);
    }
    Clients::new(&loader.load().await)
}

// === impl Clients ===

impl Clients {
    /// The clients of `shared`, retrying by HTTP status as well ([`errors::ByStatus`]).
    fn new(shared: &aws_config::SdkConfig) -> Clients {
        // The client of SDK crate `$sdk` on `shared`, with the classifier added.
        macro_rules! retrying_by_status {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(shared)
                        .retry_classifier(errors::ByStatus)
                        .build(),
                )
            };
        }
        Clients {
            autoscaling: retrying_by_status!(aws_sdk_autoscaling),
            ec2: retrying_by_status!(aws_sdk_ec2),
            eks: retrying_by_status!(aws_sdk_eks),
            rds: retrying_by_status!(aws_sdk_rds),
        }
    }
}

/// Instance types of the instances targets run, by region.
fn instance_types(
    found: &[(Target, Object)],
    account: &Account,
    into: &mut HashMap<String, (Account, BTreeSet<String>)>,
) {
    for (target, _) in found {
        if let Footprint::Instances { instance_type, .. } = &target.footprint
            && instance_type != "unknown"
        {
            into.entry(account.region.clone())
                .or_insert_with(|| (account.clone(), BTreeSet::new()))
                .1
                .insert(instance_type.clone());
        }
    }
}

// === impl Provider for AwsProvider ===

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    /// The SDK retries every call in its adaptive mode (`MAX_ATTEMPTS` attempts); the
    /// reconciler does not retry them again.
    fn retries(&self, _target: Option<&str>) -> Retries {
        Retries::ByClient
    }

    /// Every scope's targets. A scope that cannot be read is logged, counted and reported as
    /// undiscovered, and the others are still returned: a pass with an undiscovered scope
    /// does not count as converged.
    async fn discover(&self) -> Result<Discovery> {
        let mut discovery = Discovery::default();
        let mut objects = HashMap::new();
        let mut types = HashMap::new();
        for scope in &self.scopes {
            let found = match self.discover_scope(scope).await {
                Ok(found) => found,
                Err(err) => {
                    metrics::counter!(
                        telemetry::PROVIDER_ERRORS,
                        "provider" => "aws",
                        "operation" => "discover",
                        "code" => err.metric_label()
                    )
                    .increment(1);
                    tracing::warn!(
                        environment = %scope.environment,
                        target_config = %scope.target.describe(),
                        error = %err,
                        "AWS targets not discovered; the other targets go on"
                    );
                    discovery.undiscovered.push(Undiscovered {
                        environment: scope.environment.clone(),
                        selection: scope.target.describe(),
                        error: err,
                    });
                    continue;
                }
            };
            instance_types(&found, &scope.account, &mut types);
            for (target, object) in found {
                if !objects.contains_key(&target.id) {
                    objects.insert(target.id.clone(), object);
                    discovery.targets.push(target);
                }
            }
        }
        *self.objects.write() = objects;
        *self.types_in_use.write() = Some(types);
        discovery.targets.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(discovery)
    }

    async fn apply(&self, action: &Action) -> Result<()> {
        let object = self.object("apply", action.target())?;
        match (&object, action) {
            (
                Object::Group {
                    account,
                    name,
                    tagged,
                    spot,
                    processes,
                },
                action,
            ) => {
                self.apply_group(account, name, *tagged, spot.as_deref(), processes, action)
                    .await
            }
            (
                Object::Nodegroup {
                    account,
                    cluster,
                    name,
                    ..
                },
                Action::ScaleDown { original, to, .. },
            ) => {
                let client = &self.clients(account).eks;
                let _permit = self.permit(account, "eks").await;
                eks::resize(client, cluster, name, *to, Some(*original)).await
            }
            (
                Object::Nodegroup {
                    account,
                    cluster,
                    name,
                    on_demand_base,
                },
                Action::ScaleUp { to, .. },
            ) => {
                let client = &self.clients(account).eks;
                let _permit = self.permit(account, "eks").await;
                let to = on_demand_base.map_or(*to, |base| eks::with_base(*to, base));
                eks::resize(client, cluster, name, to, None).await
            }
            (
                Object::Instance {
                    account,
                    id,
                    hibernate,
                },
                Action::ScaleDown { original, .. },
            ) => {
                let value = tags::encode(*original);
                self.ec2_call(Ec2Call::Tag(account.clone(), value), id)
                    .await?;
                self.ec2_call(Ec2Call::Stop(account.clone(), *hibernate), id)
                    .await
            }
            (Object::Instance { account, id, .. }, Action::ScaleUp { .. }) => {
                self.ec2_call(Ec2Call::Start(account.clone()), id).await?;
                self.ec2_call(Ec2Call::Untag(account.clone()), id).await
            }
            (Object::Database { account, database }, action) => {
                self.apply_database(account, database, action).await
            }
        }
    }

    fn preview(&self, action: &Action) -> Vec<super::PlannedWrite> {
        self.object("preview", action.target())
            .map(|object| preview::writes(&object, action))
            .unwrap_or_default()
    }

    async fn ready(&self, target: &str) -> Result<bool> {
        let (batch, name) = ReadinessBatch::of(self.object("ready", target)?);
        let ready = self
            .ready_batch(&batch, std::slice::from_ref(&name))
            .await?;
        Ok(ready.get(&name).copied().unwrap_or(false))
    }

    /// Readiness in as few calls as the APIs allow: one DescribeAutoScalingGroups per 100
    /// groups and one DescribeInstances per account and region; EKS has no batch describe, so
    /// one ListNodegroups per cluster and one DescribeNodegroup per node group. A call that
    /// fails leaves its targets not ready until the next poll.
    async fn ready_many(&self, targets: &[String]) -> Vec<bool> {
        let mut batches: HashMap<ReadinessBatch, Vec<(usize, String)>> = HashMap::new();
        for (position, target) in targets.iter().enumerate() {
            if let Ok(object) = self.object("ready", target) {
                let (batch, name) = ReadinessBatch::of(object);
                batches.entry(batch).or_default().push((position, name));
            }
        }
        let mut ready = vec![false; targets.len()];
        for (batch, members) in batches {
            let names: Vec<String> = members.iter().map(|(_, name)| name.clone()).collect();
            match self.ready_batch(&batch, &names).await {
                Ok(answers) => {
                    for (position, name) in members {
                        ready[position] = answers.get(&name).copied().unwrap_or(false);
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, "readiness not read; asking again at the next poll")
                }
            }
        }
        ready
    }

    /// Spot prices of the instance types the latest discovery saw (discovering first when
    /// nothing was discovered yet; a discovery that saw no instance types needs no prices),
    /// cached per region for [`prices::PRICE_TTL`].
    async fn spot_prices(&self) -> Result<HashMap<(String, String), f64>> {
        let in_use = || self.types_in_use.read().clone();
        let regions = match in_use() {
            Some(regions) => regions,
            None => {
                self.discover().await?;
                in_use().unwrap_or_default()
            }
        };
        let mut all = HashMap::new();
        for (region, (account, types)) in regions {
            for (instance_type, price) in self.region_prices(&account, types).await? {
                all.insert((region.clone(), instance_type), price);
            }
        }
        Ok(all)
    }
}
