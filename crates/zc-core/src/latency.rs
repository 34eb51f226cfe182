//! One-way latency recording into an HdrHistogram.

use hdrhistogram::Histogram;

/// Highest latency the histogram resolves (60 s); above it, values saturate.
pub const MAX_TRACKABLE_NS: u64 = 60_000_000_000;

/// Percentiles of a recording, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LatencySummary {
    /// Recorded samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

/// Records `receive time − message timestamp`, both CLOCK_MONOTONIC nanoseconds.
///
/// The histogram is allocated once (3 significant digits, 1 ns to 60 s);
/// recording never allocates. A timestamp in the future (sender on another
/// clock, or a corrupt message) is counted in [`LatencyRecorder::clock_skew`],
/// not recorded.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
    clock_skew: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        // 1..=60 s with 3 significant digits is a valid, fixed configuration.
        let hist = Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, 3)
            .unwrap_or_else(|e| unreachable!("fixed histogram bounds rejected: {e}"));
        Self {
            hist,
            clock_skew: 0,
        }
    }

    /// Records the latency of a message stamped `sent_ns` and received at `now_ns`.
    #[inline]
    pub fn record(&mut self, sent_ns: u64, now_ns: u64) {
        match now_ns.checked_sub(sent_ns) {
            Some(ns) => self.hist.saturating_record(ns.max(1)),
            None => self.clock_skew += 1,
        }
    }

    /// Messages whose timestamp was later than their receive time.
    pub fn clock_skew(&self) -> u64 {
        self.clock_skew
    }

    /// The underlying histogram (for plots and merging).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Adds another recorder's samples to this one.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.clock_skew += other.clock_skew;
    }

    /// Clears all samples.
    pub fn reset(&mut self) {
        self.hist.reset();
        self.clock_skew = 0;
    }

    /// p50/p99/p99.9/max of what was recorded.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.hist.len(),
            p50: self.hist.value_at_quantile(0.50),
            p99: self.hist.value_at_quantile(0.99),
            p999: self.hist.value_at_quantile(0.999),
            max: self.hist.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = LatencyRecorder::new();
        for ns in 1..=1000u64 {
            r.record(0, ns * 1000);
        }
        let s = r.summary();
        assert_eq!(s.count, 1000);
        assert!((499_000..=501_000).contains(&s.p50), "{s:?}");
        assert!((989_000..=991_000).contains(&s.p99), "{s:?}");
        assert!(s.max >= 999_000, "{s:?}");
    }

    #[test]
    fn future_timestamps_are_counted_not_recorded() {
        let mut r = LatencyRecorder::new();
        r.record(10, 5);
        assert_eq!(r.clock_skew(), 1);
        assert_eq!(r.summary().count, 0);
    }
}
