//! Webhook notifications: a warning before an environment goes down, overrides created and
//! expired, and failed scale actions. The body is Slack-compatible `{"text": ...}` or, with
//! `format: json`, an object a program can read; with `server.public_url` set, each message
//! links to the status page with its environment preselected.
//!
//! Sending never blocks the caller: messages go to a bounded queue that one task drains,
//! retrying each message with backoff. A full queue drops the message with a warning.

use std::time::Duration as StdDuration;

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::calendar::Zone;
use crate::calendar::format::{for_people, utc_seconds};
use crate::config::WebhookFormat;
use crate::domain::Override;
use crate::http_client::HttpClient;

/// Messages waiting to be sent at most.
const QUEUE: usize = 256;
/// Attempts per message, the first included.
const ATTEMPTS: u32 = 4;
/// How long one webhook request may take.
const WEBHOOK_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Failed actions named in one message at most.
const LISTED_FAILURES: usize = 10;

/// Something worth telling people about.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// An environment goes down soon.
    GoingDown {
        /// The environment.
        environment: String,
        /// When it goes down.
        at: DateTime<Utc>,
        /// Its zone, for the local time.
        zone: Zone,
    },
    /// Someone created an override.
    OverrideCreated {
        /// The override.
        item: Override,
        /// The environment's zone.
        zone: Zone,
    },
    /// An override ran out; the calendar decides again.
    OverrideExpired {
        /// The override.
        item: Override,
    },
    /// Scale actions failed in a reconcile pass.
    ActionsFailed {
        /// `(target, error)` pairs.
        failures: Vec<(String, String)>,
    },
}

// === impl Notification ===

impl Notification {
    /// What happened, as the `event` field of a JSON body names it.
    pub fn event(&self) -> &'static str {
        match self {
            Notification::GoingDown { .. } => "going_down",
            Notification::OverrideCreated { .. } => "override_created",
            Notification::OverrideExpired { .. } => "override_expired",
            Notification::ActionsFailed { .. } => "actions_failed",
        }
    }

    /// The environment it is about, if one.
    pub fn environment(&self) -> Option<&str> {
        match self {
            Notification::GoingDown { environment, .. } => Some(environment),
            Notification::OverrideCreated { item, .. } | Notification::OverrideExpired { item } => {
                Some(&item.environment)
            }
            Notification::ActionsFailed { .. } => None,
        }
    }

    /// The status page under `public_url` at the environment's section or, before an
    /// environment goes down, the form that keeps it up with the environment preselected.
    pub fn link(&self, public_url: &str) -> String {
        let base = public_url.trim_end_matches('/');
        match (self, self.environment()) {
            (Notification::GoingDown { .. }, Some(environment)) => {
                format!("{base}/keep-up?environment={}", query_value(environment))
            }
            (_, Some(environment)) => format!("{base}/#env-{}", query_value(environment)),
            (_, None) => format!("{base}/"),
        }
    }

    /// The message text, ending with `link` when there is one.
    pub fn text(&self, link: Option<&str>) -> String {
        let message = match self {
            Notification::GoingDown {
                environment,
                at,
                zone,
            } => {
                let when = at.with_timezone(zone).format("%H:%M %Z");
                return match link {
                    Some(link) => format!("{environment} sleeps at {when} — keep it up: {link}"),
                    None => format!("{environment} sleeps at {when}"),
                };
            }
            Notification::OverrideCreated { item, zone } => format!(
                "{} set {} {} until {}: {}",
                item.created_by,
                item.environment,
                item.state,
                for_people(item.until, *zone),
                item.reason
            ),
            Notification::OverrideExpired { item } => format!(
                "the override by {} on {} ({}) has ended; the calendar decides again",
                item.created_by, item.environment, item.reason
            ),
            Notification::ActionsFailed { failures } => {
                let list: Vec<String> = failures
                    .iter()
                    .take(LISTED_FAILURES)
                    .map(|(target, error)| format!("{target}: {error}"))
                    .collect();
                format!(
                    "curfew: {} scale action(s) failed: {}",
                    failures.len(),
                    list.join("; ")
                )
            }
        };
        match link {
            Some(link) => format!("{message} — {link}"),
            None => message,
        }
    }

    /// The body posted for this notification in `format`, linking under `public_url` when
    /// set.
    pub fn body(&self, format: WebhookFormat, public_url: Option<&str>) -> Value {
        let link = public_url.map(|base| self.link(base));
        let text = self.text(link.as_deref());
        if format == WebhookFormat::Slack {
            return json!({ "text": text });
        }
        let mut body = json!({
            "event": self.event(),
            "environment": self.environment(),
            "text": text,
            "link": link,
        });
        match self {
            Notification::GoingDown { at, .. } => body["at"] = json!(utc_seconds(*at)),
            Notification::OverrideCreated { item, .. } | Notification::OverrideExpired { item } => {
                body["override"] = json!(item);
            }
            Notification::ActionsFailed { failures } => {
                body["failures"] = failures
                    .iter()
                    .map(|(target, error)| json!({ "target": target, "error": error }))
                    .collect();
            }
        }
        body
    }
}

/// `value` percent-encoded for a query string.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Where and how messages are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The URL, `http://` or `https://`.
    pub url: String,
    /// The body's shape.
    pub format: WebhookFormat,
    /// The status page's base URL for links; none without it.
    pub public_url: Option<String>,
}

/// A handle for queueing notifications; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Notification>,
}

// === impl Notifier ===

impl Notifier {
    /// A handle queueing for `webhook`, and the delivery that posts what it queues (run it
    /// as a task).
    ///
    /// `retry_base` is the delay before the first retry; it doubles after each.
    pub fn new(webhook: Webhook, retry_base: StdDuration) -> (Notifier, Delivery) {
        let (queue, receiver) = mpsc::channel::<Notification>(QUEUE);
        let delivery = Delivery {
            webhook,
            retry_base,
            receiver,
        };
        (Notifier { queue }, delivery)
    }

    /// Queues `notification` without waiting; drops it with a warning when the queue is full.
    pub fn send(&self, notification: Notification) {
        if let Err(err) = self.queue.try_send(notification) {
            tracing::warn!(error = %err, "notification dropped");
        }
    }
}

/// Posts queued notifications to the webhook, one at a time, each retried with backoff.
#[derive(Debug)]
pub struct Delivery {
    webhook: Webhook,
    retry_base: StdDuration,
    receiver: mpsc::Receiver<Notification>,
}

// === impl Delivery ===

impl Delivery {
    /// Delivers until `shutdown` is cancelled (or every handle is gone).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let client = HttpClient::new(WEBHOOK_TIMEOUT);
        loop {
            let next = tokio::select! {
                next = self.receiver.recv() => next,
                _ = shutdown.cancelled() => None,
            };
            let Some(notification) = next else { break };
            let body = notification.body(self.webhook.format, self.webhook.public_url.as_deref());
            deliver(
                &client,
                &self.webhook.url,
                &body.to_string(),
                self.retry_base,
            )
            .await;
        }
    }
}

async fn deliver(client: &HttpClient, url: &str, body: &str, retry_base: StdDuration) {
    for attempt in 1..=ATTEMPTS {
        let result = client
            .send(Method::POST, url, None, Some(body.as_bytes().to_vec()))
            .await;
        let error = match result {
            Ok(response) if response.is_success() => return,
            Ok(response) => format!("status {}", response.status),
            Err(err) => err.to_string(),
        };
        if attempt == ATTEMPTS {
            tracing::warn!(%error, attempts = ATTEMPTS, "webhook notification failed");
            return;
        }
        tracing::debug!(%error, attempt, "webhook notification failed; retrying");
        tokio::time::sleep(retry_base.saturating_mul(1 << (attempt - 1))).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A receiver answering 500 to the first `failures` requests and 200 after, sending each
    /// request's text to the channel.
    async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (sender, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            for index in 0.. {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut buffer = vec![0; 8192];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let _ = sender.send(String::from_utf8_lossy(&buffer[..read]).into_owned());
                let status = if index < failures {
                    "500 Oops"
                } else {
                    "200 OK"
                };
                let reply =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_until_the_webhook_accepts_it() {
        let (url, mut requests) = receiver(2).await;
        let webhook = Webhook {
            url,
            format: WebhookFormat::Slack,
            public_url: None,
        };
        let (notifier, delivery) = Notifier::new(webhook, StdDuration::from_millis(10));
        tokio::spawn(delivery.run(CancellationToken::new()));
        notifier.send(Notification::ActionsFailed {
            failures: vec![("deployment/shop/web".into(), "AccessDenied".into())],
        });
        for attempt in 1..=3 {
            let request = tokio::time::timeout(StdDuration::from_secs(5), requests.recv())
                .await
                .unwrap_or_else(|_| panic!("attempt {attempt} never arrived"))
                .unwrap();
            assert!(request.starts_with("POST /hook"), "{request}");
            assert!(request.contains("\"text\":\"curfew: 1 scale action(s) failed: deployment/shop/web: AccessDenied\""), "{request}");
        }
        // Accepted on the third attempt: no fourth.
        let more = tokio::time::timeout(StdDuration::from_millis(300), requests.recv()).await;
        assert!(more.is_err(), "delivered once accepted");
    }

    fn going_down() -> Notification {
        Notification::GoingDown {
            environment: "staging eu".into(),
            at: DateTime::parse_from_rfc3339("2026-12-01T19:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            zone: chrono_tz::Europe::Berlin.into(),
        }
    }

    #[test]
    fn the_warning_names_the_local_time_and_links_only_with_a_public_url() {
        let warning = going_down();
        assert_eq!(
            warning.body(WebhookFormat::Slack, Some("https://curfew.example/")),
            json!({ "text": "staging eu sleeps at 20:00 CET — keep it up: https://curfew.example/keep-up?environment=staging%20eu" })
        );
        assert_eq!(
            warning.body(WebhookFormat::Slack, None),
            json!({ "text": "staging eu sleeps at 20:00 CET" })
        );
    }

    #[test]
    fn the_json_body_carries_the_event_its_environment_the_link_and_the_details() {
        let body = going_down().body(WebhookFormat::Json, Some("https://curfew.example"));
        assert_eq!(body["event"], "going_down");
        assert_eq!(body["environment"], "staging eu");
        assert_eq!(body["at"], "2026-12-01T19:00:00Z");
        assert_eq!(
            body["link"],
            "https://curfew.example/keep-up?environment=staging%20eu"
        );
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .starts_with("staging eu sleeps at 20:00 CET")
        );
        let failed = Notification::ActionsFailed {
            failures: vec![("asg/nodes".into(), "throttled".into())],
        }
        .body(WebhookFormat::Json, None);
        assert_eq!(failed["environment"], Value::Null);
        assert_eq!(failed["link"], Value::Null);
        assert_eq!(
            failed["failures"],
            json!([{ "target": "asg/nodes", "error": "throttled" }])
        );
    }
}
