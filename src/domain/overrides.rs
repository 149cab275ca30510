//! Overrides: people beating the calendar, within policy, until a deadline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{State, format};

/// One override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Override {
    /// Unique id.
    pub id: String,
    /// The environment it applies to.
    pub environment: String,
    /// The state it forces.
    pub state: State,
    /// When it was created (it applies from then on).
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    pub created_at: DateTime<Utc>,
    /// When it ends; the calendar decides again from this instant.
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who created it (a token name, or `curfew` for implicit ones).
    pub created_by: String,
}

impl Override {
    /// Whether it applies at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.created_at <= now && now < self.until
    }
}

/// The override that applies to `environment` at `now`: the newest active one.
pub fn active_override<'a>(
    overrides: &'a [Override],
    environment: &str,
    now: DateTime<Utc>,
) -> Option<&'a Override> {
    overrides
        .iter()
        .filter(|o| o.environment == environment && o.is_active(now))
        .max_by_key(|o| (o.created_at, o.id.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{at, mk_override};

    #[test]
    fn newest_active_override_wins_and_expired_ones_do_not_count() {
        let minute = |minutes: i64| at(60 * minutes);
        let overrides = vec![
            mk_override("a", "staging", State::Up, minute(0), minute(60)),
            mk_override("b", "staging", State::Down, minute(10), minute(30)),
            mk_override("c", "other", State::Up, minute(0), minute(600)),
        ];
        assert_eq!(
            active_override(&overrides, "staging", minute(5))
                .unwrap()
                .id,
            "a"
        );
        assert_eq!(
            active_override(&overrides, "staging", minute(20))
                .unwrap()
                .id,
            "b"
        );
        assert_eq!(
            active_override(&overrides, "staging", minute(40))
                .unwrap()
                .id,
            "a"
        );
        assert!(active_override(&overrides, "staging", minute(60)).is_none());
    }
}
