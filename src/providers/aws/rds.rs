//! RDS DB instances and Aurora DB clusters: discovery by identifier or tag, stop and start,
//! with curfew's stop kept in tags on the database itself.
//!
//! Going down writes the tag `curfew:original-capacity=running`, stops the database, then
//! writes `curfew:stopped-at` (RFC 3339, the clock's time). Going up starts it, then removes
//! both tags. A crash between the first tag and the stop leaves a running, tagged database
//! without a stop time: the next pass finishes the stop. AWS starts a database that has been
//! stopped for seven days by itself; the planner tells that apart from a person starting it
//! by the stop time ([`StopRecord`]) and, where RDS reports it, the event AWS records when it
//! starts a database for that reason.
//!
//! A cluster is the unit for its instances. Read replicas, databases with read replicas,
//! cluster members, SQL Server in a Multi-AZ deployment, replica and global clusters,
//! Aurora Serverless v1 and engines RDS cannot stop are discovered as unusable, with the
//! reason, and left alone.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance, SourceType, Tag};
use chrono::{DateTime, Utc};

use super::errors::classify;
use super::tags::{self, ORIGINAL_TAG, STOPPED_AT_TAG};
use super::{Account, AwsProvider, Object, Scope};
use crate::config::targets::RdsTarget;
use crate::domain::{
    Action, Capacity, DatabaseEngine, Footprint, Kind, StopRecord, Target, TargetRules,
};
use crate::providers::{Error, Result};

/// What RDS says when it starts a database that has been stopped for too long (the events
/// RDS-EVENT-0154 for instances and RDS-EVENT-0153 for clusters).
const AUTOMATIC_START: &str = "exceeding the maximum allowed time being stopped";

/// Records per Describe call (the API's largest page).
const PAGE_SIZE: i32 = 100;

/// Instance engines StopDBInstance can stop (`oracle-ee`, `sqlserver-se`, ... by prefix).
const STOPPABLE_INSTANCE_ENGINES: [&str; 6] = [
    "mysql",
    "mariadb",
    "postgres",
    "oracle-",
    "sqlserver-",
    "db2-",
];

/// Cluster engines StopDBCluster can stop (Aurora, and Multi-AZ DB clusters).
const STOPPABLE_CLUSTER_ENGINES: [&str; 5] = [
    "aurora",
    "aurora-mysql",
    "aurora-postgresql",
    "mysql",
    "postgres",
];

/// What curfew needs to act on a discovered database.
#[derive(Debug, Clone)]
pub(super) struct Handle {
    /// [`Kind::DbInstance`] or [`Kind::DbCluster`].
    pub kind: Kind,
    /// The identifier the stop and start calls name.
    pub identifier: String,
    /// The ARN the tag calls name.
    pub arn: String,
    /// Whether it ran when discovered.
    pub running: bool,
}

/// A DB instance or DB cluster as curfew reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    /// [`Kind::DbInstance`] or [`Kind::DbCluster`].
    pub kind: Kind,
    /// The identifier.
    pub identifier: String,
    /// The ARN, which the tag calls name.
    pub arn: String,
    /// The RDS status: `available`, `stopped`, `starting`, `stopping`, ...
    pub status: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Why it cannot be stopped, if it cannot.
    pub unusable: Option<String>,
    /// The cluster an instance is a member of.
    pub member_of: Option<String>,
    /// The instance classes billed while it runs (a cluster's members).
    pub instance_classes: Vec<String>,
    /// How its instances are priced.
    pub engine: DatabaseEngine,
    /// A Multi-AZ instance (billed twice).
    pub multi_az: bool,
    /// Allocated storage in GiB.
    pub storage_gib: u32,
    /// The storage type (`aurora` for Aurora clusters).
    pub storage_type: String,
}

// === impl Database ===

impl Database {
    /// Whether it runs, or is on its way to running (anything but stopped or stopping).
    pub fn running(&self) -> bool {
        !matches!(self.status.as_str(), "stopped" | "stopping")
    }

    /// Whether it has settled: available or stopped.
    pub fn ready(&self) -> bool {
        matches!(self.status.as_str(), "available" | "stopped")
    }

    /// The original capacity curfew stored on it.
    pub fn original(&self) -> Option<Capacity> {
        self.tags.get(ORIGINAL_TAG).and_then(|v| tags::decode(v))
    }

    /// When curfew stopped it, as it recorded.
    pub fn stopped_at(&self) -> Option<DateTime<Utc>> {
        let value = self.tags.get(STOPPED_AT_TAG)?;
        DateTime::parse_from_rfc3339(value.trim())
            .ok()
            .map(|at| at.with_timezone(&Utc))
    }

    /// Whether the planner needs to know if AWS started it by itself: it runs though curfew
    /// stopped it less than `limit` before `now`.
    pub fn restart_in_question(&self, now: DateTime<Utc>, limit: chrono::Duration) -> bool {
        self.running()
            && self.original().is_some()
            && self.stopped_at().is_some_and(|at| now - at < limit)
    }

    /// Whether `config` selects it: by identifier of its kind, or by carrying every tag.
    pub fn selected_by(&self, config: &RdsTarget) -> bool {
        let names = match self.kind {
            Kind::DbCluster => &config.clusters,
            _ => &config.instances,
        };
        names.contains(&self.identifier)
            || (!config.tags.is_empty()
                && config
                    .tags
                    .iter()
                    .all(|(key, value)| self.tags.get(key) == Some(value)))
    }

    /// The id of its target: `db_instance/<region>/<identifier>` or `db_cluster/...`.
    pub fn target_id(&self, region: &str) -> String {
        format!("{}/{region}/{}", self.kind.as_str(), self.identifier)
    }

    /// The target it stands for in `environment`; `restarted_by_cloud` when its events say
    /// AWS started it since curfew stopped it.
    pub fn target(&self, environment: &str, region: &str, restarted_by_cloud: bool) -> Target {
        let running = self.running();
        Target {
            id: self.target_id(region),
            kind: self.kind,
            environment: environment.to_string(),
            capacity: Capacity::Running(running),
            original: self.original(),
            down: Capacity::Running(false),
            ready: self.ready(),
            created_at: None,
            footprint: Footprint::Database {
                instance_classes: self.instance_classes.clone(),
                engine: self.engine,
                running,
                multi_az: self.multi_az,
                storage_gib: self.storage_gib,
                storage_type: self.storage_type.clone(),
                region: Some(region.to_string()),
            },
            rules: TargetRules {
                unusable: self.unusable.clone(),
                stopped: self.stopped_at().map(|at| StopRecord {
                    at,
                    restarted_by_cloud,
                }),
                ..TargetRules::default()
            },
        }
    }
}

/// Every DB instance and DB cluster of the account and region, each cluster with the classes
/// of its members.
pub async fn describe(client: &Client) -> Result<Vec<Database>> {
    let instances = describe_instances(client).await?;
    let clusters = describe_clusters(client).await?;
    let mut databases: Vec<Database> = clusters
        .iter()
        .map(|cluster| from_cluster(cluster, &instances))
        .collect();
    databases.extend(instances.iter().map(from_instance));
    Ok(databases)
}

async fn describe_instances(client: &Client) -> Result<Vec<DbInstance>> {
    let mut pages = client
        .describe_db_instances()
        .max_records(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("DescribeDBInstances", "*", e))?;
        instances.extend(page.db_instances().iter().cloned());
    }
    Ok(instances)
}

async fn describe_clusters(client: &Client) -> Result<Vec<DbCluster>> {
    let mut pages = client
        .describe_db_clusters()
        .max_records(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut clusters = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("DescribeDBClusters", "*", e))?;
        clusters.extend(page.db_clusters().iter().cloned());
    }
    Ok(clusters)
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn gib(allocated: Option<i32>) -> u32 {
    allocated.and_then(|g| u32::try_from(g).ok()).unwrap_or(0)
}

fn from_instance(instance: &DbInstance) -> Database {
    let engine = instance.engine().unwrap_or_default().to_string();
    Database {
        kind: Kind::DbInstance,
        identifier: instance
            .db_instance_identifier()
            .unwrap_or_default()
            .to_string(),
        arn: instance.db_instance_arn().unwrap_or_default().to_string(),
        status: instance
            .db_instance_status()
            .unwrap_or_default()
            .to_string(),
        tags: tag_map(instance.tag_list()),
        unusable: instance_unusable(instance, &engine),
        member_of: instance.db_cluster_identifier().map(str::to_string),
        instance_classes: instance
            .db_instance_class()
            .map(str::to_string)
            .into_iter()
            .collect(),
        engine: pricing(&engine),
        multi_az: instance.multi_az().unwrap_or(false),
        storage_gib: gib(instance.allocated_storage()),
        storage_type: instance.storage_type().unwrap_or("gp2").to_string(),
    }
}

fn from_cluster(cluster: &DbCluster, instances: &[DbInstance]) -> Database {
    let identifier = cluster.db_cluster_identifier().unwrap_or_default();
    let engine = cluster.engine().unwrap_or_default().to_string();
    let members = instances
        .iter()
        .filter(|i| i.db_cluster_identifier() == Some(identifier));
    let aurora = pricing(&engine) == DatabaseEngine::Aurora;
    Database {
        kind: Kind::DbCluster,
        identifier: identifier.to_string(),
        arn: cluster.db_cluster_arn().unwrap_or_default().to_string(),
        status: cluster.status().unwrap_or_default().to_string(),
        tags: tag_map(cluster.tag_list()),
        unusable: cluster_unusable(cluster, &engine),
        member_of: None,
        instance_classes: members
            .filter_map(|i| i.db_instance_class().map(str::to_string))
            .collect(),
        engine: pricing(&engine),
        multi_az: false,
        storage_gib: gib(cluster.allocated_storage()),
        storage_type: match cluster.storage_type() {
            _ if aurora => "aurora".to_string(),
            Some(storage) => storage.to_string(),
            None => "gp3".to_string(),
        },
    }
}

fn pricing(engine: &str) -> DatabaseEngine {
    if engine.starts_with("aurora") {
        DatabaseEngine::Aurora
    } else {
        DatabaseEngine::Rds
    }
}

/// Why StopDBInstance cannot stop `instance`, if it cannot.
fn instance_unusable(instance: &DbInstance, engine: &str) -> Option<String> {
    if let Some(cluster) = instance.db_cluster_identifier() {
        return Some(format!(
            "a member of DB cluster {cluster}, which is stopped and started as one: select the cluster with 'clusters'"
        ));
    }
    if let Some(source) = instance
        .read_replica_source_db_instance_identifier()
        .or(instance.read_replica_source_db_cluster_identifier())
    {
        return Some(format!("a read replica of {source}, which RDS cannot stop"));
    }
    let replicas: Vec<&str> = instance
        .read_replica_db_instance_identifiers()
        .iter()
        .chain(instance.read_replica_db_cluster_identifiers())
        .map(String::as_str)
        .collect();
    if !replicas.is_empty() {
        return Some(format!(
            "has read replicas ({}), and RDS cannot stop an instance with read replicas",
            replicas.join(", ")
        ));
    }
    if engine.starts_with("sqlserver") && instance.multi_az() == Some(true) {
        return Some("SQL Server in a Multi-AZ deployment, which RDS cannot stop".to_string());
    }
    if !STOPPABLE_INSTANCE_ENGINES
        .iter()
        .any(|known| engine == *known || (known.ends_with('-') && engine.starts_with(known)))
    {
        return Some(format!(
            "engine '{engine}', which StopDBInstance cannot stop"
        ));
    }
    None
}

/// Why StopDBCluster cannot stop `cluster`, if it cannot.
fn cluster_unusable(cluster: &DbCluster, engine: &str) -> Option<String> {
    if let Some(source) = cluster.replication_source_identifier() {
        return Some(format!("a replica of {source}, which RDS cannot stop"));
    }
    if let Some(global) = cluster.global_cluster_identifier() {
        return Some(format!(
            "a member of the global database {global}, which RDS cannot stop"
        ));
    }
    if cluster.engine_mode() == Some("serverless") {
        return Some("Aurora Serverless v1, which RDS cannot stop".to_string());
    }
    if !STOPPABLE_CLUSTER_ENGINES.contains(&engine) {
        return Some(format!(
            "engine '{engine}', which StopDBCluster cannot stop"
        ));
    }
    None
}

/// Whether RDS reported starting `database` by itself since `since` (its events of the last
/// 14 days are kept).
pub async fn started_by_aws_since(
    client: &Client,
    database: &Database,
    since: DateTime<Utc>,
) -> Result<bool> {
    let source_type = match database.kind {
        Kind::DbCluster => SourceType::DbCluster,
        _ => SourceType::DbInstance,
    };
    let mut pages = client
        .describe_events()
        .source_identifier(&database.identifier)
        .source_type(source_type)
        .start_time(aws_sdk_rds::primitives::DateTime::from_secs(
            since.timestamp(),
        ))
        .event_categories("notification")
        .max_records(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("DescribeEvents", &database.identifier, e))?;
        if page
            .events()
            .iter()
            .any(|event| event.message().is_some_and(|m| m.contains(AUTOMATIC_START)))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes `tags` on the database named by `arn`.
async fn tag(client: &Client, arn: &str, tags: &[(&str, String)]) -> Result<()> {
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(key, value)| Tag::builder().key(*key).value(value).build())
        .collect();
    client
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| classify("AddTagsToResource", arn, e))?;
    Ok(())
}

/// Removes curfew's tags from the database named by `arn`.
async fn untag(client: &Client, arn: &str) -> Result<()> {
    client
        .remove_tags_from_resource()
        .resource_name(arn)
        .tag_keys(ORIGINAL_TAG)
        .tag_keys(STOPPED_AT_TAG)
        .send()
        .await
        .map_err(|e| classify("RemoveTagsFromResource", arn, e))?;
    Ok(())
}

async fn stop(client: &Client, kind: Kind, identifier: &str) -> Result<()> {
    match kind {
        Kind::DbCluster => client
            .stop_db_cluster()
            .db_cluster_identifier(identifier)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify("StopDBCluster", identifier, e)),
        _ => client
            .stop_db_instance()
            .db_instance_identifier(identifier)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify("StopDBInstance", identifier, e)),
    }
}

async fn start(client: &Client, kind: Kind, identifier: &str) -> Result<()> {
    match kind {
        Kind::DbCluster => client
            .start_db_cluster()
            .db_cluster_identifier(identifier)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify("StartDBCluster", identifier, e)),
        _ => client
            .start_db_instance()
            .db_instance_identifier(identifier)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify("StartDBInstance", identifier, e)),
    }
}

/// The key a database is asked about in a readiness batch: `db_instance/<id>`, `db_cluster/<id>`.
pub fn readiness_key(kind: Kind, identifier: &str) -> String {
    format!("{}/{identifier}", kind.as_str())
}

// === impl AwsProvider ===

impl AwsProvider {
    /// The databases `config` selects. A cluster's members are reported only when their
    /// cluster is not selected too (then they are unusable on their own). A running database
    /// that curfew stopped less than seven days ago costs one DescribeEvents call, to learn
    /// whether AWS started it; when that call fails, the stop time alone decides.
    pub(super) async fn discover_databases(
        &self,
        scope: &Scope,
        config: &RdsTarget,
    ) -> Result<Vec<(Target, Object)>> {
        let client = &self.clients(&scope.account).rds;
        let region = scope.account.region.as_str();
        let databases = describe(client).await?;
        let selected: Vec<&Database> = databases.iter().filter(|d| d.selected_by(config)).collect();
        let selected_clusters: HashSet<&str> = selected
            .iter()
            .filter(|d| d.kind == Kind::DbCluster)
            .map(|d| d.identifier.as_str())
            .collect();
        let now = self.clock.now();
        let mut found = Vec::new();
        for database in selected {
            let member_of_selected = database
                .member_of
                .as_deref()
                .is_some_and(|cluster| selected_clusters.contains(cluster));
            if member_of_selected {
                continue;
            }
            let limit = database.kind.max_stopped().unwrap_or_default();
            let restarted_by_cloud = match database.stopped_at() {
                Some(since) if database.restart_in_question(now, limit) => {
                    // Without the events the stop time alone decides.
                    started_by_aws_since(client, database, since)
                        .await
                        .unwrap_or_else(|err| {
                            tracing::warn!(error = %err, "RDS events not read; the stop time decides");
                            false
                        })
                }
                _ => false,
            };
            let target = database.target(&scope.environment, region, restarted_by_cloud);
            if let Some(reason) = &database.unusable {
                self.report_unusable(&target.id, reason);
            }
            let object = Object::Database {
                account: scope.account.clone(),
                database: Handle {
                    kind: database.kind,
                    identifier: database.identifier.clone(),
                    arn: database.arn.clone(),
                    running: database.running(),
                },
            };
            found.push((target, object));
        }
        Ok(found)
    }

    /// Logs an unusable database once per process.
    fn report_unusable(&self, id: &str, reason: &str) {
        if self.unusable_reported.lock().insert(id.to_string()) {
            tracing::warn!(
                target = id,
                reason,
                "database left alone: it cannot be stopped"
            );
        }
    }

    /// Stops or starts a database, keeping curfew's tags on it (see the module docs).
    pub(super) async fn apply_database(
        &self,
        account: &Account,
        database: &Handle,
        action: &Action,
    ) -> Result<()> {
        let client = &self.clients(account).rds;
        let (kind, identifier, arn) = (database.kind, database.identifier.as_str(), &database.arn);
        let _permit = self.permit(account, "rds").await;
        match action {
            Action::ScaleDown { original, .. } => {
                tag(client, arn, &[(ORIGINAL_TAG, tags::encode(*original))]).await?;
                if database.running {
                    stop(client, kind, identifier).await?;
                }
                let at = self
                    .clock
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                tag(client, arn, &[(STOPPED_AT_TAG, at)]).await
            }
            Action::ScaleUp { to, .. } => {
                if *to != Capacity::Running(true) {
                    return Err(Error::Permanent {
                        operation: "StartDB".to_string(),
                        target: identifier.to_string(),
                        code: "InvalidCapacity".to_string(),
                        detail: format!("a database runs or is stopped, not {to}"),
                    });
                }
                if !database.running {
                    start(client, kind, identifier).await?;
                }
                untag(client, arn).await
            }
        }
    }

    /// Whether each database of `account` is available or stopped, by [`readiness_key`].
    pub(super) async fn databases_ready(
        &self,
        account: &Account,
    ) -> Result<std::collections::HashMap<String, bool>> {
        let databases = describe(&self.clients(account).rds).await?;
        Ok(databases
            .iter()
            .map(|d| (readiness_key(d.kind, &d.identifier), d.ready()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_instance(identifier: &str) -> aws_sdk_rds::types::builders::DbInstanceBuilder {
        DbInstance::builder()
            .db_instance_identifier(identifier)
            .db_instance_arn(format!(
                "arn:aws:rds:eu-central-1:123456789012:db:{identifier}"
            ))
            .db_instance_status("available")
            .db_instance_class("db.t4g.micro")
            .engine("postgres")
            .allocated_storage(20)
            .storage_type("gp3")
    }

    fn unusable(instance: aws_sdk_rds::types::builders::DbInstanceBuilder) -> Option<String> {
        from_instance(&instance.build()).unusable
    }

    #[test]
    fn replicas_cluster_members_multi_az_sql_server_and_unknown_engines_cannot_be_stopped() {
        assert_eq!(unusable(mk_instance("orders")), None);
        let replica = mk_instance("orders-ro").read_replica_source_db_instance_identifier("orders");
        assert!(
            unusable(replica)
                .unwrap()
                .contains("a read replica of orders")
        );
        let source = mk_instance("orders").read_replica_db_instance_identifiers("orders-ro");
        assert!(
            unusable(source)
                .unwrap()
                .contains("has read replicas (orders-ro)")
        );
        let member = mk_instance("orders-1").db_cluster_identifier("orders");
        assert!(
            unusable(member)
                .unwrap()
                .contains("a member of DB cluster orders")
        );
        let sql_server = mk_instance("erp").engine("sqlserver-se").multi_az(true);
        assert!(
            unusable(sql_server)
                .unwrap()
                .contains("SQL Server in a Multi-AZ")
        );
        assert_eq!(unusable(mk_instance("erp").engine("sqlserver-se")), None);
        assert_eq!(unusable(mk_instance("ledger").engine("oracle-ee")), None);
        let neptune = mk_instance("graph").engine("neptune");
        assert!(unusable(neptune).unwrap().contains("engine 'neptune'"));
        let serverless = DbCluster::builder()
            .db_cluster_identifier("old")
            .engine("aurora-mysql")
            .engine_mode("serverless")
            .build();
        assert!(
            from_cluster(&serverless, &[])
                .unusable
                .unwrap()
                .contains("Serverless v1")
        );
    }

    #[test]
    fn a_cluster_is_billed_for_the_classes_of_its_members_and_aurora_storage() {
        let cluster = DbCluster::builder()
            .db_cluster_identifier("orders")
            .engine("aurora-postgresql")
            .status("available")
            .allocated_storage(1)
            .build();
        let members = [
            mk_instance("orders-1")
                .db_cluster_identifier("orders")
                .db_instance_class("db.r6g.large")
                .build(),
            mk_instance("orders-2")
                .db_cluster_identifier("orders")
                .db_instance_class("db.r7g.large")
                .build(),
            mk_instance("other").build(),
        ];
        let database = from_cluster(&cluster, &members);
        assert_eq!(database.instance_classes, ["db.r6g.large", "db.r7g.large"]);
        assert_eq!(database.engine, DatabaseEngine::Aurora);
        assert_eq!(database.storage_type, "aurora");
        assert_eq!(database.unusable, None);
    }

    #[test]
    fn tags_select_and_record_the_stop() {
        let mut database = from_instance(
            &mk_instance("orders")
                .tag_list(Tag::builder().key("env").value("staging").build())
                .tag_list(Tag::builder().key(ORIGINAL_TAG).value("running").build())
                .tag_list(
                    Tag::builder()
                        .key(STOPPED_AT_TAG)
                        .value("2026-12-05T12:00:00Z")
                        .build(),
                )
                .build(),
        );
        let by_tag = RdsTarget {
            instances: vec![],
            clusters: vec!["orders".into()],
            tags: [("env".to_string(), "staging".to_string())].into(),
            region: "eu-central-1".into(),
            assume_role_arn: None,
        };
        assert!(database.selected_by(&by_tag));
        let by_cluster_name = RdsTarget {
            tags: Default::default(),
            ..by_tag
        };
        assert!(
            !database.selected_by(&by_cluster_name),
            "instances and clusters are apart"
        );
        let stopped_at = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z").unwrap();
        assert_eq!(database.stopped_at(), Some(stopped_at.with_timezone(&Utc)));
        assert_eq!(database.original(), Some(Capacity::Running(true)));
        let week = chrono::Duration::days(7);
        assert!(database.restart_in_question(
            stopped_at.with_timezone(&Utc) + chrono::Duration::days(2),
            week
        ));
        assert!(!database.restart_in_question(stopped_at.with_timezone(&Utc) + week, week));
        database.status = "stopped".into();
        assert!(!database.restart_in_question(stopped_at.with_timezone(&Utc), week));
        let target = database.target("staging", "eu-central-1", false);
        assert_eq!(target.id, "db_instance/eu-central-1/orders");
        assert_eq!(target.capacity, Capacity::Running(false));
        assert_eq!(
            target.rules.stopped.map(|s| s.at),
            Some(stopped_at.with_timezone(&Utc))
        );
    }
}
