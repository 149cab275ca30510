//! The service's AWS provider.

use std::sync::Arc;

use super::Result;
use crate::clock::Clock;
use crate::config::Config;
use crate::providers::Provider;
use crate::providers::aws::AwsProvider;

/// The AWS provider when the configuration has AWS targets (the standard credential chain).
pub(super) async fn provider(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Option<Arc<dyn Provider>>> {
    Ok(AwsProvider::from_config(config)
        .await
        .map(|aws| Arc::new(aws.with_clock(clock)) as Arc<dyn Provider>))
}
