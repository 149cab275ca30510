//! The AWS calls an action would make, with their parameters, described without making them
//! (dry runs). They follow `AwsProvider::apply` call for call.

use serde_json::{Value, json};

use super::tags::{self, ORIGINAL_TAG, STOPPED_AT_TAG};
use super::{GroupSpot, Object, Processes, eks, spot};
use crate::domain::{Action, Capacity, Kind};
use crate::providers::PlannedWrite;

fn write(call: &str, body: Value) -> PlannedWrite {
    PlannedWrite {
        call: call.to_string(),
        body,
    }
}

/// `{key: value}`.
fn single(key: &str, value: Value) -> Value {
    Value::Object(serde_json::Map::from_iter([(key.to_string(), value)]))
}

/// The calls `apply` makes for `action` on `object`, in order.
pub(super) fn writes(object: &Object, action: &Action) -> Vec<PlannedWrite> {
    match object {
        Object::Group {
            name,
            tagged,
            spot,
            processes,
            ..
        } => group(name, *tagged, spot.as_deref(), processes, action),
        Object::Nodegroup {
            cluster,
            name,
            on_demand_base,
            ..
        } => {
            let (to, labels) = match action {
                Action::ScaleDown { original, to, .. } => (
                    *to,
                    json!({"addOrUpdateLabels": single(eks::ORIGINAL_LABEL, json!(eks::encode_label(*original)))}),
                ),
                Action::ScaleUp { to, .. } => (
                    on_demand_base.map_or(*to, |base| eks::with_base(*to, base)),
                    json!({"removeLabels": [eks::ORIGINAL_LABEL]}),
                ),
            };
            let mut body = json!({"clusterName": cluster, "nodegroupName": name, "labels": labels});
            if let Capacity::Group { min, max, desired } = to {
                body["scalingConfig"] =
                    json!({"minSize": min, "maxSize": max.max(1), "desiredSize": desired});
            }
            vec![write("UpdateNodegroupConfig", body)]
        }
        Object::Instance { id, hibernate, .. } => match action {
            Action::ScaleDown { original, .. } => vec![
                write(
                    "CreateTags",
                    json!({"Resources": [id], "Tags": [{"Key": ORIGINAL_TAG, "Value": tags::encode(*original)}]}),
                ),
                write(
                    "StopInstances",
                    json!({"InstanceIds": [id], "Hibernate": hibernate}),
                ),
            ],
            Action::ScaleUp { .. } => vec![
                write("StartInstances", json!({"InstanceIds": [id]})),
                write(
                    "DeleteTags",
                    json!({"Resources": [id], "Tags": [{"Key": ORIGINAL_TAG}]}),
                ),
            ],
        },
        Object::Database { database, .. } => {
            let (identifier_key, noun) = match database.kind {
                Kind::DbCluster => ("DBClusterIdentifier", "DBCluster"),
                _ => ("DBInstanceIdentifier", "DBInstance"),
            };
            let identifier = single(identifier_key, json!(database.identifier));
            let arn = &database.arn;
            match action {
                Action::ScaleDown { original, .. } => {
                    let mut calls = vec![write(
                        "AddTagsToResource",
                        json!({"ResourceName": arn, "Tags": [{"Key": ORIGINAL_TAG, "Value": tags::encode(*original)}]}),
                    )];
                    if database.running {
                        calls.push(write(&format!("Stop{noun}"), identifier));
                    }
                    calls.push(write(
                        "AddTagsToResource",
                        json!({"ResourceName": arn, "Tags": [{"Key": STOPPED_AT_TAG, "Value": "(the time of the stop)"}]}),
                    ));
                    calls
                }
                Action::ScaleUp { .. } => {
                    let mut calls = Vec::new();
                    if !database.running {
                        calls.push(write(&format!("Start{noun}"), identifier));
                    }
                    calls.push(write(
                        "RemoveTagsFromResource",
                        json!({"ResourceName": arn, "TagKeys": [ORIGINAL_TAG, STOPPED_AT_TAG]}),
                    ));
                    calls
                }
            }
        }
    }
}

/// An Auto Scaling group's calls: tag, suspend and resize going down; resize, resume and
/// untag going up.
fn group(
    name: &str,
    tagged: bool,
    spot: Option<&GroupSpot>,
    processes: &Processes,
    action: &Action,
) -> Vec<PlannedWrite> {
    let mut calls = Vec::new();
    let wanted = spot.map(|s| &s.wanted);
    let (mix, capacity) = match action {
        Action::ScaleDown { original, to, .. } => {
            calls.push(write(
                "CreateOrUpdateTags",
                json!({"Tags": [{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": ORIGINAL_TAG, "Value": tags::encode(*original), "PropagateAtLaunch": false}]}),
            ));
            let missing = processes.to_suspend();
            if !missing.is_empty() {
                calls.push(write(
                    "SuspendProcesses",
                    json!({"AutoScalingGroupName": name, "ScalingProcesses": missing}),
                ));
            }
            (wanted.and_then(|w| w.down.as_ref()), *to)
        }
        Action::ScaleUp { to, .. } => (wanted.and_then(|w| w.up.as_ref()), *to),
    };
    let mut resize = json!({"AutoScalingGroupName": name});
    if let Capacity::Group { min, max, desired } = capacity {
        resize["MinSize"] = json!(min);
        resize["MaxSize"] = json!(max);
        resize["DesiredCapacity"] = json!(desired);
    }
    if let Some(mix) = mix {
        resize["MixedInstancesPolicy"] = distribution(mix);
    }
    calls.push(write("UpdateAutoScalingGroup", resize));
    if matches!(action, Action::ScaleUp { .. }) && tagged {
        if !processes.suspended.is_empty() {
            calls.push(write(
                "ResumeProcesses",
                json!({"AutoScalingGroupName": name, "ScalingProcesses": processes.suspended}),
            ));
        }
        calls.push(write(
            "DeleteTags",
            json!({"Tags": [{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": ORIGINAL_TAG}]}),
        ));
    }
    calls
}

/// The part of the group's whole mixed instances policy that the mix changes (the rest is
/// sent as the group has it).
fn distribution(mix: &spot::Mix) -> Value {
    let mut distribution = serde_json::Map::new();
    if let Some(base) = mix.on_demand_base {
        distribution.insert("OnDemandBaseCapacity".into(), json!(base));
    }
    if let Some(percent) = mix.on_demand_percent {
        distribution.insert("OnDemandPercentageAboveBaseCapacity".into(), json!(percent));
    }
    if let Some(strategy) = &mix.strategy {
        distribution.insert("SpotAllocationStrategy".into(), json!(strategy));
    }
    json!({"InstancesDistribution": distribution})
}
