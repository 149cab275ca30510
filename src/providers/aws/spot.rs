//! Spot/on-demand mixes of Auto Scaling groups with a MixedInstancesPolicy.
//!
//! A group's mix is part of its desired state: the `spot.uptime` distribution while the group
//! is up (raised to the fallback share while spot capacity is short), the `spot.downtime` one
//! while it is parked. It is sent in the same UpdateAutoScalingGroup call as the capacity, as
//! the whole policy (launch template included), and only when it differs from what the group
//! has.

use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate, LaunchTemplateSpecification, MixedInstancesPolicy,
};

use crate::config::targets::{SpotDistribution, SpotPolicy};

/// The code of the error reported when a spot policy meets a group without a mixed policy.
pub const NO_MIXED_POLICY: &str = "NoMixedInstancesPolicy";

/// The part of an instances distribution a spot policy sets; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mix {
    /// On-demand instances before any spot.
    pub on_demand_base: Option<i32>,
    /// Percentage of on-demand above the base.
    pub on_demand_percent: Option<i32>,
    /// Spot allocation strategy.
    pub strategy: Option<String>,
}

/// What a group's mix should be in each window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// While up (the fallback share included when one is active).
    pub up: Option<Mix>,
    /// While down.
    pub down: Option<Mix>,
    /// Whether the up mix is a fallback raised after spot capacity failures.
    pub fallback: bool,
}

/// The mixes `policy` asks for; `fallback_active` raises the on-demand share while up.
pub fn wanted(policy: &SpotPolicy, fallback_active: bool) -> Wanted {
    let mut up = policy.uptime.as_ref().map(Mix::from);
    let fallback = match (&policy.fallback, up.as_mut()) {
        (Some(fallback), Some(mix)) if fallback_active => {
            let raised = i32::try_from(fallback.on_demand_percent_above_base).unwrap_or(100);
            mix.on_demand_percent = Some(mix.on_demand_percent.unwrap_or(0).max(raised));
            true
        }
        _ => false,
    };
    Wanted {
        up,
        down: policy.downtime.as_ref().map(Mix::from),
        fallback,
    }
}

// === impl Mix ===

impl From<&SpotDistribution> for Mix {
    fn from(distribution: &SpotDistribution) -> Self {
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        Mix {
            on_demand_base: distribution.on_demand_base.map(to_i32),
            on_demand_percent: distribution.on_demand_percent_above_base.map(to_i32),
            strategy: distribution.spot_allocation_strategy.clone(),
        }
    }
}

impl Mix {
    /// Whether `distribution` already has every field this mix sets.
    pub fn holds_in(&self, distribution: Option<&InstancesDistribution>) -> bool {
        let base = distribution.and_then(|d| d.on_demand_base_capacity());
        let percent = distribution.and_then(|d| d.on_demand_percentage_above_base_capacity());
        let strategy = distribution.and_then(|d| d.spot_allocation_strategy());
        self.on_demand_base.is_none_or(|want| base == Some(want))
            && self
                .on_demand_percent
                .is_none_or(|want| percent == Some(want))
            && self
                .strategy
                .as_deref()
                .is_none_or(|want| strategy == Some(want))
    }

    /// `distribution` with this mix's fields set and every other field kept.
    fn applied_to(&self, distribution: Option<&InstancesDistribution>) -> InstancesDistribution {
        let d = distribution;
        InstancesDistribution::builder()
            .set_on_demand_allocation_strategy(
                d.and_then(|d| d.on_demand_allocation_strategy())
                    .map(str::to_string),
            )
            .set_on_demand_base_capacity(
                self.on_demand_base
                    .or_else(|| d.and_then(|d| d.on_demand_base_capacity())),
            )
            .set_on_demand_percentage_above_base_capacity(
                self.on_demand_percent
                    .or_else(|| d.and_then(|d| d.on_demand_percentage_above_base_capacity())),
            )
            .set_spot_allocation_strategy(
                self.strategy
                    .clone()
                    .or_else(|| d.and_then(|d| d.spot_allocation_strategy().map(str::to_string))),
            )
            .set_spot_instance_pools(d.and_then(|d| d.spot_instance_pools()))
            .set_spot_max_price(d.and_then(|d| d.spot_max_price()).map(str::to_string))
            .build()
    }

    /// The whole policy to send so that the group gets this mix, or `None` when it has it.
    ///
    /// Fails with a description when the group has no MixedInstancesPolicy to change.
    pub fn update(
        &self,
        current: Option<&MixedInstancesPolicy>,
    ) -> Result<Option<MixedInstancesPolicy>, String> {
        let Some(current) = current else {
            return Err("the group has no MixedInstancesPolicy, so its spot/on-demand mix cannot be set; its capacity was changed".to_string());
        };
        if self.holds_in(current.instances_distribution()) {
            return Ok(None);
        }
        Ok(Some(
            MixedInstancesPolicy::builder()
                .set_launch_template(current.launch_template().map(sendable_template))
                .instances_distribution(self.applied_to(current.instances_distribution()))
                .build(),
        ))
    }
}

/// The launch template as it may be sent back: Describe answers with both the template's id
/// and name, Update accepts only one of them.
fn sendable_template(template: &LaunchTemplate) -> LaunchTemplate {
    let mut template = template.clone();
    if let Some(spec) = template.launch_template_specification()
        && spec.launch_template_id().is_some()
        && spec.launch_template_name().is_some()
    {
        template.launch_template_specification = Some(
            LaunchTemplateSpecification::builder()
                .set_launch_template_id(spec.launch_template_id().map(str::to_string))
                .set_version(spec.version().map(str::to_string))
                .build(),
        );
    }
    template
}

/// A MixedInstancesPolicy as DescribeAutoScalingGroups answers it: template `lt-1` by id and
/// name, m6i.large, one on-demand base instance and `percent` on demand above it.
#[cfg(test)]
pub(super) fn mk_policy(percent: i32) -> MixedInstancesPolicy {
    MixedInstancesPolicy::builder()
        .launch_template(
            LaunchTemplate::builder()
                .launch_template_specification(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id("lt-1")
                        .launch_template_name("nodes")
                        .version("$Latest")
                        .build(),
                )
                .overrides(
                    aws_sdk_autoscaling::types::LaunchTemplateOverrides::builder()
                        .instance_type("m6i.large")
                        .build(),
                )
                .build(),
        )
        .instances_distribution(
            InstancesDistribution::builder()
                .on_demand_base_capacity(1)
                .on_demand_percentage_above_base_capacity(percent)
                .spot_allocation_strategy("price-capacity-optimized")
                .spot_max_price("0.5")
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::targets::SpotFallback;

    fn distribution(base: u32, percent: u32) -> SpotDistribution {
        SpotDistribution {
            on_demand_base: Some(base),
            on_demand_percent_above_base: Some(percent),
            spot_allocation_strategy: Some("price-capacity-optimized".into()),
        }
    }

    #[test]
    fn a_mix_that_already_holds_sends_nothing() {
        let mix = Mix::from(&distribution(1, 0));
        assert_eq!(mix.update(Some(&mk_policy(0))), Ok(None));
    }

    #[test]
    fn a_changed_mix_sends_the_whole_policy_with_one_template_reference() {
        let mix = Mix::from(&distribution(1, 0));
        let sent = mix.update(Some(&mk_policy(100))).unwrap().unwrap();
        let spec = sent
            .launch_template()
            .and_then(|t| t.launch_template_specification())
            .unwrap();
        assert_eq!(spec.launch_template_id(), Some("lt-1"));
        assert_eq!(spec.launch_template_name(), None);
        assert_eq!(spec.version(), Some("$Latest"));
        let d = sent.instances_distribution().unwrap();
        assert_eq!(d.on_demand_percentage_above_base_capacity(), Some(0));
        assert_eq!(d.on_demand_base_capacity(), Some(1));
        // Fields the policy does not set are kept.
        assert_eq!(d.spot_max_price(), Some("0.5"));
    }

    #[test]
    fn a_group_without_a_mixed_policy_is_an_error_not_a_write() {
        let mix = Mix::from(&distribution(0, 0));
        let err = mix.update(None).unwrap_err();
        assert!(err.contains("no MixedInstancesPolicy"), "{err}");
    }

    #[test]
    fn an_active_fallback_raises_only_the_uptime_on_demand_share() {
        let policy = SpotPolicy {
            uptime: Some(distribution(1, 0)),
            downtime: Some(distribution(0, 0)),
            fallback: Some(SpotFallback {
                on_demand_percent_above_base: 100,
                cooldown: chrono::Duration::minutes(30),
            }),
        };
        let calm = wanted(&policy, false);
        assert_eq!(calm.up.as_ref().unwrap().on_demand_percent, Some(0));
        assert!(!calm.fallback);
        let short = wanted(&policy, true);
        assert_eq!(short.up.as_ref().unwrap().on_demand_percent, Some(100));
        assert_eq!(short.up.as_ref().unwrap().on_demand_base, Some(1));
        assert_eq!(short.down, calm.down);
        assert!(short.fallback);
    }
}
