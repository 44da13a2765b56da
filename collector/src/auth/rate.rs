//! Per-token request rates: a token bucket per token name, refilled at the token's rate and
//! holding up to two seconds' worth, so short bursts pass and a flood is refused with the time
//! to wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many seconds of requests a bucket holds.
const BURST_SECONDS: f64 = 2.0;

/// The buckets of every token that made a request.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    /// Requests that may be made now.
    available: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// Takes one request from `name`'s bucket, which refills at `per_second`: `Ok`, or how
    /// long until one is available.
    pub fn take(&self, name: &str, per_second: f64) -> Result<(), Duration> {
        self.take_at(name, per_second, Instant::now())
    }

    fn take_at(&self, name: &str, per_second: f64, now: Instant) -> Result<(), Duration> {
        let capacity = (per_second * BURST_SECONDS).max(1.0);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(name.to_owned()).or_insert(Bucket {
            available: capacity,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.available = (bucket.available + elapsed * per_second).min(capacity);
        bucket.refilled = now;
        if bucket.available >= 1.0 {
            bucket.available -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.available) / per_second,
            ))
        }
    }

    /// Forgets the buckets of tokens not in `names` (after a reload removed them).
    pub fn retain(&self, names: &[&str]) {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|name, _| names.contains(&name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_two_seconds_passes_then_requests_wait_for_the_refill() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        for request in 0..20 {
            assert_eq!(
                limiter.take_at("a", 10.0, start),
                Ok(()),
                "request {request}"
            );
        }
        let wait = limiter
            .take_at("a", 10.0, start)
            .expect_err("the 21st request in the same instant is refused");
        assert!(
            (Duration::from_millis(99)..=Duration::from_millis(101)).contains(&wait),
            "{wait:?}"
        );
        // A tenth of a second later one more request is allowed, and only one.
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.take_at("a", 10.0, later), Ok(()));
        assert!(limiter.take_at("a", 10.0, later).is_err());
        // Another token has its own bucket.
        assert_eq!(limiter.take_at("b", 10.0, later), Ok(()));
    }

    #[test]
    fn an_idle_bucket_refills_to_its_burst_and_no_further() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        for _ in 0..4 {
            limiter.take_at("a", 2.0, start).expect("within the burst");
        }
        let much_later = start + Duration::from_secs(3600);
        let passed = (0..10)
            .filter(|_| limiter.take_at("a", 2.0, much_later).is_ok())
            .count();
        assert_eq!(passed, 4);
    }

    #[test]
    fn retain_forgets_removed_tokens() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        for _ in 0..2 {
            limiter
                .take_at("gone", 1.0, start)
                .expect("within the burst");
        }
        assert!(limiter.take_at("gone", 1.0, start).is_err());
        limiter.retain(&["kept"]);
        assert_eq!(
            limiter.take_at("gone", 1.0, start),
            Ok(()),
            "a fresh bucket"
        );
    }
}
