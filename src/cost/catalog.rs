//! The price catalog: on-demand hourly list prices per region and instance type, with vCPU
//! and memory per type, and the prices of RDS and Aurora instance classes and of database
//! storage. An embedded catalog covers current families in four regions; a file in the same
//! format extends or overrides it.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::domain::DatabaseEngine;

/// Hours in a month, as AWS turns monthly prices (storage) into hourly ones.
pub const HOURS_PER_MONTH: f64 = 730.0;

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
    #[serde(default)]
    databases: DatabasesFile,
}

/// Prices by region, then by instance class or storage type.
type ByRegion = HashMap<String, HashMap<String, f64>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabasesFile {
    /// Hourly prices of RDS instance classes.
    #[serde(default)]
    rds: ByRegion,
    /// Hourly prices of Aurora instance classes.
    #[serde(default)]
    aurora: ByRegion,
    /// Dollars per GiB-month by storage type.
    #[serde(default)]
    storage: ByRegion,
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
    database_prices: HashMap<(DatabaseEngine, String, String), f64>,
    storage_prices: HashMap<(String, String), f64>,
}

/// The prices of `by_region` keyed by (region, name), every one checked.
fn flatten(by_region: ByRegion) -> Result<HashMap<(String, String), f64>> {
    let mut prices = HashMap::new();
    for (region, by_name) in by_region {
        for (name, price) in by_name {
            if !(price.is_finite() && price >= 0.0) {
                return Err(Error::BadPrice {
                    region,
                    instance_type: name,
                });
            }
            prices.insert((region.clone(), name), price);
        }
    }
    Ok(prices)
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
        let mut database_prices = HashMap::new();
        for (engine, by_region) in [
            (DatabaseEngine::Rds, file.databases.rds),
            (DatabaseEngine::Aurora, file.databases.aurora),
        ] {
            for ((region, class), price) in flatten(by_region)? {
                database_prices.insert((engine, region, class), price);
            }
        }
        Ok(Catalog {
            taken: file.taken,
            currency: file.currency,
            types: file.types,
            prices: flatten(file.prices)?,
            database_prices,
            storage_prices: flatten(file.databases.storage)?,
        })
    }

    /// Adds `other`'s entries, replacing prices and specs that both have.
    pub fn extend(&mut self, other: Catalog) {
        self.types.extend(other.types);
        self.prices.extend(other.prices);
        self.database_prices.extend(other.database_prices);
        self.storage_prices.extend(other.storage_prices);
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

    /// The on-demand hourly price of one instance of DB instance class `class` (e.g.
    /// `db.r6g.large`) of `engine` in `region`, Single-AZ.
    pub fn database(&self, engine: DatabaseEngine, region: &str, class: &str) -> Option<f64> {
        self.database_prices
            .get(&(engine, region.to_string(), class.to_string()))
            .copied()
    }

    /// The price of one GiB of database storage of `storage_type` (`gp3`, `aurora`, ...) in
    /// `region` for an hour.
    pub fn storage_hour(&self, region: &str, storage_type: &str) -> Option<f64> {
        self.storage_prices
            .get(&(region.to_string(), storage_type.to_string()))
            .map(|per_month| per_month / HOURS_PER_MONTH)
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
    fn embedded_catalog_prices_database_classes_and_storage_in_every_region() {
        let catalog = Catalog::embedded().unwrap();
        for region in ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"] {
            for class in [
                "db.t3.micro",
                "db.t4g.2xlarge",
                "db.m6g.large",
                "db.m7g.4xlarge",
            ] {
                assert!(
                    catalog
                        .database(DatabaseEngine::Rds, region, class)
                        .is_some(),
                    "{class} in {region}"
                );
            }
            for class in ["db.r6g.large", "db.r7g.4xlarge"] {
                for engine in [DatabaseEngine::Rds, DatabaseEngine::Aurora] {
                    assert!(
                        catalog.database(engine, region, class).is_some(),
                        "{engine:?} {class} in {region}"
                    );
                }
            }
            for class in ["db.t3.medium", "db.t4g.large"] {
                assert!(
                    catalog
                        .database(DatabaseEngine::Aurora, region, class)
                        .is_some(),
                    "Aurora {class} in {region}"
                );
            }
            for storage in ["gp2", "gp3", "io1", "aurora"] {
                assert!(catalog.storage_hour(region, storage).is_some());
            }
        }
        assert_eq!(
            catalog.database(DatabaseEngine::Rds, "us-east-1", "db.t4g.micro"),
            Some(0.016)
        );
        assert_eq!(
            catalog.database(DatabaseEngine::Aurora, "us-east-1", "db.r6g.large"),
            Some(0.26)
        );
        assert_eq!(
            catalog.database(DatabaseEngine::Aurora, "us-east-1", "db.m6g.large"),
            None,
            "Aurora has no db.m6g"
        );
        let gp3 = catalog.storage_hour("us-east-1", "gp3").unwrap();
        assert!((gp3 * HOURS_PER_MONTH - 0.115).abs() < 1e-12);
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
