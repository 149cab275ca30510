//! The YAML configuration: loading, validation with file:line:col diagnostics, and the
//! validated [`Config`] that the rest of curfew reads.
//!
//! Loading never half-succeeds: either every value is valid and a [`Config`] comes back, or
//! [`Error::Invalid`] lists every problem found.

use std::path::{Path, PathBuf};

use chrono::Duration;
use indexmap::IndexMap;

use crate::calendar::Schedule;
use crate::calendar::holidays::HolidaySet;
use crate::cost::CostModel;
use crate::providers::sim::SimulationConfig;

mod diagnostic;
pub mod duration;
pub mod raw;
pub mod targets;
mod validate;

pub use self::diagnostic::{Diagnostic, closest};
pub use self::raw::{KubernetesState, NotificationsConfig, RateLimitConfig, ServerConfig};
pub use self::targets::TargetConfig;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not valid; every problem is listed.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

impl Error {
    /// The problems found, empty for a read error.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Invalid(diagnostics) => diagnostics,
            Error::Read { .. } => &[],
        }
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Result type of configuration loading.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Default zone.
    pub timezone: crate::calendar::Zone,
    /// Holiday calendars by name.
    pub calendars: IndexMap<String, HolidaySet>,
    /// Compiled schedules by name.
    pub schedules: IndexMap<String, Schedule>,
    /// Environments by name, in file order.
    pub environments: IndexMap<String, Environment>,
    /// HTTP server settings (tokens file resolved against the config's folder).
    pub server: ServerConfig,
    /// Where state is kept.
    pub state: StateConfig,
    /// The simulated estate, for `curfew demo` and rehearsals without a cloud.
    pub simulation: Option<SimulationConfig>,
    /// The cost model: the price catalog and how pods and spot are priced.
    pub cost: CostModel,
}

/// An environment: a schedule applied to targets.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// Name of its schedule (always present in [`Config::schedules`]).
    pub schedule: String,
    /// Longest override an operator may create; `None` means no limit.
    pub max_override: Option<Duration>,
    /// What it scales.
    pub targets: Vec<TargetConfig>,
}

/// Where curfew keeps overrides, the ledger and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// Files in a directory.
    Dir(PathBuf),
    /// Custom resources in a Kubernetes namespace.
    Kubernetes(KubernetesState),
}

// === impl Config ===

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text, path)
    }

    /// Validates configuration `text` as if read from `path` (relative paths resolve there).
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config> {
        validate::validate(text, path).map_err(Error::Invalid)
    }

    /// The compiled schedule of an environment.
    pub fn schedule_of(&self, environment: &Environment) -> &Schedule {
        // Validation guarantees the reference resolves.
        &self.schedules[environment.schedule.as_str()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "schedules:\n  office: { uptime: [\"Mon-Fri 07:00-20:00\"] }\n";

    fn load(server: &str) -> Result<Config> {
        Config::from_yaml(&format!("{BASE}server:\n{server}"), Path::new("c.yaml"))
    }

    #[test]
    fn server_limits_and_notifications_have_defaults_and_are_read() {
        let config = load("  listen: 127.0.0.1:9000\n").unwrap();
        assert_eq!(config.server.body_limit_bytes, 16 * 1024);
        assert_eq!(config.server.rate_limit, RateLimitConfig::default());
        assert_eq!(config.server.notifications, None);
        let config = load(
            "  rate_limit: { per_second: 5, burst: 7 }\n  notifications: { webhook_url: \"http://hooks.local/x\" }\n",
        )
        .unwrap();
        assert_eq!(config.server.rate_limit.burst, 7);
        assert_eq!(
            config.server.notifications.unwrap().minutes_before,
            15,
            "minutes_before defaults to 15"
        );
    }

    #[test]
    fn bad_server_limits_and_webhooks_are_errors_with_their_location() {
        let err = load(
            "  body_limit_bytes: 0\n  request_timeout: soon\n  rate_limit: { per_second: 0 }\n  notifications: { webhook_url: \"https://hooks.slack.com/x\", minutes_before: 0 }\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "body_limit_bytes",
            "request_timeout",
            "rate_limit",
            "http://",
            "minutes_before",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        assert!(text.starts_with("c.yaml:4:"), "{text}");
        let err = load("  rate_limit: { per_minute: 5 }\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `per_minute`"),
            "{err}"
        );
    }
}
