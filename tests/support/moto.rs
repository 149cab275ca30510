//! `moto_server` (PyPI `moto[server]`) on a free loopback port, killed on drop, and SDK
//! clients pointed at it.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_autoscaling::config::{Credentials, Region};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` (from `CURFEW_MOTO_SERVER`, as `./tests/run` installs it).
    pub fn start() -> Moto {
        let program = std::env::var("CURFEW_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}): run the suite with ./tests/run, which installs moto[server]")
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
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
