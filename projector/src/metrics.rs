//! The projector's Prometheus metrics: what an operator watches to know the read
//! models are keeping up (OPERATIONS.md reads them).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `projector_events_applied_total` | counter | events folded into the read models (dead letters included) |
//! | `projector_duplicates_skipped_total` | counter | deliveries skipped as already applied |
//! | `projector_gap_events_read_total` | counter | events read from the store to fill gaps |
//! | `projector_dead_letters_total` | counter | events and messages sent to the dead-letter table and topic |
//! | `projector_batches_total` | counter | batches applied |
//! | `projector_batch_failures_total` | counter | attempts to apply a batch that failed (retried) |
//! | `projector_batch_size` | histogram | messages per batch |
//! | `projector_batch_duration_seconds` | histogram | from a batch's arrival to its commit |
//! | `projector_consumer_lag` | gauge, by `topic`, `partition` | messages on the broker not yet consumed |

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use ticketing_bus::PartitionLag;

use crate::BatchOutcome;

type LagLabels = Vec<(String, String)>;

/// Every metric of the projector, registered in one registry. Cheap to clone (the
/// metrics are shared).
#[derive(Clone)]
pub struct ProjectorMetrics {
    registry: Arc<Registry>,
    pub events_applied: Counter,
    pub duplicates_skipped: Counter,
    pub gap_events_read: Counter,
    pub dead_letters: Counter,
    pub batches: Counter,
    pub batch_failures: Counter,
    pub batch_size: Histogram,
    pub batch_duration: Histogram,
    consumer_lag: Family<LagLabels, Gauge>,
}

impl std::fmt::Debug for ProjectorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectorMetrics").finish_non_exhaustive()
    }
}

impl Default for ProjectorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ProjectorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let events_applied = Counter::default();
        let duplicates_skipped = Counter::default();
        let gap_events_read = Counter::default();
        let dead_letters = Counter::default();
        let batches = Counter::default();
        let batch_failures = Counter::default();
        // 1 .. ~16k messages.
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        // 1 ms .. ~16 s.
        let batch_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let consumer_lag = Family::<LagLabels, Gauge>::default();
        registry.register(
            "projector_events_applied",
            "Events folded into the read models, dead letters included",
            events_applied.clone(),
        );
        registry.register(
            "projector_duplicates_skipped",
            "Deliveries skipped because their stream version was already applied",
            duplicates_skipped.clone(),
        );
        registry.register(
            "projector_gap_events_read",
            "Events read from the event store to fill a gap in a stream",
            gap_events_read.clone(),
        );
        registry.register(
            "projector_dead_letters",
            "Events and messages sent to the dead-letter table and topic",
            dead_letters.clone(),
        );
        registry.register("projector_batches", "Batches applied", batches.clone());
        registry.register(
            "projector_batch_failures",
            "Attempts to apply or commit a batch that failed and were retried",
            batch_failures.clone(),
        );
        registry.register(
            "projector_batch_size",
            "Messages per applied batch",
            batch_size.clone(),
        );
        registry.register(
            "projector_batch_duration_seconds",
            "Time from a batch's arrival to its commit",
            batch_duration.clone(),
        );
        registry.register(
            "projector_consumer_lag",
            "Messages on the broker that the consumer group has not consumed, by partition",
            consumer_lag.clone(),
        );
        Self {
            registry: Arc::new(registry),
            events_applied,
            duplicates_skipped,
            gap_events_read,
            dead_letters,
            batches,
            batch_failures,
            batch_size,
            batch_duration,
            consumer_lag,
        }
    }

    /// Counts an applied batch of `size` messages that took `seconds`.
    pub fn record_batch(&self, size: usize, outcome: &BatchOutcome, seconds: f64) {
        self.batches.inc();
        self.events_applied.inc_by(outcome.applied as u64);
        self.duplicates_skipped.inc_by(outcome.duplicates as u64);
        self.gap_events_read.inc_by(outcome.gap_filled as u64);
        self.dead_letters.inc_by(outcome.dead_lettered as u64);
        self.batch_size.observe(size as f64);
        self.batch_duration.observe(seconds);
    }

    /// Replaces the lag gauges with `lags` (partitions no longer assigned disappear).
    pub fn set_lag(&self, lags: &[PartitionLag]) {
        self.consumer_lag.clear();
        for lag in lags {
            self.consumer_lag
                .get_or_create(&vec![
                    ("topic".to_owned(), lag.topic.clone()),
                    ("partition".to_owned(), lag.partition.to_string()),
                ])
                .set(lag.lag);
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_and_lag_show_in_the_exposition() {
        let metrics = ProjectorMetrics::new();
        metrics.record_batch(
            12,
            &BatchOutcome {
                applied: 9,
                duplicates: 3,
                gap_filled: 2,
                dead_lettered: 1,
            },
            0.25,
        );
        metrics.set_lag(&[PartitionLag {
            topic: "ticketing-inventory-events".to_owned(),
            partition: 3,
            lag: 41,
        }]);
        let text = metrics.encode();
        for line in [
            "projector_events_applied_total 9",
            "projector_duplicates_skipped_total 3",
            "projector_gap_events_read_total 2",
            "projector_dead_letters_total 1",
            "projector_batches_total 1",
            "projector_batch_size_count 1",
            "projector_batch_size_sum 12.0",
            "projector_batch_duration_seconds_sum 0.25",
            "projector_consumer_lag{topic=\"ticketing-inventory-events\",partition=\"3\"} 41",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }

        metrics.set_lag(&[]);
        assert!(!metrics.encode().contains("projector_consumer_lag{"));
    }
}
