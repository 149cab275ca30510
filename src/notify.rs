//! Webhook notifications (Slack-compatible `{"text": ...}`): a warning before an environment
//! goes down, overrides created and expired, and failed scale actions.
//!
//! Sending never blocks the caller: messages go to a bounded queue that one task drains,
//! retrying each message with backoff. A full queue drops the message with a warning.

use std::time::Duration as StdDuration;

use axum::http::Method;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::calendar::Zone;
use crate::calendar::format::for_people;
use crate::domain::Override;
use crate::http_client::HttpClient;

/// Messages waiting to be sent at most.
const QUEUE: usize = 256;
/// Attempts per message, the first included.
const ATTEMPTS: u32 = 4;
/// How long one webhook request may take.
const WEBHOOK_TIMEOUT: StdDuration = StdDuration::from_secs(5);

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
        /// Where to keep it up.
        link: String,
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

impl Notification {
    /// The message text.
    pub fn text(&self) -> String {
        match self {
            Notification::GoingDown {
                environment,
                at,
                zone,
                link,
            } => format!(
                "{environment} sleeps at {} — keep it up: {link}",
                at.with_timezone(zone).format("%H:%M %Z")
            ),
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
                    .take(10)
                    .map(|(target, error)| format!("{target}: {error}"))
                    .collect();
                format!(
                    "curfew: {} scale action(s) failed: {}",
                    failures.len(),
                    list.join("; ")
                )
            }
        }
    }
}

/// A handle for queueing notifications; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Notification>,
}

// === impl Notifier ===

impl Notifier {
    /// A handle queueing for webhook `webhook_url`, and the delivery that posts what it
    /// queues (run it as a task).
    ///
    /// `retry_base` is the delay before the first retry; it doubles after each.
    pub fn new(webhook_url: String, retry_base: StdDuration) -> (Notifier, Delivery) {
        let (queue, receiver) = mpsc::channel::<Notification>(QUEUE);
        let delivery = Delivery {
            webhook_url,
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
    webhook_url: String,
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
            deliver(&client, &self.webhook_url, &notification, self.retry_base).await;
        }
    }
}

async fn deliver(
    client: &HttpClient,
    url: &str,
    notification: &Notification,
    retry_base: StdDuration,
) {
    let body = serde_json::json!({ "text": notification.text() }).to_string();
    for attempt in 1..=ATTEMPTS {
        let result = client
            .send(Method::POST, url, None, Some(body.clone().into_bytes()))
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
        let (notifier, delivery) = Notifier::new(url, StdDuration::from_millis(10));
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

    #[test]
    fn the_warning_names_the_local_time_and_the_link() {
        let text = Notification::GoingDown {
            environment: "staging".into(),
            at: DateTime::parse_from_rfc3339("2026-12-01T19:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            zone: chrono_tz::Europe::Berlin.into(),
            link: "http://curfew.example/?environment=staging#keep-up".into(),
        }
        .text();
        assert_eq!(
            text,
            "staging sleeps at 20:00 CET — keep it up: http://curfew.example/?environment=staging#keep-up"
        );
    }
}
