//! `curfew demo` as a child process on a free loopback port, killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running demo.
pub struct Demo {
    /// The process.
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Demo {
    /// Starts the demo at `speed` with its state in `state`, and reads the URL it prints.
    pub fn start(state: &Path, speed: &str) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_curfew"))
            .args([
                "demo",
                "--speed",
                speed,
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
            ])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curfew demo starts");
        let addr = super::process::announced_address(&mut child)
            .unwrap_or_else(|first| panic!("no URL in {first:?}"));
        Demo { child, addr }
    }

    /// `GET path` against the demo.
    pub fn get(&self, path: &str) -> (u16, String) {
        super::http::get(&self.addr, path)
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
