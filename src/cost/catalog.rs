//! The price catalog: on-demand hourly list prices per region and instance type, with vCPU
//! and memory per type. An embedded catalog covers current families in four regions; a file
//! in the same format extends or overrides it.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Deserialize;

/// The embedded catalog, in the same YAML format as an override file.
pub const EMBEDDED: &str = include_str!("catalog.yaml");

/// What can be wrong with a catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML does not parse or has unknown keys.
    #[error("price catalog: {0}")]
    Parse(String),
    /// A price is negative or not a number.
    #[error("price catalog: price of {instance_type} in {region} must be a positive number")]
    BadPrice {
        /// The region.
        region: String,
        /// The instance type.
        instance_type: String,
    },
}

/// Result type of catalog loading.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// vCPUs and memory of an instance type.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// Virtual CPUs.
    pub vcpu: f64,
    /// Memory in GiB.
    pub memory_gib: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    taken: Option<NaiveDate>,
    #[serde(default = "usd")]
    currency: String,
    #[serde(default)]
    types: HashMap<String, InstanceSpec>,
    #[serde(default)]
    prices: HashMap<String, HashMap<String, f64>>,
}

fn usd() -> String {
    "USD".to_string()
}

/// Prices and instance specs.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    taken: Option<NaiveDate>,
    currency: String,
    types: HashMap<String, InstanceSpec>,
    prices: HashMap<(String, String), f64>,
}

// === impl Catalog ===

impl Catalog {
    /// The catalog shipped with curfew.
    pub fn embedded() -> Result<Catalog> {
        Catalog::parse(EMBEDDED)
    }

    /// Parses a catalog in the embedded format.
    pub fn parse(text: &str) -> Result<Catalog> {
        let file: CatalogFile =
            serde_saphyr::from_str(text).map_err(|err| Error::Parse(err.to_string()))?;
        let mut prices = HashMap::new();
        for (region, by_type) in file.prices {
            for (instance_type, price) in by_type {
                if !(price.is_finite() && price >= 0.0) {
                    return Err(Error::BadPrice {
                        region,
                        instance_type,
                    });
                }
                prices.insert((region.clone(), instance_type), price);
            }
        }
        Ok(Catalog {
            taken: file.taken,
            currency: file.currency,
            types: file.types,
            prices,
        })
    }

    /// Adds `other`'s entries, replacing prices and specs that both have.
    pub fn extend(&mut self, other: Catalog) {
        self.types.extend(other.types);
        self.prices.extend(other.prices);
        if other.taken.is_some() {
            self.taken = other.taken;
        }
    }

    /// The on-demand hourly price of `instance_type` in `region`.
    pub fn on_demand(&self, region: &str, instance_type: &str) -> Option<f64> {
        self.prices
            .get(&(region.to_string(), instance_type.to_string()))
            .copied()
    }

    /// vCPUs and memory of `instance_type`.
    pub fn spec(&self, instance_type: &str) -> Option<InstanceSpec> {
        self.types.get(instance_type).copied()
    }

    /// When the prices were taken.
    pub fn taken(&self) -> Option<NaiveDate> {
        self.taken
    }

    /// The currency of every price.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// How many (region, type) prices it holds.
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    /// Whether it holds no price.
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_covers_every_family_size_and_region() {
        let catalog = Catalog::embedded().unwrap();
        assert_eq!(catalog.taken(), NaiveDate::from_ymd_opt(2026, 11, 28));
        let families = [
            "t3", "t4g", "m5", "m6i", "m6g", "m7i", "m7g", "c5", "c6i", "c6g", "c7i", "r5", "r6i",
            "r6g",
        ];
        for region in ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"] {
            for family in families {
                for size in ["large", "xlarge", "2xlarge", "4xlarge"] {
                    let instance_type = format!("{family}.{size}");
                    let burstable_4xl = family.starts_with('t') && size == "4xlarge";
                    assert_eq!(
                        catalog.on_demand(region, &instance_type).is_some(),
                        !burstable_4xl,
                        "{instance_type} in {region}"
                    );
                }
            }
        }
        assert_eq!(catalog.on_demand("us-east-1", "m6i.large"), Some(0.096));
        let spec = catalog.spec("r6g.xlarge").unwrap();
        assert_eq!((spec.vcpu, spec.memory_gib), (4.0, 32.0));
    }

    #[test]
    fn an_override_file_replaces_and_adds_prices() {
        let mut catalog = Catalog::embedded().unwrap();
        let extra = Catalog::parse(
            "taken: 2027-01-15\ntypes:\n  x9.large: { vcpu: 2, memory_gib: 4 }\nprices:\n  us-east-1: { m6i.large: 0.1, x9.large: 0.05 }\n",
        )
        .unwrap();
        catalog.extend(extra);
        assert_eq!(catalog.on_demand("us-east-1", "m6i.large"), Some(0.1));
        assert_eq!(catalog.on_demand("us-east-1", "x9.large"), Some(0.05));
        assert_eq!(catalog.on_demand("eu-west-1", "m6i.large"), Some(0.107));
        assert_eq!(catalog.taken(), NaiveDate::from_ymd_opt(2027, 1, 15));
    }

    #[test]
    fn a_negative_price_is_an_error() {
        let err = Catalog::parse("prices:\n  us-east-1: { m6i.large: -1 }\n").unwrap_err();
        assert!(matches!(err, Error::BadPrice { .. }));
    }
}
