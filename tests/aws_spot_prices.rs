//! Spot prices reach the cost model's seam (`Provider::spot_prices`) from moto's
//! DescribeSpotPriceHistory through the real SDK client. moto's prices are dummies: this
//! checks the plumbing (types in use, region, parsing), not the numbers.
//!
//! The test points the standard AWS environment at moto before any thread of its own runs,
//! which needs a process of its own: nextest runs each test in one (`./tests/run` uses it).

use std::path::Path;

use curfew::config::Config;
use curfew::providers::Provider;
use curfew::providers::aws::AwsProvider;

use crate::support::moto::{Moto, office_config};

const TARGETS: &str = "      - aws_ec2: { tags: { env: staging }, region: eu-central-1 }\n";

#[test]
fn spot_prices_of_the_instance_types_in_use_come_from_the_price_history() {
    let moto = Moto::start();
    for (key, value) in moto.env() {
        // SAFETY: nextest runs this test alone in its process, and it sets the variables
        // before it starts the runtime, so no other thread reads the environment meanwhile.
        unsafe { std::env::set_var(key, value) };
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        moto.run_instance(aws_sdk_ec2::types::InstanceType::M6iLarge)
            .await;
        let config = Config::from_yaml(&office_config(TARGETS), Path::new("curfew.yaml")).unwrap();
        let aws = AwsProvider::from_config(&config).await.unwrap();

        let prices = aws.spot_prices().await.expect("spot prices");

        let key = ("eu-central-1".to_string(), "m6i.large".to_string());
        let price = prices.get(&key).copied();
        assert!(
            price.is_some_and(|p| p > 0.0),
            "no positive price for {key:?} in {prices:?}"
        );
        assert!(
            prices.keys().all(|(region, _)| region == "eu-central-1"),
            "{prices:?}"
        );
        // Served from the cache the second time: the same answer.
        assert_eq!(aws.spot_prices().await.unwrap(), prices);
    });
}
