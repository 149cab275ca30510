//! Cost truth: what staging costs, what it would cost always on, and the difference.
//!
//! The model, the catalog and the ledger are pure arithmetic over domain values; the tracker
//! and the forecast use them from above (the tracker beside the audit log, persisting the
//! ledger; the forecast over the simulated estate), so nothing here re-exports them.
//!
//! * [`catalog`]: on-demand list prices and instance specs, embedded and overridable;
//! * [`model`]: dollars per hour of a target now and always on;
//! * [`ledger`]: those rates integrated over time, per environment and month;
//! * [`tracker`]: the ledger kept up to date by the running service, with metrics;
//! * [`forecast`]: `curfew simulate`, the same arithmetic over a plan instead of observations.

pub mod catalog;
pub mod forecast;
pub mod ledger;
pub mod model;
pub mod tracker;

pub use self::catalog::Catalog;
pub use self::ledger::{Ledger, Totals};
pub use self::model::{CostModel, CostSettings};
