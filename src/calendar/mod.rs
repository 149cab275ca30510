//! The calendar engine: should a target be up at instant `t`, why, and when does that change?
//!
//! Pure code: nothing here reads the clock or touches the outside world; `now` is always a
//! parameter. The layers, highest precedence first: exception > holiday > weekly window or cron
//! transition > default `up` (overrides sit above all of these and live in the planner).
//!
//! * [`spec`]: kube-downscaler-compatible spec strings (`Mon-Fri 07:30-20:30 Europe/Berlin`);
//! * [`cron`]: standard 5-field cron transitions;
//! * [`format`]: how instants are written for people and for machines;
//! * [`holidays`]: holiday calendars from `.ics` files and date lists;
//! * [`local`]: local time to instant, with the DST rules;
//! * [`schedule`]: a compiled schedule answering decisions and transitions;
//! * [`timeline`]: precomputed decisions for fast lookups;
//! * [`zone`]: the time zone type, backed by embedded rules or by zones a [`zone::ZoneSource`]
//!   (the system's tz database, read outside the calendar) hands it.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub mod cron;
pub mod format;
pub mod holidays;
pub mod local;
pub mod schedule;
pub mod spec;
pub mod timeline;
pub mod zone;

pub use self::schedule::{Base, Exception, Schedule};
pub use self::timeline::Timeline;
pub use self::zone::Zone;

/// Whether a target should be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Running at its original capacity.
    Up,
    /// Scaled down.
    Down,
}

impl State {
    /// `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "up" => Ok(State::Up),
            "down" => Ok(State::Down),
            other => Err(format!("'{other}' is not a state (expected up or down)")),
        }
    }
}

/// The rule that made a decision; indices refer to the schedule's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The schedule's exception at this index.
    Exception(u16),
    /// A holiday on this local date.
    Holiday(NaiveDate),
    /// Inside the uptime (or downtime) spec item at this index.
    Window(u16),
    /// Outside every uptime (or downtime) window.
    OutsideWindows,
    /// The latest cron transition was `up_at`.
    CronUp,
    /// The latest cron transition was `down_at`.
    CronDown,
    /// Nothing applies: the default, up.
    Default,
}

/// A decision: the state at an instant, the rule behind it, and when it next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The state.
    pub state: State,
    /// The rule that decided it.
    pub rule: Rule,
    /// The next instant at which the state changes, if within the look-ahead.
    pub next_change: Option<DateTime<Utc>>,
}

/// A change of state at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When the new state starts to hold.
    pub at: DateTime<Utc>,
    /// The new state.
    pub state: State,
    /// The rule that causes it.
    pub rule: Rule,
}
