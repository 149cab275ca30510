//! Kubernetes Events on scaled workloads: `ScaledDown`, `ScaledUp`, `ScaleFailed`.
//! Writing an Event is best effort: its failure never fails the action.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::workloads::{Observed, api_version_and_kind};

/// The component named in Events.
const COMPONENT: &str = "curfew";

/// What an Event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Scaled down (or suspended).
    ScaledDown,
    /// Scaled up (or resumed).
    ScaledUp,
    /// A scale action failed.
    ScaleFailed,
    /// An annotation cannot be used, so curfew leaves the object alone.
    InvalidAnnotation,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::ScaledDown => "ScaledDown",
            Reason::ScaledUp => "ScaledUp",
            Reason::ScaleFailed => "ScaleFailed",
            Reason::InvalidAnnotation => "InvalidAnnotation",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Reason::ScaleFailed | Reason::InvalidAnnotation => "Warning",
            _ => "Normal",
        }
    }
}

/// Builds `core/v1` Events about workloads.
#[derive(Debug, Default)]
pub struct EventBuilder {
    sequence: AtomicU64,
}

impl EventBuilder {
    /// An Event about `object` at `now`.
    pub fn build(
        &self,
        object: &Observed,
        reason: Reason,
        message: String,
        now: DateTime<Utc>,
    ) -> Event {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let time = Timestamp::new(
            now.timestamp(),
            now.timestamp_subsec_nanos().try_into().unwrap_or(0),
        )
        .ok()
        .map(Time);
        let (api_version, kind) = api_version_and_kind(object.kind);
        Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}{:04x}",
                    object.name,
                    now.timestamp_nanos_opt().unwrap_or_default(),
                    sequence % 0x10000
                )),
                namespace: Some(object.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.to_string()),
                kind: Some(kind.to_string()),
                name: Some(object.name.clone()),
                namespace: Some(object.namespace.clone()),
                uid: object.uid.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.as_str().to_string()),
            message: Some(message),
            type_: Some(reason.event_type().to_string()),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                ..EventSource::default()
            }),
            reporting_component: Some(COMPONENT.to_string()),
            first_timestamp: time.clone(),
            last_timestamp: time,
            count: Some(1),
            ..Event::default()
        }
    }
}
