//! Backoff maths: exponential growth with "equal jitter", and a floor for throttling answers.
//!
//! Pure: the caller passes the attempt number and the RNG, so the schedule is reproducible in
//! tests and the retry loop stays free of hidden global state. Jitter keeps a fleet of tasks
//! that failed together from retrying together. A throttle answer (90018 and friends) waits at
//! least DingTalk's 1 s window, its documented advice.

use std::time::Duration;

use rand::Rng;

/// A retry schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The base delay of the first retry.
    pub initial: Duration,
    /// Growth factor per attempt.
    pub multiplier: f64,
    /// Cap on the base delay.
    pub max: Duration,
    /// Minimum wait after a throttling answer (DingTalk's window is 1 s).
    pub throttle_floor: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            multiplier: 2.0,
            max: Duration::from_secs(10),
            throttle_floor: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    /// The base delay before retry number `attempt` (0 = first retry), without jitter.
    pub fn base(&self, attempt: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1.0)
            .powi(i32::try_from(attempt).unwrap_or(i32::MAX));
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The delay before retry number `attempt`: uniformly within `[base/2, base]`, and at least
    /// [`Self::throttle_floor`] when the failure was a throttle.
    pub fn delay(&self, attempt: u32, throttled: bool, rng: &mut impl Rng) -> Duration {
        let base = self.base(attempt);
        let half = base / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            rng.gen_range(Duration::ZERO..=half)
        };
        let delay = half + jitter;
        if throttled {
            delay.max(self.throttle_floor)
        } else {
            delay
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn base_grows_exponentially_and_is_capped() {
        let b = Backoff::default();
        assert_eq!(b.base(0), Duration::from_millis(200));
        assert_eq!(b.base(1), Duration::from_millis(400));
        assert_eq!(b.base(3), Duration::from_millis(1600));
        assert_eq!(b.base(10), Duration::from_secs(10));
        assert_eq!(b.base(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_half_and_full_base() {
        let b = Backoff::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..8 {
            for _ in 0..200 {
                let d = b.delay(attempt, false, &mut rng);
                assert!(
                    d >= b.base(attempt) / 2 && d <= b.base(attempt),
                    "{attempt}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn same_seed_same_schedule_and_jitter_varies() {
        let b = Backoff::default();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..6)
                .map(|a| b.delay(a, false, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let mut rng = StdRng::seed_from_u64(1);
        let draws: std::collections::BTreeSet<_> =
            (0..50).map(|_| b.delay(4, false, &mut rng)).collect();
        assert!(draws.len() > 10, "jitter should spread retries: {draws:?}");
    }

    #[test]
    fn throttles_wait_at_least_the_floor() {
        let b = Backoff::default();
        let mut rng = StdRng::seed_from_u64(3);
        assert!(b.delay(0, true, &mut rng) >= Duration::from_secs(1));
        assert!(b.delay(0, false, &mut rng) < Duration::from_secs(1));
    }
}
