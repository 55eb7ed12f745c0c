//! Per-caller run rates: a token bucket for each caller (a token's name, or a chat user), so
//! one runaway bot or one impatient channel cannot fill the shared queue for everyone.
//!
//! A caller allowed N runs a minute may start N at once, then one every 60/N seconds. A
//! refused start costs nothing, and the answer says when the next one will be let through.
//!
//! Hand-written rather than the `governor` crate, which was weighed for issue 12: a governor
//! keyed limiter gives every key one quota, while here each caller has its own rate (a
//! token's `runs_per_minute`, a chat user's, a Mattermost token's shared one), so it would
//! take one limiter per distinct configured rate; and governor cannot hand a start back,
//! which [`RateLimiter::give_back`] does when the queue turns out to be full after the rate
//! allowed the run. The bucket is a few lines of arithmetic, tested in `serve::` tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Past this many callers, buckets that have refilled completely (callers idle for a while,
/// who would start with a full bucket anyway) are dropped, so a stream of new chat users
/// cannot grow the map without bound.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Runs that may start now, fractional while refilling.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// The caller's rate, as of its last start.
    per_minute: u32,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let per_second = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(self.per_minute));
        self.at = now;
    }

    fn full(&self) -> bool {
        self.tokens >= f64::from(self.per_minute)
    }
}

impl RateLimiter {
    /// Takes one run from `caller`'s bucket, or says how many seconds until one is free.
    pub fn take(&self, caller: &str, per_minute: u32, now: Instant) -> Result<(), u64> {
        let per_minute = per_minute.max(1);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.refill(now);
                !b.full()
            });
        }
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            tokens: f64::from(per_minute),
            at: now,
            per_minute,
        });
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        // Rounded up, so a caller that waits exactly that long is let through; the epsilon
        // keeps float noise (5.000000001) from adding a second.
        let wait = (1.0 - bucket.tokens) * 60.0 / f64::from(per_minute);
        Err(((wait - 1e-6).ceil() as u64).max(1))
    }

    /// Gives back a run taken for a start that was then refused for another reason (a full
    /// queue), so the caller is not charged for it.
    pub fn give_back(&self, caller: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(caller) {
            b.tokens = (b.tokens + 1.0).min(f64::from(b.per_minute));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_one_every_interval() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("bot", 3, t0), Ok(()));
        }
        // 3 a minute: the next is 20 s away.
        assert_eq!(limiter.take("bot", 3, t0), Err(20));
        assert_eq!(limiter.take("bot", 3, t0 + Duration::from_secs(15)), Err(5));
        assert_eq!(
            limiter.take("bot", 3, t0 + Duration::from_millis(15_500)),
            Err(5)
        );
        assert_eq!(limiter.take("bot", 3, t0 + Duration::from_secs(20)), Ok(()));
        // Another caller has a bucket of its own.
        assert_eq!(limiter.take("other", 3, t0), Ok(()));
        // A long idle refills to the burst, no further.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.take("bot", 3, later), Ok(()));
        }
        assert!(limiter.take("bot", 3, later).is_err());
    }

    #[test]
    fn a_run_given_back_is_not_charged() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        assert_eq!(limiter.take("bot", 1, t0), Ok(()));
        assert_eq!(limiter.take("bot", 1, t0), Err(60));
        limiter.give_back("bot");
        assert_eq!(limiter.take("bot", 1, t0), Ok(()));
    }

    #[test]
    fn idle_callers_are_pruned_past_the_cap() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            limiter.take(&format!("user-{i}"), 60, t0).unwrap();
        }
        // A minute later every bucket is full again, so the next take drops them all.
        limiter
            .take("late", 60, t0 + Duration::from_secs(61))
            .unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
