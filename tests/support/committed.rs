//! Generated artifacts are committed: a test compares the committed copy with what the code
//! generates now, and `CURFEW_BLESS=1` rewrites it.

use std::path::Path;

/// Fails unless the file at `relative` (to the repository root) equals `generated`; with
/// `CURFEW_BLESS` set, writes `generated` there instead. `subject` names the test module that
/// regenerates it, for the failure message.
pub fn check(relative: &str, generated: &str, subject: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("CURFEW_BLESS").is_some() {
        std::fs::write(&path, generated).expect("writes the artifact");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} is out of date with the code; regenerate it with \
         `CURFEW_BLESS=1 cargo test --test integration {subject}::` and commit the result"
    );
}
