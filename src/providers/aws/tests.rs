//! The provider against SDK clients whose responses come from `aws-smithy-mocks` rules:
//! throttling is retried, a permanent error names the call and the AWS error code, one scope's
//! failure leaves the others alone, a spot fallback is written, and spot prices are cached.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_sdk_autoscaling::config::{AsyncSleep, Credentials, SharedAsyncSleep, Sleep};
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
use aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupOutput;
use aws_sdk_autoscaling::types::{Activity, AutoScalingGroup, ScalingActivityStatusCode};
use aws_sdk_ec2::operation::describe_spot_price_history::DescribeSpotPriceHistoryOutput;
use aws_sdk_ec2::types::SpotPrice;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};

use super::*;
use crate::config::targets::{SpotDistribution, SpotFallback, SpotPolicy};

const THROTTLED: &str = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
const INVALID: &str = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Max bound, 0, must be greater than or equal to min bound, 1</Message></Error><RequestId>2</RequestId></ErrorResponse>"#;

/// Records the SDK's backoff sleeps and returns at once, so retries take no real time.
#[derive(Debug, Clone, Default)]
struct RecordedSleeps(Arc<Mutex<Vec<Duration>>>);

impl AsyncSleep for RecordedSleeps {
    fn sleep(&self, duration: Duration) -> Sleep {
        self.0.lock().unwrap().push(duration);
        Sleep::new(std::future::ready(()))
    }
}

/// Clients of `region` answered by `autoscaling` and `ec2` rules, with the provider's retry
/// mode; their sleeps go to `sleeps`.
async fn mk_clients_sleeping(
    region: &str,
    autoscaling: &[&Rule],
    ec2: &[&Rule],
    sleeps: RecordedSleeps,
) -> Clients {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("test", "test", None, None, "mocks"))
        .retry_config(retry_config())
        .sleep_impl(SharedAsyncSleep::new(sleeps))
        .http_client(create_mock_http_client())
        .load()
        .await;
    let interceptor = |rules: &[&Rule]| {
        rules.iter().fold(
            MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
            |interceptor, rule| interceptor.with_rule(rule),
        )
    };
    Clients {
        autoscaling: aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(&shared)
                .interceptor(interceptor(autoscaling))
                .retry_classifier(errors::ByStatus)
                .build(),
        ),
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&shared)
                .interceptor(interceptor(ec2))
                .retry_classifier(errors::ByStatus)
                .build(),
        ),
        eks: aws_sdk_eks::Client::new(&shared),
        rds: aws_sdk_rds::Client::new(&shared),
    }
}

async fn mk_clients(region: &str, autoscaling: &[&Rule], ec2: &[&Rule]) -> Clients {
    mk_clients_sleeping(region, autoscaling, ec2, RecordedSleeps::default()).await
}

fn mk_scope(region: &str, name: &str, spot: Option<SpotPolicy>) -> Scope {
    Scope {
        environment: "staging".into(),
        account: Account {
            region: region.into(),
            role: None,
        },
        target: TargetConfig::AwsAsg(AsgTarget {
            names: vec![name.into()],
            tags: Default::default(),
            region: region.into(),
            assume_role_arn: None,
            down: None,
            suspend_processes: vec![],
            spot,
        }),
    }
}

fn mk_group(name: &str, on_demand_percent: Option<i32>) -> AutoScalingGroup {
    let policy = on_demand_percent.map(spot::mk_policy);
    AutoScalingGroup::builder()
        .auto_scaling_group_name(name)
        .min_size(1)
        .max_size(6)
        .desired_capacity(3)
        .default_cooldown(300)
        .availability_zones("eu-central-1a")
        .health_check_type("EC2")
        .created_time(aws_sdk_autoscaling::primitives::DateTime::from_secs(0))
        .set_mixed_instances_policy(policy)
        .build()
}

fn describe_rule(name: &'static str, percent: Option<i32>) -> Rule {
    mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(move || {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(mk_group(name, percent))
            .build()
    })
}

fn provider(scopes: Vec<Scope>, clients: Vec<Clients>) -> AwsProvider {
    let clients = scopes
        .iter()
        .map(|s| s.account.clone())
        .zip(clients)
        .collect();
    AwsProvider::with_clients(scopes, clients)
}

#[tokio::test]
async fn a_throttled_call_is_retried_and_then_succeeds() {
    let describe = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(|| {
            DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(mk_group("web", None))
                .build()
        })
        .build();
    let sleeps = RecordedSleeps::default();
    let clients = mk_clients_sleeping("eu-central-1", &[&describe], &[], sleeps.clone()).await;
    let aws = provider(vec![mk_scope("eu-central-1", "web", None)], vec![clients]);

    let targets = aws
        .discover()
        .await
        .expect("discovered after retries")
        .targets;

    assert_eq!(describe.num_calls(), 3);
    let backoffs = sleeps.0.lock().unwrap().clone();
    assert!(
        backoffs.iter().filter(|d| !d.is_zero()).count() >= 2,
        "each retry waits first: {backoffs:?}"
    );
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].id, "auto_scaling_group/eu-central-1/web");
}

#[tokio::test]
async fn a_non_retryable_error_names_the_operation_and_the_aws_error_code() {
    let describe = describe_rule("web", None);
    let tag = mock!(aws_sdk_autoscaling::Client::create_or_update_tags).then_output(|| {
        aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput::builder()
            .build()
    });
    let update = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .sequence()
        .http_status(400, Some(INVALID.into()))
        .build();
    let clients = mk_clients("eu-central-1", &[&describe, &tag, &update], &[]).await;
    let aws = provider(vec![mk_scope("eu-central-1", "web", None)], vec![clients]);
    aws.discover().await.unwrap();

    let err = aws
        .apply(&Action::ScaleDown {
            target: "auto_scaling_group/eu-central-1/web".into(),
            original: Capacity::Group {
                min: 1,
                max: 6,
                desired: 3,
            },
            to: Capacity::Group {
                min: 0,
                max: 0,
                desired: 0,
            },
        })
        .await
        .unwrap_err();

    assert_eq!(update.num_calls(), 1, "a validation error is not retried");
    assert!(!err.is_retryable());
    assert_eq!(err.operation(), "UpdateAutoScalingGroup");
    assert!(
        matches!(&err, Error::Permanent { code, .. } if code == "ValidationError"),
        "{err:?}"
    );
    assert!(err.to_string().contains("ValidationError"), "{err}");
}

#[tokio::test]
async fn one_region_failing_does_not_stop_the_others() {
    let failing = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let working = describe_rule("workers", None);
    let update = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .then_output(|| UpdateAutoScalingGroupOutput::builder().build());
    let eu = mk_clients("eu-central-1", &[&failing], &[]).await;
    let us = mk_clients("us-east-1", &[&working, &update], &[]).await;
    let aws = provider(
        vec![
            mk_scope("eu-central-1", "web", None),
            mk_scope("us-east-1", "workers", None),
        ],
        vec![eu, us],
    );

    let discovery = aws
        .discover()
        .await
        .expect("the working region is discovered");
    let targets = discovery.targets;

    assert_eq!(failing.num_calls(), MAX_ATTEMPTS as usize);
    let [unseen] = discovery.undiscovered.as_slice() else {
        panic!("one undiscovered scope: {:?}", discovery.undiscovered);
    };
    assert_eq!(unseen.selection, "aws_asg web in eu-central-1");
    assert_eq!(unseen.error.operation(), "DescribeAutoScalingGroups");
    assert!(
        matches!(unseen.error, Error::Throttled { .. }),
        "{:?}",
        unseen.error
    );
    let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["auto_scaling_group/us-east-1/workers"]);
    aws.apply(&Action::ScaleUp {
        target: ids[0].into(),
        to: Capacity::Group {
            min: 1,
            max: 6,
            desired: 3,
        },
    })
    .await
    .expect("the working region is still scaled");
    assert_eq!(update.num_calls(), 1);
}

fn fallback_policy() -> SpotPolicy {
    SpotPolicy {
        uptime: Some(SpotDistribution {
            on_demand_base: Some(1),
            on_demand_percent_above_base: Some(0),
            spot_allocation_strategy: None,
        }),
        downtime: None,
        fallback: Some(SpotFallback {
            on_demand_percent_above_base: 100,
            cooldown: chrono::Duration::minutes(30),
        }),
    }
}

fn activities_rule(failed_minutes_ago: i64) -> Rule {
    mock!(aws_sdk_autoscaling::Client::describe_scaling_activities).then_output(move || {
        let at = Utc::now().timestamp() - failed_minutes_ago * 60;
        DescribeScalingActivitiesOutput::builder()
            .activities(
                Activity::builder()
                    .activity_id("a-1")
                    .auto_scaling_group_name("web")
                    .cause("capacity difference")
                    .start_time(aws_sdk_autoscaling::primitives::DateTime::from_secs(at))
                    .status_code(ScalingActivityStatusCode::Failed)
                    .status_message(
                        "There is no Spot capacity available that matches your request.",
                    )
                    .build(),
            )
            .build()
    })
}

#[tokio::test]
async fn spot_capacity_failures_raise_the_on_demand_share_in_one_write() {
    let describe = describe_rule("web", Some(0));
    let activities = activities_rule(5);
    let update = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .match_requests(|req| {
            let policy = req.mixed_instances_policy();
            let distribution = policy.and_then(|p| p.instances_distribution());
            let template = policy
                .and_then(|p| p.launch_template())
                .and_then(|t| t.launch_template_specification());
            distribution.and_then(|d| d.on_demand_percentage_above_base_capacity()) == Some(100)
                && distribution.and_then(|d| d.on_demand_base_capacity()) == Some(1)
                && template.is_some()
                && req.desired_capacity() == Some(3)
        })
        .then_output(|| UpdateAutoScalingGroupOutput::builder().build());
    let clients = mk_clients("eu-central-1", &[&describe, &activities, &update], &[]).await;
    let aws = provider(
        vec![mk_scope("eu-central-1", "web", Some(fallback_policy()))],
        vec![clients],
    );

    // The group is up at full capacity: the planner sees an original equal to the capacity,
    // so its ScaleUp keeps the capacity and writes the raised share.
    let targets = aws.discover().await.unwrap().targets;
    assert_eq!(targets[0].original, Some(targets[0].capacity));
    aws.apply(&Action::ScaleUp {
        target: targets[0].id.clone(),
        to: targets[0].capacity,
    })
    .await
    .unwrap();
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn after_the_cooldown_a_group_already_back_on_its_policy_needs_no_write() {
    let describe = describe_rule("web", Some(0));
    let activities = activities_rule(45);
    let clients = mk_clients("eu-central-1", &[&describe, &activities], &[]).await;
    let aws = provider(
        vec![mk_scope("eu-central-1", "web", Some(fallback_policy()))],
        vec![clients],
    );

    let targets = aws.discover().await.unwrap().targets;

    assert_eq!(activities.num_calls(), 1);
    assert_eq!(targets[0].original, None, "nothing to write");
}

#[tokio::test]
async fn spot_prices_are_fetched_once_and_then_served_from_the_cache() {
    let describe = describe_rule("web", Some(0));
    let history = mock!(aws_sdk_ec2::Client::describe_spot_price_history)
        .match_requests(|req| {
            req.instance_types()
                .iter()
                .any(|t| t.as_str() == "m6i.large")
        })
        .then_output(|| {
            let price = |zone: &str, value: &str| {
                SpotPrice::builder()
                    .availability_zone(zone)
                    .instance_type(aws_sdk_ec2::types::InstanceType::M6iLarge)
                    .spot_price(value)
                    .timestamp(aws_sdk_ec2::primitives::DateTime::from_secs(1_000))
                    .build()
            };
            DescribeSpotPriceHistoryOutput::builder()
                .spot_price_history(price("eu-central-1a", "0.04"))
                .spot_price_history(price("eu-central-1b", "0.06"))
                .build()
        });
    let clients = mk_clients("eu-central-1", &[&describe], &[&history]).await;
    let aws = provider(vec![mk_scope("eu-central-1", "web", None)], vec![clients]);

    let first = aws.spot_prices().await.unwrap();
    let second = aws.spot_prices().await.unwrap();

    let key = ("eu-central-1".to_string(), "m6i.large".to_string());
    assert!((first[&key] - 0.05).abs() < 1e-9, "{first:?}");
    assert_eq!(first, second);
    assert_eq!(history.num_calls(), 1);
}

#[tokio::test]
async fn readiness_of_250_groups_takes_one_describe_per_hundred_groups() {
    let names: Vec<String> = (0..250).map(|i| format!("group-{i:03}")).collect();
    // Even groups are parked at 0 (ready: no instance owed), odd ones still owe 3 instances.
    let groups: Vec<AutoScalingGroup> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut group = mk_group(name, None);
            if i % 2 == 0 {
                group.desired_capacity = Some(0);
            }
            group
        })
        .collect();
    let describe =
        mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(move || {
            DescribeAutoScalingGroupsOutput::builder()
                .set_auto_scaling_groups(Some(groups.clone()))
                .build()
        });
    let clients = mk_clients("eu-central-1", &[&describe], &[]).await;
    let mut scope = mk_scope("eu-central-1", "unused", None);
    if let TargetConfig::AwsAsg(asg) = &mut scope.target {
        asg.names = names.clone();
    }
    let aws = provider(vec![scope], vec![clients]);
    let mut ids: Vec<String> = aws
        .discover()
        .await
        .unwrap()
        .targets
        .into_iter()
        .map(|t| t.id)
        .collect();
    ids.push("auto_scaling_group/eu-central-1/never-discovered".into());
    let discovery_calls = describe.num_calls();

    let ready = aws.ready_many(&ids).await;

    assert_eq!(
        describe.num_calls() - discovery_calls,
        3,
        "250 names, 100 per call"
    );
    assert_eq!(ready.len(), 251);
    let expected: Vec<bool> = (0..250).map(|i| i % 2 == 0).chain([false]).collect();
    assert_eq!(ready, expected);
}

#[tokio::test]
async fn a_429_or_a_5xx_without_a_readable_body_is_still_throttling_or_a_server_error() {
    for (status, body) in [(429, "<html>slow down</html>"), (503, ""), (500, "{oops")] {
        let failing = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
            .sequence()
            .http_status(status, Some(body.into()))
            .repeatedly()
            .build();
        let clients = mk_clients("eu-central-1", &[&failing], &[]).await;
        let aws = provider(vec![mk_scope("eu-central-1", "web", None)], vec![clients]);

        let discovery = aws.discover().await.expect("a discovery with what it saw");

        assert_eq!(
            failing.num_calls(),
            MAX_ATTEMPTS as usize,
            "HTTP {status} is retried"
        );
        let [unseen] = discovery.undiscovered.as_slice() else {
            panic!("HTTP {status}: {:?}", discovery.undiscovered);
        };
        let error = &unseen.error;
        assert!(error.is_retryable(), "HTTP {status}: {error:?}");
        match status {
            429 => assert!(matches!(error, Error::Throttled { .. }), "{error:?}"),
            _ => assert!(
                matches!(error, Error::Server { code, .. } if code == &format!("HTTP {status}")),
                "{error:?}"
            ),
        }
    }
}

/// Clients of eu-central-1 whose RDS calls are answered by `rds` rules.
async fn mk_rds_clients(rds: &[&Rule]) -> Clients {
    let mut clients = mk_clients("eu-central-1", &[], &[]).await;
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "mocks"))
        .retry_config(retry_config())
        .http_client(create_mock_http_client())
        .load()
        .await;
    let interceptor = rds.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
        |interceptor, rule| interceptor.with_rule(rule),
    );
    clients.rds = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&shared)
            .interceptor(interceptor)
            .build(),
    );
    clients
}

/// The staging instance `orders`, running, stopped by curfew at `stopped_at`.
fn mk_running_stopped_instance(stopped_at: &str) -> aws_sdk_rds::types::DbInstance {
    let tag = |key: &str, value: &str| {
        aws_sdk_rds::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
    };
    aws_sdk_rds::types::DbInstance::builder()
        .db_instance_identifier("orders")
        .db_instance_arn("arn:aws:rds:eu-central-1:123456789012:db:orders")
        .db_instance_status("available")
        .db_instance_class("db.t4g.micro")
        .engine("postgres")
        .allocated_storage(20)
        .tag_list(tag("env", "staging"))
        .tag_list(tag(tags::ORIGINAL_TAG, "running"))
        .tag_list(tag(tags::STOPPED_AT_TAG, stopped_at))
        .build()
}

/// RDS's events since 2026-12-05T12:00:00Z for `orders`: `events`.
fn events_rule(events: Vec<aws_sdk_rds::types::Event>) -> Rule {
    use aws_sdk_rds::operation::describe_events::DescribeEventsOutput;
    mock!(aws_sdk_rds::Client::describe_events)
        .match_requests(|request| {
            request.source_identifier() == Some("orders")
                && request.start_time().map(|t| t.secs()) == Some(1_796_472_000)
        })
        .then_output(move || {
            DescribeEventsOutput::builder()
                .set_events(Some(events.clone()))
                .build()
        })
}

/// Discovers the `orders` instance, stopped by curfew on 2026-12-05 and running again two
/// days later, with RDS's events for it answered by `described`.
async fn discover_restarted(described: &Rule) -> Target {
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    let instances = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(mk_running_stopped_instance("2026-12-05T12:00:00Z"))
            .build()
    });
    let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .then_output(|| DescribeDbClustersOutput::builder().build());
    let clients = mk_rds_clients(&[&instances, &clusters, described]).await;
    let scope = Scope {
        environment: "staging".into(),
        account: Account {
            region: "eu-central-1".into(),
            role: None,
        },
        target: TargetConfig::AwsRds(crate::config::targets::RdsTarget {
            instances: vec![],
            clusters: vec![],
            tags: [("env".to_string(), "staging".to_string())].into(),
            region: "eu-central-1".into(),
            assume_role_arn: None,
        }),
    };
    let two_days_later = DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let aws = provider(vec![scope], vec![clients])
        .with_clock(Arc::new(crate::clock::ManualClock::new(two_days_later)));
    let mut discovery = aws.discover().await.expect("discovered");
    assert!(
        discovery.undiscovered.is_empty(),
        "{:?}",
        discovery.undiscovered
    );
    discovery.targets.remove(0)
}

#[tokio::test]
async fn the_event_of_aws_starting_a_database_is_read_for_one_running_since_curfew_stopped_it() {
    let event = |message: &str| {
        aws_sdk_rds::types::Event::builder()
            .source_identifier("orders")
            .message(message)
            .build()
    };
    let described = events_rule(vec![
        event("DB instance started"),
        event(
            "DB instance is being started due to it exceeding the maximum allowed time being stopped.",
        ),
    ]);
    let target = discover_restarted(&described).await;
    assert_eq!(described.num_calls(), 1);
    assert_eq!(target.capacity, Capacity::Running(true));
    let stopped = target.rules.stopped.expect("the stop is recorded");
    assert!(stopped.restarted_by_cloud);
    assert_eq!(stopped.at.to_rfc3339(), "2026-12-05T12:00:00+00:00");

    let target = discover_restarted(&events_rule(vec![event("DB instance started")])).await;
    assert!(
        !target.rules.stopped.unwrap().restarted_by_cloud,
        "a start RDS does not attribute to itself"
    );
}

#[tokio::test]
async fn events_that_cannot_be_read_leave_the_stop_time_to_decide() {
    const DENIED: &str = r#"<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform rds:DescribeEvents</Message></Error><RequestId>3</RequestId></ErrorResponse>"#;
    let denied = mock!(aws_sdk_rds::Client::describe_events)
        .sequence()
        .http_status(403, Some(DENIED.into()))
        .build();
    let target = discover_restarted(&denied).await;
    assert_eq!(denied.num_calls(), 1);
    let stopped = target.rules.stopped.expect("the stop is recorded");
    assert!(!stopped.restarted_by_cloud);
}
