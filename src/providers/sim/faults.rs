//! Injected API failures: seeded random throttling, server errors and timeouts, and targets
//! that always refuse.
//!
//! Every call draws one number from a seeded generator, so the same seed and the same sequence
//! of calls give the same failures, whichever targets are listed as failing.

use std::collections::HashSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::simulation::FaultConfig;
use crate::providers::Error;

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The API throttles the call.
    Throttled,
    /// The API fails with a 500.
    ServerError,
    /// The call does not answer in time.
    Timeout,
    /// The target refuses every change.
    AccessDenied,
}

impl Fault {
    /// The provider error this fault produces for `operation` on `target`.
    pub fn into_error(self, operation: &str, target: &str) -> Error {
        let operation = operation.to_string();
        let target = target.to_string();
        match self {
            Fault::Throttled => Error::Throttled {
                operation,
                target,
                detail: "Rate exceeded (simulated)".to_string(),
                retry_after: None,
            },
            Fault::ServerError => Error::Server {
                operation,
                target,
                code: "500".to_string(),
                detail: "internal error (simulated)".to_string(),
            },
            Fault::Timeout => Error::Timeout { operation, target },
            Fault::AccessDenied => Error::Permanent {
                operation,
                target,
                code: "AccessDenied".to_string(),
                detail: "not authorized to change this target (simulated)".to_string(),
            },
        }
    }
}

/// The fault generator of one simulated API.
#[derive(Debug, Clone)]
pub struct Faults {
    rng: StdRng,
    throttle_rate: f64,
    server_error_rate: f64,
    timeout_rate: f64,
    failing_targets: HashSet<String>,
    latency: Duration,
}

impl Default for Faults {
    /// No faults and no latency.
    fn default() -> Self {
        Faults::new(&FaultConfig::default())
    }
}

impl Faults {
    /// A generator following `config`.
    pub fn new(config: &FaultConfig) -> Faults {
        Faults {
            rng: StdRng::seed_from_u64(config.seed),
            throttle_rate: config.throttle_rate,
            server_error_rate: config.server_error_rate,
            timeout_rate: config.timeout_rate,
            failing_targets: config.failing_targets.iter().cloned().collect(),
            latency: Duration::from_millis(config.latency_ms),
        }
    }

    /// How long every call takes before it answers (or times out).
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Decides the fate of one call on `target`: `None` lets it through. A failing target
    /// always gets [`Fault::AccessDenied`]; otherwise one uniform draw falls into the
    /// throttle, server-error or timeout band, or past them.
    pub fn draw(&mut self, target: &str) -> Option<Fault> {
        let draw: f64 = self.rng.random();
        if self.failing_targets.contains(target) {
            return Some(Fault::AccessDenied);
        }
        let bands = [
            (self.throttle_rate, Fault::Throttled),
            (self.server_error_rate, Fault::ServerError),
            (self.timeout_rate, Fault::Timeout),
        ];
        let mut upper = 0.0;
        for (rate, fault) in bands {
            upper += rate;
            if draw < upper {
                return Some(fault);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_faults(seed: u64, throttle: f64, server: f64, timeout: f64) -> Faults {
        Faults::new(&FaultConfig {
            seed,
            throttle_rate: throttle,
            server_error_rate: server,
            timeout_rate: timeout,
            failing_targets: vec!["deployment/shop/cart".to_string()],
            latency_ms: 0,
        })
    }

    fn draws(faults: &mut Faults, n: usize) -> Vec<Option<Fault>> {
        (0..n).map(|_| faults.draw("deployment/shop/api")).collect()
    }

    #[test]
    fn a_failing_target_always_fails_with_access_denied() {
        let mut faults = mk_faults(1, 0.0, 0.0, 0.0);
        for _ in 0..100 {
            assert_eq!(
                faults.draw("deployment/shop/cart"),
                Some(Fault::AccessDenied)
            );
        }
        let error = Fault::AccessDenied.into_error("apply", "deployment/shop/cart");
        assert!(matches!(&error, Error::Permanent { code, .. } if code == "AccessDenied"));
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_throttle_rate_of_one_throttles_every_call() {
        let mut faults = mk_faults(7, 1.0, 0.0, 0.0);
        assert!(
            draws(&mut faults, 500)
                .iter()
                .all(|d| *d == Some(Fault::Throttled))
        );
    }

    #[test]
    fn with_all_rates_zero_nothing_fails() {
        let mut faults = mk_faults(7, 0.0, 0.0, 0.0);
        assert!(draws(&mut faults, 500).iter().all(Option::is_none));
        let mut default = Faults::default();
        assert_eq!(default.draw("deployment/shop/cart"), None);
    }

    #[test]
    fn seeded_draws_are_deterministic() {
        let first = draws(&mut mk_faults(42, 0.2, 0.2, 0.2), 200);
        let again = draws(&mut mk_faults(42, 0.2, 0.2, 0.2), 200);
        let other = draws(&mut mk_faults(43, 0.2, 0.2, 0.2), 200);
        assert_eq!(first, again);
        assert_ne!(first, other);
        for fault in [Fault::Throttled, Fault::ServerError, Fault::Timeout] {
            assert!(first.contains(&Some(fault)), "{fault:?} never drawn");
        }
        assert!(first.contains(&None));
    }

    #[test]
    fn calls_on_failing_targets_do_not_shift_the_draws_of_others() {
        let interleaved_with = |other: &str| {
            let mut faults = mk_faults(5, 0.5, 0.0, 0.0);
            (0..40)
                .map(|_| {
                    faults.draw(other);
                    faults.draw("deployment/shop/api")
                })
                .collect::<Vec<_>>()
        };
        let beside_failing = interleaved_with("deployment/shop/cart");
        assert_eq!(beside_failing, interleaved_with("deployment/shop/web"));
        assert!(beside_failing.contains(&None) && beside_failing.contains(&Some(Fault::Throttled)));
    }
}
