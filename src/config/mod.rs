//! The YAML configuration: loading, validation with file:line:col diagnostics, and the
//! validated [`Config`] that the rest of curfew reads.
//!
//! Loading never half-succeeds: either every value is valid and a [`Config`] comes back, or
//! [`Error::Invalid`] lists every problem found.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use indexmap::IndexMap;

use crate::calendar::Schedule;
use crate::calendar::holidays::HolidaySet;
use crate::cost::CostModel;
use crate::domain::simulation::SimulationConfig;
use crate::planner::{self, EnvironmentPlan};

pub mod auth;
mod diagnostic;
pub mod duration;
pub mod lint;
pub mod raw;
pub mod sections;
pub mod selector;
pub mod targets;
mod validate;
pub mod wake;

pub use self::auth::{AuthConfig, Grant, ProxyAuth};
pub use self::diagnostic::{Diagnostic, closest, render_all};
pub use self::raw::{
    FailedAuthConfig, KubernetesState, NotificationsConfig, OverrideLimitsConfig, RateLimitConfig,
    WebhookFormat,
};
pub use self::sections::{KubernetesConfig, ReconcilerConfig, ServerConfig, WriteRate};
pub use self::targets::TargetConfig;
pub(crate) use self::validate::syntax_message;

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
    #[error("{}", diagnostic::render_all(.0))]
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
    /// The reconcile loop.
    pub reconciler: ReconcilerConfig,
    /// The Kubernetes client's pacing.
    pub kubernetes: KubernetesConfig,
    /// Where state is kept.
    pub state: StateConfig,
    /// The simulated estate, for `curfew demo` and rehearsals without a cloud.
    pub simulation: Option<SimulationConfig>,
    /// The cost model: the price catalog and how pods and spot are priced.
    pub cost: CostModel,
    /// What the lints found harmless to run but most likely a mistake (`check` prints it).
    pub warnings: Vec<lint::Warning>,
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
    /// Wake on request and sleep when idle, when configured.
    pub wake: Option<wake::WakeConfig>,
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

    /// Plans every environment over `[from, to)`, in file order.
    pub fn plan(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<EnvironmentPlan> {
        self.environments
            .values()
            .map(|environment| self.plan_environment(environment, from, to))
            .collect()
    }

    /// Plans one environment over `[from, to)`.
    pub fn plan_environment(
        &self,
        environment: &Environment,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> EnvironmentPlan {
        let targets = environment
            .targets
            .iter()
            .map(|target| target.describe())
            .collect();
        planner::plan_environment(
            &environment.name,
            &environment.schedule,
            self.schedule_of(environment),
            targets,
            from,
            to,
        )
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
        let limits = &config.server;
        let seconds = std::time::Duration::from_secs;
        assert_eq!(
            (
                limits.header_read_timeout,
                limits.idle_timeout,
                limits.request_timeout
            ),
            (seconds(10), seconds(60), seconds(10))
        );
        assert_eq!(limits.max_connections, 128);
        assert_eq!(
            (
                limits.overrides.max_active_per_environment,
                limits.overrides.max_active_per_token
            ),
            (20, 10)
        );
        assert_eq!(
            (limits.failed_auth.per_minute, limits.failed_auth.burst),
            (10, 10)
        );
        let tuned = load(
            "  header_read_timeout: 2s\n  idle_timeout: 1m30s\n  max_connections: 16\n  overrides: { max_active_per_token: 3 }\n  failed_auth: { burst: 4 }\n",
        )
        .unwrap()
        .server;
        assert_eq!(tuned.header_read_timeout, seconds(2));
        assert_eq!(tuned.idle_timeout, seconds(90));
        assert_eq!(tuned.max_connections, 16);
        assert_eq!(tuned.overrides.max_active_per_token, 3);
        assert_eq!(tuned.overrides.max_active_per_environment, 20);
        assert_eq!(
            (tuned.failed_auth.per_minute, tuned.failed_auth.burst),
            (10, 4)
        );
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
            "  body_limit_bytes: 0\n  request_timeout: soon\n  idle_timeout: 5\n  max_connections: 0\n  overrides: { max_active_per_environment: 0 }\n  failed_auth: { per_minute: 0 }\n  rate_limit: { per_second: 0 }\n  notifications: { webhook_url: \"ftp://hooks.example/x\", minutes_before: 0 }\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "body_limit_bytes",
            "request_timeout",
            "idle_timeout",
            "max_connections",
            "max_active_per_environment",
            "failed_auth",
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

    #[test]
    fn a_dashboards_url_must_be_a_web_address_and_its_error_names_its_place() {
        let config = load("  dashboards_url: https://grafana.example.com/d/curfew\n").unwrap();
        assert_eq!(
            config.server.dashboards_url.as_deref(),
            Some("https://grafana.example.com/d/curfew")
        );
        assert_eq!(
            load("  listen: 127.0.0.1:9000\n")
                .unwrap()
                .server
                .dashboards_url,
            None
        );
        for bad in [
            "javascript:alert(1)",
            "grafana.example.com",
            "https://",
            "http://a b",
        ] {
            let err = load(&format!(
                "  listen: 127.0.0.1:9000\n  dashboards_url: \"{bad}\"\n"
            ))
            .unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("c.yaml:5:19: "), "{bad}: {text}");
            assert!(
                text.contains("server.dashboards_url") && text.contains("https://"),
                "{text}"
            );
        }
    }

    #[test]
    fn reconciler_and_kubernetes_sections_have_defaults_and_are_read() {
        let config = Config::from_yaml(BASE, Path::new("c.yaml")).unwrap();
        assert_eq!(config.reconciler, ReconcilerConfig::default());
        assert_eq!(config.reconciler.tick, Duration::seconds(30));
        assert_eq!(config.reconciler.readiness_timeout, Duration::minutes(10));
        assert_eq!(config.reconciler.readiness_poll, Duration::seconds(5));
        assert_eq!(config.reconciler.concurrency, 16);
        assert!(!config.reconciler.enforce);
        assert_eq!(config.kubernetes, KubernetesConfig::default());
        assert_eq!(
            config.kubernetes.rate, None,
            "no client-side cap by default"
        );
        assert_eq!(config.kubernetes.concurrency, 16);
        assert!(config.kubernetes.events);
        assert_eq!(
            (config.kubernetes.event_qps, config.kubernetes.event_queue),
            (20.0, 1000)
        );
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            config.server.request_timeout,
            std::time::Duration::from_secs(10)
        );

        let text = format!(
            "{BASE}reconciler: {{ tick: 1m, readiness_timeout: 5m, readiness_poll: 2s, database_readiness_timeout: 45m, concurrency: 4, enforce: true }}\nkubernetes: {{ qps: 5.5, burst: 10, concurrency: 4, events: false, event_qps: 2, event_queue: 50 }}\nserver: {{ listen: \"0.0.0.0:9000\", request_timeout: 1m }}\n"
        );
        let config = Config::from_yaml(&text, Path::new("c.yaml")).unwrap();
        assert_eq!(
            config.reconciler,
            ReconcilerConfig {
                tick: Duration::minutes(1),
                readiness_timeout: Duration::minutes(5),
                readiness_poll: Duration::seconds(2),
                database_readiness_timeout: Duration::minutes(45),
                concurrency: 4,
                enforce: true,
            }
        );
        assert_eq!(
            config.kubernetes,
            KubernetesConfig {
                rate: Some(WriteRate {
                    qps: 5.5,
                    burst: 10
                }),
                concurrency: 4,
                events: false,
                event_qps: 2.0,
                event_queue: 50,
            }
        );

        assert_eq!(config.server.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(
            config.server.request_timeout,
            std::time::Duration::from_secs(60)
        );
        let text = format!("{BASE}kubernetes: {{ qps: 5.5 }}\n");
        let config = Config::from_yaml(&text, Path::new("c.yaml")).unwrap();
        assert_eq!(
            config.kubernetes.rate,
            Some(WriteRate {
                qps: 5.5,
                burst: 11
            }),
            "the burst defaults to two seconds' worth"
        );
    }

    #[test]
    fn bad_reconciler_and_kubernetes_settings_are_errors_with_their_location_and_a_hint() {
        let text = format!(
            "{BASE}reconciler:\n  tick: soon\n  readiness_poll: 20m\n  concurrency: 0\n  database_readiness_timeout: 10m\nkubernetes:\n  qps: 0\n  burst: 0\n  concurrency: 0\n  event_qps: -1\n  event_queue: 0\n  event: true\n"
        );
        let err = Config::from_yaml(&text, Path::new("c.yaml")).unwrap_err();
        assert!(err.to_string().contains("unknown field `event`"), "{err}");
        let text = text.replace("  event: true\n", "");
        let err = Config::from_yaml(&text, Path::new("c.yaml")).unwrap_err();
        let found: Vec<(u64, &str)> = err
            .diagnostics()
            .iter()
            .map(|d| (d.line, d.message.as_str()))
            .collect();
        assert_eq!(found.len(), 9, "{err}");
        for (line, needle) in [
            (4, "reconciler.tick: bad duration 'soon'"),
            (
                5,
                "reconciler.readiness_poll is longer than reconciler.readiness_timeout",
            ),
            (6, "reconciler.concurrency 0 must be between 1 and 1024"),
            (
                7,
                "reconciler.database_readiness_timeout is shorter than reconciler.readiness_poll",
            ),
            (9, "kubernetes.qps 0 must be a positive number"),
            (10, "kubernetes.burst must be greater than zero"),
            (11, "kubernetes.concurrency 0 must be between 1 and 256"),
            (12, "kubernetes.event_qps -1 must be a positive number"),
            (13, "kubernetes.event_queue 0 must be between 1 and 100000"),
        ] {
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(needle)),
                "line {line}: {needle} missing in {err}"
            );
        }
        assert!(err.diagnostics().iter().all(|d| d.hint.is_some()), "{err}");
    }

    #[test]
    fn an_unknown_key_or_target_kind_gets_a_hint() {
        let hint = |text: &str| {
            let err = Config::from_yaml(text, Path::new("c.yaml")).unwrap_err();
            err.diagnostics()[0].hint.clone().unwrap_or_default()
        };
        assert!(hint("timezon: UTC\n").contains("check the spelling"));
        let target = format!(
            "{BASE}environments:\n  staging:\n    schedule: office\n    targets:\n      - aws_lambda: {{ names: [db] }}\n"
        );
        assert!(
            hint(&target).contains("targets are kubernetes"),
            "{}",
            hint(&target)
        );
    }

    #[test]
    fn a_curfew_config_accepts_a_simulation_section() {
        let yaml = "
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: [\"Mon-Fri 07:00-20:00\"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: [shop] }
simulation:
  node_join_seconds: 30
  node_groups:
    - { name: general, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.1,
        min: 0, max: 3, desired: 1, pods_per_node: 8 }
";
        let raw: raw::RawConfig = serde_saphyr::from_str(yaml).expect("parses");
        let simulation = raw.simulation.expect("section present").value;
        assert_eq!(simulation.node_join_seconds, 30);
        assert_eq!(simulation.node_groups.len(), 1);
        let path = std::path::Path::new("curfew.yaml");
        assert!(Config::from_yaml(yaml, path).is_ok());
    }
}
