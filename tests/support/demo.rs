//! `curfew demo` as a child process on a free loopback port, killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the demo's simulated clock starts: Tuesday 06:30 in Berlin, half an hour before
/// staging-eu wakes, so a few simulated hours see both directions of scaling.
pub const START: &str = "2026-12-01T05:30:00Z";

/// A running demo.
pub struct Demo {
    /// The process.
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// `host:port` of its wake gateway.
    pub gateway: String,
}

impl Demo {
    /// Starts the demo at [`START`] running at `speed` with its state in `state`, and reads
    /// the URL it prints.
    pub fn start(state: &Path, speed: &str) -> Demo {
        Demo::launch(state, speed, Some(START))
    }

    /// Starts the demo with its clock at `start`, or (`None`) where the demo on `state`
    /// stopped, running at `speed`.
    pub fn launch(state: &Path, speed: &str, start: Option<&str>) -> Demo {
        let mut command = Command::new(env!("CARGO_BIN_EXE_curfew"));
        command.args(["demo", "--speed", speed, "--listen", "127.0.0.1:0"]);
        if let Some(start) = start {
            command.args(["--start", start]);
        }
        let mut child = command
            .arg("--state-dir")
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curfew demo starts");
        // The URL, the environments' URL, the wake gateway and the simulated start.
        let lines = super::process::announced_lines(&mut child, 4);
        let address = |label: &str| {
            super::process::address_after(&lines, label)
                .unwrap_or_else(|| panic!("no {label} URL in {lines:?}"))
        };
        let (addr, gateway) = (address("curfew demo"), address("wake gateway"));
        Demo {
            child,
            addr,
            gateway,
        }
    }

    /// `GET path` against the demo.
    pub fn get(&self, path: &str) -> (u16, String) {
        super::http::get(&self.addr, path)
    }

    /// The demo's simulated time, as its environment list reports it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let (_, body) = self.get("/api/v1/environments");
        let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let at = list["at"]
            .as_str()
            .unwrap_or_else(|| panic!("no time in {list}"));
        chrono::DateTime::parse_from_rfc3339(at)
            .expect("RFC 3339")
            .to_utc()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.expect("kill runs").success());
        let status = self.child.wait().expect("waits");
        assert!(status.success(), "exit status {status}");
    }

    /// Waits until `/readyz` answers 200 (the first pass is done).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.get("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "demo never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
