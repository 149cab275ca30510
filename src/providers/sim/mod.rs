//! The simulated estate: a pretend cloud and cluster for demos, tests and benchmarks.
//!
//! The `simulation:` section of a config
//! ([`SimulationConfig`](crate::domain::simulation::SimulationConfig)) describes node groups and
//! namespaces; [`Estate`] models them (nodes joining after a delay, pods needing ready nodes,
//! the stored original on every object) as pure state with `now` as a parameter; [`Faults`]
//! injects seeded API failures; [`SimProvider`] puts it all behind the
//! [`Provider`](crate::providers::Provider) trait, optionally persisted to a file so the
//! estate outlives the scaler like a real cloud does.
//!
//! * `estate` — the model: node groups, nodes, workloads, selection by environment, persistence.
//! * `faults` — throttling, server errors, timeouts and always-failing targets.
//! * `provider` — [`SimProvider`], with call counters and a log of applied actions.

pub mod estate;
pub mod faults;
pub mod provider;

pub use self::estate::{Advance, Database, Estate, Management, Node, NodeGroup, Scaling, Workload};
pub use self::faults::{Fault, Faults};
pub use self::provider::{Calls, SimProvider};

/// The file in the state directory that keeps the simulated estate.
pub const ESTATE_FILE: &str = "sim-estate.json";
