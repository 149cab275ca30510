//! `moto_server` (PyPI `moto[server]`) on a free loopback port, killed on drop, and SDK
//! clients pointed at it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_autoscaling::config::{Credentials, Region};
use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, Utc};

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
