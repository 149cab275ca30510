//! The tokens file as the binary sees it: a digest listed twice, a scope naming an
//! environment the configuration lacks, and a file other users can read each stop start-up
//! with the file, line and column, a hint and exit 2, like configuration errors.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::process::{curfew, run_args, simulated_config};
use curfew::api::auth::sha256_hex;

/// Runs `command` to its end; a service that starts instead of refusing is killed after 20 s.
fn run_to_exit(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// A tokens file with `yaml`, readable by its owner only unless `mode` says otherwise.
fn tokens_file(dir: &Path, yaml: &str, mode: u32) -> PathBuf {
    let path = dir.join("tokens.yaml");
    std::fs::write(&path, yaml).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// `curfew demo --tokens FILE`.
fn demo(dir: &Path, tokens: &Path) -> Output {
    let mut command = curfew(["demo", "--listen", "127.0.0.1:0", "--state-dir"]);
    command.arg(dir.join("state")).arg("--tokens").arg(tokens);
    run_to_exit(command)
}

/// Writes a tokens file with `yaml` (readable by its owner only), starts the demo with it and
/// checks that it refuses with exit 2; returns the file and what the demo said.
fn demo_refuses(dir: &Path, yaml: &str) -> (PathBuf, String) {
    let tokens = tokens_file(dir, yaml, 0o600);
    let output = demo(dir, &tokens);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    (tokens, text)
}

/// A tokens file's text with one operator, otto, scoped to `environment`.
fn one_operator(environment: &str) -> String {
    format!(
        "tokens:\n  - {{ name: otto, role: operator, environments: [{environment}], sha256: {} }}\n",
        sha256_hex("otto-secret-0123456789")
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_viewer_secret_listed_again_under_an_admin_entry_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = sha256_hex("viewer-secret-0123456789");
    let yaml = format!(
        "tokens:\n\
         - {{ name: vera, role: viewer, environments: [staging-eu], sha256: {viewer} }}\n\
         - {{ name: boss, role: admin, environments: ['*'], sha256: {viewer} }}\n"
    );
    let (tokens, text) = demo_refuses(dir.path(), &yaml);
    assert!(
        text.starts_with(&format!(
            "{}:3:59: error: token 'boss' has the same sha256 as token 'vera' on line 2",
            tokens.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("hint: give every token its own secret"),
        "{text}"
    );
    assert!(text.contains("tokens.yaml: 1 error"), "{text}");
    assert!(
        !dir.path().join("state").join("overrides.json").exists(),
        "nothing started"
    );
}

#[test]
fn a_scope_naming_an_environment_the_configuration_lacks_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (tokens, text) = demo_refuses(dir.path(), &one_operator("stagin-eu"));
    assert!(
        text.starts_with(&format!(
            "{}:2:50: error: token 'otto' names environment 'stagin-eu', which the configuration does not define\n  hint: did you mean 'staging-eu'?",
            tokens.display()
        )),
        "{text}"
    );
}

#[test]
fn a_tokens_file_other_users_can_read_stops_run_check_and_demo() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = one_operator("staging");
    let tokens = tokens_file(dir.path(), &yaml, 0o644);
    let config = simulated_config(dir.path(), &format!("  tokens_file: {}", tokens.display()));
    let expected = format!(
        "{}: error: the tokens file is readable by every user (mode 0644)\n  hint: chmod 600 {}",
        tokens.display(),
        tokens.display()
    );
    let check = || {
        run_to_exit(curfew([
            "check".as_ref(),
            "-c".as_ref(),
            config.as_os_str(),
        ]))
    };
    let run = run_to_exit(curfew(run_args(&config, dir.path())));
    let demo = demo(dir.path(), &tokens);
    for (what, output) in [("check", check()), ("run", run)] {
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{what}: {text}");
        assert!(text.starts_with(&expected), "{what}: {text}");
    }
    // The demo's configuration has no `staging`: that is reported as well.
    let text = stderr(&demo);
    assert_eq!(demo.status.code(), Some(2), "demo: {text}");
    assert!(text.starts_with(&expected), "demo: {text}");
    assert!(text.contains("tokens.yaml: 2 errors"), "demo: {text}");

    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let checked = check();
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
}
