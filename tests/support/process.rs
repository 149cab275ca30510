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
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("reads the URL line");
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("no URL in {first:?}; log:\n{log}")
            })
            .to_string();
        // Keep draining stdout so the service never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
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
