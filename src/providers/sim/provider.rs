//! [`SimProvider`]: the simulated estate behind the [`Provider`] trait, with injected faults,
//! optional persistence and counters for tests and benchmarks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::estate::{self, Estate, write_atomically};
use super::faults::Faults;
use crate::clock::Clock;
use crate::domain::Action;
use crate::providers::{Discovery, Error, Provider, Result};

/// The target named in errors about the estate as a whole.
const ESTATE: &str = "estate";

/// A [`Provider`] over an in-memory [`Estate`], timed by a [`Clock`].
pub struct SimProvider {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    faults: Mutex<Faults>,
    persistence: Option<Persistence>,
    calls: Counters,
}

/// Calls made to a [`SimProvider`], failed ones included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    /// `discover` calls.
    pub discover: u64,
    /// `apply` calls.
    pub apply: u64,
    /// `ready` calls.
    pub ready: u64,
}

#[derive(Debug, Default)]
struct Counters {
    discover: AtomicU64,
    apply: AtomicU64,
    ready: AtomicU64,
}

struct State {
    estate: Estate,
    /// Bumped on every change of the estate.
    generation: u64,
    applied: Vec<(DateTime<Utc>, Action)>,
}

struct Persistence {
    path: PathBuf,
    /// The generation on disk.
    persisted: AtomicU64,
    /// Held while writing, so that files are written one at a time, newest last.
    writing: tokio::sync::Mutex<()>,
}

/// A serialized estate waiting to be written.
struct Snapshot {
    generation: u64,
    bytes: Vec<u8>,
}

/// The provider error for an estate error during `operation` on `target`.
fn provider_error(operation: &str, target: &str, error: estate::Error) -> Error {
    let operation = operation.to_string();
    let target = target.to_string();
    match error {
        estate::Error::NotFound(_) => Error::NotFound { operation, target },
        estate::Error::WrongCapacity { .. } | estate::Error::InvalidGroupSize { .. } => {
            Error::Permanent {
                operation,
                target,
                code: "ValidationError".to_string(),
                detail: error.to_string(),
            }
        }
        other => Error::Server {
            operation,
            target,
            code: "500".to_string(),
            detail: other.to_string(),
        },
    }
}

// === impl SimProvider ===

impl SimProvider {
    /// A provider over `estate`, reading the time from `clock` and failing as `faults` decide.
    pub fn new(estate: Estate, clock: Arc<dyn Clock>, faults: Faults) -> SimProvider {
        SimProvider {
            state: Mutex::new(State {
                estate,
                generation: 0,
                applied: Vec::new(),
            }),
            clock,
            faults: Mutex::new(faults),
            persistence: None,
            calls: Counters::default(),
        }
    }

    /// Keeps the estate in the file at `path`, so that it survives the process: an existing
    /// file is loaded (its objects and their capacities win; which environment manages what is
    /// taken from the estate given to [`SimProvider::new`]), otherwise the current estate is
    /// written there. Afterwards every change is written before `apply` returns.
    pub fn with_persistence(mut self, path: impl Into<PathBuf>) -> estate::Result<SimProvider> {
        let path = path.into();
        if !self.load_stored(&path)? {
            let state = self.state.get_mut();
            state.estate.save(&path)?;
        }
        let state = self.state.get_mut();
        self.persistence = Some(Persistence {
            path,
            persisted: AtomicU64::new(state.generation),
            writing: tokio::sync::Mutex::new(()),
        });
        Ok(self)
    }

    /// Starts from the estate in the file at `path` when there is one (as
    /// [`SimProvider::with_persistence`] does) but never writes it: for a dry run.
    pub fn with_stored(mut self, path: &Path) -> estate::Result<SimProvider> {
        self.load_stored(path)?;
        Ok(self)
    }

    /// Replaces the estate with the one stored at `path`, if the file exists (its objects and
    /// capacities win; which environment manages what is kept). Returns whether it existed.
    fn load_stored(&mut self, path: &Path) -> estate::Result<bool> {
        let exists = path.try_exists().map_err(|source| estate::Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if exists {
            let state = self.state.get_mut();
            let mut loaded = Estate::load(path)?;
            loaded.adopt_management(&state.estate);
            state.estate = loaded;
        }
        Ok(exists)
    }

    /// Calls made so far, by operation.
    pub fn calls(&self) -> Calls {
        Calls {
            discover: self.calls.discover.load(Ordering::Relaxed),
            apply: self.calls.apply.load(Ordering::Relaxed),
            ready: self.calls.ready.load(Ordering::Relaxed),
        }
    }

    /// Every successful `apply` (no-ops included) with the simulated time it happened, in
    /// order.
    pub fn applied(&self) -> Vec<(DateTime<Utc>, Action)> {
        self.state.lock().applied.clone()
    }

    /// Runs `read` on the current estate, e.g. for costs or assertions.
    pub fn with_estate<R>(&self, read: impl FnOnce(&Estate) -> R) -> R {
        read(&self.state.lock().estate)
    }

    /// Serializes the estate if it has changes not yet on disk.
    fn snapshot(&self, state: &State) -> estate::Result<Option<Snapshot>> {
        let Some(persistence) = &self.persistence else {
            return Ok(None);
        };
        if state.generation <= persistence.persisted.load(Ordering::Acquire) {
            return Ok(None);
        }
        Ok(Some(Snapshot {
            generation: state.generation,
            bytes: state.estate.to_json()?,
        }))
    }

    /// Writes `snapshot` unless a newer one is already on disk.
    async fn persist(&self, snapshot: Snapshot) -> estate::Result<()> {
        let Some(persistence) = &self.persistence else {
            return Ok(());
        };
        let _writing = persistence.writing.lock().await;
        if snapshot.generation <= persistence.persisted.load(Ordering::Acquire) {
            return Ok(());
        }
        let path = persistence.path.clone();
        let write_path = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&write_path, &snapshot.bytes))
            .await
            .map_err(|join| estate::Error::Write {
                path,
                source: std::io::Error::other(join.to_string()),
            })??;
        persistence
            .persisted
            .store(snapshot.generation, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn name(&self) -> &'static str {
        "sim"
    }

    /// Advances the estate to the clock's time and returns its managed targets; writes the
    /// estate when nodes were launched, removed or joined, or earlier changes are not on disk.
    async fn discover(&self) -> Result<Discovery> {
        self.calls.discover.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let (targets, snapshot) = {
            let mut state = self.state.lock();
            if state.estate.advance(now).changed() {
                state.generation += 1;
            }
            let snapshot = self.snapshot(&state);
            (state.estate.targets(now), snapshot)
        };
        let to_error = |error| provider_error("discover", ESTATE, error);
        if let Some(snapshot) = snapshot.map_err(to_error)? {
            self.persist(snapshot).await.map_err(to_error)?;
        }
        Ok(Discovery::complete(targets))
    }

    /// Draws a fault (after the configured latency), then applies the action at the clock's
    /// time and writes the estate before returning.
    async fn apply(&self, action: &Action) -> Result<()> {
        self.calls.apply.fetch_add(1, Ordering::Relaxed);
        let target = action.target();
        let (fault, latency) = {
            let mut faults = self.faults.lock();
            (faults.draw(target), faults.latency())
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(fault) = fault {
            return Err(fault.into_error("apply", target));
        }
        let now = self.clock.now();
        let to_error = |error| provider_error("apply", target, error);
        let snapshot = {
            let mut state = self.state.lock();
            if state.estate.apply(action, now).map_err(to_error)? {
                state.generation += 1;
            }
            state.applied.push((now, action.clone()));
            self.snapshot(&state).map_err(to_error)?
        };
        if let Some(snapshot) = snapshot {
            self.persist(snapshot).await.map_err(to_error)?;
        }
        Ok(())
    }

    async fn ready(&self, target: &str) -> Result<bool> {
        self.calls.ready.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        self.state
            .lock()
            .estate
            .ready(target, now)
            .map_err(|error| provider_error("ready", target, error))
    }

    async fn spot_prices(&self) -> Result<HashMap<(String, String), f64>> {
        Ok(self.state.lock().estate.spot_prices())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use chrono::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Environment;
    use crate::domain::Capacity;
    use crate::domain::simulation::{FaultConfig, SimulationConfig};

    const GROUP: &str = "auto_scaling_group/general";
    const API: &str = "deployment/shop/api";
    const CART: &str = "deployment/shop/cart";

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("in range")
    }

    fn mk_estate() -> Estate {
        let sim: SimulationConfig = serde_saphyr::from_str(
            "
node_join_seconds: 60
node_groups:
  - { name: general, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.1,
      min: 0, max: 4, desired: 2, pods_per_node: 8 }
namespaces:
  - { name: shop, node_group: general, deployments: 4, replicas: 2 }
",
        )
        .expect("valid simulation");
        let staging = Environment {
            name: "staging".to_string(),
            schedule: "office-hours".to_string(),
            max_override: None,
            targets: serde_saphyr::from_str(
                "- kubernetes: { namespaces: [shop] }\n- aws_asg: { names: [general], region: r }",
            )
            .expect("valid targets"),
            wake: None,
        };
        Estate::from_config(&sim, [&staging], start()).expect("valid estate")
    }

    fn mk_provider(faults: FaultConfig) -> (SimProvider, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(start()));
        let provider = SimProvider::new(mk_estate(), clock.clone(), Faults::new(&faults));
        (provider, clock)
    }

    fn scale_down(target: &str) -> Action {
        Action::ScaleDown {
            target: target.to_string(),
            original: Capacity::Replicas(2),
            to: Capacity::Replicas(0),
        }
    }

    fn resize(desired: u32) -> Action {
        Action::ScaleUp {
            target: GROUP.to_string(),
            to: Capacity::Group {
                min: 0,
                max: 4,
                desired,
            },
        }
    }

    async fn capacity_of(provider: &SimProvider, id: &str) -> Capacity {
        let targets = provider.discover().await.expect("discovers").targets;
        let target = targets.into_iter().find(|t| t.id == id);
        target.map(|t| t.capacity).expect("target discovered")
    }

    #[tokio::test]
    async fn discover_follows_the_clock_as_nodes_join() {
        let (provider, clock) = mk_provider(FaultConfig::default());
        provider.apply(&resize(4)).await.expect("applies");
        clock.advance(Duration::seconds(59));
        let group =
            |targets: Vec<crate::domain::Target>| targets.into_iter().find(|t| t.id == GROUP);
        let observed = group(provider.discover().await.expect("discovers").targets);
        assert_eq!(observed.map(|t| t.ready), Some(false));
        assert!(!provider.ready(GROUP).await.expect("exists"));
        clock.advance(Duration::seconds(1));
        let observed = group(provider.discover().await.expect("discovers").targets);
        assert_eq!(observed.map(|t| t.ready), Some(true));
        assert!(provider.ready(GROUP).await.expect("exists"));
    }

    #[tokio::test]
    async fn applied_log_and_counters_record_every_call_in_order() {
        let (provider, clock) = mk_provider(FaultConfig::default());
        provider.apply(&scale_down(API)).await.expect("applies");
        clock.advance(Duration::minutes(5));
        provider
            .apply(&scale_down(API))
            .await
            .expect("no-op applies");
        provider.discover().await.expect("discovers");
        provider.ready(API).await.expect("exists");
        let applied = provider.applied();
        assert_eq!(
            applied,
            [
                (start(), scale_down(API)),
                (start() + Duration::minutes(5), scale_down(API))
            ]
        );
        let expected = Calls {
            discover: 1,
            apply: 2,
            ready: 1,
        };
        assert_eq!(provider.calls(), expected);
    }

    #[tokio::test]
    async fn a_failing_target_always_fails_with_permanent_and_changes_nothing() {
        let faults = FaultConfig {
            failing_targets: vec![CART.to_string()],
            ..FaultConfig::default()
        };
        let (provider, _clock) = mk_provider(faults);
        for _ in 0..3 {
            let error = provider.apply(&scale_down(CART)).await.expect_err("fails");
            assert!(matches!(&error, Error::Permanent { code, .. } if code == "AccessDenied"));
        }
        assert_eq!(capacity_of(&provider, CART).await, Capacity::Replicas(2));
        provider
            .apply(&scale_down(API))
            .await
            .expect("others apply");
        assert_eq!(provider.applied().len(), 1);
    }

    #[tokio::test]
    async fn with_throttle_rate_one_every_apply_is_throttled() {
        let faults = FaultConfig {
            throttle_rate: 1.0,
            ..FaultConfig::default()
        };
        let (provider, _clock) = mk_provider(faults);
        for _ in 0..10 {
            let error = provider
                .apply(&scale_down(API))
                .await
                .expect_err("throttled");
            assert!(matches!(error, Error::Throttled { .. }), "{error:?}");
        }
        assert!(provider.applied().is_empty());
        assert_eq!(provider.calls().apply, 10);
    }

    #[tokio::test]
    async fn timeouts_wait_for_the_latency_first() {
        let faults = FaultConfig {
            timeout_rate: 1.0,
            latency_ms: 20,
            ..FaultConfig::default()
        };
        let (provider, _clock) = mk_provider(faults);
        let started = Instant::now();
        let error = provider
            .apply(&scale_down(API))
            .await
            .expect_err("times out");
        assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
        assert!(started.elapsed() >= std::time::Duration::from_millis(20));
    }

    #[tokio::test]
    async fn invalid_actions_and_unknown_targets_are_reported_as_such() {
        let (provider, _clock) = mk_provider(FaultConfig::default());
        let missing = provider.apply(&scale_down("deployment/shop/nope")).await;
        assert!(
            matches!(missing, Err(Error::NotFound { .. })),
            "{missing:?}"
        );
        let wrong = provider.apply(&scale_down(GROUP)).await;
        assert!(
            matches!(&wrong, Err(Error::Permanent { code, .. }) if code == "ValidationError"),
            "{wrong:?}"
        );
        let ready = provider.ready("deployment/shop/nope").await;
        assert!(matches!(ready, Err(Error::NotFound { .. })), "{ready:?}");
    }

    #[tokio::test]
    async fn a_persisted_estate_survives_the_provider() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("estate.json");
        let clock = Arc::new(ManualClock::new(start()));
        let provider = SimProvider::new(mk_estate(), clock.clone(), Faults::default())
            .with_persistence(&path)
            .expect("fresh file");
        provider.apply(&scale_down(API)).await.expect("applies");
        drop(provider);
        let on_disk = Estate::load(&path).expect("loads");
        let api = on_disk.workload(API).map(|w| w.scaling.clone());
        assert_eq!(
            api.map(|s| (s.capacity, s.original)),
            Some((Capacity::Replicas(0), Some(Capacity::Replicas(2))))
        );
        let revived = SimProvider::new(mk_estate(), clock, Faults::default())
            .with_persistence(&path)
            .expect("loads");
        assert_eq!(capacity_of(&revived, API).await, Capacity::Replicas(0));
    }

    #[tokio::test]
    async fn discover_writes_the_estate_when_nodes_joined_and_not_when_converged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("estate.json");
        let (provider, clock) = mk_provider(FaultConfig::default());
        let provider = provider.with_persistence(&path).expect("fresh file");
        provider.apply(&resize(3)).await.expect("applies");
        clock.advance(Duration::seconds(60));
        provider.discover().await.expect("discovers");
        let on_disk = Estate::load(&path).expect("loads");
        assert_eq!(on_disk, provider.with_estate(Estate::clone));
        std::fs::remove_file(&path).expect("removes");
        clock.advance(Duration::seconds(60));
        provider.discover().await.expect("discovers");
        assert!(!path.exists(), "a converged estate is not rewritten");
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_by_the_next_call() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state_dir = dir.path().join("state");
        std::fs::create_dir(&state_dir).expect("creates");
        let path = state_dir.join("estate.json");
        let (provider, _clock) = mk_provider(FaultConfig::default());
        let provider = provider.with_persistence(&path).expect("fresh file");
        std::fs::remove_dir_all(&state_dir).expect("removes");
        let error = provider
            .apply(&scale_down(API))
            .await
            .expect_err("cannot write");
        assert!(matches!(error, Error::Server { .. }), "{error:?}");
        std::fs::create_dir(&state_dir).expect("creates");
        provider
            .apply(&scale_down(API))
            .await
            .expect("no-op applies");
        let on_disk = Estate::load(&path).expect("written on retry");
        let capacity = on_disk.workload(API).map(|w| w.scaling.capacity);
        assert_eq!(capacity, Some(Capacity::Replicas(0)));
    }

    #[tokio::test]
    async fn a_corrupt_estate_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("estate.json");
        std::fs::write(&path, "not json").expect("writes");
        let (provider, _clock) = mk_provider(FaultConfig::default());
        let error = provider.with_persistence(&path).err().expect("refused");
        assert!(error.to_string().contains("estate.json"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).expect("reads"), "not json");
    }
}
