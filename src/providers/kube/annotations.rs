//! The annotations curfew reads and writes, and how a workload's annotations, its
//! namespace's annotations and the configuration combine (workload beats namespace beats
//! configuration).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{Capacity, Kind};

/// The original capacity curfew stored when it scaled the workload down.
pub const ORIGINAL_REPLICAS: &str = "curfew.dev/original-replicas";
/// kube-downscaler's stored original, taken over when curfew's own is absent.
pub const DOWNSCALER_ORIGINAL_REPLICAS: &str = "downscaler/original-replicas";
/// `"true"` leaves the object (or every workload in the namespace) alone; `"false"` opts back in.
pub const EXCLUDE: &str = "curfew.dev/exclude";
/// Leaves the object alone until an instant (RFC 3339 or `YYYY-MM-DD`, UTC midnight).
pub const EXCLUDE_UNTIL: &str = "curfew.dev/exclude-until";
/// Replicas while down, instead of the configured `down_replicas`.
pub const DOWN_REPLICAS: &str = "curfew.dev/down-replicas";
/// kube-downscaler's exclusion, honoured where curfew's own is absent.
pub const DOWNSCALER_EXCLUDE: &str = "downscaler/exclude";
/// kube-downscaler's timed exclusion, honoured where curfew's own is absent.
pub const DOWNSCALER_EXCLUDE_UNTIL: &str = "downscaler/exclude-until";
/// kube-downscaler's replicas while down, honoured where curfew's own is absent.
pub const DOWNSCALER_DOWNTIME_REPLICAS: &str = "downscaler/downtime-replicas";
/// The name of a schedule in the configuration that decides the object instead of its
/// environment's.
pub const SCHEDULE: &str = "curfew.dev/schedule";
/// A spec string (`Mon-Fri 08:00-19:00 Europe/Berlin`): up inside it, down outside.
pub const UPTIME: &str = "curfew.dev/uptime";
/// kube-downscaler's uptime spec string, read like [`UPTIME`].
pub const DOWNSCALER_UPTIME: &str = "downscaler/uptime";
/// kube-downscaler's downtime spec string: down inside it, up outside.
pub const DOWNSCALER_DOWNTIME: &str = "downscaler/downtime";
/// `"true"` or absolute ranges: up then, whatever the schedule says.
pub const DOWNSCALER_FORCE_UPTIME: &str = "downscaler/force-uptime";
/// `"true"` or absolute ranges: down then, whatever the schedule says.
pub const DOWNSCALER_FORCE_DOWNTIME: &str = "downscaler/force-downtime";

/// KEDA's annotation that holds a ScaledObject's workload at a replica count and pauses
/// autoscaling; curfew sets it while down.
pub const KEDA_PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";
/// A [`KEDA_PAUSED_REPLICAS`] value that was there before curfew paused the ScaledObject,
/// restored on waking.
pub const ORIGINAL_PAUSED_REPLICAS: &str = "curfew.dev/original-paused-replicas";

/// Annotations of one object.
pub type Annotations = BTreeMap<String, String>;

/// The prefixes of every annotation curfew reads on a workload (its own and kube-downscaler's);
/// a workload's cached projection keeps only these.
const WORKLOAD_PREFIXES: [&str; 2] = ["curfew.dev/", "downscaler/"];

/// Whether curfew reads the annotation `key` on a Deployment, StatefulSet or CronJob.
pub fn read_on_workloads(key: &str) -> bool {
    WORKLOAD_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// An annotation with a value curfew cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: '{value}' {expected}")]
pub struct Error {
    /// The annotation key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What was expected instead.
    pub expected: String,
}

/// The error for annotation `key` with `value`, which `expected` describes as unusable.
pub fn bad(key: &'static str, value: &str, expected: impl Into<String>) -> Error {
    Error {
        key,
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// Whether the object is excluded at `now`: the first of `layers` (workload first, then
/// namespace) carrying [`EXCLUDE`] or [`EXCLUDE_UNTIL`] (or, in their absence on that layer,
/// kube-downscaler's [`DOWNSCALER_EXCLUDE`] or [`DOWNSCALER_EXCLUDE_UNTIL`]) decides;
/// otherwise `configured`.
pub fn excluded(
    layers: &[&Annotations],
    configured: bool,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    for layer in layers {
        for (exclude_key, until_key) in [
            (EXCLUDE, EXCLUDE_UNTIL),
            (DOWNSCALER_EXCLUDE, DOWNSCALER_EXCLUDE_UNTIL),
        ] {
            if let Some(value) = layer.get(exclude_key) {
                return match value.trim().to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(bad(exclude_key, value, "is not 'true' or 'false'")),
                };
            }
            if let Some(value) = layer.get(until_key) {
                return parse_instant(value)
                    .map(|until| now < until)
                    .ok_or_else(|| bad(until_key, value, "is not an RFC 3339 instant or a date"));
            }
        }
    }
    Ok(configured)
}

/// Replicas while down: the first of `layers` carrying [`DOWN_REPLICAS`] (or, in its absence
/// on that layer, kube-downscaler's [`DOWNSCALER_DOWNTIME_REPLICAS`]) decides; otherwise
/// `configured`.
pub fn down_replicas(layers: &[&Annotations], configured: u32) -> Result<u32, Error> {
    let found = layers.iter().find_map(|layer| {
        [DOWN_REPLICAS, DOWNSCALER_DOWNTIME_REPLICAS]
            .into_iter()
            .find_map(|key| Some((key, layer.get(key)?)))
    });
    match found {
        Some((key, value)) => value
            .trim()
            .parse()
            .map_err(|_| bad(key, value, "is not a replica count")),
        None => Ok(configured),
    }
}

/// A replica count in annotation `key`, if the annotation is there.
pub fn replicas(annotations: &Annotations, key: &'static str) -> Result<Option<u32>, Error> {
    annotations
        .get(key)
        .map(|value| {
            value
                .trim()
                .parse()
                .map_err(|_| bad(key, value, "is not a replica count"))
        })
        .transpose()
}

/// Where a stored original came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// curfew's own annotation.
    Curfew,
    /// kube-downscaler's annotation (migration).
    Downscaler,
}

/// The stored original of a workload of `kind`, if any: curfew's annotation, else
/// kube-downscaler's. CronJobs store `1` for active and `0` for suspended, as kube-downscaler
/// does.
pub fn original(
    kind: Kind,
    annotations: &Annotations,
) -> Result<Option<(Capacity, Source)>, Error> {
    let (key, source) = if annotations.contains_key(ORIGINAL_REPLICAS) {
        (ORIGINAL_REPLICAS, Source::Curfew)
    } else if annotations.contains_key(DOWNSCALER_ORIGINAL_REPLICAS) {
        (DOWNSCALER_ORIGINAL_REPLICAS, Source::Downscaler)
    } else {
        return Ok(None);
    };
    let value = &annotations[key];
    let replicas: u32 = value.trim().parse().map_err(|_| {
        bad(
            if source == Source::Curfew {
                ORIGINAL_REPLICAS
            } else {
                DOWNSCALER_ORIGINAL_REPLICAS
            },
            value,
            "is not a replica count",
        )
    })?;
    let capacity = match kind {
        Kind::CronJob => Capacity::Suspended(replicas == 0),
        _ => Capacity::Replicas(replicas),
    };
    Ok(Some((capacity, source)))
}

/// The annotation value that stores `capacity` as an original; `None` for capacities that are
/// not a workload's.
pub fn encode_original(capacity: Capacity) -> Option<String> {
    match capacity {
        Capacity::Replicas(n) => Some(n.to_string()),
        Capacity::Suspended(suspended) => Some(if suspended { "0" } else { "1" }.to_string()),
        Capacity::Group { .. } | Capacity::Running(_) => None,
    }
}

fn parse_instant(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// Builders for unit tests of annotation handling.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::{DateTime, Utc};

    use super::Annotations;

    /// Annotations from key/value pairs.
    pub(crate) fn mk(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// An RFC 3339 instant.
    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{at, mk};
    use super::*;

    #[test]
    fn every_annotation_read_on_workloads_is_kept_by_their_projection() {
        let read = [
            ORIGINAL_REPLICAS,
            DOWNSCALER_ORIGINAL_REPLICAS,
            EXCLUDE,
            EXCLUDE_UNTIL,
            DOWN_REPLICAS,
            DOWNSCALER_EXCLUDE,
            DOWNSCALER_EXCLUDE_UNTIL,
            DOWNSCALER_DOWNTIME_REPLICAS,
            SCHEDULE,
            UPTIME,
            DOWNSCALER_UPTIME,
            DOWNSCALER_DOWNTIME,
            DOWNSCALER_FORCE_UPTIME,
            DOWNSCALER_FORCE_DOWNTIME,
        ];
        assert!(read.iter().all(|key| read_on_workloads(key)));
        assert!(!read_on_workloads("deployment.kubernetes.io/revision"));
        assert!(!read_on_workloads(
            "kubectl.kubernetes.io/last-applied-configuration"
        ));
    }

    #[test]
    fn workload_beats_namespace_beats_configuration() {
        let now = at("2026-12-01T10:00:00Z");
        let opted_out = mk(&[(EXCLUDE, "true")]);
        let opted_in = mk(&[(EXCLUDE, "false")]);
        let none = mk(&[]);
        assert_eq!(excluded(&[&opted_in, &opted_out], false, now), Ok(false));
        assert_eq!(excluded(&[&none, &opted_out], false, now), Ok(true));
        assert_eq!(excluded(&[&none, &opted_in], true, now), Ok(false));
        assert_eq!(excluded(&[&none, &none], true, now), Ok(true));
        let five = mk(&[(DOWN_REPLICAS, "5")]);
        let one = mk(&[(DOWN_REPLICAS, "1")]);
        assert_eq!(down_replicas(&[&one, &five], 0), Ok(1));
        assert_eq!(down_replicas(&[&none, &five], 0), Ok(5));
        assert_eq!(down_replicas(&[&none, &none], 2), Ok(2));
    }

    #[test]
    fn kube_downscaler_annotations_count_where_curfew_ones_are_absent() {
        let now = at("2026-12-01T10:00:00Z");
        let legacy = mk(&[
            (DOWNSCALER_EXCLUDE, "true"),
            (DOWNSCALER_DOWNTIME_REPLICAS, "2"),
        ]);
        assert_eq!(excluded(&[&legacy], false, now), Ok(true));
        assert_eq!(down_replicas(&[&legacy], 0), Ok(2));
        let both = mk(&[
            (EXCLUDE, "false"),
            (DOWNSCALER_EXCLUDE, "true"),
            (DOWN_REPLICAS, "1"),
            (DOWNSCALER_DOWNTIME_REPLICAS, "2"),
        ]);
        assert_eq!(excluded(&[&both], true, now), Ok(false));
        assert_eq!(down_replicas(&[&both], 0), Ok(1));
        let until = mk(&[(DOWNSCALER_EXCLUDE_UNTIL, "2026-12-02")]);
        assert_eq!(excluded(&[&until], false, now), Ok(true));
        let workload = mk(&[]);
        let namespace = mk(&[(DOWNSCALER_EXCLUDE, "true")]);
        assert_eq!(excluded(&[&workload, &namespace], false, now), Ok(true));
    }

    #[test]
    fn exclude_until_holds_until_the_instant() {
        let until = mk(&[(EXCLUDE_UNTIL, "2026-12-01T12:00:00+01:00")]);
        assert_eq!(
            excluded(&[&until], false, at("2026-12-01T10:59:59Z")),
            Ok(true)
        );
        assert_eq!(
            excluded(&[&until], false, at("2026-12-01T11:00:00Z")),
            Ok(false)
        );
        let date = mk(&[(EXCLUDE_UNTIL, "2026-12-02")]);
        assert_eq!(
            excluded(&[&date], false, at("2026-12-01T23:00:00Z")),
            Ok(true)
        );
    }

    #[test]
    fn unusable_values_are_errors_not_guesses() {
        let now = at("2026-12-01T10:00:00Z");
        assert!(excluded(&[&mk(&[(EXCLUDE, "yes please")])], false, now).is_err());
        assert!(excluded(&[&mk(&[(EXCLUDE_UNTIL, "soon")])], false, now).is_err());
        assert!(down_replicas(&[&mk(&[(DOWN_REPLICAS, "-1")])], 0).is_err());
        let error = original(Kind::Deployment, &mk(&[(ORIGINAL_REPLICAS, "three")]));
        assert_eq!(error.map_err(|e| e.key), Err(ORIGINAL_REPLICAS));
    }

    #[test]
    fn curfew_original_wins_over_the_downscaler_one() {
        let both = mk(&[
            (ORIGINAL_REPLICAS, "3"),
            (DOWNSCALER_ORIGINAL_REPLICAS, "7"),
        ]);
        assert_eq!(
            original(Kind::Deployment, &both),
            Ok(Some((Capacity::Replicas(3), Source::Curfew)))
        );
        let legacy = mk(&[(DOWNSCALER_ORIGINAL_REPLICAS, "7")]);
        assert_eq!(
            original(Kind::StatefulSet, &legacy),
            Ok(Some((Capacity::Replicas(7), Source::Downscaler)))
        );
        assert_eq!(original(Kind::Deployment, &mk(&[])), Ok(None));
    }

    #[test]
    fn cron_job_originals_use_one_for_active() {
        let active = encode_original(Capacity::Suspended(false)).expect("encodes");
        assert_eq!(active, "1");
        let stored = mk(&[(ORIGINAL_REPLICAS, &active)]);
        assert_eq!(
            original(Kind::CronJob, &stored),
            Ok(Some((Capacity::Suspended(false), Source::Curfew)))
        );
        assert_eq!(encode_original(Capacity::Running(true)), None);
    }
}
