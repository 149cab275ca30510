//! Every metric name in one place, their descriptions, the Prometheus recorder, and tracing.

use chrono::{DateTime, Utc};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// 1 when an environment's desired state is up, 0 when down.
pub const ENVIRONMENT_UP: &str = "curfew_environment_up";
/// 1 when a target is at its up capacity, 0 when scaled down.
pub const TARGET_UP: &str = "curfew_target_up";
/// Unix time of an environment's next scheduled change.
pub const NEXT_TRANSITION: &str = "curfew_next_transition_timestamp_seconds";
/// 1 while an override decides an environment.
pub const OVERRIDE_ACTIVE: &str = "curfew_override_active";
/// Scale actions by direction and result.
pub const TRANSITIONS: &str = "curfew_transitions_total";
/// Duration of one reconcile pass.
pub const RECONCILE_DURATION: &str = "curfew_reconcile_duration_seconds";
/// Provider call failures by provider, operation and code.
pub const PROVIDER_ERRORS: &str = "curfew_provider_errors_total";
/// Retries of provider calls by provider and operation.
pub const PROVIDER_RETRIES: &str = "curfew_provider_retries_total";
/// Targets left alone because they were scaled up by hand during downtime.
pub const IMPLICIT_OVERRIDES: &str = "curfew_implicit_overrides";
/// Targets left alone because curfew cannot scale them (read replicas, cluster members, ...).
pub const UNUSABLE_TARGETS: &str = "curfew_unusable_targets";
/// 1 on the replica that holds the leadership (always 1 without leader election).
pub const LEADER: &str = "curfew_leader";
/// Reconcile passes by result.
pub const RECONCILES: &str = "curfew_reconciles_total";
/// Dollars per hour a target costs now (labels environment, target, kind, lifecycle).
pub const COST_PER_HOUR: &str = "curfew_cost_per_hour_dollars";
/// Dollars per hour an environment costs now.
pub const ENVIRONMENT_COST_PER_HOUR: &str = "curfew_environment_cost_per_hour_dollars";
/// Dollars per hour an environment would cost always on.
pub const ENVIRONMENT_ALWAYS_ON_COST_PER_HOUR: &str =
    "curfew_environment_always_on_cost_per_hour_dollars";
/// Dollars saved this calendar month (UTC) so far.
pub const MONTH_TO_DATE_SAVINGS: &str = "curfew_month_to_date_savings_dollars";
/// Dollars spent, integrated over time (rendered by the cost tracker).
pub const COST_TOTAL: &str = "curfew_cost_dollars_total";
/// Dollars that always-on would have cost (rendered by the cost tracker).
pub const COUNTERFACTUAL_COST_TOTAL: &str = "curfew_counterfactual_cost_dollars_total";
/// Counterfactual minus actual (rendered by the cost tracker).
pub const SAVINGS_TOTAL: &str = "curfew_savings_dollars_total";
/// Seconds an environment's desired state was up (rendered by the cost tracker).
pub const UPTIME_SECONDS_TOTAL: &str = "curfew_uptime_seconds_total";

/// Times a group's on-demand share was raised after spot capacity failures, by region.
pub const SPOT_FALLBACKS: &str = "curfew_spot_fallbacks_total";

/// Kubernetes objects left alone because of an unusable annotation, by annotation (counted
/// once per object and value).
pub const KUBE_ANNOTATION_ERRORS: &str = "curfew_kube_annotation_errors_total";

/// Kubernetes Events dropped because their queue was full (or still waiting at exit).
pub const KUBE_EVENTS_DROPPED: &str = "curfew_kube_events_dropped_total";

/// 1 while part of an environment's targets could not be discovered, 0 otherwise.
pub const ENVIRONMENT_DEGRADED: &str = "curfew_environment_degraded";
/// Passes run early to retry a discovery that could not see every target selection.
pub const DISCOVERY_RETRIES: &str = "curfew_discovery_retries_total";

/// HTTP requests served, by route and status.
pub const HTTP_REQUESTS: &str = "curfew_http_requests_total";
/// HTTP connections open now.
pub const HTTP_CONNECTIONS: &str = "curfew_http_connections";
/// HTTP connections closed, by reason (`ended`, `header_timeout`, `idle_timeout`, `stalled`,
/// `evicted`, `refused`, `shutdown`).
pub const HTTP_CONNECTIONS_CLOSED: &str = "curfew_http_connections_closed_total";
/// Failed accepts of HTTP connections (for example, too many open files).
pub const HTTP_ACCEPT_ERRORS: &str = "curfew_http_accept_errors_total";

/// Wakes on request, by environment and how (`auto`, `asked`).
pub const WAKES: &str = "curfew_wakes_total";
/// Requests to a sleeping environment that woke nothing, by environment and why (`ignored`,
/// `rate_limited`, `not_asked`, `refused`).
pub const WAKE_REQUESTS_UNWOKEN: &str = "curfew_wake_requests_unwoken_total";
/// Seconds from a wake until the environment was ready (its first pass with every target
/// up), by environment.
pub const WAKE_READY_SECONDS: &str = "curfew_wake_ready_seconds";
/// Times an environment went to sleep early because it was idle, by environment.
pub const IDLE_SLEEPS: &str = "curfew_idle_sleeps_total";
/// Dollars saved because environments slept while idle inside their uptime, by environment
/// (part of `curfew_savings_dollars_total`).
pub const IDLE_SAVINGS_TOTAL: &str = "curfew_idle_savings_dollars_total";
/// Idleness queries to Prometheus that failed (counted as traffic), by environment.
pub const IDLE_QUERY_ERRORS: &str = "curfew_idle_query_errors_total";
/// Requests the wake gateway forwarded to an upstream, by environment and status class.
pub const WAKE_PROXIED: &str = "curfew_wake_proxied_requests_total";

/// Always 1; its labels name curfew's version and the tz database in use.
pub const BUILD_INFO: &str = "curfew_build_info";

/// Histogram buckets for the time to ready after a wake, in seconds.
const WAKE_READY_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
];

/// Histogram buckets for reconcile durations, in seconds.
const RECONCILE_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// Describes every metric (type, unit, help text) to the installed recorder.
pub fn describe_metrics() {
    describe_gauge!(
        ENVIRONMENT_UP,
        "1 when the environment's desired state is up, 0 when down."
    );
    describe_gauge!(
        TARGET_UP,
        "1 when the target runs at its up capacity, 0 when scaled down."
    );
    describe_gauge!(
        NEXT_TRANSITION,
        Unit::Seconds,
        "Unix time of the environment's next scheduled change."
    );
    describe_gauge!(
        OVERRIDE_ACTIVE,
        "1 while an override decides the environment."
    );
    describe_counter!(
        TRANSITIONS,
        "Scale actions applied, by direction and result."
    );
    describe_histogram!(
        RECONCILE_DURATION,
        Unit::Seconds,
        "Duration of one reconcile pass."
    );
    describe_counter!(
        PROVIDER_ERRORS,
        "Failed provider calls, by provider, operation and code."
    );
    describe_counter!(
        PROVIDER_RETRIES,
        "Retried provider calls, by provider and operation."
    );
    describe_gauge!(
        IMPLICIT_OVERRIDES,
        "Targets scaled up by hand during downtime and left alone until the next change."
    );
    describe_gauge!(
        UNUSABLE_TARGETS,
        "Targets curfew cannot scale (read replicas, cluster members, engines that cannot stop), left alone."
    );
    describe_gauge!(LEADER, "1 on the replica that acts (holds the lease).");
    describe_counter!(RECONCILES, "Reconcile passes, by result.");
    describe_counter!(
        SPOT_FALLBACKS,
        "Times a group's on-demand share was raised after spot capacity failures, by region."
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests served, by route and status.");
    describe_gauge!(HTTP_CONNECTIONS, "HTTP connections open now.");
    describe_counter!(
        HTTP_CONNECTIONS_CLOSED,
        "HTTP connections closed, by reason."
    );
    describe_counter!(
        HTTP_ACCEPT_ERRORS,
        "Failed accepts of HTTP connections (for example, too many open files)."
    );
    describe_counter!(
        KUBE_ANNOTATION_ERRORS,
        "Kubernetes objects left alone because of an unusable annotation, by annotation."
    );
    describe_counter!(
        KUBE_EVENTS_DROPPED,
        "Kubernetes Events dropped because their queue was full or they were still waiting at exit."
    );
    describe_gauge!(
        ENVIRONMENT_DEGRADED,
        "1 while part of the environment's targets could not be discovered, 0 otherwise."
    );
    describe_counter!(
        DISCOVERY_RETRIES,
        "Passes run early to retry a discovery that could not see every target selection."
    );
    describe_gauge!(
        COST_PER_HOUR,
        "Dollars per hour a target costs now (pods: an allocation of node cost)."
    );
    describe_gauge!(
        ENVIRONMENT_COST_PER_HOUR,
        "Dollars per hour an environment costs now."
    );
    describe_gauge!(
        ENVIRONMENT_ALWAYS_ON_COST_PER_HOUR,
        "Dollars per hour an environment would cost if always on."
    );
    describe_gauge!(
        MONTH_TO_DATE_SAVINGS,
        "Dollars saved this calendar month (UTC) so far."
    );
    describe_counter!(
        WAKES,
        "Wakes on request, by environment and how (auto, asked)."
    );
    describe_counter!(
        WAKE_REQUESTS_UNWOKEN,
        "Requests to a sleeping environment that woke nothing, by environment and why."
    );
    describe_histogram!(
        WAKE_READY_SECONDS,
        Unit::Seconds,
        "Time from a wake on request until the environment was ready, by environment."
    );
    describe_counter!(
        IDLE_SLEEPS,
        "Times an environment went down early inside its uptime because it was idle."
    );
    describe_counter!(
        IDLE_SAVINGS_TOTAL,
        Unit::Count,
        "Dollars saved by sleeping while idle inside the uptime windows, by environment."
    );
    describe_counter!(
        IDLE_QUERY_ERRORS,
        "Idleness queries to Prometheus that failed (counted as traffic), by environment."
    );
    describe_counter!(
        WAKE_PROXIED,
        "Requests the wake gateway forwarded upstream, by environment and status class."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; labels: curfew's version, the tz database release in use and its source."
    );
}

/// Sets [`BUILD_INFO`]: curfew's version and the tz database in use (release, and whether it
/// is the embedded data or the system's database).
pub fn record_build_info() {
    let (tzdata_version, tzdata_source) = crate::zoneinfo::in_use();
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "tzdata_version" => tzdata_version,
        "tzdata_source" => tzdata_source.as_str()
    )
    .set(1.0);
}

/// Creates the error and transition counters at zero for `provider`, so rates over them exist
/// (and dashboards show a flat line) before the first failure.
pub fn register_zeroes(provider: &'static str) {
    for operation in ["discover", "apply"] {
        for code in [
            "throttled",
            "server",
            "timeout",
            "conflict",
            "not_found",
            "permanent",
        ] {
            metrics::counter!(
                PROVIDER_ERRORS,
                "provider" => provider,
                "operation" => operation,
                "code" => code
            )
            .increment(0);
        }
    }
    metrics::counter!(DISCOVERY_RETRIES).increment(0);
    metrics::counter!(KUBE_EVENTS_DROPPED).increment(0);
    for direction in ["up", "down"] {
        for result in ["ok", "error"] {
            metrics::counter!(TRANSITIONS, "direction" => direction, "result" => result)
                .increment(0);
        }
    }
}

/// Creates the wake and idleness series of `environment` at zero, so dashboards show them
/// before the first wake.
pub fn register_wake_zeroes(environment: &str) {
    let env = environment.to_string();
    for how in ["auto", "asked"] {
        metrics::counter!(WAKES, "environment" => env.clone(), "how" => how).increment(0);
    }
    for why in ["ignored", "rate_limited", "not_asked", "refused"] {
        metrics::counter!(WAKE_REQUESTS_UNWOKEN, "environment" => env.clone(), "why" => why)
            .increment(0);
    }
    metrics::counter!(IDLE_SLEEPS, "environment" => env.clone()).increment(0);
    // A histogram shows its buckets once it has a handle.
    let _ = metrics::histogram!(WAKE_READY_SECONDS, "environment" => env);
}

/// Installs the Prometheus recorder for this process and returns the handle that renders it.
///
/// Call once; a second call returns an error from the metrics crate.
pub fn install_prometheus() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(RECONCILE_DURATION.to_string()),
            &RECONCILE_BUCKETS,
        )
        .map_err(|e| e.to_string())?
        .set_buckets_for_metric(
            Matcher::Full(WAKE_READY_SECONDS.to_string()),
            &WAKE_READY_BUCKETS,
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe_metrics();
    record_build_info();
    Ok(handle)
}

/// How log lines are written: `text` for people, `json` (one object per line) for log
/// pipelines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `TIME LEVEL message name=value ...`, values escaped.
    #[default]
    Text,
    /// `{"time": ..., "level": ..., "message": ..., "name": value, ...}`.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "'{other}' is not a log format (expected text or json)"
            )),
        }
    }
}

/// The simulated clock whose time log lines carry besides the real time (the demo's).
static SIMULATED_TIME: std::sync::OnceLock<Box<dyn Fn() -> DateTime<Utc> + Send + Sync>> =
    std::sync::OnceLock::new();

/// Has every log line from now on carry `now()` as its simulated time, besides the real time.
/// The first call wins.
pub fn log_simulated_time(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) {
    let _ = SIMULATED_TIME.set(Box::new(now));
}

fn simulated_now() -> Option<DateTime<Utc>> {
    SIMULATED_TIME.get().map(|now| now())
}

/// `2026-12-01T10:00:00.123456Z`.
fn log_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Sets up logging to stderr in `format`, filtered by `RUST_LOG` (default `info`).
///
/// Every field value is escaped with [`text::escape`](crate::text::escape), so text from
/// requests or stored state can neither forge a log line nor send a terminal control codes.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .fmt_fields(escaped_fields())
            .with_timer(Timer)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
    };
}

/// Real time, and the simulated time when there is one: `REAL sim=SIMULATED`.
struct Timer;

impl tracing_subscriber::fmt::time::FormatTime for Timer {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", log_time(Utc::now()))?;
        match simulated_now() {
            Some(at) => write!(w, " sim={}", log_time(at)),
            None => Ok(()),
        }
    }
}

/// One JSON object per event: `time`, `simulated_time` (in the demo), `level`, `message` and
/// the event's fields, string values escaped as in text logs.
struct JsonLines;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = serde_json::Map::new();
        fields.insert("time".into(), log_time(Utc::now()).into());
        if let Some(at) = simulated_now() {
            fields.insert("simulated_time".into(), log_time(at).into());
        }
        fields.insert(
            "level".into(),
            event.metadata().level().as_str().to_lowercase().into(),
        );
        event.record(&mut JsonFields(&mut fields));
        writeln!(writer, "{}", serde_json::Value::Object(fields))
    }
}

/// Collects an event's fields into a JSON object.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(
            field.name().to_string(),
            crate::text::escape(value).into_owned().into(),
        );
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

/// Formats log fields like tracing's default (`message`, then `name=value` pairs), with every
/// value escaped.
fn escaped_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = crate::text::escape(&text);
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::*;

    #[test]
    fn log_fields_cannot_forge_a_line_or_send_control_codes() {
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(escaped_fields())
            .with_ansi(false)
            .with_writer(move || WriteInto(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let reason = "rehearsal\n2026-12-01T00:00:00Z  INFO forged\u{1b}]0;owned\u{7}\u{202e}";
            tracing::info!(reason = %reason, "scaled {}", "web\r\nINFO");
        });
        let text = String::from_utf8(written.lock().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(
                r"reason=rehearsal\u000a2026-12-01T00:00:00Z  INFO forged\u001b]0;owned\u0007\u202e"
            ),
            "{text}"
        );
        assert!(text.contains(r"scaled web\u000d\u000aINFO"), "{text}");
    }

    struct WriteInto(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for WriteInto {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
