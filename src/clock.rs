//! Where "now" comes from: the real clock, a warped clock for demos, a manual one for tests.
//!
//! Everything that needs the time asks a [`Clock`]; nothing reads the system clock directly.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A source of the current instant.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// How long to sleep in real time until the clock reads `at` (zero if it already does).
    fn real_time_until(&self, at: DateTime<Utc>) -> StdDuration;

    /// Called after sleeping until `at`: a clock that does not run by itself moves there.
    fn advance_to(&self, _at: DateTime<Utc>) {}
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn real_time_until(&self, at: DateTime<Utc>) -> StdDuration {
        (at - Utc::now()).to_std().unwrap_or_default()
    }
}

/// A clock that starts at an instant and runs `speed` times faster than real time.
#[derive(Debug, Clone, Copy)]
pub struct WarpedClock {
    origin: DateTime<Utc>,
    started: Instant,
    speed: f64,
}

impl WarpedClock {
    /// A clock reading `origin` now and advancing `speed` simulated seconds per real second.
    pub fn new(origin: DateTime<Utc>, speed: f64) -> Self {
        WarpedClock {
            origin,
            started: Instant::now(),
            speed: speed.max(f64::MIN_POSITIVE),
        }
    }

    /// Simulated seconds per real second.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for WarpedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed().as_secs_f64() * self.speed;
        self.origin + Duration::microseconds((elapsed * 1e6) as i64)
    }

    fn real_time_until(&self, at: DateTime<Utc>) -> StdDuration {
        let simulated = (at - self.now()).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        StdDuration::from_secs_f64((simulated / self.speed).max(0.0))
    }
}

/// A clock that moves only when told to, or when someone has waited on it: a wait takes no
/// real time and then jumps the clock to its end. Simulated weeks run as fast as the CPU allows.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock() = at;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }

    /// Waiting on a manual clock takes no real time.
    fn real_time_until(&self, _at: DateTime<Utc>) -> StdDuration {
        StdDuration::ZERO
    }

    /// Jumps forward to `at` (never backwards).
    fn advance_to(&self, at: DateTime<Utc>) {
        let mut now = self.now.lock();
        if at > *now {
            *now = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warped_clock_runs_faster_than_real_time() {
        let origin = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = WarpedClock::new(origin, 3600.0);
        std::thread::sleep(StdDuration::from_millis(20));
        let elapsed = clock.now() - origin;
        assert!(elapsed >= Duration::seconds(72), "{elapsed}");
        let wait = clock.real_time_until(clock.now() + Duration::hours(1));
        assert!(wait <= StdDuration::from_millis(1001), "{wait:?}");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let origin = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::new(origin);
        assert_eq!(clock.now(), origin);
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), origin + Duration::minutes(5));
        assert_eq!(
            clock.real_time_until(origin + Duration::hours(1)),
            StdDuration::ZERO
        );
        clock.advance_to(origin + Duration::hours(1));
        assert_eq!(clock.now(), origin + Duration::hours(1));
        clock.advance_to(origin);
        assert_eq!(clock.now(), origin + Duration::hours(1));
    }
}
