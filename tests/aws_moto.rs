//! The AWS provider against `moto_server` through the real SDK clients: Auto Scaling groups
//! down and up with exact restore (and a change during downtime), a crash between the tag
//! write and the resize, EC2 stop and start, an EKS node group, and two regions.

use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};

mod support;

use support::moto::Moto;

/// Saturday noon: down. Monday 10:00 in Berlin: up.
const SATURDAY: &str = "2026-12-05T12:00:00Z";
const MONDAY: &str = "2026-12-07T09:00:00Z";
const ORIGINAL_TAG: &str = "curfew:original-capacity";

const CONFIG: &str = r#"
timezone: Europe/Berlin
schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office
    targets:
      - aws_asg: { names: [web], region: eu-central-1 }
      - aws_asg: { names: [workers], region: us-east-1 }
      - aws_ec2: { tags: { env: staging }, region: eu-central-1 }
      - aws_eks_nodegroup: { cluster: staging, names: [general], region: eu-central-1 }
"#;

fn run_once(moto: &Moto, dir: &Path, at: &str) -> Output {
    let config = dir.join("curfew.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "-c"])
        .arg(&config)
        .args(["--once", "--at", at, "--state-dir"])
        .arg(dir.join("state"))
        .envs(moto.env())
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

async fn create_group(moto: &Moto, region: &str, name: &str, min: i32, max: i32, desired: i32) {
    let config = moto.sdk_config(region).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let template = format!("{name}-template");
    ec2.create_launch_template()
        .launch_template_name(&template)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::M6iLarge)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_autoscaling::Client::new(&config)
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(&template)
                .version("$Latest")
                .build(),
        )
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones(format!("{region}a"))
        .send()
        .await
        .unwrap();
}

async fn group_size(moto: &Moto, region: &str, name: &str) -> ((i32, i32, i32), Option<String>) {
    let config = moto.sdk_config(region).await;
    let described = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    let group = &described.auto_scaling_groups()[0];
    let tag = group
        .tags()
        .iter()
        .find(|t| t.key() == Some(ORIGINAL_TAG))
        .and_then(|t| t.value())
        .map(str::to_string);
    (
        (
            group.min_size().unwrap(),
            group.max_size().unwrap(),
            group.desired_capacity().unwrap(),
        ),
        tag,
    )
}

async fn create_instance(moto: &Moto) -> String {
    let config = moto.sdk_config("eu-central-1").await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Large)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("env")
                        .value("staging")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    run.instances()[0].instance_id().unwrap().to_string()
}

async fn instance_state(moto: &Moto, id: &str) -> (String, Option<String>) {
    let config = moto.sdk_config("eu-central-1").await;
    let described = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    let state = instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    let tag = instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(ORIGINAL_TAG))
        .and_then(|t| t.value())
        .map(str::to_string);
    (state, tag)
}

async fn create_nodegroup(moto: &Moto) {
    let config = moto.sdk_config("eu-central-1").await;
    let eks = aws_sdk_eks::Client::new(&config);
    let vpc = aws_sdk_eks::types::VpcConfigRequest::builder()
        .subnet_ids("subnet-12345678")
        .build();
    eks.create_cluster()
        .name("staging")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(vpc)
        .send()
        .await
        .unwrap();
    eks.create_nodegroup()
        .cluster_name("staging")
        .nodegroup_name("general")
        .node_role("arn:aws:iam::123456789012:role/nodes")
        .subnets("subnet-12345678")
        .instance_types("m6i.large")
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .min_size(2)
                .max_size(5)
                .desired_size(3)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn nodegroup_size(moto: &Moto) -> ((i32, i32, i32), Option<String>) {
    let config = moto.sdk_config("eu-central-1").await;
    let described = aws_sdk_eks::Client::new(&config)
        .describe_nodegroup()
        .cluster_name("staging")
        .nodegroup_name("general")
        .send()
        .await
        .unwrap();
    let group = described.nodegroup().unwrap();
    let scaling = group.scaling_config().unwrap();
    (
        (
            scaling.min_size().unwrap(),
            scaling.max_size().unwrap(),
            scaling.desired_size().unwrap(),
        ),
        group
            .labels()
            .and_then(|l| l.get("curfew.dev/original-capacity"))
            .cloned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_cycle_parks_and_restores_groups_instances_and_node_groups_exactly() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_group(&moto, "eu-central-1", "web", 1, 6, 3).await;
    create_group(&moto, "us-east-1", "workers", 2, 8, 4).await;
    let instance = create_instance(&moto).await;
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
    create_instance(&moto).await;
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
