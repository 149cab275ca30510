//! `moto_server` (PyPI `moto[server]`) on a free loopback port, killed on drop, and SDK
//! clients pointed at it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_autoscaling::config::{Credentials, Region};
use aws_sdk_autoscaling::types::{AutoScalingGroup, LaunchTemplateSpecification};
use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, Utc};

/// The tag that holds a parked object's original capacity.
pub const ORIGINAL_TAG: &str = "curfew:original-capacity";

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// See [`Moto::weekend`]; fixed when the server starts.
    weekend: (String, String),
}

impl Moto {
    /// Starts `moto_server` (from `CURFEW_MOTO_SERVER`, as `./tests/run` installs it).
    pub fn start() -> Moto {
        let program = std::env::var("CURFEW_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = super::port::free_port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}): run the suite with ./tests/run, which installs moto[server]")
            });
        // Importing moto takes seconds, more on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            weekend: Default::default(),
        };
        moto.weekend = weekend_after(moto.now());
        moto
    }

    /// The process id of `moto_server`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// moto's clock, to the second: the `Date` of one of its answers. Everything created in
    /// moto carries a time from this clock.
    pub fn now(&self) -> DateTime<Utc> {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connects to moto");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("sets a timeout");
        write!(stream, "GET / HTTP/1.0\r\nHost: {address}\r\n\r\n").expect("writes");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let date = answer
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("date").then(|| value.trim())
            })
            .unwrap_or_else(|| panic!("no Date in moto's answer: {answer}"));
        DateTime::parse_from_rfc2822(date)
            .unwrap_or_else(|e| panic!("moto's Date {date:?}: {e}"))
            .to_utc()
    }

    /// The first Saturday, 12:00 UTC, at least a day after moto's clock when it started (down
    /// in Berlin office hours), and the Monday after it, 09:00 UTC (10:00 in Berlin: up), as
    /// RFC 3339. What a test creates in moto is then days older than curfew's grace period at
    /// both, whenever the test runs.
    pub fn weekend(&self) -> (String, String) {
        self.weekend.clone()
    }

    /// Shared SDK configuration for `region` against this server, with dummy credentials.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// Starts one instance of `instance_type` in eu-central-1 tagged `env=staging`; its id.
    pub async fn run_instance(&self, instance_type: aws_sdk_ec2::types::InstanceType) -> String {
        let config = self.sdk_config("eu-central-1").await;
        let tag = aws_sdk_ec2::types::Tag::builder()
            .key("env")
            .value("staging")
            .build();
        let run = aws_sdk_ec2::Client::new(&config)
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(instance_type)
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                    .tags(tag)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        run.instances()[0].instance_id().unwrap().to_string()
    }

    /// Environment for a `curfew` child process so the standard chain reaches this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "eu-central-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl Moto {
    /// [`Moto::env`] with the endpoint replaced by `endpoint` (a proxy in front of moto).
    pub fn env_through(&self, endpoint: &str) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(key, value)| {
                let value = if key == "AWS_ENDPOINT_URL" {
                    endpoint.to_string()
                } else {
                    value
                };
                (key.to_string(), value)
            })
            .collect()
    }
}

/// See [`Moto::weekend`].
fn weekend_after(now: DateTime<Utc>) -> (String, String) {
    let earliest = now + TimeDelta::days(1);
    let day = earliest.date_naive();
    // Saturday is day 5 from Monday.
    let ahead = (12 - i64::from(day.weekday().num_days_from_monday())) % 7;
    let saturday = (day + TimeDelta::days(ahead))
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
        .and_utc();
    let saturday = if saturday < earliest {
        saturday + TimeDelta::days(7)
    } else {
        saturday
    };
    let monday = saturday + TimeDelta::days(2) - TimeDelta::hours(3);
    (saturday.to_rfc3339(), monday.to_rfc3339())
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration whose one environment, `staging`, sleeps outside Berlin office hours with
/// `targets` (YAML list items indented by six spaces).
pub fn office_config(targets: &str) -> String {
    format!(
        "timezone: Europe/Berlin\nschedules:\n  office: {{ uptime: [\"Mon-Fri 07:00-20:00\"] }}\nenvironments:\n  staging:\n    schedule: office\n    targets:\n{targets}"
    )
}

/// Creates group `name` in `region` with its own launch template and capacity min/max/desired.
pub async fn create_group(moto: &Moto, region: &str, name: &str, min: i32, max: i32, desired: i32) {
    let config = moto.sdk_config(region).await;
    let template = create_template(moto, region, name).await;
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

/// Creates launch template `{name}-template` in `region`; its name.
pub async fn create_template(moto: &Moto, region: &str, name: &str) -> String {
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
    template
}

/// Group `name` in `region` as moto describes it.
pub async fn describe_group(moto: &Moto, region: &str, name: &str) -> AutoScalingGroup {
    let config = moto.sdk_config(region).await;
    let described = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    described.auto_scaling_groups()[0].clone()
}

/// Group `name`'s (min, max, desired) and its original-capacity tag.
pub async fn group_size(
    moto: &Moto,
    region: &str,
    name: &str,
) -> ((i32, i32, i32), Option<String>) {
    let group = describe_group(moto, region, name).await;
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

/// Instance `id`'s state name and its original-capacity tag.
pub async fn instance_state(moto: &Moto, id: &str) -> (String, Option<String>) {
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

/// Creates EKS cluster `staging` in eu-central-1.
pub async fn create_cluster(moto: &Moto) {
    let config = moto.sdk_config("eu-central-1").await;
    let vpc = aws_sdk_eks::types::VpcConfigRequest::builder()
        .subnet_ids("subnet-12345678")
        .build();
    aws_sdk_eks::Client::new(&config)
        .create_cluster()
        .name("staging")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(vpc)
        .send()
        .await
        .unwrap();
}

/// Adds node group `name` to cluster `staging` with capacity min/max/desired.
pub async fn add_nodegroup(
    moto: &Moto,
    name: &str,
    capacity_type: Option<aws_sdk_eks::types::CapacityTypes>,
    (min, max, desired): (i32, i32, i32),
) {
    let config = moto.sdk_config("eu-central-1").await;
    aws_sdk_eks::Client::new(&config)
        .create_nodegroup()
        .cluster_name("staging")
        .nodegroup_name(name)
        .node_role("arn:aws:iam::123456789012:role/nodes")
        .subnets("subnet-12345678")
        .instance_types("m6i.large")
        .set_capacity_type(capacity_type)
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .min_size(min)
                .max_size(max)
                .desired_size(desired)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Node group `name`'s (min, max, desired) and its original-capacity label.
pub async fn nodegroup_size_of(moto: &Moto, name: &str) -> ((i32, i32, i32), Option<String>) {
    let config = moto.sdk_config("eu-central-1").await;
    let described = aws_sdk_eks::Client::new(&config)
        .describe_nodegroup()
        .cluster_name("staging")
        .nodegroup_name(name)
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
