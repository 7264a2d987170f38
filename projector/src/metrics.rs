//! The projector's metrics, recorded through the `metrics` facade: what an operator
//! watches to know the read models are keeping up (OPERATIONS.md reads them). The
//! `projector` binary exposes them for Prometheus; on Lambda they are EMF lines.
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
//! | `projector_consumer_lag` | gauge, by `topic`, `partition` | messages on the broker not yet consumed (0 for a partition no longer assigned) |

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use ticketing_bus::PartitionLag;

use crate::BatchOutcome;

/// Records the projector's metrics. Cheap to clone: the recorder is the process's.
#[derive(Debug, Clone, Default)]
pub struct ProjectorMetrics {
    /// The partitions whose lag was last reported, so that one no longer assigned
    /// reads 0 rather than its last lag.
    lag_partitions: Arc<Mutex<BTreeSet<(String, i32)>>>,
}

impl ProjectorMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers these metrics with the installed recorder: their descriptions, and
    /// every counter at zero.
    pub fn register() {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(
            "projector_events_applied_total",
            "Events folded into the read models, dead letters included"
        );
        describe_counter!(
            "projector_duplicates_skipped_total",
            "Deliveries skipped because their stream version was already applied"
        );
        describe_counter!(
            "projector_gap_events_read_total",
            "Events read from the event store to fill a gap in a stream"
        );
        describe_counter!(
            "projector_dead_letters_total",
            "Events and messages sent to the dead-letter table and topic"
        );
        describe_counter!("projector_batches_total", "Batches applied");
        describe_counter!(
            "projector_batch_failures_total",
            "Attempts to apply or commit a batch that failed and were retried"
        );
        describe_histogram!("projector_batch_size", "Messages per applied batch");
        describe_histogram!(
            "projector_batch_duration_seconds",
            Unit::Seconds,
            "Time from a batch's arrival to its commit"
        );
        describe_gauge!(
            "projector_consumer_lag",
            "Messages on the broker that the consumer group has not consumed, by partition"
        );
        for counter in [
            "projector_events_applied_total",
            "projector_duplicates_skipped_total",
            "projector_gap_events_read_total",
            "projector_dead_letters_total",
            "projector_batches_total",
            "projector_batch_failures_total",
        ] {
            metrics::counter!(counter).absolute(0);
        }
    }

    /// Counts an applied batch of `size` messages that took `seconds`.
    pub fn record_batch(&self, size: usize, outcome: &BatchOutcome, seconds: f64) {
        self.record_applied(size, outcome.applied);
        metrics::counter!("projector_duplicates_skipped_total")
            .increment(outcome.duplicates as u64);
        metrics::counter!("projector_gap_events_read_total").increment(outcome.gap_filled as u64);
        metrics::counter!("projector_dead_letters_total").increment(outcome.dead_lettered as u64);
        self.record_duration(seconds);
    }

    /// Records how long a batch took from its arrival to its commit.
    pub fn record_duration(&self, seconds: f64) {
        metrics::histogram!("projector_batch_duration_seconds").record(seconds);
    }

    /// Counts a batch of `size` messages of which `applied` events were folded in
    /// (a rebuild's batches, which skip nothing).
    pub fn record_applied(&self, size: usize, applied: usize) {
        metrics::counter!("projector_batches_total").increment(1);
        metrics::counter!("projector_events_applied_total").increment(applied as u64);
        metrics::histogram!("projector_batch_size").record(size as f64);
    }

    /// Counts an attempt to apply or commit a batch that failed (it is retried).
    pub fn batch_failed(&self) {
        metrics::counter!("projector_batch_failures_total").increment(1);
    }

    /// Sets the lag gauges to `lags`; partitions no longer assigned read 0.
    pub fn set_lag(&self, lags: &[PartitionLag]) {
        let mut reported = self
            .lag_partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now: BTreeSet<(String, i32)> = lags
            .iter()
            .map(|lag| (lag.topic.clone(), lag.partition))
            .collect();
        for (topic, partition) in reported.difference(&now) {
            lag_gauge(topic, *partition).set(0.0);
        }
        for lag in lags {
            lag_gauge(&lag.topic, lag.partition).set(lag.lag as f64);
        }
        *reported = now;
    }
}

fn lag_gauge(topic: &str, partition: i32) -> metrics::Gauge {
    metrics::gauge!(
        "projector_consumer_lag",
        "topic" => topic.to_owned(),
        "partition" => partition.to_string()
    )
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn batches_and_lag_show_in_the_exposition() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
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
            metrics.batch_failed();
            metrics.set_lag(&[PartitionLag {
                topic: "ticketing-inventory-events".to_owned(),
                partition: 3,
                lag: 41,
            }]);
        });
        let text = handle.render();
        for line in [
            "projector_events_applied_total 9",
            "projector_duplicates_skipped_total 3",
            "projector_gap_events_read_total 2",
            "projector_dead_letters_total 1",
            "projector_batches_total 1",
            "projector_batch_failures_total 1",
            "projector_batch_size_count 1",
            "projector_batch_size_sum 12",
            "projector_batch_duration_seconds_sum 0.25",
            "projector_consumer_lag{topic=\"ticketing-inventory-events\",partition=\"3\"} 41",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }

        metrics::with_local_recorder(&recorder, || ProjectorMetrics::new().set_lag(&[]));
        let metrics = ProjectorMetrics::new();
        metrics::with_local_recorder(&recorder, || {
            metrics.set_lag(&[PartitionLag {
                topic: "ticketing-inventory-events".to_owned(),
                partition: 3,
                lag: 7,
            }]);
            metrics.set_lag(&[]);
        });
        let text = handle.render();
        assert!(
            text.lines().any(|l| {
                l
                == "projector_consumer_lag{topic=\"ticketing-inventory-events\",partition=\"3\"} 0"
            }),
            "a partition no longer assigned reads 0:\n{text}"
        );
    }
}
