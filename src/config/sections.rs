//! The validated settings of the service: the HTTP server, the reconcile loop and the
//! Kubernetes client's pacing, with the defaults a user gets without the keys.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::Duration;

use super::auth::AuthConfig;
use super::raw::{FailedAuthConfig, NotificationsConfig, OverrideLimitsConfig, RateLimitConfig};

/// Where the HTTP server listens unless configured.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Where the wake gateway listens unless configured.
pub const DEFAULT_WAKE_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8081);
/// The largest request body accepted unless configured, in bytes.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 16 * 1024;
/// The longest time a request may take unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// The longest time a client may take to send a request's headers unless configured.
pub const DEFAULT_HEADER_READ_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// How long a keep-alive connection may sit idle between requests unless configured.
pub const DEFAULT_IDLE_TIMEOUT: StdDuration = StdDuration::from_secs(60);
/// The most connections served at once unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

/// The longest time between reconcile passes unless configured.
pub const DEFAULT_TICK: Duration = Duration::seconds(30);
/// How long a tier may take to become ready unless configured.
pub const DEFAULT_READINESS_TIMEOUT: Duration = Duration::minutes(10);
/// How long the databases tier may take to become available unless configured: starting an
/// RDS instance or an Aurora cluster takes minutes.
pub const DEFAULT_DATABASE_READINESS_TIMEOUT: Duration = Duration::minutes(30);
/// How often readiness is polled unless configured.
pub const DEFAULT_READINESS_POLL: Duration = Duration::seconds(5);
/// Actions applied at once within a tier unless configured.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// The most actions a tier may apply at once.
pub const MAX_CONCURRENCY: usize = 1024;

/// Kubernetes writes in flight at once, unless configured: the API server's priority and
/// fairness queues the rest of a large boundary fairly, and a 429 slows curfew down.
pub const DEFAULT_KUBERNETES_CONCURRENCY: usize = 16;
/// The most Kubernetes writes that may be configured in flight.
pub const MAX_KUBERNETES_CONCURRENCY: usize = 256;
/// Events written per second, unless configured: Events are paced apart from scale writes.
pub const DEFAULT_EVENT_QPS: f64 = 20.0;
/// Events waiting to be written at most, unless configured; more are dropped and counted.
pub const DEFAULT_EVENT_QUEUE: usize = 1000;
/// The most Events that may be configured to wait.
pub const MAX_EVENT_QUEUE: usize = 100_000;

/// The HTTP server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address of the wake gateway, served when an environment has a `wake:` section.
    pub wake_listen: SocketAddr,
    /// File of token hashes, resolved against the configuration's folder.
    pub tokens_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Longest time a request may take; slower ones get 503.
    pub request_timeout: StdDuration,
    /// Requests each token may make.
    pub rate_limit: RateLimitConfig,
    /// Webhook notifications; none when absent.
    pub notifications: Option<NotificationsConfig>,
    /// Longest time a client may take to send a request's headers.
    pub header_read_timeout: StdDuration,
    /// How long a keep-alive connection may sit idle between requests.
    pub idle_timeout: StdDuration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Where the Grafana dashboards are, linked from the status page.
    pub dashboards_url: Option<String>,
    /// How many overrides may be active at once.
    pub overrides: OverrideLimitsConfig,
    /// Failed authentication attempts allowed per client address.
    pub failed_auth: FailedAuthConfig,
    /// Who may call besides token holders.
    pub auth: AuthConfig,
    /// The service's address as people reach it, without a trailing `/`; links in messages
    /// point there, and none are sent without it.
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            wake_listen: DEFAULT_WAKE_LISTEN,
            tokens_file: None,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            rate_limit: RateLimitConfig::default(),
            notifications: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            dashboards_url: None,
            overrides: OverrideLimitsConfig::default(),
            failed_auth: FailedAuthConfig::default(),
            auth: AuthConfig::default(),
            public_url: None,
        }
    }
}

/// The reconcile loop's settings. Durations are in clock time (simulated time under a
/// warped clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// Longest time between passes.
    pub tick: Duration,
    /// How long a tier may take to become ready before the next tier goes ahead anyway.
    pub readiness_timeout: Duration,
    /// How often readiness is polled.
    pub readiness_poll: Duration,
    /// How long the databases tier may take to become available before the next tier goes
    /// ahead anyway.
    pub database_readiness_timeout: Duration,
    /// Actions applied at once within a tier.
    pub concurrency: usize,
    /// Scale manually scaled-up targets down again instead of treating them as overrides.
    pub enforce: bool,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        ReconcilerConfig {
            tick: DEFAULT_TICK,
            readiness_timeout: DEFAULT_READINESS_TIMEOUT,
            readiness_poll: DEFAULT_READINESS_POLL,
            database_readiness_timeout: DEFAULT_DATABASE_READINESS_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            enforce: false,
        }
    }
}

/// The Kubernetes client's pacing: writes in flight, an optional client-side token bucket,
/// and the Events queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KubernetesConfig {
    /// A client-side cap on writes per second once the burst is spent; `None` (the default)
    /// leaves pacing to the API server, which answers 429 with `Retry-After` when busy.
    pub rate: Option<WriteRate>,
    /// Scale writes in flight at once.
    pub concurrency: usize,
    /// Whether actions leave Events on the objects they change.
    pub events: bool,
    /// Events written per second, apart from scale writes.
    pub event_qps: f64,
    /// Events waiting to be written at most; more are dropped and counted.
    pub event_queue: usize,
}

/// A client-side token bucket: `qps` writes per second once `burst` writes are spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteRate {
    /// Writes per second.
    pub qps: f64,
    /// Writes allowed at once after a quiet spell.
    pub burst: u32,
}

impl WriteRate {
    /// The burst allowed with `qps` when none is configured: two seconds' worth.
    pub fn default_burst(qps: f64) -> u32 {
        (qps * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32
    }
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            rate: None,
            concurrency: DEFAULT_KUBERNETES_CONCURRENCY,
            events: true,
            event_qps: DEFAULT_EVENT_QPS,
            event_queue: DEFAULT_EVENT_QUEUE,
        }
    }
}
