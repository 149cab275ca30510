//! The configuration file as written: serde types with source locations, before validation.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::auth::RawAuth;
use super::targets::RawTargetConfig;

/// A string value with the place it was written.
pub type Located = Spanned<String>;

/// Ordered map of named sections, kept in file order.
pub type Named<T> = indexmap::IndexMap<String, Spanned<T>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Default zone for schedules without their own.
    pub timezone: Option<Located>,
    /// Holiday calendars by name.
    #[serde(default)]
    pub calendars: Named<RawCalendar>,
    /// Schedules by name.
    #[serde(default)]
    pub schedules: Named<RawSchedule>,
    /// Environments by name.
    #[serde(default)]
    pub environments: Named<RawEnvironment>,
    /// The HTTP server.
    pub server: Option<Spanned<RawServer>>,
    /// The reconcile loop.
    pub reconciler: Option<Spanned<RawReconciler>>,
    /// The Kubernetes client's pacing.
    pub kubernetes: Option<Spanned<RawKubernetes>>,
    /// Where state is kept.
    pub state: Option<RawState>,
    /// Prices and the cost model.
    pub cost: Option<Spanned<RawCost>>,
    /// The simulated estate, for `curfew demo` and tests.
    pub simulation: Option<Spanned<crate::domain::simulation::SimulationConfig>>,
}

/// A holiday calendar: an .ics file and/or explicit dates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalendar {
    /// Path to an .ics file, relative to the config file.
    pub ics: Option<Located>,
    /// Explicit dates, `YYYY-MM-DD`.
    #[serde(default)]
    pub dates: Vec<Located>,
}

/// A schedule: windows or cron transitions, with holidays and exceptions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// Spec strings during which targets are up.
    pub uptime: Option<Spanned<SpecList>>,
    /// Spec strings during which targets are down.
    pub downtime: Option<Spanned<SpecList>>,
    /// Cron expression for waking up.
    pub up_at: Option<Located>,
    /// Cron expression for going down.
    pub down_at: Option<Located>,
    /// The schedule's zone.
    pub timezone: Option<Located>,
    /// Names of calendars whose days are holidays.
    #[serde(default)]
    pub holidays: Vec<Located>,
    /// State on holidays: `down` (default) or `up`.
    pub holidays_state: Option<Located>,
    /// Absolute ranges forcing a state.
    #[serde(default)]
    pub exceptions: Vec<Spanned<RawException>>,
}

/// An exception: `from`/`to` RFC 3339 instants and the state to force.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawException {
    /// First instant of the exception.
    pub from: Located,
    /// First instant after it.
    pub to: Located,
    /// The state forced in between.
    pub state: Located,
    /// Why, for people reading the plan.
    pub reason: Option<String>,
}

/// An environment: a schedule applied to a set of targets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    /// Name of the schedule that decides it.
    pub schedule: Located,
    /// Policy for overrides.
    pub overrides: Option<RawOverridePolicy>,
    /// What to scale.
    #[serde(default)]
    pub targets: Vec<Spanned<RawTargetConfig>>,
    /// Wake on request and sleep when idle.
    pub wake: Option<Spanned<super::wake::RawWake>>,
}

/// Override limits for an environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverridePolicy {
    /// Longest override an operator may create, e.g. `12h`.
    pub max_duration: Option<Located>,
}

/// The HTTP server's settings as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub listen: Option<Located>,
    /// Address of the wake gateway (default `127.0.0.1:8081`), served when an environment
    /// has a `wake:` section.
    pub wake_listen: Option<Located>,
    /// File of token hashes, relative to the config file.
    pub tokens_file: Option<Located>,
    /// Largest request body accepted, in bytes (default 16 KiB).
    pub body_limit_bytes: Option<usize>,
    /// Longest time a request may take, e.g. `10s` (the default).
    pub request_timeout: Option<Located>,
    /// Requests each token may make.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Webhook notifications; none when absent.
    pub notifications: Option<NotificationsConfig>,
    /// Longest time a client may take to send a request's headers, e.g. `10s` (the default).
    pub header_read_timeout: Option<Located>,
    /// How long a keep-alive connection may sit idle between requests, e.g. `60s` (the
    /// default).
    pub idle_timeout: Option<Located>,
    /// Most connections served at once (default 128).
    pub max_connections: Option<Spanned<usize>>,
    /// Where the Grafana dashboards are, linked from the status page (`http://` or
    /// `https://`); no link when absent.
    pub dashboards_url: Option<Located>,
    /// How many overrides may be active at once.
    #[serde(default)]
    pub overrides: OverrideLimitsConfig,
    /// Failed authentication attempts allowed per client address.
    #[serde(default)]
    pub failed_auth: FailedAuthConfig,
    /// Who may call besides token holders: people named by an authenticating proxy.
    #[serde(default)]
    pub auth: RawAuth,
    /// The service's address as people reach it (the status page), for links in messages.
    pub public_url: Option<Located>,
}

/// The reconcile loop's settings as written; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReconciler {
    /// Longest time between passes, e.g. `30s`.
    pub tick: Option<Located>,
    /// How long a tier may take to become ready before the next goes ahead anyway.
    pub readiness_timeout: Option<Located>,
    /// How often readiness is polled.
    pub readiness_poll: Option<Located>,
    /// How long the databases tier may take to become available before the next goes ahead.
    pub database_readiness_timeout: Option<Located>,
    /// Actions applied at once within a tier.
    pub concurrency: Option<Spanned<usize>>,
    /// Scale manually scaled-up targets down again instead of leaving them up.
    pub enforce: Option<bool>,
}

/// The Kubernetes client's pacing as written; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    /// A client-side cap on writes per second once the burst is spent.
    pub qps: Option<Spanned<f64>>,
    /// Writes allowed at once after a quiet spell (with `qps`).
    pub burst: Option<Spanned<u32>>,
    /// Scale writes in flight at once.
    pub concurrency: Option<Spanned<usize>>,
    /// Whether actions leave Events on the objects they change.
    pub events: Option<bool>,
    /// Events written per second.
    pub event_qps: Option<Spanned<f64>>,
    /// Events waiting to be written at most.
    pub event_queue: Option<Spanned<usize>>,
}

/// How many overrides may be active at once; a key left out keeps its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverrideLimitsConfig {
    /// Active overrides per environment.
    pub max_active_per_environment: usize,
    /// Active overrides created by one token.
    pub max_active_per_token: usize,
}

impl Default for OverrideLimitsConfig {
    fn default() -> Self {
        OverrideLimitsConfig {
            max_active_per_environment: 20,
            max_active_per_token: 10,
        }
    }
}

/// A token bucket of failed authentication attempts per client address; a key left out keeps
/// its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailedAuthConfig {
    /// Sustained failed attempts per minute.
    pub per_minute: u32,
    /// Failed attempts allowed at once after a quiet spell.
    pub burst: u32,
}

impl Default for FailedAuthConfig {
    fn default() -> Self {
        FailedAuthConfig {
            per_minute: 10,
            burst: 10,
        }
    }
}

/// A token bucket per API token: `per_second` requests on average, bursts of `burst`; a key
/// left out keeps its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests per second per token.
    pub per_second: u32,
    /// Requests a token may make at once after being idle.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 10,
            burst: 20,
        }
    }
}

/// Webhook notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Where to POST each message, `http://` or `https://`.
    pub webhook_url: String,
    /// Warn this many minutes before an environment goes down.
    #[serde(default = "default_minutes_before")]
    pub minutes_before: u32,
    /// The body posted: Slack's `{"text": ...}` or a JSON object with every field.
    #[serde(default)]
    pub format: WebhookFormat,
}

/// The body of a webhook message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"text": ...}`, as Slack, Mattermost, Rocket.Chat and Teams workflows accept.
    #[default]
    Slack,
    /// `{"event", "environment", "text", "link", ...}`, for a program to read.
    Json,
}

fn default_minutes_before() -> u32 {
    15
}

/// Where state lives: a directory or a Kubernetes namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// A directory, relative to the working directory.
    pub dir: Option<Located>,
    /// A Kubernetes namespace holding the state as custom resources.
    pub kubernetes: Option<Spanned<KubernetesState>>,
}

/// The cost model's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    /// A catalog file extending or overriding the embedded prices, relative to the config.
    pub catalog_file: Option<Located>,
    /// Region for targets that name none (default us-east-1).
    pub default_region: Option<Located>,
    /// Spot discount off on-demand when no spot price is known (default 0.65).
    pub spot_discount: Option<f64>,
    /// Dollars per requested vCPU-hour for pods (default: derived from node prices).
    pub cpu_hour: Option<f64>,
    /// Dollars per requested GiB-hour for pods (default: derived from node prices).
    pub gib_hour: Option<f64>,
}

/// State kept in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesState {
    /// Namespace of the state objects.
    pub namespace: String,
}

/// One spec string or a list of them.
#[derive(Debug, Clone, Default)]
pub struct SpecList(pub Vec<Located>);

impl<'de> Deserialize<'de> for SpecList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecListVisitor;

        impl<'de> Visitor<'de> for SpecListVisitor {
            type Value = SpecList;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a spec string or a list of spec strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<SpecList, E> {
                let unknown = serde_saphyr::Location::UNKNOWN;
                Ok(SpecList(vec![Spanned::new(
                    value.to_string(),
                    unknown,
                    unknown,
                )]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpecList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Located>()? {
                    items.push(item);
                }
                Ok(SpecList(items))
            }
        }

        deserializer.deserialize_any(SpecListVisitor)
    }
}

/// Free-form labels (tags, selectors) as written.
pub type Labels = BTreeMap<String, String>;
