//! Token buckets per API key and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{METRICS, RateLimits, inc};

/// Who a bucket belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    /// SHA-256 of the credential the request presented (an accepted key).
    Key([u8; 32]),
    /// SHA-256 of a verified user's name; limited as keys are.
    User([u8; 32]),
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every tracked client, bounded by
/// [`RateLimits::max_tracked`].
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<Client, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `client`'s bucket: `Ok` to serve the request,
    /// `Err(wait)` with how long until a token is there.
    pub(crate) fn take(&self, client: Client, now: Instant) -> Result<(), Duration> {
        let (rate, burst) = match client {
            Client::Key(_) | Client::User(_) => {
                (self.limits.per_key_per_second, self.limits.per_key_burst)
            }
            Client::Address(_) => (
                self.limits.per_address_per_second,
                self.limits.per_address_burst,
            ),
        };
        if rate.is_nan() || rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(burst.max(1));
        // A poisoned lock only means another request panicked mid-update:
        // the map is still a map.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&client) && buckets.len() >= self.limits.max_tracked.max(1) {
            evict(&mut buckets, &self.limits, now);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Clients tracked.
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room: buckets that refilled completely carry no state worth
/// keeping; if none did, the least recently used goes.
fn evict(buckets: &mut HashMap<Client, Bucket>, limits: &RateLimits, now: Instant) {
    let before = buckets.len();
    buckets.retain(|client, bucket| {
        let (rate, burst) = match client {
            Client::Key(_) | Client::User(_) => (limits.per_key_per_second, limits.per_key_burst),
            Client::Address(_) => (limits.per_address_per_second, limits.per_address_burst),
        };
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens + elapsed * rate < f64::from(burst.max(1))
    });
    if buckets.len() == before
        && let Some(oldest) = buckets
            .iter()
            .min_by_key(|(_, bucket)| bucket.updated)
            .map(|(client, _)| *client)
    {
        buckets.remove(&oldest);
    }
    for _ in buckets.len()..before {
        inc(&METRICS.rate_evictions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: f64, burst: u32, max_tracked: usize) -> RateLimiter {
        RateLimiter::new(RateLimits {
            per_key_per_second: rate,
            per_key_burst: burst,
            per_address_per_second: rate,
            per_address_burst: burst,
            max_tracked,
        })
    }

    #[test]
    fn burst_then_refill() {
        let limiter = limiter(2.0, 3, 10);
        let client = Client::Address(IpAddr::from([192, 0, 2, 1]));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(client, start).is_ok());
        }
        let wait = limiter.take(client, start).expect_err("burst used up");
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another client is not affected.
        assert!(
            limiter
                .take(Client::Address(IpAddr::from([192, 0, 2, 2])), start)
                .is_ok()
        );
        // Half a second later one token is back, not two.
        let later = start + Duration::from_millis(500);
        assert!(limiter.take(client, later).is_ok());
        assert!(limiter.take(client, later).is_err());
    }

    #[test]
    fn zero_rate_is_unlimited_and_tracks_nothing() {
        let limiter = limiter(0.0, 1, 10);
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.take(Client::Key([7; 32]), now).is_ok());
        }
        assert!(limiter.is_empty());
    }

    #[test]
    fn tracked_clients_are_bounded() {
        let limiter = limiter(1.0, 2, 4);
        let now = Instant::now();
        for i in 0..100u8 {
            let client = Client::Address(IpAddr::from([10, 0, 0, i]));
            let _ = limiter.take(client, now);
            let _ = limiter.take(client, now);
            assert!(limiter.len() <= 4);
        }
    }
}
