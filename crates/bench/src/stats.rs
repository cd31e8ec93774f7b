//! Small, pure helpers for the figures: latency percentiles, the rate-limit bound, and the
//! process's peak memory.
//!
//! Percentiles use the nearest-rank method on the sorted samples, so a reported p99 is a latency
//! some request actually had (no interpolation between two requests).

use std::collections::BTreeMap;
use std::time::Duration;

/// Latency samples of one kind of request.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    /// Every sample in milliseconds, unsorted until a percentile is asked for.
    samples_ms: Vec<f64>,
}

impl Latencies {
    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        self.samples_ms.push(d.as_secs_f64() * 1000.0);
    }

    /// Adds the samples of another set.
    pub fn extend(&mut self, other: Latencies) {
        self.samples_ms.extend(other.samples_ms);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.samples_ms.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.samples_ms.is_empty()
    }

    /// The `p`-th percentile (0 < p ≤ 100) by nearest rank, `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.samples_ms.is_empty() {
            return None;
        }
        let mut sorted = self.samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        let index = rank.clamp(1, sorted.len()) - 1;
        sorted.get(index).copied().map(round2)
    }
}

/// Rounds to two decimals, so reports stay readable.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The rate-limit bound in seconds: for each API family, the time its calls need within its
/// budget; the largest of them (families run side by side, each within its own budget). `None`
/// without a limit.
///
/// DingTalk's budget is `qps` calls in any sliding 1 s window, so `n` calls need
/// `ceil(n / qps) - 1` seconds: the first `qps` go at once, each later group of `qps` one window
/// after the one before. For large `n` this is `n / qps` (the "calls ÷ budget") less one
/// second; for small `n` it is honest (a burst within the budget is free).
pub fn rate_bound_s(min_calls: &BTreeMap<String, u64>, qps: u32) -> Option<f64> {
    if qps == 0 {
        return None;
    }
    min_calls
        .values()
        .map(|calls| calls.div_ceil(u64::from(qps)).saturating_sub(1) as f64)
        .max_by(f64::total_cmp)
}

/// The difference `after - before` per API, keeping only APIs that were called in between.
pub fn calls_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(api, n)| {
            let d = n.saturating_sub(before.get(api).copied().unwrap_or(0));
            (d > 0).then(|| (api.clone(), d))
        })
        .collect()
}

/// Peak resident memory of this process in MB (`VmHWM` in `/proc/self/status`); `None` where
/// the kernel does not provide it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm_kb(&status).map(|kb| round2(kb as f64 / 1024.0))
}

/// Reads the `VmHWM:   12345 kB` line.
fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), None);
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile(50.0), Some(50.0));
        assert_eq!(l.percentile(99.0), Some(99.0));
        assert_eq!(l.percentile(100.0), Some(100.0));
        let mut one = Latencies::default();
        one.record(Duration::from_millis(7));
        assert_eq!(one.percentile(99.0), Some(7.0));
    }

    #[test]
    fn bound_is_the_slowest_family() {
        let calls = BTreeMap::from([("a".to_owned(), 40), ("b".to_owned(), 100)]);
        // 100 calls at 20/s: five windows, the first at once.
        assert_eq!(rate_bound_s(&calls, 20), Some(4.0));
        assert_eq!(rate_bound_s(&calls, 200), Some(0.0));
        let calls = BTreeMap::from([("a".to_owned(), 101)]);
        assert_eq!(rate_bound_s(&calls, 20), Some(5.0));
        assert_eq!(rate_bound_s(&calls, 0), None);
        assert_eq!(rate_bound_s(&BTreeMap::new(), 20), None);
    }

    #[test]
    fn delta_keeps_only_new_calls() {
        let before = BTreeMap::from([("a".to_owned(), 3), ("b".to_owned(), 5)]);
        let after = BTreeMap::from([
            ("a".to_owned(), 3),
            ("b".to_owned(), 9),
            ("c".to_owned(), 1),
        ]);
        let d = calls_delta(&before, &after);
        assert_eq!(
            d,
            BTreeMap::from([("b".to_owned(), 4), ("c".to_owned(), 1)])
        );
    }

    #[test]
    fn vm_hwm_is_read_from_status() {
        let status = "Name:\tdingsync\nVmPeak:\t  999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(20480));
        assert_eq!(parse_vm_hwm_kb("Name: x\n"), None);
        // This process has a status file on Linux.
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mb().is_some_and(|mb| mb > 0.0));
        }
    }
}
