//! A token bucket per API token, in memory.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::config::RateLimitConfig;

/// Per-key token buckets: `per_second` requests on average, bursts of `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

// === impl RateLimiter ===

impl RateLimiter {
    /// A limiter with the configured rates.
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter {
            per_second: f64::from(config.per_second),
            burst: f64::from(config.burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s bucket; `false` when it is empty.
    pub fn allow(&self, key: &str) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn allow_at(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_the_bucket_refills() {
        let limiter = RateLimiter::new(RateLimitConfig {
            per_second: 10,
            burst: 3,
        });
        let start = Instant::now();
        assert!((0..3).all(|_| limiter.allow_at("otto", start)));
        assert!(!limiter.allow_at("otto", start));
        // Another token has its own bucket.
        assert!(limiter.allow_at("anna", start));
        // 100 ms later one request is back.
        let later = start + Duration::from_millis(100);
        assert!(limiter.allow_at("otto", later));
        assert!(!limiter.allow_at("otto", later));
    }
}
