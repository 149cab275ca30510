//! EKS managed node groups: scaling through `UpdateNodegroupConfig`. The original capacity is
//! kept in a node group label written in the same call as the new size, so scaling and
//! remembering are one write. Ready once DescribeNodegroup reports the new size and ACTIVE.
//!
//! EKS has no batch describe: one DescribeNodegroup per selected node group.

use std::collections::HashMap;

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{
    CapacityTypes, Nodegroup, NodegroupScalingConfig, NodegroupStatus, UpdateLabelsPayload,
};

use super::errors::classify;
use super::tags;
use crate::domain::{Capacity, Footprint, Kind, Lifecycle, Target};
use crate::providers::Result;

/// Node groups of `cluster` named in `names`, or carrying every tag in `tags`.
pub async fn describe(
    client: &Client,
    cluster: &str,
    names: &[String],
    tags: &[(String, String)],
) -> Result<Vec<Nodegroup>> {
    let mut all_names = Vec::new();
    let mut pages = client
        .list_nodegroups()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListNodegroups", cluster, e))?;
        all_names.extend(page.nodegroups().iter().cloned());
    }
    let mut groups = Vec::new();
    for name in all_names {
        let named = names.contains(&name);
        if !named && tags.is_empty() {
            continue;
        }
        let described = client
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(&name)
            .send()
            .await
            .map_err(|e| classify("DescribeNodegroup", &name, e))?;
        if let Some(group) = described.nodegroup() {
            let tagged = !tags.is_empty() && has_tags(group.tags(), tags);
            if named || tagged {
                groups.push(group.clone());
            }
        }
    }
    Ok(groups)
}

fn has_tags(actual: Option<&HashMap<String, String>>, wanted: &[(String, String)]) -> bool {
    let Some(actual) = actual else { return false };
    wanted.iter().all(|(k, v)| actual.get(k) == Some(v))
}

/// Whether a node group has settled at its size: ACTIVE, not updating.
pub fn is_ready(group: &Nodegroup) -> bool {
    group.status() == Some(&NodegroupStatus::Active)
}

/// The target a node group stands for.
pub fn target(group: &Nodegroup, id: String, environment: &str, region: &str) -> Target {
    let scaling = group.scaling_config();
    let size = |value: Option<i32>| value.unwrap_or(0).max(0) as u32;
    let min = size(scaling.and_then(|s| s.min_size()));
    let max = size(scaling.and_then(|s| s.max_size()));
    let desired = size(scaling.and_then(|s| s.desired_size()));
    let original = group
        .labels()
        .and_then(|l| l.get(ORIGINAL_LABEL))
        .and_then(|v| decode_label(v));
    let lifecycle = match group.capacity_type() {
        Some(CapacityTypes::Spot) => Lifecycle::Spot,
        _ => Lifecycle::OnDemand,
    };
    Target {
        id,
        kind: Kind::EksNodegroup,
        environment: environment.to_string(),
        capacity: Capacity::Group { min, max, desired },
        original,
        down: Capacity::Group {
            min: 0,
            max: max.max(1),
            desired: 0,
        },
        ready: is_ready(group),
        created_at: group
            .created_at()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
        footprint: Footprint::Instances {
            instance_type: group
                .instance_types()
                .first()
                .cloned()
                .unwrap_or_else(|| "unknown".to_string()),
            lifecycle,
            count: desired,
            region: Some(region.to_string()),
        },
        rules: crate::domain::TargetRules::default(),
    }
}

/// Whether a node group is at the base of a pair's on-demand group: min and desired `base`.
pub fn at_base(capacity: Capacity, base: u32) -> bool {
    matches!(capacity, Capacity::Group { min, desired, .. } if min == base && desired == base)
}

/// `to` with min and desired set to a pair's on-demand base (max at least the base).
pub fn with_base(to: Capacity, base: u32) -> Capacity {
    match to {
        Capacity::Group { max, .. } => Capacity::Group {
            min: base,
            max: max.max(base),
            desired: base,
        },
        other => other,
    }
}

/// The node group label that holds the original capacity while curfew keeps it down.
pub const ORIGINAL_LABEL: &str = "curfew.dev/original-capacity";

/// A capacity as a Kubernetes label value (no `=` or `,` allowed): `min2_max5_desired3`.
pub fn encode_label(capacity: Capacity) -> String {
    tags::encode(capacity).replace('=', "").replace(',', "_")
}

/// Reads a label value written by [`encode_label`].
fn decode_label(value: &str) -> Option<Capacity> {
    let restored: Vec<String> = value
        .split('_')
        .map(|part| {
            let split = part
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(part.len());
            format!("{}={}", &part[..split], &part[split..])
        })
        .collect();
    tags::decode(&restored.join(","))
}

/// Sets the scaling config (max stays at least 1, as EKS requires) and, in the same call,
/// stores `original` in the node group's label or, when it is `None`, removes the label.
pub async fn resize(
    client: &Client,
    cluster: &str,
    name: &str,
    capacity: Capacity,
    original: Option<Capacity>,
) -> Result<()> {
    let Capacity::Group { min, max, desired } = capacity else {
        return Err(crate::providers::Error::Permanent {
            operation: "UpdateNodegroupConfig".to_string(),
            target: name.to_string(),
            code: "ValidationError".to_string(),
            detail: format!("{capacity} is not a group capacity"),
        });
    };
    let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let labels = match original {
        Some(original) => UpdateLabelsPayload::builder()
            .add_or_update_labels(ORIGINAL_LABEL, encode_label(original))
            .build(),
        None => UpdateLabelsPayload::builder()
            .remove_labels(ORIGINAL_LABEL)
            .build(),
    };
    client
        .update_nodegroup_config()
        .labels(labels)
        .cluster_name(cluster)
        .nodegroup_name(name)
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(to_i32(min))
                .max_size(to_i32(max.max(1)))
                .desired_size(to_i32(desired))
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("UpdateNodegroupConfig", name, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paired_on_demand_group_wakes_to_its_base_keeping_a_larger_max() {
        let original = Capacity::Group {
            min: 2,
            max: 6,
            desired: 4,
        };
        let base = with_base(original, 1);
        assert_eq!(
            base,
            Capacity::Group {
                min: 1,
                max: 6,
                desired: 1
            }
        );
        assert!(at_base(base, 1));
        assert!(!at_base(original, 1));
        assert_eq!(
            with_base(
                Capacity::Group {
                    min: 0,
                    max: 1,
                    desired: 0
                },
                3
            ),
            Capacity::Group {
                min: 3,
                max: 3,
                desired: 3
            }
        );
    }

    #[test]
    fn the_original_survives_the_label_format() {
        let capacity = Capacity::Group {
            min: 2,
            max: 5,
            desired: 3,
        };
        assert_eq!(encode_label(capacity), "min2_max5_desired3");
        assert_eq!(decode_label(&encode_label(capacity)), Some(capacity));
        assert_eq!(decode_label("nonsense"), None);
    }
}
