//! The original capacity as a tag value: `min=1,max=6,desired=3` for groups, `running` for
//! instances.

use crate::domain::Capacity;

/// The tag that holds a target's original capacity while curfew keeps it down.
pub const ORIGINAL_TAG: &str = "curfew:original-capacity";

/// The tag (value `true`) that `deploy/aws/iam-policy.json` requires on every Auto Scaling
/// group, EKS node group and instance curfew may change. curfew never writes it: people enrol
/// a resource by tagging it.
pub const MANAGED_TAG: &str = "curfew:managed";

/// Encodes a capacity as a tag value.
pub fn encode(capacity: Capacity) -> String {
    match capacity {
        Capacity::Group { min, max, desired } => format!("min={min},max={max},desired={desired}"),
        Capacity::Running(true) => "running".to_string(),
        Capacity::Running(false) => "stopped".to_string(),
        Capacity::Replicas(n) => format!("replicas={n}"),
        Capacity::Suspended(s) => format!("suspended={s}"),
    }
}

/// Decodes a tag value; `None` when it is not one curfew wrote.
pub fn decode(value: &str) -> Option<Capacity> {
    match value.trim() {
        "running" => return Some(Capacity::Running(true)),
        "stopped" => return Some(Capacity::Running(false)),
        _ => {}
    }
    let mut min = None;
    let mut max = None;
    let mut desired = None;
    for part in value.split(',') {
        let (key, number) = part.trim().split_once('=')?;
        let number: u32 = number.trim().parse().ok()?;
        match key.trim() {
            "min" => min = Some(number),
            "max" => max = Some(number),
            "desired" => desired = Some(number),
            "replicas" => return Some(Capacity::Replicas(number)),
            _ => return None,
        }
    }
    Some(Capacity::Group {
        min: min?,
        max: max?,
        desired: desired?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_capacity_round_trips_through_the_tag() {
        let capacity = Capacity::Group {
            min: 1,
            max: 6,
            desired: 3,
        };
        assert_eq!(encode(capacity), "min=1,max=6,desired=3");
        assert_eq!(decode(&encode(capacity)), Some(capacity));
        assert_eq!(decode("running"), Some(Capacity::Running(true)));
        assert_eq!(decode("min=1,max=x,desired=3"), None);
        assert_eq!(decode("min=1,desired=3"), None);
    }
}
