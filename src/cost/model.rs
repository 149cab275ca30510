//! The cost model: what a target costs per hour now, and what it would cost if it were
//! always on.
//!
//! * Instances: count × hourly price by lifecycle. On-demand prices come from the catalog;
//!   spot prices from the provider when it knows them, otherwise the on-demand price less a
//!   configured discount.
//! * Pods: requests × a per-vCPU-hour and a per-GiB-hour rate, in the spirit of OpenCost. The
//!   rates are configured or derived from a reference instance's price, split between CPU and
//!   memory in a fixed ratio.
//!
//! Pod costs are an allocation of node costs: an environment that manages its own nodes is
//! charged for the nodes, and its pod figures only show how that splits.

use std::collections::HashMap;

use serde::Serialize;

use super::catalog::Catalog;
use crate::domain::{Capacity, Footprint, Lifecycle, Target};

/// One vCPU-hour costs as much as this many GiB-hours of memory when rates are derived.
const CPU_TO_GIB_COST_RATIO: f64 = 7.46;
/// The instance type whose price the derived pod rates come from.
const REFERENCE_TYPE: &str = "m6i.large";

/// The knobs of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct CostSettings {
    /// Region for targets that do not name one.
    pub default_region: String,
    /// Spot price = on-demand × (1 − discount) when no spot price is known.
    pub spot_discount: f64,
    /// Price of one requested vCPU for an hour; derived when `None`.
    pub cpu_hour: Option<f64>,
    /// Price of one requested GiB of memory for an hour; derived when `None`.
    pub gib_hour: Option<f64>,
}

impl Default for CostSettings {
    fn default() -> Self {
        CostSettings {
            default_region: "us-east-1".to_string(),
            spot_discount: 0.65,
            cpu_hour: None,
            gib_hour: None,
        }
    }
}

/// A target's cost rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TargetCost {
    /// Dollars per hour now.
    pub per_hour: f64,
    /// Dollars per hour if it ran at its up capacity.
    pub always_on_per_hour: f64,
    /// Whether it is node capacity (instances) rather than pods.
    pub is_capacity: bool,
    /// The lifecycle of its instances, if it runs instances.
    pub lifecycle: Option<Lifecycle>,
}

/// The cost model.
#[derive(Debug, Clone)]
pub struct CostModel {
    catalog: Catalog,
    settings: CostSettings,
    cpu_hour: f64,
    gib_hour: f64,
    spot_prices: HashMap<(String, String), f64>,
}

// === impl CostModel ===

impl CostModel {
    /// A model over `catalog` with `settings`.
    pub fn new(catalog: Catalog, settings: CostSettings) -> Self {
        let reference = catalog
            .on_demand(&settings.default_region, REFERENCE_TYPE)
            .zip(catalog.spec(REFERENCE_TYPE));
        let (derived_cpu, derived_gib) = match reference {
            Some((price, spec)) => {
                let weight = spec.vcpu * CPU_TO_GIB_COST_RATIO + spec.memory_gib;
                let cpu_share = price * spec.vcpu * CPU_TO_GIB_COST_RATIO / weight;
                (cpu_share / spec.vcpu, (price - cpu_share) / spec.memory_gib)
            }
            None => (0.0, 0.0),
        };
        CostModel {
            cpu_hour: settings.cpu_hour.unwrap_or(derived_cpu),
            gib_hour: settings.gib_hour.unwrap_or(derived_gib),
            catalog,
            settings,
            spot_prices: HashMap::new(),
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Price of one requested vCPU-hour.
    pub fn cpu_hour(&self) -> f64 {
        self.cpu_hour
    }

    /// Price of one requested GiB-hour.
    pub fn gib_hour(&self) -> f64 {
        self.gib_hour
    }

    /// Uses spot prices observed by a provider, keyed by (region, instance type).
    pub fn set_spot_prices(&mut self, prices: HashMap<(String, String), f64>) {
        self.spot_prices = prices;
    }

    /// The hourly price of one instance; `None` when the catalog does not know the type.
    pub fn instance_price(
        &self,
        region: Option<&str>,
        instance_type: &str,
        lifecycle: Lifecycle,
    ) -> Option<f64> {
        let region = region.unwrap_or(&self.settings.default_region);
        match lifecycle {
            Lifecycle::OnDemand => self.catalog.on_demand(region, instance_type),
            Lifecycle::Spot => self
                .spot_prices
                .get(&(region.to_string(), instance_type.to_string()))
                .copied()
                .or_else(|| {
                    self.catalog
                        .on_demand(region, instance_type)
                        .map(|price| price * (1.0 - self.settings.spot_discount))
                }),
        }
    }

    /// The hourly price of one pod with these requests.
    pub fn pod_price(&self, cpu_millis: u32, memory_mib: u32) -> f64 {
        f64::from(cpu_millis) / 1000.0 * self.cpu_hour
            + f64::from(memory_mib) / 1024.0 * self.gib_hour
    }

    /// What `target` costs now and would cost at its up capacity.
    pub fn target_cost(&self, target: &Target) -> TargetCost {
        let units_up = |units_now: u32| match target.original {
            Some(original) => capacity_units(original).unwrap_or(units_now),
            None => units_now,
        };
        match &target.footprint {
            Footprint::Instances {
                instance_type,
                lifecycle,
                count,
                region,
            } => {
                let price = self
                    .instance_price(region.as_deref(), instance_type, *lifecycle)
                    .unwrap_or(0.0);
                TargetCost {
                    per_hour: price * f64::from(*count),
                    always_on_per_hour: price * f64::from(units_up(*count)),
                    is_capacity: true,
                    lifecycle: Some(*lifecycle),
                }
            }
            Footprint::Pods {
                count,
                cpu_millis,
                memory_mib,
            } => {
                let price = self.pod_price(*cpu_millis, *memory_mib);
                TargetCost {
                    per_hour: price * f64::from(*count),
                    always_on_per_hour: price * f64::from(units_up(*count)),
                    is_capacity: false,
                    lifecycle: None,
                }
            }
            Footprint::Nothing => TargetCost {
                per_hour: 0.0,
                always_on_per_hour: 0.0,
                is_capacity: false,
                lifecycle: None,
            },
        }
    }
}

/// How many billable units (instances, pods) a capacity stands for.
fn capacity_units(capacity: Capacity) -> Option<u32> {
    match capacity {
        Capacity::Replicas(n) => Some(n),
        Capacity::Group { desired, .. } => Some(desired),
        Capacity::Running(running) => Some(u32::from(running)),
        Capacity::Suspended(_) => None,
    }
}

/// An environment's rates: node capacity when it manages any, otherwise its pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EnvironmentCost {
    /// Dollars per hour now.
    pub per_hour: f64,
    /// Dollars per hour if always on.
    pub always_on_per_hour: f64,
}

impl EnvironmentCost {
    /// Sums target costs without counting pods twice when the nodes under them are managed.
    pub fn sum<'a>(costs: impl IntoIterator<Item = &'a TargetCost> + Clone) -> EnvironmentCost {
        let has_capacity = costs.clone().into_iter().any(|c| c.is_capacity);
        costs
            .into_iter()
            .filter(|c| c.is_capacity == has_capacity)
            .fold(EnvironmentCost::default(), |sum, c| EnvironmentCost {
                per_hour: sum.per_hour + c.per_hour,
                always_on_per_hour: sum.always_on_per_hour + c.always_on_per_hour,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::mk_group_target;

    fn model() -> CostModel {
        CostModel::new(Catalog::embedded().unwrap(), CostSettings::default())
    }

    fn mk_group(count: u32, original: Option<u32>, lifecycle: Lifecycle) -> Target {
        mk_group_target(count, original, lifecycle, "eu-central-1")
    }

    #[test]
    fn instances_cost_count_times_catalog_price() {
        let cost = model().target_cost(&mk_group(3, None, Lifecycle::OnDemand));
        assert!((cost.per_hour - 3.0 * 0.115).abs() < 1e-9);
        assert_eq!(cost.per_hour, cost.always_on_per_hour);
    }

    #[test]
    fn a_scaled_down_group_would_cost_its_original_size_if_always_on() {
        let cost = model().target_cost(&mk_group(0, Some(4), Lifecycle::OnDemand));
        assert_eq!(cost.per_hour, 0.0);
        assert!((cost.always_on_per_hour - 4.0 * 0.115).abs() < 1e-9);
    }

    #[test]
    fn spot_uses_the_observed_price_or_the_discount() {
        let mut model = model();
        let discounted = model
            .target_cost(&mk_group(1, None, Lifecycle::Spot))
            .per_hour;
        assert!((discounted - 0.115 * 0.35).abs() < 1e-9);
        model.set_spot_prices(HashMap::from([(
            ("eu-central-1".to_string(), "m6i.large".to_string()),
            0.03,
        )]));
        let observed = model
            .target_cost(&mk_group(1, None, Lifecycle::Spot))
            .per_hour;
        assert!((observed - 0.03).abs() < 1e-9);
    }

    #[test]
    fn derived_pod_rates_split_the_reference_instance_price() {
        let model = model();
        // m6i.large in us-east-1 is 0.096 for 2 vCPU and 8 GiB.
        let whole = 2.0 * model.cpu_hour() + 8.0 * model.gib_hour();
        assert!((whole - 0.096).abs() < 1e-9);
        assert!(model.cpu_hour() > model.gib_hour() * 7.0);
    }

    #[test]
    fn environment_total_counts_nodes_not_the_pods_on_them() {
        let nodes = TargetCost {
            per_hour: 1.0,
            always_on_per_hour: 2.0,
            is_capacity: true,
            lifecycle: Some(Lifecycle::OnDemand),
        };
        let pods = TargetCost {
            per_hour: 0.5,
            always_on_per_hour: 0.5,
            is_capacity: false,
            lifecycle: None,
        };
        let both = EnvironmentCost::sum(&[nodes, pods]);
        assert_eq!(both.per_hour, 1.0);
        assert_eq!(both.always_on_per_hour, 2.0);
        let pods_only = EnvironmentCost::sum(&[pods]);
        assert_eq!(pods_only.per_hour, 0.5);
    }
}
