//! Several providers behind one: discovery concatenates, actions go to the provider that
//! discovered the target.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use async_trait::async_trait;

use super::{Discovery, Error, Provider, Result, Retries};
use crate::domain::Action;

/// Routes each target to the provider that reported it.
pub struct CompositeProvider {
    providers: Vec<Arc<dyn Provider>>,
    owners: RwLock<HashMap<String, usize>>,
}

impl CompositeProvider {
    /// Combines `providers`; a single one is better used directly.
    pub fn new(providers: Vec<Arc<dyn Provider>>) -> Self {
        CompositeProvider {
            providers,
            owners: RwLock::default(),
        }
    }

    fn owner(&self, operation: &str, target: &str) -> Result<&Arc<dyn Provider>> {
        let owners = self.owners.read();
        owners
            .get(target)
            .and_then(|index| self.providers.get(*index))
            .ok_or_else(|| Error::NotFound {
                operation: operation.to_string(),
                target: target.to_string(),
            })
    }
}

#[async_trait]
impl Provider for CompositeProvider {
    fn name(&self) -> &'static str {
        "composite"
    }

    /// The owner's answer for a target; discovery is retried by the caller only when every
    /// provider's is.
    fn retries(&self, target: Option<&str>) -> Retries {
        match target {
            Some(target) => self
                .owner("retries", target)
                .map_or(Retries::ByCaller, |owner| owner.retries(Some(target))),
            None if self
                .providers
                .iter()
                .any(|provider| provider.retries(None) == Retries::ByClient) =>
            {
                Retries::ByClient
            }
            None => Retries::ByCaller,
        }
    }

    async fn discover(&self) -> Result<Discovery> {
        let mut all = Discovery::default();
        let mut owners = HashMap::new();
        for (index, provider) in self.providers.iter().enumerate() {
            let found = provider.discover().await?;
            for target in found.targets {
                owners.insert(target.id.clone(), index);
                all.targets.push(target);
            }
            all.undiscovered.extend(found.undiscovered);
        }
        *self.owners.write() = owners;
        Ok(all)
    }

    async fn apply(&self, action: &Action) -> Result<()> {
        self.owner("apply", action.target())?.apply(action).await
    }

    fn preview(&self, action: &Action) -> Vec<super::PlannedWrite> {
        self.owner("preview", action.target())
            .map(|owner| owner.preview(action))
            .unwrap_or_default()
    }

    async fn ready(&self, target: &str) -> Result<bool> {
        self.owner("ready", target)?.ready(target).await
    }

    /// Asks each provider once for the targets it owns; targets no provider reported are not
    /// ready.
    async fn ready_many(&self, targets: &[String]) -> Vec<bool> {
        let mut by_owner: HashMap<usize, Vec<usize>> = HashMap::new();
        {
            let owners = self.owners.read();
            for (position, target) in targets.iter().enumerate() {
                if let Some(index) = owners.get(target) {
                    by_owner.entry(*index).or_default().push(position);
                }
            }
        }
        let mut ready = vec![false; targets.len()];
        for (index, positions) in by_owner {
            let Some(provider) = self.providers.get(index) else {
                continue;
            };
            let mine: Vec<String> = positions.iter().map(|&p| targets[p].clone()).collect();
            for (position, answer) in positions.into_iter().zip(provider.ready_many(&mine).await) {
                ready[position] = answer;
            }
        }
        ready
    }

    async fn settle(&self, timeout: std::time::Duration) {
        futures::future::join_all(self.providers.iter().map(|p| p.settle(timeout))).await;
    }

    async fn spot_prices(&self) -> Result<HashMap<(String, String), f64>> {
        let mut prices = HashMap::new();
        for provider in &self.providers {
            prices.extend(provider.spot_prices().await?);
        }
        Ok(prices)
    }
}
