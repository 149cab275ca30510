//! Traffic per environment, for sleep when idle: the latest request each environment saw,
//! recorded by the wake gateway or by polling a Prometheus query.
//!
//! Kept in memory: after a restart counting begins again at the start, which can only delay
//! an idle sleep, never cause one early.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::wake::PrometheusIdle;
use crate::http_client::{self, HttpClient};
use crate::telemetry;

/// How long one Prometheus query may take.
const QUERY_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// The largest Prometheus answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why a Prometheus query gave no value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request failed.
    #[error("{0}")]
    Http(#[from] http_client::Error),
    /// Prometheus answered with an error status.
    #[error("Prometheus answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// The answer is not a query result curfew can read.
    #[error("unreadable Prometheus answer: {0}")]
    Answer(String),
}

/// The latest request of each environment.
#[derive(Debug)]
pub struct Activity {
    /// When counting began: the floor of every environment's latest activity.
    started: DateTime<Utc>,
    latest: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Wakes on request not yet ready, by environment: when each began.
    wakes: Mutex<HashMap<String, DateTime<Utc>>>,
}

// === impl Activity ===

impl Activity {
    /// Counting from `started`.
    pub fn new(started: DateTime<Utc>) -> Self {
        Activity {
            started,
            latest: Mutex::default(),
            wakes: Mutex::default(),
        }
    }

    /// Records that `environment` was woken on request at `at` (the first wake counts until
    /// it is ready).
    pub fn woke(&self, environment: &str, at: DateTime<Utc>) {
        self.wakes
            .lock()
            .entry(environment.to_string())
            .or_insert(at);
        self.seen(environment, at);
    }

    /// When `environment` was woken on request, once, if it was and is not yet ready.
    pub fn take_wake(&self, environment: &str) -> Option<DateTime<Utc>> {
        self.wakes.lock().remove(environment)
    }

    /// Observes the time to ready of `environment`'s wake on request, if one is pending:
    /// whoever first sees it ready (a pass, or the gateway about to forward) records it,
    /// once.
    pub fn ready(&self, environment: &str, now: DateTime<Utc>) {
        let Some(woken) = self.take_wake(environment) else {
            return;
        };
        let seconds = (now - woken).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!(telemetry::WAKE_READY_SECONDS, "environment" => environment.to_string())
            .record(seconds);
        tracing::info!(%environment, seconds, "woken on request: ready");
    }

    /// Whether `environment` has a wake on request that is not yet ready.
    pub fn waking(&self, environment: &str) -> bool {
        self.wakes.lock().contains_key(environment)
    }

    /// Records traffic to `environment` at `at`.
    pub fn seen(&self, environment: &str, at: DateTime<Utc>) {
        let mut latest = self.latest.lock();
        match latest.get_mut(environment) {
            Some(known) => *known = (*known).max(at),
            None => {
                latest.insert(environment.to_string(), at);
            }
        }
    }

    /// The latest traffic to `environment`, or when counting began if none came since.
    pub fn last(&self, environment: &str) -> DateTime<Utc> {
        self.latest
            .lock()
            .get(environment)
            .copied()
            .unwrap_or(self.started)
            .max(self.started)
    }
}

/// Runs `query` every interval until `shutdown`, recording traffic to `environment` whenever
/// its value is at or above the threshold. A query that fails counts as traffic, so a broken
/// measure never sends anything to sleep; it is logged and counted.
pub async fn poll_prometheus(
    environment: String,
    query: PrometheusIdle,
    activity: Arc<Activity>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let client = HttpClient::new(QUERY_TIMEOUT);
    loop {
        let now = clock.now();
        match query_value(&client, &query).await {
            Ok(value) if value < query.below => {
                tracing::debug!(%environment, value, "quiet by the Prometheus query");
            }
            Ok(_) => activity.seen(&environment, now),
            Err(err) => {
                metrics::counter!(telemetry::IDLE_QUERY_ERRORS, "environment" => environment.clone())
                    .increment(1);
                tracing::warn!(%environment, error = %err, "the idleness query failed; counted as traffic");
                activity.seen(&environment, now);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(query.interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The value of `query` now: the sum over an instant vector (0 when empty), or a scalar.
pub async fn query_value(client: &HttpClient, query: &PrometheusIdle) -> Result<f64, Error> {
    let url = format!(
        "{}/api/v1/query?query={}",
        query.url,
        percent_encode(&query.query)
    );
    let answer = client.send(http::Method::GET, &url, None, None).await?;
    if !answer.is_success() {
        let body: String = answer.text().chars().take(200).collect();
        return Err(Error::Status {
            status: answer.status,
            body,
        });
    }
    if answer.body.len() > MAX_ANSWER_BYTES {
        return Err(Error::Answer(format!(
            "{} bytes, more than {MAX_ANSWER_BYTES}",
            answer.body.len()
        )));
    }
    parse_answer(&answer.body)
}

/// The value of a Prometheus query answer.
fn parse_answer(body: &[u8]) -> Result<f64, Error> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| Error::Answer(err.to_string()))?;
    let data = &json["data"];
    let sample_value = |sample: &serde_json::Value| -> Result<f64, Error> {
        sample[1]
            .as_str()
            .and_then(|text| text.parse::<f64>().ok())
            .filter(|v| !v.is_nan())
            .ok_or_else(|| Error::Answer(format!("sample {sample} has no number")))
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .ok_or_else(|| Error::Answer("vector without result".into()))?
            .iter()
            .map(|series| sample_value(&series["value"]))
            .sum(),
        Some("scalar") => sample_value(&data["result"]),
        other => Err(Error::Answer(format!(
            "result type {other:?}; write a query giving an instant vector or a scalar"
        ))),
    }
}

/// `text` with everything but unreserved characters percent-encoded, for a query string.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_activity_never_goes_back_and_starts_at_the_start() {
        let start = DateTime::from_timestamp(1_000, 0).expect("valid");
        let activity = Activity::new(start);
        assert_eq!(activity.last("staging"), start);
        activity.seen("staging", start + chrono::Duration::seconds(50));
        activity.seen("staging", start + chrono::Duration::seconds(20));
        assert_eq!(
            activity.last("staging"),
            start + chrono::Duration::seconds(50)
        );
        activity.seen("qa", start - chrono::Duration::seconds(50));
        assert_eq!(activity.last("qa"), start);
    }

    #[test]
    fn vectors_sum_scalars_count_and_other_answers_are_refused() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1.5,"0.25"]},{"metric":{"a":"2"},"value":[1.5,"1"]}]}}"#;
        assert_eq!(parse_answer(vector).expect("vector"), 1.25);
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_answer(empty).expect("empty"), 0.0);
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#;
        assert_eq!(parse_answer(scalar).expect("scalar"), 3.0);
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_answer(matrix).is_err());
        assert_eq!(
            percent_encode("sum(rate(x{a=\"b\"}[5m]))"),
            "sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29"
        );
    }
}
