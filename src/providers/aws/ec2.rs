//! Standalone EC2 instances chosen by tags: stop and start, skipping instances that belong to
//! an Auto Scaling group.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance, InstanceLifecycleType, InstanceStateName, Tag};

use super::errors::classify;
use super::tags::{self, ORIGINAL_TAG};
use crate::domain::{Capacity, Footprint, Kind, Lifecycle, Target};
use crate::providers::Result;

/// The tag AWS puts on instances an Auto Scaling group launched.
const ASG_MEMBER_TAG: &str = "aws:autoscaling:groupName";

/// Live instances carrying every tag in `tags`, minus Auto Scaling group members.
pub async fn describe(client: &Client, tags: &[(String, String)]) -> Result<Vec<Instance>> {
    let mut filters: Vec<Filter> = tags
        .iter()
        .map(|(key, value)| {
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value.clone())
                .build()
        })
        .collect();
    filters.push(
        Filter::builder()
            .name("instance-state-name")
            .set_values(Some(
                ["pending", "running", "stopping", "stopped"]
                    .map(String::from)
                    .to_vec(),
            ))
            .build(),
    );
    instances(client, Some(filters), None).await
}

/// The instances with these ids (any state), for readiness checks.
pub async fn describe_ids(client: &Client, ids: &[String]) -> Result<Vec<Instance>> {
    instances(client, None, Some(ids.to_vec())).await
}

/// Every instance matching the filters or ids, over all pages, minus Auto Scaling members.
async fn instances(
    client: &Client,
    filters: Option<Vec<Filter>>,
    ids: Option<Vec<String>>,
) -> Result<Vec<Instance>> {
    let request = client
        .describe_instances()
        .set_filters(filters)
        .set_instance_ids(ids.clone());
    // The API refuses MaxResults together with instance ids.
    let request = if ids.is_some() {
        request
    } else {
        request.max_results(1000)
    };
    let mut pages = request.into_paginator().send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("DescribeInstances", "*", e))?;
        for reservation in page.reservations() {
            instances.extend(
                reservation
                    .instances()
                    .iter()
                    .filter(|i| !i.tags().iter().any(|t| t.key() == Some(ASG_MEMBER_TAG)))
                    .cloned(),
            );
        }
    }
    Ok(instances)
}

/// Whether an instance has settled: running or stopped, not on its way to either.
pub fn is_ready(instance: &Instance) -> bool {
    matches!(
        instance.state().and_then(|s| s.name()),
        Some(InstanceStateName::Running) | Some(InstanceStateName::Stopped)
    )
}

/// The target an instance stands for.
pub fn target(instance: &Instance, id: String, environment: &str, region: &str) -> Target {
    let state = instance.state().and_then(|s| s.name());
    let running = matches!(
        state,
        Some(InstanceStateName::Running) | Some(InstanceStateName::Pending)
    );
    let original = instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(ORIGINAL_TAG))
        .and_then(|t| t.value())
        .and_then(tags::decode);
    let lifecycle = match instance.instance_lifecycle() {
        Some(InstanceLifecycleType::Spot) => Lifecycle::Spot,
        _ => Lifecycle::OnDemand,
    };
    Target {
        id,
        kind: Kind::Ec2Instance,
        environment: environment.to_string(),
        capacity: Capacity::Running(running),
        original,
        down: Capacity::Running(false),
        ready: is_ready(instance),
        created_at: instance
            .launch_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
        footprint: Footprint::Instances {
            instance_type: instance
                .instance_type()
                .map_or_else(|| "unknown".to_string(), |t| t.as_str().to_string()),
            lifecycle,
            count: u32::from(running),
            region: Some(region.to_string()),
        },
        rules: crate::domain::TargetRules::default(),
    }
}

/// Writes the original state tag (the encoded capacity `value`) on the instances `ids`.
pub async fn tag_original(client: &Client, ids: &[String], value: &str) -> Result<()> {
    client
        .create_tags()
        .set_resources(Some(ids.to_vec()))
        .tags(Tag::builder().key(ORIGINAL_TAG).value(value).build())
        .send()
        .await
        .map_err(|e| classify("CreateTags", &ids.join(","), e))?;
    Ok(())
}

/// Removes the original state tag from the instances `ids`.
pub async fn untag_original(client: &Client, ids: &[String]) -> Result<()> {
    client
        .delete_tags()
        .set_resources(Some(ids.to_vec()))
        .tags(Tag::builder().key(ORIGINAL_TAG).build())
        .send()
        .await
        .map_err(|e| classify("DeleteTags", &ids.join(","), e))?;
    Ok(())
}

/// Stops (or hibernates) the instances `ids`.
pub async fn stop(client: &Client, ids: &[String], hibernate: bool) -> Result<()> {
    client
        .stop_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .hibernate(hibernate)
        .send()
        .await
        .map_err(|e| classify("StopInstances", &ids.join(","), e))?;
    Ok(())
}

/// Starts the instances `ids`.
pub async fn start(client: &Client, ids: &[String]) -> Result<()> {
    client
        .start_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| classify("StartInstances", &ids.join(","), e))?;
    Ok(())
}
