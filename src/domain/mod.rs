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
//! * `access` — [`Role`]: what a caller may do.

mod access;
mod action;
mod decision;
mod overrides;
pub mod simulation;
mod target;

pub use self::access::Role;
pub use self::action::Action;
pub use self::decision::EnvironmentDecision;
pub use self::overrides::{Override, active_override};
pub use self::target::{
    Capacity, DatabaseEngine, Footprint, Kind, Lifecycle, StopRecord, Target, TargetCalendar,
    TargetRules, Tier,
};

#[cfg(test)]
pub(crate) mod testing;
