//! A curfew service as a child process: started from a command line that prints its URL on
//! the first line of stdout (`run` and `demo` do), its log kept in a file, killed on drop.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `curfew` with `args`.
pub fn curfew<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_curfew"));
    command.args(args);
    command
}

/// Runs `curfew` with `args` and `env` to its end off the test's runtime, so that servers on
/// the runtime keep answering it; never as if inside a Kubernetes pod.
pub async fn run_to_end(args: Vec<String>, env: Vec<(String, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_curfew"))
            .args(&args)
            .envs(env)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

/// `curfew` with `args`, allowed at most `files` open files (`ulimit -n` in the shell that
/// starts it; no privileges needed).
pub fn curfew_with_open_files<I, S>(files: u32, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_curfew"))
        .args(args);
    command
}

/// The `host:port` a starting service announces on the first line of its stdout (as
/// `...http://ADDR/...`), or that line when it names none. Keeps draining stdout afterwards,
/// so the service never writes into a closed pipe.
pub fn announced_address(child: &mut Child) -> Result<String, String> {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("reads the URL line");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(str::to_string)
        .ok_or(first)
}

/// The first `count` lines a starting service writes to its stdout (the demo announces its
/// URLs there); keeps draining stdout afterwards.
pub fn announced_lines(child: &mut Child, count: usize) -> Vec<String> {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut lines = Vec::new();
    for _ in 0..count {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reads a line");
        lines.push(line);
    }
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    lines
}

/// The `host:port` of the first `http://` URL of the line containing `label`, if any.
pub fn address_after(lines: &[String], label: &str) -> Option<String> {
    lines
        .iter()
        .find(|line| line.contains(label))
        .and_then(|line| line.split("http://").nth(1))
        .and_then(|rest| rest.split('/').next())
        .map(str::to_string)
}

/// Writes `curfew.yaml` into `dir`: one environment, `staging`, always up, driving a small
/// simulated estate (namespace `app` with two Deployments), listening on a free loopback
/// port, with `server_lines` (each indented by two spaces) added to its `server` section.
pub fn simulated_config(dir: &Path, server_lines: &str) -> PathBuf {
    let config = format!(
        r#"
schedules:
  always-up: {{ uptime: always }}
environments:
  staging:
    schedule: always-up
    targets:
      - kubernetes: {{ namespaces: [app] }}
server:
  listen: 127.0.0.1:0
{server_lines}
simulation:
  node_groups:
    - {{ name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096, min: 1, max: 3, desired: 1, pods_per_node: 20 }}
  namespaces:
    - {{ name: app, node_group: nodes, deployments: 2 }}
"#
    );
    let path = dir.join("curfew.yaml");
    std::fs::write(&path, config).expect("writes the configuration");
    path
}

/// The arguments of `curfew run -c CONFIG --state-dir DIR/state`.
pub fn run_args(config: &Path, dir: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "run".into(),
        "-c".into(),
        config.into(),
        "--state-dir".into(),
        dir.join("state").into(),
    ]
}

/// A running service.
pub struct Process {
    /// The process.
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    log: PathBuf,
}

impl Process {
    /// Starts `command`, its stderr going to `log`, and waits until `/healthz` answers.
    pub fn start(mut command: Command, log: &Path) -> Process {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("creates the log file"))
            .spawn()
            .expect("curfew starts");
        let addr = announced_address(&mut child).unwrap_or_else(|first| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("no URL in {first:?}; log:\n{log}")
        });
        let process = Process {
            child,
            addr,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while process.get("/healthz").0 != 200 {
            assert!(Instant::now() < deadline, "the service never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        process
    }

    /// `GET path`: the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        super::http::get(&self.addr, path)
    }

    /// What the service logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a tokens file readable by its owner only: one entry per `(name, role, scope,
/// token)`, e.g. `("otto", "operator", "[staging]", "otto-secret")`.
pub fn tokens_file(dir: &Path, tokens: &[(&str, &str, &str, &str)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut yaml = String::from("tokens:\n");
    for (name, role, scope, token) in tokens {
        yaml += &format!(
            "  - {{ name: {name}, role: {role}, environments: {scope}, sha256: {} }}\n",
            curfew::api::auth::sha256_hex(token)
        );
    }
    let path = dir.join("tokens.yaml");
    std::fs::write(&path, yaml).expect("writes the tokens file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("restricts the tokens file");
    path
}
