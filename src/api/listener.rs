//! The HTTP listener: serves the router on one socket within a cap on connections, closes
//! slow and idle connections, and backs off when accepting fails, so that a crowd of slow or
//! idle clients cannot starve the others (or the probes on `/healthz`).
//!
//! A connection is either *waiting* (for its first request, or since its last answer was
//! sent) or *busy* (a request is being handled and answered). A waiting connection is closed
//! [`header_read_timeout`](ServerConfig::header_read_timeout) after its first byte arrived (or
//! after it was accepted, when nothing arrives), or after
//! [`idle_timeout`](ServerConfig::idle_timeout) of silence after an answer. A busy connection
//! is closed when its answer is not delivered within the request timeout plus the header-read
//! timeout (a client that stopped reading).
//!
//! At [`max_connections`](ServerConfig::max_connections) the listener makes room for a
//! newcomer by closing the connection that has waited longest, and accepts the next newcomer
//! only once that one has closed, so at most one connection more than the cap is ever open.
//! When every connection is busy it stops accepting until one ends, and newcomers wait in the
//! kernel's backlog. An accept error about resources (too many open files) also frees the
//! longest-waiting connection, and the listener then retries after a pause growing from 10 ms
//! to 1 s, logging the first error and then at most one summary a minute.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, MutexGuard};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::telemetry;

/// The first pause after a failed accept.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause after failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Failed accepts after the first are summarised in the log at most this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` within the limits of `server` until `shutdown` is
/// cancelled, then lets the requests in flight finish and closes every connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    server: &ServerConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let limits = Arc::new(server.clone());
    let registry = Arc::new(Registry::default());
    let mut failures = AcceptFailures::default();
    loop {
        tokio::select! {
            _ = registry.room(limits.max_connections) => {}
            _ = shutdown.cancelled() => break,
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                failures.succeeded();
                if registry.len() >= limits.max_connections
                    && !registry.close_longest_waiting("evicted")
                {
                    // Every connection turned busy since there was room: turn this one away.
                    closed("refused");
                    continue;
                }
                let connection = registry.add();
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    router.clone(),
                    registry.clone(),
                    connection,
                    limits.clone(),
                    shutdown.clone(),
                ));
            }
            Err(err) if is_about_one_connection(&err) => {
                tracing::debug!(error = %err, "a connection failed before it was accepted");
            }
            Err(err) => {
                metrics::counter!(telemetry::HTTP_ACCEPT_ERRORS).increment(1);
                // A descriptor freed here lets the next accept succeed.
                registry.close_longest_waiting("evicted");
                tokio::time::sleep(failures.failed(&err)).await;
            }
        }
    }
    registry.drained().await;
    Ok(())
}

/// Errors that concern one incoming connection, not the listener: retry at once.
fn is_about_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn closed(reason: &'static str) {
    metrics::counter!(telemetry::HTTP_CONNECTIONS_CLOSED, "reason" => reason).increment(1);
}

/// Serves one connection until it ends, times out, is evicted, or the server shuts down.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    registry: Arc<Registry>,
    connection: Arc<Connection>,
    limits: Arc<ServerConfig>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(TrackedStream {
        inner: stream,
        connection: connection.clone(),
    });
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            connection.set_busy();
            request.extensions_mut().insert(ConnectInfo(peer));
            let answering = AnswerGuard(connection.clone());
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| {
                    axum::body::Body::new(GuardedBody {
                        inner: body,
                        _answering: answering,
                    })
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The listener keeps the time itself (see the module documentation).
    builder.header_read_timeout(None).keep_alive(true);
    // Upgrades (websockets) pass through the wake gateway's proxy.
    let served = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(served);
    let mut draining = false;
    let reason = loop {
        let deadline = connection.deadline(&limits);
        let woken = connection.wake.notified();
        tokio::select! {
            result = served.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
                break "ended";
            }
            _ = tokio::time::sleep_until(deadline) => {
                if let Some(reason) = connection.expired(&limits, Instant::now()) {
                    break reason;
                }
            }
            _ = woken => {
                if connection.evicted.load(Ordering::Acquire) {
                    break "evicted";
                }
            }
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                if connection.is_waiting() {
                    break "shutdown";
                }
                served.as_mut().graceful_shutdown();
            }
        }
    };
    closed(reason);
    registry.remove(connection.id);
}

// === Connection ===

/// Where a connection stands.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Between requests since `since`: `fresh` before its first request; `first_byte` once
    /// part of the next request has arrived.
    Waiting {
        since: Instant,
        fresh: bool,
        first_byte: Option<Instant>,
    },
    /// Handling a request (and sending its answer) since `since`.
    Busy { since: Instant },
}

/// One open connection, shared by its task, its stream and the registry.
#[derive(Debug)]
struct Connection {
    id: u64,
    phase: Mutex<Phase>,
    /// Wakes the connection's task: its phase changed, or it is evicted.
    wake: Notify,
    /// Set when the listener closes it to make room.
    evicted: AtomicBool,
    /// The registry's signal that room may have become free.
    room: Arc<Notify>,
}

// === impl Connection ===

impl Connection {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock()
    }

    fn is_waiting(&self) -> bool {
        matches!(*self.phase(), Phase::Waiting { .. })
    }

    /// When it has waited or worked too long in its present phase.
    fn deadline(&self, limits: &ServerConfig) -> Instant {
        match *self.phase() {
            Phase::Waiting {
                first_byte: Some(at),
                ..
            } => at + limits.header_read_timeout,
            Phase::Waiting {
                since, fresh: true, ..
            } => since + limits.header_read_timeout,
            Phase::Waiting { since, .. } => since + limits.idle_timeout,
            Phase::Busy { since } => since + limits.request_timeout + limits.header_read_timeout,
        }
    }

    /// Why it must close at `now`, if its deadline has passed.
    fn expired(&self, limits: &ServerConfig, now: Instant) -> Option<&'static str> {
        if now < self.deadline(limits) {
            return None;
        }
        Some(match *self.phase() {
            Phase::Waiting {
                fresh: false,
                first_byte: None,
                ..
            } => "idle_timeout",
            Phase::Waiting { .. } => "header_timeout",
            Phase::Busy { .. } => "stalled",
        })
    }

    /// Part of a request arrived.
    fn saw_bytes(&self) {
        let mut phase = self.phase();
        if let Phase::Waiting {
            first_byte: first_byte @ None,
            ..
        } = &mut *phase
        {
            *first_byte = Some(Instant::now());
            drop(phase);
            self.wake.notify_one();
        }
    }

    /// A request's headers arrived: it is being handled.
    fn set_busy(&self) {
        *self.phase() = Phase::Busy {
            since: Instant::now(),
        };
        self.wake.notify_one();
    }

    /// Its answer was sent (or abandoned): it waits for the next request.
    fn set_waiting(&self) {
        *self.phase() = Phase::Waiting {
            since: Instant::now(),
            fresh: false,
            first_byte: None,
        };
        self.wake.notify_one();
        self.room.notify_waiters();
    }
}

/// Marks the connection waiting again once the answer's body is gone (sent or dropped).
struct AnswerGuard(Arc<Connection>);

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        self.0.set_waiting();
    }
}

/// An answer's body that marks its connection waiting when it is dropped.
struct GuardedBody {
    inner: axum::body::Body,
    _answering: AnswerGuard,
}

impl HttpBody for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A TCP stream that tells its connection when bytes arrive.
struct TrackedStream {
    inner: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.saw_bytes();
        }
        result
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// === Registry ===

/// The open connections.
#[derive(Debug, Default)]
struct Registry {
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    /// Signalled when a connection ends or starts waiting: room may have become free.
    room: Arc<Notify>,
}

// === impl Registry ===

impl Registry {
    fn connections(&self) -> MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.connections.lock()
    }

    /// Registers a newly accepted connection, waiting for its first request.
    fn add(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                fresh: true,
                first_byte: None,
            }),
            wake: Notify::new(),
            evicted: AtomicBool::new(false),
            room: self.room.clone(),
        });
        let mut connections = self.connections();
        connections.insert(connection.id, connection.clone());
        metrics::gauge!(telemetry::HTTP_CONNECTIONS).set(connections.len() as f64);
        connection
    }

    fn remove(&self, id: u64) {
        let mut connections = self.connections();
        connections.remove(&id);
        metrics::gauge!(telemetry::HTTP_CONNECTIONS).set(connections.len() as f64);
        drop(connections);
        self.room.notify_waiters();
    }

    /// Open connections, counting those told to close that have not closed yet: each still
    /// holds its descriptor.
    fn len(&self) -> usize {
        self.connections().len()
    }

    /// The open connection that has waited longest for a request, if any.
    fn longest_waiting(&self) -> Option<Arc<Connection>> {
        self.connections()
            .values()
            .filter(|c| !c.evicted.load(Ordering::Acquire))
            .filter_map(|c| match *c.phase() {
                Phase::Waiting { since, .. } => Some((since, c.clone())),
                Phase::Busy { .. } => None,
            })
            .min_by_key(|(since, c)| (*since, c.id))
            .map(|(_, c)| c)
    }

    /// Closes the connection that has waited longest; `false` when every one is busy.
    fn close_longest_waiting(&self, reason: &'static str) -> bool {
        let Some(connection) = self.longest_waiting() else {
            return false;
        };
        tracing::debug!(reason, "closing the connection that waited longest");
        connection.evicted.store(true, Ordering::Release);
        connection.wake.notify_one();
        true
    }

    /// Returns once a connection may be accepted: there is a free slot, or every slot is
    /// taken and one holds a waiting connection that can be closed to make room. A connection
    /// told to close keeps its slot until it has closed, so at most one more than `max`
    /// connections are ever open.
    async fn room(&self, max: usize) {
        loop {
            let changed = self.room.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let open = self.len();
            if open < max || (open == max && self.longest_waiting().is_some()) {
                return;
            }
            changed.await;
        }
    }

    /// Returns once every connection has ended.
    async fn drained(&self) {
        loop {
            let changed = self.room.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.connections().is_empty() {
                return;
            }
            changed.await;
        }
    }
}

// === AcceptFailures ===

/// Failed accepts: the pause before the next attempt, and a quiet log (the first failure,
/// then at most one summary a minute).
#[derive(Debug, Default)]
struct AcceptFailures {
    in_a_row: u32,
    unreported: u64,
    reported_at: Option<Instant>,
}

// === impl AcceptFailures ===

impl AcceptFailures {
    /// Records a failure; returns how long to pause before accepting again.
    fn failed(&mut self, err: &io::Error) -> Duration {
        let now = Instant::now();
        self.unreported += 1;
        if self
            .reported_at
            .is_none_or(|at| now.duration_since(at) >= SUMMARY_EVERY)
        {
            tracing::warn!(
                error = %err,
                failures = self.unreported,
                "cannot accept connections: closing the longest-waiting connection and \
                 retrying with backoff (further failures are summarised once a minute)"
            );
            self.unreported = 0;
            self.reported_at = Some(now);
        }
        let pause = backoff(self.in_a_row);
        self.in_a_row = self.in_a_row.saturating_add(1);
        pause
    }

    /// Records a success: the next failure starts with a short pause again.
    fn succeeded(&mut self) {
        self.in_a_row = 0;
    }
}

/// The pause after `failures` failed accepts in a row: 10 ms, doubling, at most 1 s.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_limits() -> ServerConfig {
        let config = crate::config::Config::from_yaml(
            "server: { header_read_timeout: 2s, idle_timeout: 5s, request_timeout: 3s, max_connections: 2 }\n",
            std::path::Path::new("c.yaml"),
        )
        .unwrap();
        config.server
    }

    #[test]
    fn the_pause_after_failed_accepts_doubles_up_to_a_second() {
        assert_eq!(backoff(0), Duration::from_millis(10));
        assert_eq!(backoff(1), Duration::from_millis(20));
        assert_eq!(backoff(6), Duration::from_millis(640));
        assert_eq!(backoff(7), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_own_deadline() {
        let limits = mk_limits();
        let registry = Registry::default();
        let connection = registry.add();
        let accepted = Instant::now();
        assert_eq!(
            connection.deadline(&limits),
            accepted + limits.header_read_timeout
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            connection.expired(&limits, Instant::now()),
            Some("header_timeout")
        );

        connection.set_busy();
        assert_eq!(connection.expired(&limits, Instant::now()), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(connection.expired(&limits, Instant::now()), Some("stalled"));

        connection.set_waiting();
        let answered = Instant::now();
        assert_eq!(connection.deadline(&limits), answered + limits.idle_timeout);
        tokio::time::advance(Duration::from_secs(1)).await;
        connection.saw_bytes();
        assert_eq!(
            connection.deadline(&limits),
            Instant::now() + limits.header_read_timeout,
            "the first byte of the next request starts the header clock"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            connection.expired(&limits, Instant::now()),
            Some("header_timeout")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_told_to_close_keeps_its_slot_until_it_has_closed() {
        let registry = Registry::default();
        let first = registry.add();
        let second = registry.add();
        let ready =
            |registry: &Registry| futures::FutureExt::now_or_never(registry.room(2)).is_some();
        assert!(
            ready(&registry),
            "full, but a waiting connection can make room"
        );
        assert!(registry.close_longest_waiting("evicted"));
        let third = registry.add();
        assert!(
            !ready(&registry),
            "three are open until the first has closed"
        );
        registry.remove(first.id);
        assert!(ready(&registry));
        second.set_busy();
        third.set_busy();
        assert!(!ready(&registry), "every slot is busy");
    }

    #[tokio::test(start_paused = true)]
    async fn room_is_made_by_closing_the_connection_that_waited_longest_never_a_busy_one() {
        let registry = Registry::default();
        let oldest = registry.add();
        tokio::time::advance(Duration::from_millis(10)).await;
        let busy = registry.add();
        busy.set_busy();
        tokio::time::advance(Duration::from_millis(10)).await;
        let newest = registry.add();

        assert!(registry.close_longest_waiting("evicted"));
        assert!(oldest.evicted.load(Ordering::Acquire));
        assert_eq!(registry.len(), 3, "it holds its slot until it has closed");
        assert!(registry.close_longest_waiting("evicted"));
        assert!(newest.evicted.load(Ordering::Acquire));
        assert!(
            !registry.close_longest_waiting("evicted"),
            "a busy connection is never closed to make room"
        );
        assert!(!busy.evicted.load(Ordering::Acquire));
    }
}
