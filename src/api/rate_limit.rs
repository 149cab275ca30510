//! Token buckets in memory, one per key: API tokens (requests per token) and client addresses
//! (failed authentication attempts per address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{FailedAuthConfig, RateLimitConfig};

/// The most keys kept; beyond it the buckets closest to full are forgotten first (a
/// forgotten bucket starts full again, as if its key had been idle).
const MAX_KEYS: usize = 10_000;

/// Per-key token buckets: `per_second` on average, bursts of `burst`.
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
    /// Requests per API token, as configured.
    pub fn new(config: RateLimitConfig) -> Self {
        Self::with_rate(f64::from(config.per_second), config.burst)
    }

    /// Failed authentication attempts per client address, as configured.
    pub fn failed_auth(config: FailedAuthConfig) -> Self {
        Self::per_minute(config.per_minute, config.burst)
    }

    /// `per_minute` per key on average, bursts of `burst`.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Self::with_rate(f64::from(per_minute) / 60.0, burst)
    }

    fn with_rate(per_second: f64, burst: u32) -> Self {
        RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one from `key`'s bucket; when it is empty, how long until one is back.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    /// Whether `key`'s bucket has one left, without taking it; when it is empty, how long
    /// until one is back.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            self.forget_fullest(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait(bucket))
        }
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        match buckets.get_mut(key) {
            None => Ok(()),
            Some(bucket) => {
                self.refill(bucket, now);
                if bucket.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(self.wait(bucket))
                }
            }
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.refilled = now;
    }

    /// How long an empty bucket takes to hold one again.
    fn wait(&self, bucket: &Bucket) -> Duration {
        Duration::from_secs_f64(((1.0 - bucket.tokens) / self.per_second).max(0.0))
    }

    /// Makes room for a new key: forgets the buckets that have refilled completely or, if
    /// none has, the fullest one.
    fn forget_fullest(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        for bucket in buckets.values_mut() {
            self.refill(bucket, now);
        }
        buckets.retain(|_, bucket| bucket.tokens < self.burst);
        if buckets.len() >= MAX_KEYS
            && let Some(fullest) = buckets
                .iter()
                .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
                .map(|(key, _)| key.clone())
        {
            buckets.remove(&fullest);
        }
    }
}

/// The key of a client address for rate limits: the address itself for IPv4, its /64 network
/// for IPv6 (one host usually holds a whole /64).
pub fn client_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_the_bucket_refills() {
        let limiter = RateLimiter::new(RateLimitConfig {
            per_second: 10,
            burst: 3,
        });
        let start = Instant::now();
        assert!((0..3).all(|_| limiter.take_at("otto", start).is_ok()));
        assert_eq!(
            limiter.take_at("otto", start),
            Err(Duration::from_millis(100)),
            "the answer says when to come back"
        );
        // Another token has its own bucket.
        assert!(limiter.take_at("anna", start).is_ok());
        // 100 ms later one request is back.
        let later = start + Duration::from_millis(100);
        assert!(limiter.take_at("otto", later).is_ok());
        assert!(limiter.take_at("otto", later).is_err());
    }

    #[test]
    fn failed_attempts_are_counted_per_minute_and_checking_takes_nothing() {
        let limiter = RateLimiter::failed_auth(FailedAuthConfig {
            per_minute: 6,
            burst: 2,
        });
        let start = Instant::now();
        assert!(limiter.check_at("10.0.0.1", start).is_ok());
        assert!(
            limiter.check_at("10.0.0.1", start).is_ok(),
            "checks are free"
        );
        assert!(limiter.take_at("10.0.0.1", start).is_ok());
        assert!(limiter.take_at("10.0.0.1", start).is_ok());
        assert_eq!(
            limiter.check_at("10.0.0.1", start),
            Err(Duration::from_secs(10))
        );
        assert!(limiter.check_at("10.0.0.2", start).is_ok());
        assert!(
            limiter
                .check_at("10.0.0.1", start + Duration::from_secs(10))
                .is_ok()
        );
    }

    #[test]
    fn the_number_of_keys_is_bounded() {
        let limiter = RateLimiter::failed_auth(FailedAuthConfig {
            per_minute: 1,
            burst: 2,
        });
        let start = Instant::now();
        for n in 0..MAX_KEYS + 50 {
            let _ = limiter.take_at(&format!("client-{n}"), start);
        }
        let kept = limiter.buckets.lock().len();
        assert!(kept <= MAX_KEYS, "{kept} keys");
        assert!(
            limiter
                .check_at(&format!("client-{}", MAX_KEYS + 49), start)
                .is_ok()
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_bit_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_eq!(client_key("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(client_key("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}
