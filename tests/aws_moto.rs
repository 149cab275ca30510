//! The AWS provider against `moto_server` through the real SDK clients: Auto Scaling groups
//! down and up with exact restore (and a change during downtime), a crash between the tag
//! write and the resize, EC2 stop and start, an EKS node group, two regions, spot mixes
//! switched per window, a paired spot/on-demand EKS policy, processes suspended while parked,
//! and groups that change together sharing their tag calls.

use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides, LaunchTemplateSpecification,
    MixedInstancesPolicy, Tag,
};

use crate::support::moto::{
    Moto, ORIGINAL_TAG, add_nodegroup, create_cluster, create_group, create_template,
    describe_group, group_size, instance_state, nodegroup_size_of, office_config,
};
use crate::support::proxy::Proxy;

/// When a run decides: a Saturday noon (down) or the Monday morning after it (10:00 in Berlin:
/// up), days after moto's clock (see [`Moto::weekend`]).
#[derive(Debug, Clone, Copy)]
enum Day {
    Saturday,
    Monday,
}

const SATURDAY: Day = Day::Saturday;
const MONDAY: Day = Day::Monday;

const TARGETS: &str = r#"
      - aws_asg: { names: [web], region: eu-central-1 }
      - aws_asg: { names: [workers], region: us-east-1 }
      - aws_ec2: { tags: { env: staging }, region: eu-central-1 }
      - aws_eks_nodegroup: { cluster: staging, names: [general], region: eu-central-1 }
"#;

fn run_once(moto: &Moto, dir: &Path, day: Day) -> Output {
    run_config(moto, dir, TARGETS, day)
}

/// `run --once --at DAY` with the office-hours configuration of these `targets`.
fn run_config(moto: &Moto, dir: &Path, targets: &str, day: Day) -> Output {
    let env = moto.env().into_iter().map(|(k, v)| (k.to_string(), v));
    run_config_with(moto, dir, targets, day, env.collect())
}

/// [`run_config`] with the environment `env` (moto's own, or a proxy's in front of it).
fn run_config_with(
    moto: &Moto,
    dir: &Path,
    targets: &str,
    day: Day,
    env: Vec<(String, String)>,
) -> Output {
    let config = dir.join("curfew.yaml");
    std::fs::write(&config, office_config(targets)).unwrap();
    let (saturday, monday) = moto.weekend();
    let at = match day {
        Day::Saturday => saturday,
        Day::Monday => monday,
    };
    Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "-c"])
        .arg(&config)
        .args(["--once", "--at", &at, "--state-dir"])
        .arg(dir.join("state"))
        .envs(env)
        .output()
        .unwrap()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A group of 1/6/3 whose MixedInstancesPolicy buys one on-demand base instance and half of
/// the rest on demand.
async fn create_mixed_group(moto: &Moto, name: &str) {
    let config = moto.sdk_config("eu-central-1").await;
    let template = create_template(moto, "eu-central-1", name).await;
    let policy = MixedInstancesPolicy::builder()
        .launch_template(
            LaunchTemplate::builder()
                .launch_template_specification(
                    LaunchTemplateSpecification::builder()
                        .launch_template_name(&template)
                        .version("$Latest")
                        .build(),
                )
                .overrides(
                    LaunchTemplateOverrides::builder()
                        .instance_type("m6i.large")
                        .build(),
                )
                .build(),
        )
        .instances_distribution(
            InstancesDistribution::builder()
                .on_demand_base_capacity(1)
                .on_demand_percentage_above_base_capacity(50)
                .spot_allocation_strategy("lowest-price")
                .build(),
        )
        .build();
    aws_sdk_autoscaling::Client::new(&config)
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .mixed_instances_policy(policy)
        .min_size(1)
        .max_size(6)
        .desired_capacity(3)
        .availability_zones("eu-central-1a")
        .send()
        .await
        .unwrap();
}

/// The group's (on-demand base, on-demand % above base, spot allocation strategy).
async fn group_mix(moto: &Moto, name: &str) -> (Option<i32>, Option<i32>, Option<String>) {
    let distribution = describe_group(moto, "eu-central-1", name)
        .await
        .mixed_instances_policy()
        .and_then(|p| p.instances_distribution())
        .cloned()
        .unwrap_or_else(|| InstancesDistribution::builder().build());
    (
        distribution.on_demand_base_capacity(),
        distribution.on_demand_percentage_above_base_capacity(),
        distribution.spot_allocation_strategy().map(str::to_string),
    )
}

async fn create_nodegroup(moto: &Moto) {
    create_cluster(moto).await;
    add_nodegroup(moto, "general", None, (2, 5, 3)).await;
}

async fn nodegroup_size(moto: &Moto) -> ((i32, i32, i32), Option<String>) {
    nodegroup_size_of(moto, "general").await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_cycle_parks_and_restores_groups_instances_and_node_groups_exactly() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_group(&moto, "eu-central-1", "web", 1, 6, 3).await;
    create_group(&moto, "us-east-1", "workers", 2, 8, 4).await;
    let instance = moto
        .run_instance(aws_sdk_ec2::types::InstanceType::T3Large)
        .await;
    create_nodegroup(&moto).await;

    // Saturday: everything parked, originals in tags.
    assert_ok(&run_once(&moto, dir.path(), SATURDAY));
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((0, 0, 0), Some("min=1,max=6,desired=3".into()))
    );
    assert_eq!(
        group_size(&moto, "us-east-1", "workers").await,
        ((0, 0, 0), Some("min=2,max=8,desired=4".into()))
    );
    let (state, tag) = instance_state(&moto, &instance).await;
    assert!(state == "stopped" || state == "stopping", "{state}");
    assert_eq!(tag.as_deref(), Some("running"));
    assert_eq!(
        nodegroup_size(&moto).await,
        ((0, 5, 0), Some("min2_max5_desired3".into()))
    );

    // Terraform raises the web group's maximum while it sleeps.
    let config = moto.sdk_config("eu-central-1").await;
    aws_sdk_autoscaling::Client::new(&config)
        .update_auto_scaling_group()
        .auto_scaling_group_name("web")
        .max_size(10)
        .send()
        .await
        .unwrap();

    // Monday: originals restored exactly (the raised maximum is kept), tags gone.
    assert_ok(&run_once(&moto, dir.path(), MONDAY));
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((1, 10, 3), None)
    );
    assert_eq!(
        group_size(&moto, "us-east-1", "workers").await,
        ((2, 8, 4), None)
    );
    let (state, tag) = instance_state(&moto, &instance).await;
    assert!(state == "running" || state == "pending", "{state}");
    assert_eq!(tag, None);
    assert_eq!(nodegroup_size(&moto).await, ((2, 5, 3), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_tag_write_and_the_resize_is_finished_and_restored_exactly() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_group(&moto, "eu-central-1", "web", 1, 6, 3).await;
    create_group(&moto, "us-east-1", "workers", 2, 8, 4).await;
    moto.run_instance(aws_sdk_ec2::types::InstanceType::T3Large)
        .await;
    create_nodegroup(&moto).await;
    // What a kill -9 right after the tag write leaves behind: the tag, full capacity.
    let config = moto.sdk_config("eu-central-1").await;
    aws_sdk_autoscaling::Client::new(&config)
        .create_or_update_tags()
        .tags(
            Tag::builder()
                .resource_id("web")
                .resource_type("auto-scaling-group")
                .key(ORIGINAL_TAG)
                .value("min=1,max=6,desired=3")
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .unwrap();

    assert_ok(&run_once(&moto, dir.path(), SATURDAY));
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((0, 0, 0), Some("min=1,max=6,desired=3".into()))
    );
    assert_ok(&run_once(&moto, dir.path(), MONDAY));
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((1, 6, 3), None)
    );
}

const SPOT_TARGETS: &str = r#"
      - aws_asg:
          names: [mixed]
          region: eu-central-1
          down: { min: 1, max: 1, desired: 1 }
          spot:
            uptime: { on_demand_base: 1, on_demand_percent_above_base: 0, spot_allocation_strategy: price-capacity-optimized }
            downtime: { on_demand_base: 0, on_demand_percent_above_base: 0, spot_allocation_strategy: lowest-price }
            fallback: { on_demand_percent_above_base: 100, cooldown: 30m }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spot_mix_switches_per_window_and_a_converged_group_is_left_alone() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_mixed_group(&moto, "mixed").await;
    let uptime = (
        Some(1),
        Some(0),
        Some("price-capacity-optimized".to_string()),
    );
    let downtime = (Some(0), Some(0), Some("lowest-price".to_string()));

    // Monday, up at full size but on the wrong mix: one write sets the mix, keeps the size.
    let output = run_config(&moto, dir.path(), SPOT_TARGETS, MONDAY);
    assert_ok(&output);
    assert!(stdout(&output).contains("1 actions"), "{}", stdout(&output));
    assert_eq!(group_mix(&moto, "mixed").await, uptime);
    assert_eq!(
        group_size(&moto, "eu-central-1", "mixed").await,
        ((1, 6, 3), None)
    );
    // Converged: nothing to do.
    let output = run_config(&moto, dir.path(), SPOT_TARGETS, MONDAY);
    assert_ok(&output);
    assert!(stdout(&output).contains("0 actions"), "{}", stdout(&output));

    // Saturday: parked at the down size on the downtime mix, in the same update.
    assert_ok(&run_config(&moto, dir.path(), SPOT_TARGETS, SATURDAY));
    assert_eq!(group_mix(&moto, "mixed").await, downtime);
    assert_eq!(
        group_size(&moto, "eu-central-1", "mixed").await,
        ((1, 1, 1), Some("min=1,max=6,desired=3".into()))
    );

    // Monday: the original size and the uptime mix are back.
    assert_ok(&run_config(&moto, dir.path(), SPOT_TARGETS, MONDAY));
    assert_eq!(group_mix(&moto, "mixed").await, uptime);
    assert_eq!(
        group_size(&moto, "eu-central-1", "mixed").await,
        ((1, 6, 3), None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_policy_on_a_group_without_a_mixed_policy_is_reported_and_the_group_still_sleeps() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_group(&moto, "eu-central-1", "mixed", 1, 6, 3).await;

    let output = run_config(&moto, dir.path(), SPOT_TARGETS, SATURDAY);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("NoMixedInstancesPolicy"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        group_size(&moto, "eu-central-1", "mixed").await,
        ((1, 1, 1), Some("min=1,max=6,desired=3".into()))
    );
}

const PAIR_TARGETS: &str = r#"
      - aws_eks_nodegroup:
          cluster: staging
          region: eu-central-1
          pair: { spot: general-spot, on_demand: general-on-demand, on_demand_base: 1 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_policy_wakes_the_spot_group_and_holds_the_on_demand_group_at_its_base() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_cluster(&moto).await;
    let spot = Some(aws_sdk_eks::types::CapacityTypes::Spot);
    let on_demand = Some(aws_sdk_eks::types::CapacityTypes::OnDemand);
    add_nodegroup(&moto, "general-spot", spot, (2, 6, 4)).await;
    add_nodegroup(&moto, "general-on-demand", on_demand, (2, 4, 3)).await;

    // Monday: the on-demand group goes to its base; the spot group keeps its size.
    assert_ok(&run_config(&moto, dir.path(), PAIR_TARGETS, MONDAY));
    assert_eq!(
        nodegroup_size_of(&moto, "general-on-demand").await,
        ((1, 4, 1), None)
    );
    assert_eq!(
        nodegroup_size_of(&moto, "general-spot").await,
        ((2, 6, 4), None)
    );

    // Saturday: both parked, each remembering its size.
    assert_ok(&run_config(&moto, dir.path(), PAIR_TARGETS, SATURDAY));
    assert_eq!(
        nodegroup_size_of(&moto, "general-on-demand").await,
        ((0, 4, 0), Some("min1_max4_desired1".into()))
    );
    assert_eq!(
        nodegroup_size_of(&moto, "general-spot").await,
        ((0, 6, 0), Some("min2_max6_desired4".into()))
    );

    // Monday: the spot group wakes to its original, the on-demand group to its base.
    let output = run_config(&moto, dir.path(), PAIR_TARGETS, MONDAY);
    assert_ok(&output);
    assert_eq!(
        nodegroup_size_of(&moto, "general-spot").await,
        ((2, 6, 4), None)
    );
    assert_eq!(
        nodegroup_size_of(&moto, "general-on-demand").await,
        ((1, 4, 1), None)
    );
    let output = run_config(&moto, dir.path(), PAIR_TARGETS, MONDAY);
    assert!(stdout(&output).contains("0 actions"), "{}", stdout(&output));
}

const SUSPENDING_TARGETS: &str = r#"
      - aws_asg: { names: [web], region: eu-central-1, suspend_processes: [AZRebalance, ScheduledActions] }
"#;

/// The processes a group has suspended, sorted.
async fn suspended_processes(moto: &Moto, name: &str) -> Vec<String> {
    let mut names: Vec<String> = describe_group(moto, "eu-central-1", name)
        .await
        .suspended_processes()
        .iter()
        .filter_map(|p| p.process_name().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_suspended_while_a_group_is_parked_are_resumed_when_it_wakes() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_group(&moto, "eu-central-1", "web", 1, 6, 3).await;

    assert_ok(&run_config(&moto, dir.path(), SUSPENDING_TARGETS, SATURDAY));
    assert_eq!(
        suspended_processes(&moto, "web").await,
        ["AZRebalance", "ScheduledActions"]
    );
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((0, 0, 0), Some("min=1,max=6,desired=3".into()))
    );

    assert_ok(&run_config(&moto, dir.path(), SUSPENDING_TARGETS, MONDAY));
    assert!(suspended_processes(&moto, "web").await.is_empty());
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((1, 6, 3), None)
    );
}

/// Twelve groups selected by name, each with its own maximum.
const MANY_GROUPS: usize = 12;

fn many_group_names() -> Vec<String> {
    (0..MANY_GROUPS).map(|i| format!("g-{i:02}")).collect()
}

/// `run --once --at DAY` over the twelve groups, through `proxy`.
fn run_many_through(moto: &Moto, proxy: &Proxy, dir: &Path, day: Day) -> Output {
    let names = many_group_names().join(", ");
    let targets = format!("      - aws_asg: {{ names: [{names}], region: eu-central-1 }}\n");
    run_config_with(moto, dir, &targets, day, moto.env_through(&proxy.url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_that_change_together_share_their_tag_calls_and_each_keeps_its_own_original() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in many_group_names().iter().enumerate() {
        create_group(&moto, "eu-central-1", name, 1, 2 + i as i32, 1).await;
    }
    let proxy = Proxy::start(&moto.endpoint).await;

    assert_ok(&run_many_through(&moto, &proxy, dir.path(), SATURDAY));
    let night = proxy.tally(true).calls;
    for (i, name) in many_group_names().iter().enumerate() {
        assert_eq!(
            group_size(&moto, "eu-central-1", name).await,
            ((0, 0, 0), Some(format!("min=1,max={},desired=1", 2 + i))),
            "{name}"
        );
    }
    assert_eq!(night.get("UpdateAutoScalingGroup"), Some(&MANY_GROUPS));
    let tag_calls = night.get("CreateOrUpdateTags").copied().unwrap_or(0);
    assert!(
        (1..MANY_GROUPS).contains(&tag_calls),
        "the tag writes of groups resized together share calls: {night:?}"
    );

    assert_ok(&run_many_through(&moto, &proxy, dir.path(), MONDAY));
    let morning = proxy.tally(true).calls;
    for (i, name) in many_group_names().iter().enumerate() {
        assert_eq!(
            group_size(&moto, "eu-central-1", name).await,
            ((1, 2 + i as i32, 1), None),
            "{name}"
        );
    }
    assert_eq!(morning.get("UpdateAutoScalingGroup"), Some(&MANY_GROUPS));
    let untag_calls = morning.get("DeleteTags").copied().unwrap_or(0);
    assert!(
        (1..MANY_GROUPS).contains(&untag_calls),
        "the tag removals of groups restored together share calls: {morning:?}"
    );
}
