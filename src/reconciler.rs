//! The reconcile loop: decide, plan, apply in tier order, record; then sleep until the next
//! transition, the next tick, or a trigger.
//!
//! Level-triggered: every pass reads the whole observed state and recomputes what should hold
//! now, so a restart, a missed tick or a DST gap cannot lose a transition.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rand::Rng;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::activity::Activity;
use crate::audit::{AuditEntry, AuditLog};
use crate::calendar::State;
use crate::clock::Clock;
use crate::config::{Config, ReconcilerConfig};
use crate::cost::tracker::CostTracker;
use crate::domain::{Action, Capacity, EnvironmentDecision, Target, Tier};
use crate::overrides::{self, OverrideStore};
use crate::planner::idle::Idleness;
use crate::planner::{self, ActionPlan, PlanSettings, PlannedAction, Skipped, TargetState};
use crate::providers::{self, Provider, Retries, Undiscovered};
use crate::telemetry;

/// Why a reconcile pass could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering targets failed (after retries).
    #[error("discovering targets: {0}")]
    Discover(#[source] providers::Error),
    /// Reading overrides failed.
    #[error("reading overrides: {0}")]
    Overrides(#[from] overrides::Error),
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Discover(_) => "discover",
            Error::Overrides(_) => "overrides",
        }
    }
}

/// Result type of reconciling.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How provider calls are retried: jittered exponential backoff in real time.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry.
    pub base: StdDuration,
    /// Longest delay between attempts.
    pub max: StdDuration,
}

/// Attempts of a provider call, the first included, unless told otherwise.
pub const RETRY_ATTEMPTS: u32 = 6;
/// Delay before the first retry.
pub const RETRY_BASE: StdDuration = StdDuration::from_millis(100);
/// Longest delay between attempts.
pub const RETRY_MAX: StdDuration = StdDuration::from_secs(5);
/// How soon a pass that could not see every target selection is followed by another; each
/// further such pass doubles it, up to [`DISCOVERY_RETRY_MAX`].
pub const DISCOVERY_RETRY_BASE: Duration = Duration::seconds(1);
/// The longest wait between passes that retry discovery.
pub const DISCOVERY_RETRY_MAX: Duration = Duration::seconds(30);
/// Longest wait a `Retry-After` may impose on one retry.
pub const RETRY_AFTER_CAP: StdDuration = StdDuration::from_secs(60);
/// The first readiness poll after a tier's writes; later polls double up to the configured
/// interval, so a tier that is ready at once costs no full interval.
const FIRST_READINESS_POLL: Duration = Duration::milliseconds(50);
/// Shortest real time between two ticks, so that a fast warped clock does not spin.
pub const MIN_REAL_TICK: StdDuration = StdDuration::from_millis(100);
/// How soon a pass that met a conflict is followed by another (clock time).
const REQUEUE_AFTER: Duration = Duration::seconds(1);
/// Longest real time a readiness wait lasts, whatever the clock says, unless its timeout is
/// longer (databases).
const READINESS_REAL_CAP: StdDuration = StdDuration::from_secs(600);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: RETRY_ATTEMPTS,
            base: RETRY_BASE,
            max: RETRY_MAX,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based), with ±50% jitter.
    fn delay(&self, retry: u32) -> StdDuration {
        let exponential = self
            .base
            .saturating_mul(1 << retry.saturating_sub(1).min(16));
        let capped = exponential.min(self.max);
        capped.mul_f64(rand::rng().random_range(0.5..1.5))
    }
}

/// Knobs of the reconciler. Durations are in clock time (simulated time under a warped clock).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Longest time between passes.
    pub tick: Duration,
    /// How long a tier may take to become ready before the next tier goes ahead anyway.
    pub readiness_timeout: Duration,
    /// How often readiness is polled.
    pub readiness_poll: Duration,
    /// How long the databases tier may take to become available before the next tier goes
    /// ahead anyway.
    pub database_readiness_timeout: Duration,
    /// Retries of provider calls.
    pub retry: RetryPolicy,
    /// Actions applied at once within a tier.
    pub concurrency: usize,
    /// Log the plan and change nothing.
    pub dry_run: bool,
    /// Planning knobs.
    pub plan: PlanSettings,
    /// Shortest real time between two ticks (not between a tick and a transition), so a
    /// fast warped clock does not spin.
    pub min_real_tick: StdDuration,
}

impl Settings {
    /// The settings of the configuration's `reconciler` section, with default retries.
    pub fn from_config(config: &ReconcilerConfig) -> Self {
        Settings {
            tick: config.tick,
            readiness_timeout: config.readiness_timeout,
            readiness_poll: config.readiness_poll,
            database_readiness_timeout: config.database_readiness_timeout,
            retry: RetryPolicy::default(),
            concurrency: config.concurrency,
            dry_run: false,
            plan: PlanSettings {
                enforce: config.enforce,
                ..PlanSettings::default()
            },
            min_real_tick: MIN_REAL_TICK,
        }
    }
}

impl Default for Settings {
    /// The settings of a configuration without a `reconciler` section.
    fn default() -> Self {
        Settings::from_config(&ReconcilerConfig::default())
    }
}

/// What happened to one planned action.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    /// The action, shared with the plan.
    pub planned: Arc<PlannedAction>,
    /// When it was applied (clock time).
    pub at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: u32,
    /// `None` on success, the last error otherwise (boxed: a pass keeps an outcome for each
    /// of thousands of actions, and most succeed).
    #[serde(serialize_with = "serialize_error")]
    pub error: Option<Box<providers::Error>>,
    /// Whether the target reached its new capacity within the readiness timeout.
    pub ready: bool,
    /// Whether the pass waited for the target's readiness. It does not when node capacity is
    /// the last tier of a pass: nothing waits on it, and the next pass describes it afresh.
    pub awaited: bool,
}

impl ActionOutcome {
    /// Whether the action was applied but the target did not become ready while the pass
    /// waited for it.
    pub fn late(&self) -> bool {
        self.error.is_none() && self.awaited && !self.ready
    }
}

/// Serialises an outcome's error as its message.
fn serialize_error<S: serde::Serializer>(
    error: &Option<Box<providers::Error>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.collect_str(error),
        None => serializer.serialize_none(),
    }
}

/// A target selection a pass could not see: nothing is known about its targets, so the
/// environment is degraded until a discovery reads it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unseen {
    /// The environment whose targets it selects.
    pub environment: String,
    /// The selection as the configuration writes it.
    pub selection: String,
    /// The call that failed.
    pub operation: String,
    /// Why it failed.
    #[serde(serialize_with = "serialize_display")]
    pub error: providers::Error,
    /// The first pass of the current run of passes that could not see it (clock time).
    pub since: DateTime<Utc>,
}

/// Serialises an error as its message.
fn serialize_display<S: serde::Serializer>(
    error: &providers::Error,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(error)
}

/// The result of one pass.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    /// The instant the pass decided for.
    pub at: DateTime<Utc>,
    /// Each environment's decision.
    pub decisions: Vec<EnvironmentDecision>,
    /// The plan.
    pub plan: ActionPlan,
    /// What happened to each action (empty in dry-run mode).
    pub outcomes: Vec<ActionOutcome>,
    /// Targets discovered.
    pub targets: usize,
    /// Each discovered target's desired and actual state after the pass.
    pub target_states: Vec<TargetState>,
    /// Target selections that could not be read: their targets were not seen.
    pub undiscovered: Vec<Unseen>,
    /// When the next pass should run at the latest.
    pub next_wakeup: DateTime<Utc>,
    /// Whether a conflict asks for an early re-read.
    pub requeue: bool,
    /// Whether an override changed while a tier was written or waited for: the writes not
    /// started and the rest of the plan were dropped, and a new pass follows at once.
    pub replan: bool,
    /// In dry-run mode, what each planned action would write (empty otherwise).
    pub previews: Vec<Preview>,
}

/// What a dry run would do to one target: where it stands, where it would go, the writes
/// that would take it there, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The environment of the target.
    pub environment: String,
    /// The tier it would be written in.
    pub tier: Tier,
    /// The target's id.
    pub target: String,
    /// Its capacity as discovered.
    pub current: Capacity,
    /// The capacity the action gives it.
    pub desired: Capacity,
    /// The calls that would be sent, in order (none known: the provider cannot say).
    pub writes: Vec<providers::PlannedWrite>,
    /// Why, in words.
    pub reason: String,
}

impl PassReport {
    /// Whether every target selection was read, every action succeeded and every target
    /// waited for became ready.
    pub fn converged(&self) -> bool {
        self.undiscovered.is_empty()
            && self.outcomes.iter().all(|o| o.error.is_none() && !o.late())
            && !self.requeue
            && !self.replan
    }

    /// Each selection not discovered, as (environment, selection, error).
    pub fn unseen(&self) -> impl Iterator<Item = (&str, &str, &providers::Error)> {
        self.undiscovered
            .iter()
            .map(|u| (u.environment.as_str(), u.selection.as_str(), &u.error))
    }

    /// The earliest transition of any environment's schedule or any target's own calendar.
    pub fn next_change(&self) -> Option<DateTime<Utc>> {
        self.decisions
            .iter()
            .filter_map(|d| d.next_change)
            .chain(self.plan.next_change)
            .min()
    }

    /// The targets whose actions failed, with the error.
    pub fn failures(&self) -> Vec<(&str, &providers::Error)> {
        self.outcomes
            .iter()
            .filter_map(|o| Some((o.planned.action.target(), o.error.as_deref()?)))
            .collect()
    }
}

/// What the API shows: the latest decisions and pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Whether at least one pass has completed.
    pub ready: bool,
    /// The instant of the latest pass.
    pub at: Option<DateTime<Utc>>,
    /// Each environment's latest decision.
    pub environments: Vec<EnvironmentDecision>,
    /// Targets left alone on purpose in the latest pass.
    pub skipped: Vec<Skipped>,
    /// Targets observed in the latest pass.
    pub targets: usize,
    /// Each target's desired and actual state after the latest pass.
    pub target_states: Vec<TargetState>,
    /// Failures of the latest pass as `(target, error)`.
    pub failures: Vec<(String, String)>,
    /// Target selections the latest pass could not see.
    pub degraded: Vec<Unseen>,
    /// The error of the latest pass, if it could not run.
    pub error: Option<String>,
}

/// The reconciler's status as others see it: read-only. Only the reconciler writes it.
#[derive(Debug, Clone, Default)]
pub struct SharedStatus(Arc<RwLock<Status>>);

// === impl SharedStatus ===

impl SharedStatus {
    /// The latest status.
    pub fn read(&self) -> RwLockReadGuard<'_, Status> {
        self.0.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Status> {
        self.0.write()
    }
}

/// The reconciler.
pub struct Reconciler {
    config: Arc<Config>,
    provider: Arc<dyn Provider>,
    clock: Arc<dyn Clock>,
    overrides: Arc<dyn OverrideStore>,
    audit: Option<Arc<AuditLog>>,
    cost: Option<Arc<CostTracker>>,
    settings: Settings,
    status: SharedStatus,
    shutdown: CancellationToken,
    trigger: Arc<Notify>,
    target_gauges: Mutex<HashMap<String, bool>>,
    /// Since when each (environment, selection) has not been seen, while it is not.
    unseen_since: Mutex<HashMap<(String, String), DateTime<Utc>>>,
    /// Traffic per environment, for sleep when idle; `None` counts nothing.
    activity: Option<Arc<Activity>>,
    /// The environments asleep because idle after the latest pass.
    idle: Mutex<HashSet<String>>,
}

// === impl Reconciler ===

impl Reconciler {
    /// A reconciler over `provider`, deciding with `config` and `overrides` at `clock` time.
    pub fn new(
        config: Arc<Config>,
        provider: Arc<dyn Provider>,
        clock: Arc<dyn Clock>,
        overrides: Arc<dyn OverrideStore>,
        settings: Settings,
    ) -> Self {
        Reconciler {
            config,
            provider,
            clock,
            overrides,
            audit: None,
            cost: None,
            settings,
            status: SharedStatus::default(),
            shutdown: CancellationToken::new(),
            trigger: Arc::new(Notify::new()),
            target_gauges: Mutex::default(),
            unseen_since: Mutex::default(),
            activity: None,
            idle: Mutex::default(),
        }
    }

    /// Sends environments with `wake.idle_after` to sleep when `activity` shows no traffic
    /// for that long, and times their wakes until ready.
    pub fn with_activity(mut self, activity: Arc<Activity>) -> Self {
        self.activity = Some(activity);
        self
    }

    /// Records every action in `audit`.
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Keeps the cost books from every observation.
    pub fn with_cost(mut self, cost: Arc<CostTracker>) -> Self {
        self.cost = Some(cost);
        self
    }

    /// Stops starting new work when `shutdown` is cancelled.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The status the API reads.
    pub fn status(&self) -> SharedStatus {
        self.status.clone()
    }

    /// Marks this replica ready while another one acts: it runs no pass of its own, but
    /// serves the state the replicas share.
    pub fn stand_by(&self) {
        self.status.write().ready = true;
    }

    /// Wakes the loop at once (an override changed), ends a readiness wait early, and
    /// drops the writes of a tier that have not started.
    pub fn trigger(&self) -> Arc<Notify> {
        self.trigger.clone()
    }

    /// Uses `trigger` as the wake-up signal (shared with an override store's watch).
    pub fn with_trigger(mut self, trigger: Arc<Notify>) -> Self {
        self.trigger = trigger;
        self
    }

    /// Lets the provider finish its background work (Events) for at most `timeout`.
    pub async fn settle(&self, timeout: StdDuration) {
        self.provider.settle(timeout).await;
    }

    /// The clock the reconciler decides with.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Runs passes until shutdown: after each, sleeps until the next transition, the next
    /// tick or a trigger, whichever comes first.
    pub async fn run(&self) {
        let mut blind_passes = 0;
        while !self.shutdown.is_cancelled() {
            let result = self.reconcile().await;
            let blind = match &result {
                Ok(report) => !report.undiscovered.is_empty(),
                Err(err) => matches!(err, Error::Discover(_)),
            };
            blind_passes = if blind { blind_passes + 1 } else { 0 };
            let next_change = match result {
                Ok(report) if report.replan => Some(self.clock.now()),
                Ok(report) if report.requeue => Some(self.clock.now() + REQUEUE_AFTER),
                Ok(report) => report.next_change(),
                Err(_) => None,
            };
            let next_change = if blind {
                metrics::counter!(telemetry::DISCOVERY_RETRIES).increment(1);
                let retry_at = self.clock.now() + discovery_retry_delay(blind_passes);
                Some(next_change.map_or(retry_at, |at| at.min(retry_at)))
            } else {
                next_change
            };
            let tick_at = self.clock.now() + self.settings.tick;
            let until_tick = self
                .clock
                .real_time_until(tick_at)
                .max(self.settings.min_real_tick);
            let (wake_at, sleep) = match next_change {
                Some(at) if at <= tick_at => (at, self.clock.real_time_until(at)),
                Some(at) => (tick_at, until_tick.min(self.clock.real_time_until(at))),
                None => (tick_at, until_tick),
            };
            if sleep.is_zero() {
                // A clock that does not run by itself: jump, but let other tasks in.
                self.clock.advance_to(wake_at);
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => self.clock.advance_to(wake_at),
                _ = self.trigger.notified() => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
        tracing::info!("reconciler stopped");
    }

    /// One pass: decide, discover, plan, apply in tier order, record.
    pub async fn reconcile(&self) -> Result<PassReport> {
        let started = Instant::now();
        let result = self.pass().await;
        metrics::histogram!(telemetry::RECONCILE_DURATION).record(started.elapsed().as_secs_f64());
        let label = match &result {
            Ok(report) if report.converged() => "converged",
            Ok(_) => "partial",
            Err(err) => err.metric_label(),
        };
        metrics::counter!(telemetry::RECONCILES, "result" => label).increment(1);
        if let Err(Error::Discover(err)) = &result {
            // Nothing was seen: every environment is blind.
            let everything: Vec<Undiscovered> = self
                .config
                .environments
                .keys()
                .map(|environment| Undiscovered {
                    environment: environment.clone(),
                    selection: "every target".to_string(),
                    error: err.clone(),
                })
                .collect();
            let unseen = self.unseen(self.clock.now(), &everything);
            self.status.write().degraded = unseen;
        }
        let mut status = self.status.write();
        match &result {
            Ok(report) => {
                *status = Status {
                    ready: true,
                    at: Some(report.at),
                    environments: report.decisions.clone(),
                    skipped: report.plan.skipped.clone(),
                    targets: report.targets,
                    target_states: report.target_states.clone(),
                    failures: report
                        .failures()
                        .into_iter()
                        .map(|(t, e)| (t.to_string(), e.to_string()))
                        .collect(),
                    degraded: report.undiscovered.clone(),
                    error: None,
                };
            }
            Err(err) => {
                tracing::warn!(error = %err, "reconcile pass failed");
                status.error = Some(err.to_string());
            }
        }
        result
    }

    async fn pass(&self) -> Result<PassReport> {
        let now = self.clock.now();
        let overrides = self.overrides.list().await?;
        let decisions: Vec<EnvironmentDecision> = self
            .config
            .environments
            .values()
            .map(|env| decide(&self.config, env, &overrides, self.activity.as_deref(), now))
            .collect();
        self.record_decisions(&decisions);
        self.record_idleness(&decisions);
        let (discovery, _) = self
            .with_retry("discover", None, || self.provider.discover())
            .await
            .map_err(|(err, _)| Error::Discover(err))?;
        let mut targets = discovery.targets;
        let undiscovered = self.unseen(now, &discovery.undiscovered);
        for unseen in &undiscovered {
            tracing::warn!(
                environment = %unseen.environment,
                selection = %unseen.selection,
                error = %unseen.error,
                since = %unseen.since,
                "targets not discovered: the pass is not converged"
            );
        }
        self.record_targets(&targets);
        if let Some(cost) = &self.cost {
            self.refresh_spot_prices(cost).await;
            cost.observe(now, &decisions, &targets).await;
        }
        let by_name: HashMap<String, EnvironmentDecision> = decisions
            .iter()
            .map(|d| (d.environment.clone(), d.clone()))
            .collect();
        let plan = planner::plan_actions(now, &by_name, &targets, self.settings.plan);
        self.record_skipped(&plan.skipped);
        let tick_at = now + self.settings.tick;
        let mut report = PassReport {
            at: now,
            decisions,
            outcomes: Vec::new(),
            targets: targets.len(),
            target_states: planner::target_states(now, &by_name, &targets),
            undiscovered,
            next_wakeup: tick_at,
            requeue: false,
            replan: false,
            previews: Vec::new(),
            plan,
        };
        report.next_wakeup = report.next_change().map_or(tick_at, |at| at.min(tick_at));
        if self.settings.dry_run {
            report.previews = self.preview(&report.plan.actions);
            for preview in &report.previews {
                tracing::info!(
                    environment = %preview.environment,
                    target = %preview.target,
                    before = %preview.current,
                    after = %preview.desired,
                    reason = %preview.reason,
                    "dry run: would apply"
                );
            }
            return Ok(report);
        }
        let phases = phases(&report.plan.actions);
        let last = phases.len().saturating_sub(1);
        for (index, phase) in phases.iter().enumerate() {
            if self.shutdown.is_cancelled() {
                tracing::info!("shutdown requested: not starting the next tier");
                break;
            }
            let wait = awaits_readiness(phase, index == last);
            let (outcomes, interrupted) = self.execute_phase(phase, wait).await;
            report.requeue |= outcomes.iter().any(|o| {
                o.error
                    .as_deref()
                    .is_some_and(providers::Error::is_conflict)
            });
            if report.outcomes.is_empty() {
                // The first phase's outcomes are taken as they are, not copied.
                report.outcomes = outcomes;
            } else {
                report.outcomes.extend(outcomes);
            }
            if interrupted {
                tracing::info!("an override changed during the tier: planning again");
                // The loop starts the next pass at once.
                report.replan = true;
                break;
            }
        }
        if !report.outcomes.is_empty() {
            // Capacity changed: book the new rates from the moment the actions ended, from
            // what the pass applied (the next pass's discovery corrects any difference).
            apply_outcomes(&mut targets, &report.outcomes);
            // The first states go before the new ones are made: at 10,000 targets each list
            // is megabytes.
            drop(std::mem::take(&mut report.target_states));
            report.target_states = planner::target_states(now, &by_name, &targets);
            if let Some(cost) = &self.cost {
                cost.observe(self.clock.now(), &report.decisions, &targets)
                    .await;
            }
        }
        self.record_wakes_ready(&report);
        Ok(report)
    }

    /// Counts each environment that turned idle since the previous pass.
    fn record_idleness(&self, decisions: &[EnvironmentDecision]) {
        let mut idle = self.idle.lock();
        for decision in decisions {
            let environment = &decision.environment;
            if decision.idle_since.is_some() {
                if idle.insert(environment.clone()) {
                    metrics::counter!(telemetry::IDLE_SLEEPS, "environment" => environment.clone())
                        .increment(1);
                    tracing::info!(%environment, reason = %decision.reason, "idle: going to sleep early");
                }
            } else {
                idle.remove(environment);
            }
        }
    }

    /// Observes the time to ready of each environment woken on request whose targets are
    /// all up after this pass.
    fn record_wakes_ready(&self, report: &PassReport) {
        let Some(activity) = &self.activity else {
            return;
        };
        for decision in &report.decisions {
            let environment = &decision.environment;
            let all_up = report
                .target_states
                .iter()
                .filter(|t| &t.environment == environment)
                .all(|t| t.actual == State::Up);
            if decision.state == State::Up && all_up {
                activity.ready(environment, self.clock.now());
            }
        }
    }

    /// What each planned action would write, in the plan's order, from what was discovered.
    fn preview(&self, planned: &[Arc<PlannedAction>]) -> Vec<Preview> {
        planned
            .iter()
            .map(|planned| {
                let target = planned.action.target();
                let desired = match &planned.action {
                    Action::ScaleDown { to, .. } | Action::ScaleUp { to, .. } => *to,
                };
                Preview {
                    environment: planned.environment.to_string(),
                    tier: planned.tier,
                    target: target.to_string(),
                    current: planned.before,
                    desired,
                    writes: self.provider.preview(&planned.action),
                    reason: planned.reason.to_string(),
                }
            })
            .collect()
    }

    /// Hands the provider's spot prices for what this pass discovered to the cost model.
    /// Providers cache them, so most passes make no call for them.
    async fn refresh_spot_prices(&self, cost: &CostTracker) {
        match self.provider.spot_prices().await {
            Ok(prices) => cost.set_spot_prices(prices),
            Err(err) => tracing::warn!(error = %err, "spot prices unavailable; using the discount"),
        }
    }

    /// Applies one tier's actions concurrently, then, when `wait`, waits for them to be
    /// ready. Returns the outcomes and whether the wait ended early because an override
    /// changed.
    async fn execute_phase(
        &self,
        phase: &[Arc<PlannedAction>],
        wait: bool,
    ) -> (Vec<ActionOutcome>, bool) {
        let (mut outcomes, preempted) = self.apply_all(phase).await;
        outcomes.sort_by(|a, b| a.planned.action.target().cmp(b.planned.action.target()));
        let timeout = if phase.iter().any(|planned| planned.tier == Tier::Databases) {
            self.settings.database_readiness_timeout
        } else {
            self.settings.readiness_timeout
        };
        let interrupted = preempted || (wait && self.await_readiness(&mut outcomes, timeout).await);
        self.record_outcomes(&outcomes).await;
        (outcomes, interrupted)
    }

    /// Applies `phase` with up to `concurrency` actions in flight. When the trigger fires (an
    /// override changed), actions not started yet are dropped from the pass: the ones in
    /// flight finish, and the caller plans again at once. Returns the outcomes of the actions
    /// started and whether the trigger cut the phase short.
    async fn apply_all(&self, phase: &[Arc<PlannedAction>]) -> (Vec<ActionOutcome>, bool) {
        let preempt = CancellationToken::new();
        // The actions' futures are made as places free up, not all at once: a phase of
        // 10,000 actions keeps `concurrency` of them in memory.
        // (By index: a closure over `&PlannedAction` makes the future not provably `Send`.)
        let preempted = &preempt;
        let applies = (0..phase.len()).map(move |i| self.apply_unless(preempted, &phase[i]));
        let applies = futures::stream::iter(applies)
            .buffer_unordered(self.settings.concurrency.max(1))
            .filter_map(futures::future::ready)
            .fold(Vec::with_capacity(phase.len()), |mut outcomes, outcome| {
                outcomes.push(outcome);
                futures::future::ready(outcomes)
            });
        tokio::pin!(applies);
        let outcomes = tokio::select! {
            biased;
            () = self.trigger.notified() => {
                preempt.cancel();
                let outcomes = applies.await;
                tracing::info!(
                    applied = outcomes.len(),
                    dropped = phase.len() - outcomes.len(),
                    "an override changed while writes were pending: planning again"
                );
                outcomes
            }
            outcomes = &mut applies => outcomes,
        };
        (outcomes, preempt.is_cancelled())
    }

    /// Applies `planned` unless `preempt` is cancelled before it starts.
    async fn apply_unless(
        &self,
        preempt: &CancellationToken,
        planned: &Arc<PlannedAction>,
    ) -> Option<ActionOutcome> {
        if preempt.is_cancelled() {
            return None;
        }
        Some(self.apply_one(planned).await)
    }

    async fn apply_one(&self, planned: &Arc<PlannedAction>) -> ActionOutcome {
        let at = self.clock.now();
        let target = planned.action.target();
        let result = self
            .with_retry("apply", Some(target), || {
                self.provider.apply(&planned.action)
            })
            .await;
        let (attempts, error) = match result {
            Ok(((), attempts)) => (attempts, None),
            Err((err, attempts)) => (attempts, Some(err)),
        };
        let after = match &planned.action {
            Action::ScaleDown { to, .. } | Action::ScaleUp { to, .. } => *to,
        };
        match &error {
            None => tracing::info!(
                environment = %planned.environment,
                target,
                direction = planned.action.direction(),
                tier = ?planned.tier,
                before = %planned.before,
                after = %after,
                reason = %planned.reason,
                outcome = "ok",
                attempts,
                "scaled"
            ),
            Some(err) => tracing::warn!(
                environment = %planned.environment,
                target,
                direction = planned.action.direction(),
                before = %planned.before,
                after = %after,
                reason = %planned.reason,
                outcome = "failed",
                attempts,
                error = %err,
                "scale action failed"
            ),
        }
        ActionOutcome {
            planned: Arc::clone(planned),
            at,
            attempts,
            error: error.map(Box::new),
            ready: false,
            awaited: false,
        }
    }

    /// Polls readiness of the successfully applied targets, all of them in one batched
    /// call per poll, until all are ready, `timeout` (clock time) passes, or the trigger
    /// fires (an override changed); returns whether the trigger ended the wait.
    async fn await_readiness(&self, outcomes: &mut [ActionOutcome], timeout: Duration) -> bool {
        let deadline = self.clock.now() + timeout;
        let real_cap =
            Instant::now() + READINESS_REAL_CAP.max(timeout.to_std().unwrap_or_default());
        for outcome in outcomes.iter_mut().filter(|o| o.error.is_none()) {
            outcome.awaited = true;
        }
        let mut interval = FIRST_READINESS_POLL.min(self.settings.readiness_poll);
        loop {
            let mut pending: Vec<&mut ActionOutcome> = outcomes
                .iter_mut()
                .filter(|o| o.error.is_none() && !o.ready)
                .collect();
            let ids: Vec<String> = pending
                .iter()
                .map(|o| o.planned.action.target().to_string())
                .collect();
            for (outcome, ready) in pending.iter_mut().zip(self.provider.ready_many(&ids).await) {
                outcome.ready = ready;
            }
            let waiting = outcomes.iter().any(|o| o.error.is_none() && !o.ready);
            if !waiting
                || self.clock.now() >= deadline
                || Instant::now() >= real_cap
                || self.shutdown.is_cancelled()
            {
                if waiting {
                    tracing::warn!("readiness timeout: going ahead with the next tier");
                }
                return false;
            }
            let poll_at = self.clock.now() + interval;
            interval = (interval * 2).min(self.settings.readiness_poll);
            let sleep = self.clock.real_time_until(poll_at);
            let triggered = tokio::select! {
                biased;
                _ = self.trigger.notified() => true,
                _ = tokio::time::sleep(sleep), if !sleep.is_zero() => false,
                _ = tokio::task::yield_now(), if sleep.is_zero() => false,
            };
            if triggered {
                return true;
            }
            self.clock.advance_to(poll_at);
        }
    }

    /// Calls `call` about `target` (`None`: discovery) until it succeeds, fails for good, or
    /// runs out of attempts. Only failures the provider leaves to its caller are retried
    /// ([`Retries::ByCaller`]); what may be retried is [`providers::Error::is_retryable`]'s to
    /// say.
    async fn with_retry<T, F, Fut>(
        &self,
        operation: &str,
        target: Option<&str>,
        mut call: F,
    ) -> std::result::Result<(T, u32), (providers::Error, u32)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = providers::Result<T>>,
    {
        let provider = self.provider.name();
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok((value, attempt)),
                Err(err) => {
                    metrics::counter!(
                        telemetry::PROVIDER_ERRORS,
                        "provider" => provider,
                        "operation" => operation.to_string(),
                        "code" => err.metric_label()
                    )
                    .increment(1);
                    let retry = err.is_retryable()
                        && self.provider.retries(target) == Retries::ByCaller
                        && attempt < self.settings.retry.attempts
                        && !self.shutdown.is_cancelled();
                    if !retry {
                        return Err((err, attempt));
                    }
                    tracing::debug!(
                        target = target.unwrap_or("*"),
                        operation,
                        attempt,
                        error = %err,
                        "retrying"
                    );
                    metrics::counter!(
                        telemetry::PROVIDER_RETRIES,
                        "provider" => provider,
                        "operation" => operation.to_string()
                    )
                    .increment(1);
                    let delay = self.settings.retry.delay(attempt);
                    // A wait the API asked for is honoured, within reason.
                    let asked = err.retry_after().map(|asked| asked.min(RETRY_AFTER_CAP));
                    tokio::time::sleep(asked.map_or(delay, |asked| asked.max(delay))).await;
                    attempt += 1;
                }
            }
        }
    }

    /// The selections in `undiscovered` with the instant each was first unseen, remembering
    /// it while they stay unseen; sets each environment's degraded gauge.
    fn unseen(&self, now: DateTime<Utc>, undiscovered: &[Undiscovered]) -> Vec<Unseen> {
        let mut since = self.unseen_since.lock();
        let keys: Vec<(String, String)> = undiscovered
            .iter()
            .map(|u| (u.environment.clone(), u.selection.clone()))
            .collect();
        since.retain(|key, _| keys.contains(key));
        let unseen: Vec<Unseen> = undiscovered
            .iter()
            .zip(keys)
            .map(|(u, key)| Unseen {
                environment: u.environment.clone(),
                selection: u.selection.clone(),
                operation: u.error.operation().to_string(),
                error: u.error.clone(),
                since: *since.entry(key).or_insert(now),
            })
            .collect();
        for environment in self.config.environments.keys() {
            let degraded = unseen.iter().any(|u| &u.environment == environment);
            metrics::gauge!(telemetry::ENVIRONMENT_DEGRADED, "environment" => environment.clone())
                .set(if degraded { 1.0 } else { 0.0 });
        }
        unseen
    }

    fn record_decisions(&self, decisions: &[EnvironmentDecision]) {
        for decision in decisions {
            let env = decision.environment.clone();
            metrics::gauge!(telemetry::ENVIRONMENT_UP, "environment" => env.clone()).set(
                if decision.state == State::Up {
                    1.0
                } else {
                    0.0
                },
            );
            metrics::gauge!(telemetry::OVERRIDE_ACTIVE, "environment" => env.clone()).set(
                if decision.override_id.is_some() {
                    1.0
                } else {
                    0.0
                },
            );
            if let Some(next) = decision.next_change {
                metrics::gauge!(telemetry::NEXT_TRANSITION, "environment" => env)
                    .set(next.timestamp() as f64);
            }
        }
    }

    /// Updates per-target gauges, touching only the ones whose value changed.
    fn record_targets(&self, targets: &[Target]) {
        let mut known = self.target_gauges.lock();
        for target in targets {
            let up = target.original.is_none();
            if known.get(&target.id) == Some(&up) {
                continue;
            }
            known.insert(target.id.clone(), up);
            metrics::gauge!(
                telemetry::TARGET_UP,
                "environment" => target.environment.clone(),
                "target" => target.id.clone(),
                "kind" => target.kind.as_str()
            )
            .set(if up { 1.0 } else { 0.0 });
        }
    }

    fn record_skipped(&self, skipped: &[Skipped]) {
        let zero = || -> HashMap<&str, f64> {
            self.config
                .environments
                .keys()
                .map(|name| (name.as_str(), 0.0))
                .collect()
        };
        let (mut implicit, mut unusable) = (zero(), zero());
        for skip in skipped {
            let counts = if skip.implicit_override {
                &mut implicit
            } else if skip.unusable {
                &mut unusable
            } else {
                continue;
            };
            *counts.entry(skip.environment.as_str()).or_default() += 1.0;
        }
        for (gauge, counts) in [
            (telemetry::IMPLICIT_OVERRIDES, implicit),
            (telemetry::UNUSABLE_TARGETS, unusable),
        ] {
            for (environment, count) in counts {
                metrics::gauge!(gauge, "environment" => environment.to_string()).set(count);
            }
        }
    }

    async fn record_outcomes(&self, outcomes: &[ActionOutcome]) {
        for outcome in outcomes {
            let result = if outcome.error.is_some() {
                "error"
            } else {
                "ok"
            };
            metrics::counter!(
                telemetry::TRANSITIONS,
                "direction" => outcome.planned.action.direction(),
                "result" => result
            )
            .increment(1);
        }
        let Some(audit) = &self.audit else { return };
        let entries = outcomes.iter().map(|outcome| {
            let (event, before, after) = match &outcome.planned.action {
                Action::ScaleDown { original, to, .. } => {
                    ("scale_down", original.to_string(), to.to_string())
                }
                Action::ScaleUp { to, .. } => ("scale_up", "down".to_string(), to.to_string()),
            };
            AuditEntry {
                at: outcome.at,
                actor: "curfew".into(),
                event: event.into(),
                environment: Arc::clone(&outcome.planned.environment).into(),
                target: Some(outcome.planned.action.target().to_string()),
                before: Some(before.into()),
                after: Some(after.into()),
                reason: Arc::clone(&outcome.planned.reason).into(),
                result: outcome
                    .error
                    .as_ref()
                    .map_or_else(|| "ok".into(), |error| error.to_string().into()),
            }
        });
        if let Err(err) = audit.record(entries).await {
            tracing::error!(error = %err, "cannot write the audit log");
        }
    }
}

/// How long to wait before pass number `blind` (1-based) of a run of passes that could not
/// see every target selection: one second, doubling, at most [`DISCOVERY_RETRY_MAX`].
/// The decision for `env` at `now`: its calendar and the overrides, then idleness when the
/// environment sleeps when idle and `activity` records its traffic.
pub fn decide(
    config: &Config,
    env: &crate::config::Environment,
    overrides: &[crate::domain::Override],
    activity: Option<&Activity>,
    now: DateTime<Utc>,
) -> EnvironmentDecision {
    let schedule = config.schedule_of(env);
    let decision = planner::decide_environment(schedule, &env.name, overrides, now);
    let idle_after = env
        .wake
        .as_ref()
        .and_then(|wake| wake.idle.as_ref())
        .map(|idle| idle.after);
    match (idle_after, activity) {
        (Some(after), Some(activity)) => {
            let idleness = Idleness {
                after,
                last_activity: activity.last(&env.name),
            };
            planner::idle::apply(decision, schedule, overrides, idleness, now)
        }
        _ => decision,
    }
}

fn discovery_retry_delay(blind: u32) -> Duration {
    let doubled = DISCOVERY_RETRY_BASE * (1 << blind.saturating_sub(1).min(5));
    doubled.min(DISCOVERY_RETRY_MAX)
}

/// Brings the discovered `targets` to how they run once the successful actions of
/// `outcomes` have taken effect, in place.
fn apply_outcomes(targets: &mut [Target], outcomes: &[ActionOutcome]) {
    let applied: HashMap<&str, &Action> = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| (o.planned.action.target(), &o.planned.action))
        .collect();
    for target in targets {
        if let Some(action) = applied.get(target.id.as_str()) {
            *target = target.after(action);
        }
    }
}

/// Whether a pass waits for a phase's targets to be ready: always when another tier follows;
/// for the last phase only when it is a Kubernetes tier. Node capacity and databases that
/// nothing follows are not waited for, since every pass describes them afresh; a Kubernetes
/// tier is, since the next pass plans from watch caches that must first have seen curfew's
/// writes. Databases being stopped are never waited for: nothing needs them stopped, and
/// stopping takes minutes (a waking environment's phases may follow).
fn awaits_readiness(phase: &[Arc<PlannedAction>], last: bool) -> bool {
    let stopping_databases = phase.iter().all(|planned| {
        planned.tier == Tier::Databases && matches!(planned.action, Action::ScaleDown { .. })
    });
    if stopping_databases {
        return false;
    }
    !last
        || phase
            .iter()
            .any(|planned| !matches!(planned.tier, Tier::Nodes | Tier::Databases))
}

/// Splits ordered actions into phases, one per direction and tier: runs of `actions`, not
/// copies.
fn phases(actions: &[Arc<PlannedAction>]) -> Vec<&[Arc<PlannedAction>]> {
    actions
        .chunk_by(|a, b| (a.action.direction(), a.tier) == (b.action.direction(), b.tier))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Footprint, Lifecycle, testing::mk_group_target};

    fn group(desired: u32) -> Capacity {
        Capacity::Group {
            min: 0,
            max: 10,
            desired,
        }
    }

    fn throttled(target: &str) -> providers::Error {
        providers::Error::Throttled {
            operation: "apply".into(),
            target: target.into(),
            detail: "Rate exceeded".into(),
            retry_after: None,
        }
    }

    fn mk_outcome(action: Action, error: Option<providers::Error>) -> ActionOutcome {
        ActionOutcome {
            planned: Arc::new(PlannedAction {
                action,
                tier: Tier::Nodes,
                environment: "staging".into(),
                before: Capacity::Replicas(1),
                reason: "test".into(),
            }),
            at: DateTime::<Utc>::MIN_UTC,
            attempts: 1,
            error: error.map(Box::new),
            ready: false,
            awaited: false,
        }
    }

    fn instances(target: &Target) -> u32 {
        match target.footprint {
            Footprint::Instances { count, .. } => count,
            _ => panic!("not instances: {:?}", target.footprint),
        }
    }

    #[test]
    fn the_cost_view_after_a_pass_holds_the_applied_capacities_of_successful_actions() {
        let parked = mk_group_target(3, None, Lifecycle::OnDemand, "eu-central-1");
        let failed = Target {
            id: "auto_scaling_group/other".into(),
            ..parked.clone()
        };
        let untouched = Target {
            id: "auto_scaling_group/quiet".into(),
            ..parked.clone()
        };
        let down = |target: &Target| Action::ScaleDown {
            target: target.id.clone(),
            original: group(3),
            to: group(0),
        };
        let outcomes = [
            mk_outcome(down(&parked), None),
            mk_outcome(down(&failed), Some(throttled(&failed.id))),
        ];

        let mut view = [parked, failed.clone(), untouched.clone()];
        apply_outcomes(&mut view, &outcomes);

        assert_eq!(view[0].capacity, group(0));
        assert_eq!(view[0].original, Some(group(3)));
        assert_eq!(instances(&view[0]), 0);
        assert_eq!(view[1], failed, "a failed action changed nothing");
        assert_eq!(view[2], untouched);

        let mut woken = [view[0].clone()];
        apply_outcomes(
            &mut woken,
            &[mk_outcome(
                Action::ScaleUp {
                    target: view[0].id.clone(),
                    to: group(3),
                },
                None,
            )],
        );
        assert_eq!(woken[0].capacity, group(3));
        assert_eq!(woken[0].original, None);
        assert_eq!(instances(&woken[0]), 3);
    }

    #[test]
    fn phases_are_the_runs_of_one_direction_and_tier_in_plan_order() {
        let planned = |target: &str, tier: Tier, up: bool| {
            Arc::new(PlannedAction {
                action: if up {
                    Action::ScaleUp {
                        target: target.into(),
                        to: Capacity::Replicas(1),
                    }
                } else {
                    Action::ScaleDown {
                        target: target.into(),
                        original: Capacity::Replicas(1),
                        to: Capacity::Replicas(0),
                    }
                },
                tier,
                environment: "staging".into(),
                before: Capacity::Replicas(1),
                reason: "test".into(),
            })
        };
        let actions = [
            planned("deployment/a/web", Tier::Workloads, false),
            planned("deployment/a/api", Tier::Workloads, false),
            planned("stateful_set/a/db", Tier::Stateful, false),
            planned("deployment/b/web", Tier::Workloads, true),
            planned("deployment/b/api", Tier::Workloads, true),
        ];
        let targets: Vec<Vec<&str>> = phases(&actions)
            .iter()
            .map(|phase| phase.iter().map(|p| p.action.target()).collect())
            .collect();
        assert_eq!(
            targets,
            [
                vec!["deployment/a/web", "deployment/a/api"],
                vec!["stateful_set/a/db"],
                vec!["deployment/b/web", "deployment/b/api"],
            ]
        );
        assert!(phases(&[]).is_empty());
    }

    #[test]
    fn discovery_is_retried_after_one_second_doubling_up_to_half_a_minute() {
        let delays: Vec<i64> = (1..=8)
            .map(|n| discovery_retry_delay(n).num_seconds())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn starting_databases_are_waited_for_and_stopping_ones_never() {
        let database = |action| {
            Arc::new(PlannedAction {
                action,
                tier: Tier::Databases,
                environment: "staging".into(),
                before: Capacity::Running(false),
                reason: "test".into(),
            })
        };
        let start = [database(Action::ScaleUp {
            target: "db_cluster/eu-central-1/orders".into(),
            to: Capacity::Running(true),
        })];
        let stop = [database(Action::ScaleDown {
            target: "db_cluster/eu-central-1/orders".into(),
            original: Capacity::Running(true),
            to: Capacity::Running(false),
        })];
        assert!(awaits_readiness(&start, false), "node groups wait for them");
        assert!(!awaits_readiness(&start, true), "nothing follows them");
        assert!(
            !awaits_readiness(&stop, false),
            "another environment may be waking"
        );
        assert!(!awaits_readiness(&stop, true));
    }

    #[test]
    fn an_unawaited_applied_action_is_not_late_and_an_awaited_unready_one_is() {
        let action = Action::ScaleUp {
            target: "auto_scaling_group/nodes".into(),
            to: group(3),
        };
        let unawaited = mk_outcome(action.clone(), None);
        let late = ActionOutcome {
            awaited: true,
            ..mk_outcome(action.clone(), None)
        };
        let failed = mk_outcome(action, Some(throttled("auto_scaling_group/nodes")));
        assert!(!unawaited.late());
        assert!(late.late());
        assert!(!failed.late(), "a failure is a failure, not lateness");
    }
}
