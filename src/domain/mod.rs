//! The domain: what curfew reasons about, as plain data with no I/O.
//!
//! Targets and their capacity, the actions that change them, the order in which tiers wake
//! and sleep, and the overrides people create. Every other layer speaks these types; this module imports only the
//! calendar.
//!
//! * `target` — [`Target`], its [`Kind`], [`Tier`], [`Capacity`], [`Footprint`] and the rules
//!   that set it apart from its environment ([`TargetRules`], [`TargetCalendar`]).
//! * `action` — [`Action`]: one change to one target.
//! * `decision` — [`EnvironmentDecision`]: an environment's desired state and why.
//! * [`simulation`] — the simulated estate as the configuration describes it.
//! * `overrides` — [`Override`]: people beating the calendar until a deadline.

mod action;
mod decision;
mod overrides;
pub mod simulation;
mod target;

pub use self::action::Action;
pub use self::decision::EnvironmentDecision;
pub use self::overrides::{Override, active_override};
pub use self::target::{
    Capacity, Footprint, Kind, Lifecycle, Target, TargetCalendar, TargetRules, Tier,
};

/// Builders of domain values for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Capacity, Footprint, Kind, Lifecycle, Target, TargetRules};

    /// An Auto Scaling group of `count` m6i.large nodes in `region`, scaled down from
    /// `original` nodes when that is given.
    pub(crate) fn mk_group_target(
        count: u32,
        original: Option<u32>,
        lifecycle: Lifecycle,
        region: &str,
    ) -> Target {
        let group = |desired| Capacity::Group {
            min: 0,
            max: 10,
            desired,
        };
        Target {
            id: "auto_scaling_group/nodes".into(),
            kind: Kind::AutoScalingGroup,
            environment: "staging".into(),
            capacity: group(count),
            original: original.map(group),
            down: group(0),
            ready: true,
            created_at: None,
            footprint: Footprint::Instances {
                instance_type: "m6i.large".into(),
                lifecycle,
                count,
                region: Some(region.into()),
            },
            rules: TargetRules::default(),
        }
    }
}
