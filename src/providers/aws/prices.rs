//! Spot prices from DescribeSpotPriceHistory for the instance types in use, cached per region
//! for an hour so that the cost model can ask as often as it likes.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::InstanceType;
use parking_lot::Mutex;

use super::errors::classify;
use crate::providers::Result;

/// How long fetched prices are used before they are fetched again.
pub const PRICE_TTL: Duration = Duration::from_secs(3600);

/// The product whose prices are read.
const PRODUCT: &str = "Linux/UNIX";

/// The current spot price of each of `types`, averaged over the region's availability zones.
pub async fn current(client: &Client, types: &BTreeSet<String>) -> Result<HashMap<String, f64>> {
    if types.is_empty() {
        return Ok(HashMap::new());
    }
    let now = aws_sdk_ec2::primitives::DateTime::from_secs(chrono::Utc::now().timestamp());
    let mut pages = client
        .describe_spot_price_history()
        .set_instance_types(Some(
            types
                .iter()
                .map(|t| InstanceType::from(t.as_str()))
                .collect(),
        ))
        .product_descriptions(PRODUCT)
        .start_time(now)
        .into_paginator()
        .send();
    // The newest price per (type, zone), then the mean per type.
    let mut newest: HashMap<(String, String), (i64, f64)> = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("DescribeSpotPriceHistory", "*", e))?;
        for price in page.spot_price_history() {
            let (Some(kind), Some(value)) = (
                price.instance_type(),
                price.spot_price().and_then(|p| p.parse::<f64>().ok()),
            ) else {
                continue;
            };
            let zone = price.availability_zone().unwrap_or_default().to_string();
            let at = price.timestamp().map_or(0, |t| t.secs());
            let entry = newest
                .entry((kind.as_str().to_string(), zone))
                .or_insert((at, value));
            if at > entry.0 {
                *entry = (at, value);
            }
        }
    }
    let mut sums: HashMap<String, (f64, u32)> = HashMap::new();
    for ((kind, _), (_, value)) in newest {
        let sum = sums.entry(kind).or_default();
        sum.0 += value;
        sum.1 += 1;
    }
    Ok(sums
        .into_iter()
        .map(|(kind, (total, count))| (kind, total / f64::from(count)))
        .collect())
}

/// Prices fetched per region, with when they were fetched and for which types.
#[derive(Debug, Default)]
pub struct PriceCache {
    entries: Mutex<HashMap<String, Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    fetched: Instant,
    types: BTreeSet<String>,
    prices: HashMap<String, f64>,
}

// === impl PriceCache ===

impl PriceCache {
    /// The cached prices of `region` when they are younger than [`PRICE_TTL`] and cover every
    /// type in `types`.
    pub fn fresh(&self, region: &str, types: &BTreeSet<String>) -> Option<HashMap<String, f64>> {
        let entries = self.entries.lock();
        let cached = entries.get(region)?;
        (cached.fetched.elapsed() < PRICE_TTL && cached.types.is_superset(types))
            .then(|| cached.prices.clone())
    }

    /// Remembers the prices of `types` fetched for `region` just now.
    pub fn store(&self, region: &str, types: BTreeSet<String>, prices: HashMap<String, f64>) {
        self.entries.lock().insert(
            region.to_string(),
            Cached {
                fetched: Instant::now(),
                types,
                prices,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_prices_serve_only_the_types_they_were_fetched_for() {
        let cache = PriceCache::default();
        let types: BTreeSet<String> = ["m6i.large".to_string()].into();
        assert_eq!(cache.fresh("eu-central-1", &types), None);
        cache.store(
            "eu-central-1",
            types.clone(),
            [("m6i.large".to_string(), 0.04)].into(),
        );
        assert_eq!(
            cache.fresh("eu-central-1", &types).unwrap()["m6i.large"],
            0.04
        );
        let more: BTreeSet<String> = ["m6i.large".to_string(), "c6i.large".to_string()].into();
        assert_eq!(cache.fresh("eu-central-1", &more), None);
        assert_eq!(cache.fresh("us-east-1", &types), None);
    }
}
