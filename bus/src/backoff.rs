//! How a background loop (the relay, the sweeper) spaces its retries while what it
//! needs is down: doubling pauses up to a ceiling, so an outage costs a few log lines
//! and a few failed calls rather than one of each every second.

use std::time::Duration;

/// Pauses after consecutive failures: `base`, then twice as long each time, at most
/// `ceiling`; back to `base` after a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    ceiling: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, ceiling: Duration) -> Self {
        Self {
            base,
            ceiling: ceiling.max(base),
            failures: 0,
        }
    }

    /// Records a failure and returns the pause before the next try.
    pub fn failed(&mut self) -> Duration {
        let doublings = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        self.base.saturating_mul(1 << doublings).min(self.ceiling)
    }

    /// Records a success: the next failure pauses `base` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_ceiling_and_a_success_starts_over() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(20));
        let pauses: Vec<u64> = (0..7).map(|_| backoff.failed().as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 20, 20]);
        assert_eq!(backoff.failures(), 7);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_secs(1));
    }

    #[test]
    fn a_long_outage_neither_overflows_nor_passes_the_ceiling() {
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_secs(60));
        for _ in 0..10_000 {
            assert!(backoff.failed() <= Duration::from_secs(60));
        }
    }
}
