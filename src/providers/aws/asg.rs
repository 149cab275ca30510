//! EC2 Auto Scaling groups: discovery by name or tag (paginated, batched), scaling with the
//! original capacity kept in a tag.
//!
//! Going down writes the `curfew:original-capacity` tag, then sets the down capacity; going up
//! restores the capacity, then removes the tag. A crash between the two calls is finished by
//! the next pass (see the planner's rule for interrupted scale-downs).

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, Filter, LifecycleState, MixedInstancesPolicy, Tag,
};

use super::errors::classify;
use super::tags::{self, ORIGINAL_TAG};
use crate::domain::{Capacity, Footprint, Kind, Lifecycle, Target};
use crate::providers::Result;

/// Names per DescribeAutoScalingGroups call (the API's limit).
const NAMES_PER_CALL: usize = 100;

/// Groups named in `names` plus groups carrying every tag in `tags`, each once.
pub async fn describe(
    client: &Client,
    names: &[String],
    tags: &[(String, String)],
) -> Result<Vec<AutoScalingGroup>> {
    let mut groups = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut pages = client
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(chunk.to_vec()))
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeAutoScalingGroups", "*", e))?;
            groups.extend(page.auto_scaling_groups().iter().cloned());
        }
    }
    if !tags.is_empty() {
        let filters: Vec<Filter> = tags
            .iter()
            .map(|(key, value)| {
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .values(value.clone())
                    .build()
            })
            .collect();
        let mut pages = client
            .describe_auto_scaling_groups()
            .set_filters(Some(filters))
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeAutoScalingGroups", "*", e))?;
            groups.extend(page.auto_scaling_groups().iter().cloned());
        }
    }
    groups.sort_by(|a, b| {
        a.auto_scaling_group_name()
            .cmp(&b.auto_scaling_group_name())
    });
    groups.dedup_by(|a, b| a.auto_scaling_group_name() == b.auto_scaling_group_name());
    Ok(groups)
}

/// The target a group stands for.
pub fn target(
    group: &AutoScalingGroup,
    id: String,
    environment: &str,
    region: &str,
    down: Capacity,
) -> Target {
    let capacity = Capacity::Group {
        min: non_negative(group.min_size()),
        max: non_negative(group.max_size()),
        desired: non_negative(group.desired_capacity()),
    };
    let original = group
        .tags()
        .iter()
        .find(|tag| tag.key() == Some(ORIGINAL_TAG))
        .and_then(|tag| tag.value())
        .and_then(tags::decode);
    let instances = group.instances();
    let instance_type = instances
        .iter()
        .find_map(|i| i.instance_type())
        .map(str::to_string)
        .or_else(|| first_override_type(group))
        .unwrap_or_else(|| "unknown".to_string());
    Target {
        id,
        kind: Kind::AutoScalingGroup,
        environment: environment.to_string(),
        capacity,
        original,
        down,
        ready: is_ready(group),
        created_at: group
            .created_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
        footprint: Footprint::Instances {
            instance_type,
            lifecycle: lifecycle(group),
            count: instances.len() as u32,
            region: Some(region.to_string()),
        },
        rules: crate::domain::TargetRules::default(),
    }
}

/// Whether a group has exactly its desired instances, all in service.
pub fn is_ready(group: &AutoScalingGroup) -> bool {
    let desired = non_negative(group.desired_capacity()) as usize;
    let instances = group.instances();
    let in_service = instances
        .iter()
        .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
        .count();
    in_service == desired && instances.len() == desired
}

/// Whether a group carries the original capacity tag (it is parked, or being parked).
pub fn is_tagged(group: &AutoScalingGroup) -> bool {
    group
        .tags()
        .iter()
        .any(|tag| tag.key() == Some(ORIGINAL_TAG))
}

fn first_override_type(group: &AutoScalingGroup) -> Option<String> {
    group
        .mixed_instances_policy()?
        .launch_template()?
        .overrides()
        .iter()
        .find_map(|o| o.instance_type().map(str::to_string))
}

/// Spot when a mixed instances policy buys anything above its on-demand base as spot.
fn lifecycle(group: &AutoScalingGroup) -> Lifecycle {
    let distribution = group
        .mixed_instances_policy()
        .and_then(|p| p.instances_distribution());
    match distribution.and_then(|d| d.on_demand_percentage_above_base_capacity()) {
        Some(percent) if percent < 100 => Lifecycle::Spot,
        _ => Lifecycle::OnDemand,
    }
}

fn non_negative(value: Option<i32>) -> u32 {
    value.unwrap_or(0).max(0) as u32
}

fn as_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A group's original capacity tag: to write (with its encoded value) or to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalTag {
    /// The group's name.
    pub group: String,
    /// The encoded original capacity to write; `None` to remove the tag.
    pub value: Option<String>,
}

impl OriginalTag {
    /// The tag to write on `group` for its `original` capacity.
    pub fn write(group: &str, original: Capacity) -> Self {
        OriginalTag {
            group: group.to_string(),
            value: Some(tags::encode(original)),
        }
    }

    /// The tag to remove from `group`.
    pub fn remove(group: &str) -> Self {
        OriginalTag {
            group: group.to_string(),
            value: None,
        }
    }

    fn tag(&self) -> Tag {
        let tag = Tag::builder()
            .resource_id(&self.group)
            .resource_type("auto-scaling-group")
            .key(ORIGINAL_TAG);
        match &self.value {
            Some(value) => tag.value(value).propagate_at_launch(false).build(),
            None => tag.build(),
        }
    }
}

impl std::fmt::Display for OriginalTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.group)
    }
}

/// The groups a call names, for its errors.
fn groups(tags: &[OriginalTag]) -> String {
    let names: Vec<&str> = tags.iter().map(|t| t.group.as_str()).collect();
    names.join(",")
}

/// Writes the original capacity tags of `tags` (of one group or many) in one
/// CreateOrUpdateTags call.
pub async fn tag_original(client: &Client, tags: &[OriginalTag]) -> Result<()> {
    client
        .create_or_update_tags()
        .set_tags(Some(tags.iter().map(OriginalTag::tag).collect()))
        .send()
        .await
        .map_err(|e| classify("CreateOrUpdateTags", &groups(tags), e))?;
    Ok(())
}

/// Removes the original capacity tags of `tags` (of one group or many) in one DeleteTags call.
pub async fn untag_original(client: &Client, tags: &[OriginalTag]) -> Result<()> {
    client
        .delete_tags()
        .set_tags(Some(tags.iter().map(OriginalTag::tag).collect()))
        .send()
        .await
        .map_err(|e| classify("DeleteTags", &groups(tags), e))?;
    Ok(())
}

/// The scaling processes of `wanted` the group has suspended.
pub fn suspended<'a>(group: &AutoScalingGroup, wanted: &'a [String]) -> Vec<&'a str> {
    wanted
        .iter()
        .filter(|name| {
            group
                .suspended_processes()
                .iter()
                .any(|p| p.process_name() == Some(name.as_str()))
        })
        .map(String::as_str)
        .collect()
}

/// Suspends scaling processes (while the group is parked).
pub async fn suspend(client: &Client, name: &str, processes: Vec<String>) -> Result<()> {
    client
        .suspend_processes()
        .auto_scaling_group_name(name)
        .set_scaling_processes(Some(processes))
        .send()
        .await
        .map_err(|e| classify("SuspendProcesses", name, e))?;
    Ok(())
}

/// Resumes scaling processes (when the group wakes).
pub async fn resume(client: &Client, name: &str, processes: Vec<String>) -> Result<()> {
    client
        .resume_processes()
        .auto_scaling_group_name(name)
        .set_scaling_processes(Some(processes))
        .send()
        .await
        .map_err(|e| classify("ResumeProcesses", name, e))?;
    Ok(())
}

/// Sets min, max and desired capacity and, when given, the whole mixed instances policy, in
/// one UpdateAutoScalingGroup call.
pub async fn resize(
    client: &Client,
    name: &str,
    capacity: Capacity,
    policy: Option<MixedInstancesPolicy>,
) -> Result<()> {
    let Capacity::Group { min, max, desired } = capacity else {
        return Err(crate::providers::Error::Permanent {
            operation: "UpdateAutoScalingGroup".to_string(),
            target: name.to_string(),
            code: "ValidationError".to_string(),
            detail: format!("{capacity} is not a group capacity"),
        });
    };
    client
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(as_i32(min))
        .max_size(as_i32(max))
        .desired_capacity(as_i32(desired))
        .set_mixed_instances_policy(policy)
        .send()
        .await
        .map_err(|e| classify("UpdateAutoScalingGroup", name, e))?;
    Ok(())
}
