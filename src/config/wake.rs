//! Wake on request and sleep when idle: an environment's `wake:` section as written, its
//! validation, and the validated settings.
//!
//! ```yaml
//! environments:
//!   staging:
//!     wake:
//!       hosts: [shop.staging.example.com]
//!       upstream: http://ingress-nginx-controller.ingress-nginx   # proxy mode; absent: error backend
//!       auto: false            # wake on the first request without asking
//!       keep_up_for: 2h        # the override a wake creates
//!       idle_after: 45m        # sleep early inside the uptime window
//!       idle: { prometheus: { url: http://prometheus:9090, query: 'sum(rate(...))', below: 0.01 } }
//!       ignore: { user_agents: [uptime-kuma], paths: [/status], methods: [PATCH] }
//! ```

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::raw::Located;
use super::validate::Collector;

/// How long a wake keeps an environment up unless configured.
pub const DEFAULT_KEEP_UP_FOR: Duration = Duration::hours(2);
/// How often a Prometheus idleness query runs unless configured.
pub const DEFAULT_PROMETHEUS_INTERVAL: StdDuration = StdDuration::from_secs(60);
/// The most hosts one environment may list.
pub const MAX_HOSTS: usize = 64;
/// The most entries each ignore list may have.
pub const MAX_IGNORED: usize = 64;

/// User agents (case-insensitive substrings) that never wake anything: health checkers,
/// uptime monitors and crawlers. A `wake.ignore.user_agents` list adds to these.
pub const DEFAULT_IGNORED_USER_AGENTS: &[&str] = &[
    "kube-probe",
    "elb-healthchecker",
    "googlehc",
    "prometheus",
    "blackbox",
    "uptimerobot",
    "pingdom",
    "statuscake",
    "bot",
    "crawler",
    "spider",
    "slurp",
];
/// Path prefixes that never wake anything; `wake.ignore.paths` adds to these.
pub const DEFAULT_IGNORED_PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/livez",
    "/health",
    "/ping",
    "/metrics",
    "/robots.txt",
    "/favicon.ico",
    "/.well-known/",
];
/// Methods that never wake anything; `wake.ignore.methods` adds to these.
pub const DEFAULT_IGNORED_METHODS: &[&str] = &["HEAD", "OPTIONS"];

// === as written ===

/// An environment's `wake:` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWake {
    /// Host names whose requests belong to the environment.
    #[serde(default)]
    pub hosts: Vec<Located>,
    /// Namespaces whose ingress errors belong to the environment (ingress-nginx names the
    /// backend's namespace in `X-Namespace`).
    #[serde(default)]
    pub namespaces: Vec<Located>,
    /// Where requests go while the environment is up (proxy mode).
    pub upstream: Option<Located>,
    /// Wake on the first request without asking.
    pub auto: Option<bool>,
    /// How long a wake keeps the environment up, e.g. `2h`.
    pub keep_up_for: Option<Located>,
    /// Send the environment down early after this long without requests, e.g. `45m`.
    pub idle_after: Option<Located>,
    /// Where idleness is measured when not from the proxy's own traffic.
    pub idle: Option<Spanned<RawIdle>>,
    /// Requests that never wake anything, besides the built-in ones.
    #[serde(default)]
    pub ignore: RawIgnore,
}

/// `wake.idle` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdle {
    /// A Prometheus query measuring the environment's traffic.
    pub prometheus: Option<Spanned<RawPrometheusIdle>>,
}

/// `wake.idle.prometheus` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheusIdle {
    /// The Prometheus server, e.g. `http://prometheus:9090`.
    pub url: Located,
    /// An instant query whose value is the environment's traffic.
    pub query: Located,
    /// The environment is quiet while the query's value is below this.
    pub below: Spanned<f64>,
    /// How often the query runs, e.g. `1m` (the default).
    pub interval: Option<Located>,
}

/// `wake.ignore` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIgnore {
    /// User-agent substrings, case-insensitive.
    #[serde(default)]
    pub user_agents: Vec<Located>,
    /// Path prefixes.
    #[serde(default)]
    pub paths: Vec<Located>,
    /// HTTP methods.
    #[serde(default)]
    pub methods: Vec<Located>,
}

// === validated ===

/// An environment's validated wake settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WakeConfig {
    /// Host names (lower case, without port) whose requests belong to the environment.
    pub hosts: Vec<String>,
    /// Namespaces whose ingress errors (`X-Namespace`) belong to the environment.
    pub namespaces: Vec<String>,
    /// Where requests go while the environment is up; `None` in error-backend mode.
    pub upstream: Option<http::Uri>,
    /// Whether the first request wakes the environment without asking.
    pub auto: bool,
    /// How long the override a wake creates lasts.
    pub keep_up_for: Duration,
    /// Sleep when idle, if configured.
    pub idle: Option<IdleConfig>,
    /// Requests that never wake anything.
    pub ignore: IgnoreRules,
}

/// When an environment counts as idle, and how that is measured.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleConfig {
    /// How long without requests sends it down.
    pub after: Duration,
    /// Where the requests are counted.
    pub source: IdleSource,
}

/// Where an environment's traffic is measured for idleness.
#[derive(Debug, Clone, PartialEq)]
pub enum IdleSource {
    /// The requests curfew's own proxy forwards (`wake.upstream`).
    Proxy,
    /// A Prometheus query.
    Prometheus(PrometheusIdle),
}

/// A Prometheus query measuring an environment's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusIdle {
    /// The server's base URL, without a trailing `/`.
    pub url: String,
    /// The instant query.
    pub query: String,
    /// The environment is quiet while the value is below this.
    pub below: f64,
    /// How often the query runs.
    pub interval: StdDuration,
}

/// Requests that never wake anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRules {
    /// Lower-case user-agent substrings.
    pub user_agents: Vec<String>,
    /// Path prefixes.
    pub paths: Vec<String>,
    /// Upper-case methods.
    pub methods: Vec<String>,
}

// === impl IgnoreRules ===

impl Default for IgnoreRules {
    fn default() -> Self {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        IgnoreRules {
            user_agents: owned(DEFAULT_IGNORED_USER_AGENTS),
            paths: owned(DEFAULT_IGNORED_PATHS),
            methods: owned(DEFAULT_IGNORED_METHODS),
        }
    }
}

impl IgnoreRules {
    /// Why a request with `method`, `path` and `user_agent` may not wake anything, if it may
    /// not. A request without a user agent is a machine's: it never wakes anything.
    pub fn refuses(&self, method: &str, path: &str, user_agent: Option<&str>) -> Option<String> {
        if self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return Some(format!("method {method} is ignored"));
        }
        if let Some(prefix) = self.paths.iter().find(|p| path.starts_with(p.as_str())) {
            return Some(format!("path {prefix} is ignored"));
        }
        let Some(agent) = user_agent.map(str::to_ascii_lowercase) else {
            return Some("a request without a user agent is ignored".into());
        };
        self.user_agents
            .iter()
            .find(|needle| agent.contains(needle.as_str()))
            .map(|needle| format!("user agent matching '{needle}' is ignored"))
    }
}

// === validation ===

/// Validates the `wake:` section of environment `name`, whose overrides may last at most
/// `max_override`. `hosts_seen` maps each host already claimed to its environment.
pub(super) fn wake_config(
    collector: &mut Collector,
    name: &str,
    raw: &Spanned<RawWake>,
    max_override: Option<Duration>,
    hosts_seen: &mut HashMap<String, String>,
) -> Option<WakeConfig> {
    let errors_before = collector.error_count();
    let wake = &raw.value;
    let hosts = hosts(collector, name, wake, raw, hosts_seen);
    let namespaces = namespaces(collector, name, wake, hosts_seen);
    let upstream = wake.upstream.as_ref().and_then(|u| upstream(collector, u));
    let keep_up_for = match &wake.keep_up_for {
        Some(text) => collector.duration(text, "wake.keep_up_for"),
        None => Some(DEFAULT_KEEP_UP_FOR),
    };
    if let (Some(keep), Some(max), Some(text)) = (keep_up_for, max_override, &wake.keep_up_for)
        && keep > max
    {
        collector.error(
            text.referenced,
            format!(
                "wake.keep_up_for {} is longer than the environment's overrides.max_duration {}",
                super::duration::format(keep),
                super::duration::format(max)
            ),
            Some("a wake is an override: keep it within overrides.max_duration".into()),
        );
    }
    let idle = idle(collector, wake, raw, upstream.is_some());
    let ignore = ignore(collector, &wake.ignore);
    (collector.error_count() == errors_before).then(|| WakeConfig {
        hosts,
        namespaces,
        upstream,
        auto: wake.auto.unwrap_or(false),
        keep_up_for: keep_up_for.unwrap_or(DEFAULT_KEEP_UP_FOR),
        idle,
        ignore,
    })
}

fn hosts(
    collector: &mut Collector,
    name: &str,
    wake: &RawWake,
    raw: &Spanned<RawWake>,
    hosts_seen: &mut HashMap<String, String>,
) -> Vec<String> {
    if wake.hosts.is_empty() && wake.namespaces.is_empty() {
        collector.error(
            raw.referenced,
            "wake: no hosts",
            Some("list the host names people use for this environment, e.g. hosts: [shop.staging.example.com]".into()),
        );
    }
    if wake.hosts.len() > MAX_HOSTS {
        collector.error(
            raw.referenced,
            format!(
                "wake.hosts has {} entries; at most {MAX_HOSTS}",
                wake.hosts.len()
            ),
            None,
        );
    }
    let mut hosts = Vec::new();
    for written in &wake.hosts {
        let host = written.value.trim().to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*'));
        if !valid {
            collector.error(
                written.referenced,
                format!(
                    "wake host '{}' is not a host name",
                    crate::text::escape(&host)
                ),
                Some(
                    "a name such as shop.staging.example.com, without scheme, port or path".into(),
                ),
            );
            continue;
        }
        if let Some(other) = hosts_seen.insert(host.clone(), name.to_string()) {
            collector.error(
                written.referenced,
                format!("wake host '{host}' is also listed by environment '{other}'"),
                Some("a host belongs to one environment".into()),
            );
            continue;
        }
        hosts.push(host);
    }
    hosts
}

fn namespaces(
    collector: &mut Collector,
    name: &str,
    wake: &RawWake,
    claimed: &mut HashMap<String, String>,
) -> Vec<String> {
    let mut namespaces = Vec::new();
    for written in wake.namespaces.iter().take(MAX_HOSTS) {
        let namespace = written.value.trim().to_string();
        let valid = !namespace.is_empty()
            && namespace.len() <= 63
            && namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            collector.error(
                written.referenced,
                format!(
                    "wake namespace '{}' is not a namespace name",
                    crate::text::escape(&namespace)
                ),
                Some("lower-case letters, digits and '-', at most 63".into()),
            );
            continue;
        }
        // Namespaces share the map of claimed names with hosts, marked apart.
        if let Some(other) = claimed.insert(format!("namespace/{namespace}"), name.to_string()) {
            collector.error(
                written.referenced,
                format!("wake namespace '{namespace}' is also listed by environment '{other}'"),
                Some("a namespace's ingress errors belong to one environment".into()),
            );
            continue;
        }
        namespaces.push(namespace);
    }
    namespaces
}

fn upstream(collector: &mut Collector, written: &Located) -> Option<http::Uri> {
    let text = written.value.trim();
    let problem = match text.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() != Some("http") => {
            Some("must be an http:// URL (curfew forwards plain HTTP inside the cluster)")
        }
        Ok(uri) if uri.host().is_none_or(str::is_empty) => Some("has no host"),
        Ok(uri) if uri.path() != "/" || uri.query().is_some() => {
            Some("must not have a path or query: requests keep theirs")
        }
        Ok(uri) => return Some(uri),
        Err(_) => Some("is not a URL"),
    };
    collector.error(
        written.referenced,
        format!(
            "wake.upstream '{}' {}",
            crate::text::escape(text),
            problem.unwrap_or_default()
        ),
        Some("e.g. http://ingress-nginx-controller.ingress-nginx or http://web.shop:8080".into()),
    );
    None
}

fn idle(
    collector: &mut Collector,
    wake: &RawWake,
    raw: &Spanned<RawWake>,
    proxied: bool,
) -> Option<IdleConfig> {
    let prometheus = wake
        .idle
        .as_ref()
        .and_then(|idle| idle.value.prometheus.as_ref());
    let Some(after_text) = &wake.idle_after else {
        if let Some(idle) = &wake.idle {
            collector.error(
                idle.referenced,
                "wake.idle without wake.idle_after",
                Some("set idle_after, e.g. idle_after: 45m".into()),
            );
        }
        return None;
    };
    let after = collector.duration(after_text, "wake.idle_after")?;
    let source = match prometheus {
        Some(query) => IdleSource::Prometheus(prometheus_idle(collector, query)?),
        None if proxied => IdleSource::Proxy,
        None => {
            collector.error(
                raw.referenced,
                "wake.idle_after needs a measure of traffic",
                Some(
                    "set wake.upstream (curfew counts the requests it forwards) or \
                     wake.idle.prometheus (a query such as the ingress request rate)"
                        .into(),
                ),
            );
            return None;
        }
    };
    Some(IdleConfig { after, source })
}

fn prometheus_idle(
    collector: &mut Collector,
    raw: &Spanned<RawPrometheusIdle>,
) -> Option<PrometheusIdle> {
    let written = &raw.value;
    let url = super::validate::web_url(collector, "wake.idle.prometheus.url", &written.url);
    let query = written.query.value.trim().to_string();
    if query.is_empty() || query.len() > 4096 {
        collector.error(
            written.query.referenced,
            "wake.idle.prometheus.query must have 1 to 4096 characters",
            Some(
                "e.g. sum(rate(nginx_ingress_controller_requests{namespace=\"shop\"}[5m]))".into(),
            ),
        );
    }
    if !written.below.value.is_finite() {
        collector.error(
            written.below.referenced,
            "wake.idle.prometheus.below must be a number",
            None,
        );
    }
    let interval = match &written.interval {
        Some(text) => collector
            .duration(text, "wake.idle.prometheus.interval")
            .and_then(|d| d.to_std().ok()),
        None => Some(DEFAULT_PROMETHEUS_INTERVAL),
    };
    Some(PrometheusIdle {
        url: url?.trim_end_matches('/').to_string(),
        query,
        below: written.below.value,
        interval: interval?,
    })
}

fn ignore(collector: &mut Collector, raw: &RawIgnore) -> IgnoreRules {
    let mut rules = IgnoreRules::default();
    for (key, written, into, upper) in [
        (
            "user_agents",
            &raw.user_agents,
            &mut rules.user_agents,
            false,
        ),
        ("paths", &raw.paths, &mut rules.paths, false),
        ("methods", &raw.methods, &mut rules.methods, true),
    ] {
        if written.len() > MAX_IGNORED {
            collector.error(
                written[MAX_IGNORED].referenced,
                format!(
                    "wake.ignore.{key} has {} entries; at most {MAX_IGNORED}",
                    written.len()
                ),
                None,
            );
        }
        for entry in written {
            let value = entry.value.trim();
            let problem = match key {
                _ if value.is_empty() => Some("is empty"),
                "paths" if !value.starts_with('/') => Some("must start with /"),
                "methods" if !value.chars().all(|c| c.is_ascii_alphabetic()) => {
                    Some("is not an HTTP method")
                }
                _ => None,
            };
            match problem {
                Some(problem) => collector.error(
                    entry.referenced,
                    format!(
                        "wake.ignore.{key} entry '{}' {problem}",
                        crate::text::escape(value)
                    ),
                    None,
                ),
                None if upper => into.push(value.to_ascii_uppercase()),
                None if key == "user_agents" => into.push(value.to_ascii_lowercase()),
                None => into.push(value.to_string()),
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Error as ConfigError};

    /// The problems `check` reports for environments `staging` and `qa` with these `wake:`
    /// sections, as `line:col message (hint)`.
    fn problems(staging: &str, qa: &str) -> Vec<String> {
        let yaml = format!(
            "schedules:\n  office: {{ uptime: [\"Mon-Fri 07:00-20:00\"] }}\n\
             environments:\n  staging:\n    schedule: office\n    overrides: {{ max_duration: 4h }}\n    wake: {staging}\n\
             \x20 qa:\n    schedule: office\n    wake: {qa}\n"
        );
        match Config::from_yaml(&yaml, std::path::Path::new("c.yaml")) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(diagnostics)) => diagnostics
                .iter()
                .map(|d| {
                    format!(
                        "{}:{} {} ({})",
                        d.line,
                        d.column,
                        d.message,
                        d.hint.clone().unwrap_or_default()
                    )
                })
                .collect(),
            Err(other) => vec![other.to_string()],
        }
    }

    #[test]
    fn wake_sections_that_cannot_work_are_refused_where_they_are_written() {
        let fine = "{ hosts: [a.example.com], upstream: http://web.shop, idle_after: 45m }";
        assert_eq!(
            problems(fine, "{ hosts: [b.example.com] }"),
            Vec::<String>::new()
        );
        let cases = [
            (
                "{ hosts: [a.example.com], idle_after: 45m }",
                "needs a measure of traffic",
            ),
            (
                "{ hosts: [a.example.com], keep_up_for: 5h }",
                "longer than the environment's overrides.max_duration",
            ),
            (
                "{ hosts: [a.example.com], upstream: https://web.shop }",
                "must be an http:// URL",
            ),
            (
                "{ hosts: [a.example.com], upstream: http://web.shop/app }",
                "must not have a path",
            ),
            ("{ hosts: [\"a.example.com/x\"] }", "is not a host name"),
            ("{ hosts: [b.example.com] }", "also listed by environment"),
            (
                "{ hosts: [a.example.com], idle: { prometheus: { url: http://p, query: up, below: 1 } } }",
                "without wake.idle_after",
            ),
            (
                "{ hosts: [a.example.com], ignore: { paths: [health] } }",
                "must start with /",
            ),
            ("{ }", "no hosts"),
        ];
        for (staging, expected) in cases {
            let found = problems(staging, "{ hosts: [b.example.com] }");
            // A host listed twice is reported where it is listed the second time, in qa.
            let line = if expected.contains("also listed") {
                "10:"
            } else {
                "7:"
            };
            assert!(
                found.len() == 1 && found[0].contains(expected) && found[0].starts_with(line),
                "{staging}: {found:?}"
            );
        }
    }

    #[test]
    fn health_checks_bots_and_head_requests_never_wake_but_a_browser_does() {
        let rules = IgnoreRules::default();
        let browser = Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0");
        assert_eq!(rules.refuses("GET", "/cart", browser), None);
        assert_eq!(rules.refuses("GET", "/", Some("curl/8.5.0")), None);
        assert!(rules.refuses("GET", "/healthz", browser).is_some());
        assert!(rules.refuses("HEAD", "/", browser).is_some());
        assert!(rules.refuses("GET", "/", Some("kube-probe/1.33")).is_some());
        assert!(rules.refuses("GET", "/", Some("Googlebot/2.1")).is_some());
        assert!(rules.refuses("GET", "/", None).is_some());
    }
}
