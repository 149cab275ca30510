//! Keeping the books while the service runs: rates from every observation, the ledger
//! integrated over time and persisted, and the cost metrics.
//!
//! The ledger is the document `ledger.json` in a [`DocumentStore`] (the state directory, or
//! the ConfigMap `curfew-ledger` shared by the replicas). Only the acting replica writes it:
//! whenever an environment's rates change, and otherwise at most every 30 s. A new leader
//! reloads it on taking over and accounts the time since the last write at the rates written,
//! so a failover loses no time from the books.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::ledger::{Ledger, Rates, Totals};
use super::model::{CostModel, EnvironmentCost, TargetCost};
use crate::calendar::State;
use crate::domain::{EnvironmentDecision, Target};
use crate::state::versioned::{self, Current};
use crate::state::{self, DocumentStore, StateDir};
use crate::telemetry;

const LEDGER_FILE: &str = "ledger.json";
/// The ledger is written at most this often (and on shutdown).
const SAVE_EVERY: StdDuration = StdDuration::from_secs(30);
/// A ledger write that keeps meeting newer versions gives up after this many attempts.
const WRITE_ATTEMPTS: usize = 3;

/// An environment's cost as the API and the status page show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EnvironmentCostView {
    /// Dollars per hour now.
    pub per_hour: f64,
    /// Dollars per hour if always on.
    pub always_on_per_hour: f64,
    /// This month so far (UTC).
    pub month_to_date: Totals,
}

/// Cost bookkeeping for a running service.
#[derive(Debug)]
pub struct CostTracker {
    model: RwLock<CostModel>,
    ledger: Mutex<Ledger>,
    store: Option<Arc<dyn DocumentStore>>,
    saved: tokio::sync::Mutex<Saved>,
    target_gauges: Mutex<HashMap<String, f64>>,
    view: RwLock<BTreeMap<String, EnvironmentCostView>>,
}

// === impl CostTracker ===

impl CostTracker {
    /// A tracker over `model`, keeping its ledger in `store` (read now; a corrupt file is an
    /// error) or only in memory.
    pub fn new(model: CostModel, store: Option<StateDir>) -> state::Result<Self> {
        let ledger = match &store {
            Some(dir) => dir.load(LEDGER_FILE)?,
            None => Ledger::default(),
        };
        let store = store.map(|dir| Arc::new(dir) as Arc<dyn DocumentStore>);
        Ok(Self::with_ledger(model, store, ledger))
    }

    /// A tracker over `model`, keeping its ledger in `store` (read now; a corrupt ledger is
    /// an error).
    pub async fn load(model: CostModel, store: Arc<dyn DocumentStore>) -> state::Result<Self> {
        let tracker = Self::with_ledger(model, Some(store), Ledger::default());
        tracker.reload().await?;
        Ok(tracker)
    }

    fn with_ledger(
        model: CostModel,
        store: Option<Arc<dyn DocumentStore>>,
        ledger: Ledger,
    ) -> Self {
        let saved = Saved {
            at: None,
            version: None,
            rates: rates_of(&ledger),
            accounted_to: ledger.accounted_to,
        };
        CostTracker {
            model: RwLock::new(model),
            ledger: Mutex::new(ledger),
            store,
            saved: tokio::sync::Mutex::new(saved),
            target_gauges: Mutex::default(),
            view: RwLock::default(),
        }
    }

    /// Reads the ledger again from its store (a replica taking the lead continues the books
    /// of the one before it).
    pub async fn reload(&self) -> state::Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let mut saved = self.saved.lock().await;
        let read = store.read(LEDGER_FILE).await?;
        let ledger: Ledger = state::parse(read.text.as_deref(), &store.location(LEDGER_FILE))?;
        saved.version = read.version;
        saved.rates = rates_of(&ledger);
        saved.accounted_to = ledger.accounted_to;
        *self.ledger.lock() = ledger;
        Ok(())
    }

    /// Uses spot prices a provider observed, keyed by (region, instance type).
    pub fn set_spot_prices(&self, prices: HashMap<(String, String), f64>) {
        if !prices.is_empty() {
            self.model.write().set_spot_prices(prices);
        }
    }

    /// Accounts the time up to `now` at the previous rates, then takes the rates of `targets`.
    pub async fn observe(
        &self,
        now: DateTime<Utc>,
        decisions: &[EnvironmentDecision],
        targets: &[Target],
    ) {
        let costs: Vec<(&Target, TargetCost)> = {
            let model = self.model.read();
            targets.iter().map(|t| (t, model.target_cost(t))).collect()
        };
        self.record_target_gauges(&costs);
        let mut view = BTreeMap::new();
        {
            let mut ledger = self.ledger.lock();
            ledger.accrue(now);
            for decision in decisions {
                let environment = decision.environment.as_str();
                let cost = EnvironmentCost::sum(
                    costs
                        .iter()
                        .filter(|(t, _)| t.environment == environment)
                        .map(|(_, c)| c),
                );
                ledger.set_rates(
                    environment,
                    Rates {
                        per_hour: cost.per_hour,
                        always_on_per_hour: cost.always_on_per_hour,
                        up: decision.state == State::Up,
                        idle: decision.idle_since.is_some(),
                    },
                );
                let month = ledger.month_to_date(environment, now);
                record_environment(environment, cost, month);
                view.insert(
                    environment.to_string(),
                    EnvironmentCostView {
                        per_hour: cost.per_hour,
                        always_on_per_hour: cost.always_on_per_hour,
                        month_to_date: month,
                    },
                );
            }
        }
        *self.view.write() = view;
        self.save(false).await;
    }

    /// Each environment's cost now and this month.
    pub fn view(&self) -> BTreeMap<String, EnvironmentCostView> {
        self.view.read().clone()
    }

    /// A copy of the ledger.
    pub fn ledger(&self) -> Ledger {
        self.ledger.lock().clone()
    }

    /// The ledger's totals in the Prometheus text format, to append to `/metrics`.
    pub fn render_prometheus(&self) -> String {
        render_counters(&self.ledger.lock())
    }

    /// Writes the ledger now (on shutdown).
    pub async fn flush(&self) {
        self.save(true).await;
    }

    /// Writes the ledger when it accounts for time not yet written and it is `force`d, rates
    /// changed since the last write, or the last write is older than [`SAVE_EVERY`]. A
    /// replica that never kept the books (a follower) never writes.
    async fn save(&self, force: bool) {
        let Some(store) = &self.store else { return };
        let mut saved = self.saved.lock().await;
        let ledger = self.ledger();
        if ledger.accounted_to == saved.accounted_to {
            return;
        }
        let rates = rates_of(&ledger);
        let due = saved.at.is_none_or(|at| at.elapsed() >= SAVE_EVERY);
        if !force && !due && rates == saved.rates {
            return;
        }
        match write_ledger(&**store, &ledger, saved.version.clone()).await {
            Ok(version) => {
                *saved = Saved {
                    at: Some(Instant::now()),
                    version,
                    rates,
                    accounted_to: ledger.accounted_to,
                };
            }
            Err(err) => tracing::error!(error = %err, "cannot write the cost ledger"),
        }
    }

    /// Per-target cost gauges, touching only those whose value changed.
    fn record_target_gauges(&self, costs: &[(&Target, TargetCost)]) {
        let mut known = self.target_gauges.lock();
        for (target, cost) in costs {
            if known.get(&target.id) == Some(&cost.per_hour) {
                continue;
            }
            known.insert(target.id.clone(), cost.per_hour);
            let lifecycle = cost.lifecycle.map_or("none", |l| l.as_str());
            metrics::gauge!(
                telemetry::COST_PER_HOUR,
                "environment" => target.environment.clone(),
                "target" => target.id.clone(),
                "kind" => target.kind.as_str(),
                "lifecycle" => lifecycle
            )
            .set(cost.per_hour);
        }
    }
}

/// When and at which version the ledger was last written (or read), and what it held.
#[derive(Debug)]
struct Saved {
    at: Option<Instant>,
    version: Option<String>,
    rates: BTreeMap<String, Rates>,
    accounted_to: Option<DateTime<Utc>>,
}

fn rates_of(ledger: &Ledger) -> BTreeMap<String, Rates> {
    ledger
        .environments
        .iter()
        .map(|(name, books)| (name.clone(), books.rates))
        .collect()
}

/// Writes `ledger` over the version last seen. Only the acting replica keeps the books, so a
/// conflict is another replica's write: a deposed leader's last one (older books: written
/// over) or a new leader's (books accounted further: kept, and this write gives up).
async fn write_ledger(
    store: &dyn DocumentStore,
    ledger: &Ledger,
    version: Option<String>,
) -> state::Result<Option<String>> {
    let text = state::to_text(LEDGER_FILE, ledger)?;
    let current = Current {
        value: ledger.clone(),
        version,
    };
    let stored = versioned::update(store, LEDGER_FILE, WRITE_ATTEMPTS, current, |stored| {
        if stored.accounted_to > ledger.accounted_to {
            return Err(state::Error::Superseded {
                path: store.location(LEDGER_FILE),
            });
        }
        Ok((ledger.clone(), text.clone().into()))
    })
    .await?;
    Ok(stored.version)
}

fn record_environment(environment: &str, cost: EnvironmentCost, month: Totals) {
    let env = environment.to_string();
    metrics::gauge!(telemetry::ENVIRONMENT_COST_PER_HOUR, "environment" => env.clone())
        .set(cost.per_hour);
    metrics::gauge!(telemetry::ENVIRONMENT_ALWAYS_ON_COST_PER_HOUR, "environment" => env.clone())
        .set(cost.always_on_per_hour);
    metrics::gauge!(telemetry::MONTH_TO_DATE_SAVINGS, "environment" => env).set(month.savings());
}

/// A counter family: name, help text, and the figure it reads from the totals.
type CounterFamily = (&'static str, &'static str, fn(&Totals) -> f64);

/// The ledger's running totals as Prometheus counters with fractional values (the metrics
/// crate's counters are integers, dollars are not).
fn render_counters(ledger: &Ledger) -> String {
    let families: [CounterFamily; 5] = [
        (
            telemetry::COST_TOTAL,
            "Dollars spent, integrated over time.",
            |t| t.actual,
        ),
        (
            telemetry::COUNTERFACTUAL_COST_TOTAL,
            "Dollars that would have been spent had everything been always on.",
            |t| t.counterfactual,
        ),
        (
            telemetry::SAVINGS_TOTAL,
            "Counterfactual minus actual cost, in dollars.",
            |t| t.savings().max(0.0),
        ),
        (
            telemetry::UPTIME_SECONDS_TOTAL,
            "Seconds the environment's desired state was up.",
            |t| t.uptime_seconds,
        ),
        (
            telemetry::IDLE_SAVINGS_TOTAL,
            "Dollars saved by sleeping while idle inside the uptime windows (part of the savings).",
            |t| t.idle_savings,
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in families {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for (environment, books) in &ledger.environments {
            out.push_str(&format!(
                "{name}{{environment=\"{}\"}} {}\n",
                escape_label(environment),
                value(&books.total)
            ));
        }
        out.push('\n');
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{Catalog, CostSettings};
    use crate::domain::Lifecycle;
    use crate::domain::testing::{mk_decision, mk_group_target};

    fn mk_nodes(count: u32) -> Target {
        mk_group_target(count, None, Lifecycle::OnDemand, "us-east-1")
    }

    fn model() -> CostModel {
        CostModel::new(Catalog::embedded().unwrap(), CostSettings::default())
    }

    #[tokio::test]
    async fn month_to_date_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tracker = CostTracker::new(model(), Some(StateDir::open(dir.path()).unwrap())).unwrap();
        tracker
            .observe(start, &[mk_decision(State::Up)], &[mk_nodes(10)])
            .await;
        tracker
            .observe(
                start + chrono::Duration::hours(2),
                &[mk_decision(State::Up)],
                &[mk_nodes(10)],
            )
            .await;
        tracker.flush().await;
        let restarted =
            CostTracker::new(model(), Some(StateDir::open(dir.path()).unwrap())).unwrap();
        let month = restarted.ledger().month_to_date("staging", start);
        // 10 × m6i.large in us-east-1 (0.096 $/h) for two hours.
        assert!((month.actual - 1.92).abs() < 1e-9, "{month:?}");
        assert!(
            restarted
                .render_prometheus()
                .contains("curfew_cost_dollars_total{environment=\"staging\"} 1.92")
        );
    }

    #[test]
    fn a_corrupt_ledger_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ledger.json"), "{").unwrap();
        let err = CostTracker::new(model(), Some(StateDir::open(dir.path()).unwrap())).unwrap_err();
        assert!(err.to_string().contains("ledger.json"), "{err}");
    }

    #[tokio::test]
    async fn a_new_leader_continues_the_books_of_the_old_one() {
        let store = Arc::new(crate::state::MemoryStore::shared(None));
        let start = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let old = CostTracker::load(model(), store.clone()).await.unwrap();
        let follower = CostTracker::load(model(), store.clone()).await.unwrap();
        old.observe(start, &[mk_decision(State::Up)], &[mk_nodes(10)])
            .await;
        old.observe(
            start + chrono::Duration::hours(1),
            &[mk_decision(State::Up)],
            &[mk_nodes(10)],
        )
        .await;
        // The old leader dies without a final flush; the follower takes over an hour later.
        follower.reload().await.unwrap();
        follower
            .observe(
                start + chrono::Duration::hours(2),
                &[mk_decision(State::Up)],
                &[mk_nodes(10)],
            )
            .await;
        let month = follower.ledger().month_to_date("staging", start);
        // Two hours of 10 × 0.096 $/h: the time after the last write is accounted too.
        assert!((month.actual - 1.92).abs() < 1e-9, "{month:?}");
        follower.flush().await;
        let stored = CostTracker::load(model(), store.clone()).await.unwrap();
        assert_eq!(stored.ledger(), follower.ledger());

        // The deposed leader's late flush does not overwrite the newer books.
        old.flush().await;
        let stored = CostTracker::load(model(), store.clone()).await.unwrap();
        assert_eq!(stored.ledger(), follower.ledger());
        // A replica that never kept the books writes nothing on shutdown.
        let idle = CostTracker::load(model(), store.clone()).await.unwrap();
        follower
            .observe(
                start + chrono::Duration::hours(3),
                &[mk_decision(State::Up)],
                &[mk_nodes(10)],
            )
            .await;
        follower.flush().await;
        idle.flush().await;
        let stored = CostTracker::load(model(), store).await.unwrap();
        assert_eq!(stored.ledger(), follower.ledger());
    }
}
