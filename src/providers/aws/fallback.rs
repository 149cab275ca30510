//! Spot fallback: scaling activities that failed for want of spot capacity raise a group's
//! on-demand share until a cooldown after the latest such failure.
//!
//! The fallback is derived from the group's activity history each pass, never remembered in
//! curfew: a restart during a fallback finds the same failures and keeps it until the same
//! instant.

use std::collections::HashMap;

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::{Activity, ScalingActivityStatusCode};
use chrono::{DateTime, Duration, Utc};

use super::errors::classify;
use crate::providers::Result;

/// Words in an activity's status message that mean spot capacity was not there.
const CAPACITY_MARKERS: [&str; 5] = [
    "insufficientinstancecapacity",
    "capacity-not-available",
    "no spot capacity",
    "unfulfillablecapacity",
    "insufficient capacity",
];

/// Activities per DescribeScalingActivities page (the API's limit).
const ACTIVITIES_PER_PAGE: i32 = 100;

/// Whether an activity failed because spot capacity was short.
pub fn is_spot_capacity_failure(activity: &Activity) -> bool {
    let failed = matches!(
        activity.status_code(),
        Some(ScalingActivityStatusCode::Failed | ScalingActivityStatusCode::Cancelled)
    );
    let text = [
        activity.status_message(),
        activity.description(),
        activity.cause(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_ascii_lowercase();
    failed && CAPACITY_MARKERS.iter().any(|marker| text.contains(marker))
}

/// The latest spot capacity failure of each group among `activities`.
pub fn latest_failures<'a>(
    activities: impl IntoIterator<Item = &'a Activity>,
) -> HashMap<String, DateTime<Utc>> {
    let mut latest: HashMap<String, DateTime<Utc>> = HashMap::new();
    for activity in activities {
        if !is_spot_capacity_failure(activity) {
            continue;
        }
        let (Some(group), Some(at)) = (activity.auto_scaling_group_name(), started(activity))
        else {
            continue;
        };
        let entry = latest.entry(group.to_string()).or_insert(at);
        *entry = (*entry).max(at);
    }
    latest
}

/// Until when a fallback lasts after the latest failure, if it is still on at `now`.
pub fn active_until(
    latest_failure: Option<DateTime<Utc>>,
    cooldown: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let until = latest_failure? + cooldown;
    (until > now).then_some(until)
}

fn started(activity: &Activity) -> Option<DateTime<Utc>> {
    let at = activity.start_time()?;
    DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

/// The region's scaling activities that started after `since`, newest first, over as many
/// pages as that takes (the API lists the newest first).
pub async fn recent_activities(client: &Client, since: DateTime<Utc>) -> Result<Vec<Activity>> {
    let mut pages = client
        .describe_scaling_activities()
        .max_records(ACTIVITIES_PER_PAGE)
        .into_paginator()
        .send();
    let mut recent = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("DescribeScalingActivities", "*", e))?;
        let mut older_seen = false;
        for activity in page.activities() {
            match started(activity) {
                Some(at) if at < since => older_seen = true,
                _ => recent.push(activity.clone()),
            }
        }
        if older_seen {
            break;
        }
    }
    Ok(recent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_activity(
        group: &str,
        status: ScalingActivityStatusCode,
        message: &str,
        at: i64,
    ) -> Activity {
        Activity::builder()
            .activity_id(format!("{group}-{at}"))
            .auto_scaling_group_name(group)
            .cause("At 2026-12-07T09:00:00Z an instance was started in response to a difference between desired and actual capacity")
            .start_time(aws_sdk_autoscaling::primitives::DateTime::from_secs(at))
            .status_code(status)
            .status_message(message)
            .build()
    }

    const NO_SPOT: &str = "There is no Spot capacity available that matches your request. Launching EC2 instance failed.";

    #[test]
    fn failed_launches_for_want_of_spot_capacity_count_and_others_do_not() {
        use ScalingActivityStatusCode::*;
        assert!(is_spot_capacity_failure(&mk_activity(
            "a", Failed, NO_SPOT, 0
        )));
        assert!(is_spot_capacity_failure(&mk_activity(
            "a",
            Failed,
            "We currently do not have sufficient m6i.large capacity in the Availability Zone you requested (InsufficientInstanceCapacity).",
            0
        )));
        assert!(!is_spot_capacity_failure(&mk_activity(
            "a", Successful, "", 0
        )));
        assert!(!is_spot_capacity_failure(&mk_activity(
            "a",
            Failed,
            "You are not authorized to perform this operation.",
            0
        )));
    }

    #[test]
    fn the_fallback_lasts_a_cooldown_after_the_latest_failure_of_each_group() {
        use ScalingActivityStatusCode::*;
        let activities = [
            mk_activity("nodes", Failed, NO_SPOT, 1_000),
            mk_activity("nodes", Failed, NO_SPOT, 1_600),
            mk_activity("nodes", Successful, "", 1_700),
            mk_activity("other", Successful, "", 1_700),
        ];
        let latest = latest_failures(&activities);
        assert_eq!(latest.len(), 1);
        let failure = latest["nodes"];
        assert_eq!(failure.timestamp(), 1_600);
        let cooldown = Duration::minutes(30);
        let at = |secs| DateTime::from_timestamp(secs, 0).unwrap();
        assert_eq!(
            active_until(Some(failure), cooldown, at(1_700)),
            Some(at(1_600 + 1_800))
        );
        assert_eq!(
            active_until(Some(failure), cooldown, at(1_600 + 1_800)),
            None
        );
        assert_eq!(active_until(None, cooldown, at(1_700)), None);
    }
}
