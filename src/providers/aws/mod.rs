//! The AWS provider: Auto Scaling groups, EKS managed node groups and standalone EC2
//! instances, through the official SDKs.
//!
//! Credentials and endpoints come from the standard chain and environment (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, profiles); each target names its region and may name a role to assume
//! in another account. The SDK retries in its adaptive mode; calls to each service are bounded
//! in concurrency. Every object's original capacity is kept in a tag on the object itself.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::retry::RetryConfig;
use tokio::sync::Semaphore;

use super::{Action, Error, Provider, Result, Target};
use crate::config::{Config, TargetConfig};

mod asg;
mod ec2;
mod eks;
mod errors;
pub mod tags;

/// Calls in flight at once per service.
const CALLS_PER_SERVICE: usize = 8;

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
}

/// One configured AWS target of one environment.
#[derive(Debug, Clone)]
struct Scope {
    environment: String,
    account: Account,
    target: TargetConfig,
}

/// How to act on a discovered object.
#[derive(Debug, Clone)]
enum Object {
    Group {
        account: Account,
        name: String,
    },
    Nodegroup {
        account: Account,
        cluster: String,
        name: String,
    },
    Instance {
        account: Account,
        id: String,
        hibernate: bool,
    },
}

/// The AWS provider.
pub struct AwsProvider {
    scopes: Vec<Scope>,
    clients: HashMap<Account, Clients>,
    objects: RwLock<HashMap<String, Object>>,
    limits: HashMap<&'static str, Semaphore>,
}

// === impl AwsProvider ===

impl AwsProvider {
    /// The provider for the AWS targets of `config`, or `None` when it has none.
    pub async fn from_config(config: &Config) -> Option<AwsProvider> {
        let scopes: Vec<Scope> = config
            .environments
            .values()
            .flat_map(|env| {
                env.targets.iter().filter_map(|target| {
                    let (region, role) = match target {
                        TargetConfig::AwsAsg(t) => (&t.region, &t.assume_role_arn),
                        TargetConfig::AwsEksNodegroup(t) => (&t.region, &t.assume_role_arn),
                        TargetConfig::AwsEc2(t) => (&t.region, &t.assume_role_arn),
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
            .collect();
        if scopes.is_empty() {
            return None;
        }
        let mut clients = HashMap::new();
        for scope in &scopes {
            if !clients.contains_key(&scope.account) {
                clients.insert(scope.account.clone(), connect(&scope.account).await);
            }
        }
        let limits = ["autoscaling", "ec2", "eks"]
            .into_iter()
            .map(|service| (service, Semaphore::new(CALLS_PER_SERVICE)))
            .collect();
        Some(AwsProvider {
            scopes,
            clients,
            objects: RwLock::default(),
            limits,
        })
    }

    fn clients(&self, account: &Account) -> &Clients {
        // Every account in an object or scope was connected at construction.
        &self.clients[account]
    }

    fn object(&self, operation: &str, id: &str) -> Result<Object> {
        self.objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                operation: operation.to_string(),
                target: id.to_string(),
            })
    }

    async fn discover_scope(&self, scope: &Scope) -> Result<Vec<(Target, Object)>> {
        let clients = self.clients(&scope.account);
        let region = scope.account.region.as_str();
        let environment = scope.environment.as_str();
        let mut found = Vec::new();
        match &scope.target {
            TargetConfig::AwsAsg(config) => {
                let tags: Vec<(String, String)> = config.tags.clone().into_iter().collect();
                let down = config.down.map_or(
                    crate::providers::Capacity::Group {
                        min: 0,
                        max: 0,
                        desired: 0,
                    },
                    |d| crate::providers::Capacity::Group {
                        min: d.min,
                        max: d.max,
                        desired: d.desired,
                    },
                );
                for group in asg::describe(&clients.autoscaling, &config.names, &tags).await? {
                    let name = group
                        .auto_scaling_group_name()
                        .unwrap_or_default()
                        .to_string();
                    let id = format!("auto_scaling_group/{region}/{name}");
                    let target = asg::target(&group, id, environment, region, down);
                    let object = Object::Group {
                        account: scope.account.clone(),
                        name,
                    };
                    found.push((target, object));
                }
            }
            TargetConfig::AwsEksNodegroup(config) => {
                let tags: Vec<(String, String)> = config.tags.clone().into_iter().collect();
                for group in
                    eks::describe(&clients.eks, &config.cluster, &config.names, &tags).await?
                {
                    let name = group.nodegroup_name().unwrap_or_default().to_string();
                    let id = format!("eks_nodegroup/{region}/{}/{name}", config.cluster);
                    let target = eks::target(&group, id, environment, region);
                    let object = Object::Nodegroup {
                        account: scope.account.clone(),
                        cluster: config.cluster.clone(),
                        name,
                    };
                    found.push((target, object));
                }
            }
            TargetConfig::AwsEc2(config) => {
                let tags: Vec<(String, String)> = config.tags.clone().into_iter().collect();
                for instance in ec2::describe(&clients.ec2, &tags).await? {
                    let instance_id = instance.instance_id().unwrap_or_default().to_string();
                    let id = format!("ec2_instance/{region}/{instance_id}");
                    let target = ec2::target(&instance, id, environment, region);
                    let object = Object::Instance {
                        account: scope.account.clone(),
                        id: instance_id,
                        hibernate: config.hibernate,
                    };
                    found.push((target, object));
                }
            }
            TargetConfig::Kubernetes(_) => {}
        }
        Ok(found)
    }

    async fn permit(&self, service: &'static str) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.limits.get(service)?.acquire().await.ok()
    }
}

/// Builds the clients for an account: the standard chain, adaptive retries, and an assumed
/// role when one is named.
async fn connect(account: &Account) -> Clients {
    let region = Region::new(account.region.clone());
    let retry = RetryConfig::adaptive().with_max_attempts(5);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .retry_config(retry);
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
    let shared = loader.load().await;
    Clients {
        autoscaling: aws_sdk_autoscaling::Client::new(&shared),
        ec2: aws_sdk_ec2::Client::new(&shared),
        eks: aws_sdk_eks::Client::new(&shared),
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn discover(&self) -> Result<Vec<Target>> {
        let mut targets = Vec::new();
        let mut objects = HashMap::new();
        for scope in &self.scopes {
            for (target, object) in self.discover_scope(scope).await? {
                if !objects.contains_key(&target.id) {
                    objects.insert(target.id.clone(), object);
                    targets.push(target);
                }
            }
        }
        *self.objects.write().unwrap_or_else(|e| e.into_inner()) = objects;
        targets.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(targets)
    }

    async fn apply(&self, action: &Action) -> Result<()> {
        let object = self.object("apply", action.target())?;
        match (&object, action) {
            (Object::Group { account, name }, Action::ScaleDown { original, to, .. }) => {
                let client = &self.clients(account).autoscaling;
                let _permit = self.permit("autoscaling").await;
                asg::tag_original(client, name, *original).await?;
                asg::resize(client, name, *to).await
            }
            (Object::Group { account, name }, Action::ScaleUp { to, .. }) => {
                let client = &self.clients(account).autoscaling;
                let _permit = self.permit("autoscaling").await;
                asg::resize(client, name, *to).await?;
                asg::untag_original(client, name).await
            }
            (
                Object::Nodegroup {
                    account,
                    cluster,
                    name,
                },
                Action::ScaleDown { original, to, .. },
            ) => {
                let client = &self.clients(account).eks;
                let _permit = self.permit("eks").await;
                eks::resize(client, cluster, name, *to, Some(*original)).await
            }
            (
                Object::Nodegroup {
                    account,
                    cluster,
                    name,
                },
                Action::ScaleUp { to, .. },
            ) => {
                let client = &self.clients(account).eks;
                let _permit = self.permit("eks").await;
                eks::resize(client, cluster, name, *to, None).await
            }
            (
                Object::Instance {
                    account,
                    id,
                    hibernate,
                },
                Action::ScaleDown { original, .. },
            ) => {
                let client = &self.clients(account).ec2;
                let _permit = self.permit("ec2").await;
                ec2::tag_original(client, id, *original).await?;
                ec2::stop(client, id, *hibernate).await
            }
            (Object::Instance { account, id, .. }, Action::ScaleUp { .. }) => {
                let client = &self.clients(account).ec2;
                let _permit = self.permit("ec2").await;
                ec2::start(client, id).await?;
                ec2::untag_original(client, id).await
            }
        }
    }

    async fn ready(&self, target: &str) -> Result<bool> {
        let object = self.object("ready", target)?;
        let found = match &object {
            Object::Group { account, name } => {
                let client = &self.clients(account).autoscaling;
                asg::describe(client, std::slice::from_ref(name), &[])
                    .await?
                    .first()
                    .map(|group| {
                        asg::target(
                            group,
                            String::new(),
                            "",
                            &account.region,
                            crate::providers::Capacity::Running(false),
                        )
                        .ready
                    })
            }
            Object::Nodegroup {
                account,
                cluster,
                name,
                ..
            } => {
                let client = &self.clients(account).eks;
                eks::describe(client, cluster, std::slice::from_ref(name), &[])
                    .await?
                    .first()
                    .map(|group| eks::target(group, String::new(), "", &account.region).ready)
            }
            Object::Instance { account, id, .. } => {
                let client = &self.clients(account).ec2;
                let instances = ec2::describe_ids(client, std::slice::from_ref(id)).await?;
                instances
                    .first()
                    .map(|i| ec2::target(i, String::new(), "", &account.region).ready)
            }
        };
        Ok(found.unwrap_or(false))
    }
}
