//! Installing the process's metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds, for every `*_seconds` histogram: from a cached read
/// (1 ms) to a payment provider's slowest answer.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets for the projector's batch sizes (messages per batch), 1 to 16,384.
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder (once; later
/// calls return the same handle) and returns the handle that renders the text
/// exposition for a `/metrics` route.
///
/// Histograms are exposed as Prometheus histograms (buckets), not summaries, so that
/// dashboards can aggregate them across processes.
///
/// # Panics
/// When another recorder was installed first: a process has one.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("projector_batch_size".into()),
                        BATCH_SIZE_BUCKETS,
                    )
                })
                .expect("the bucket lists are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            ::metrics::set_global_recorder(recorder)
                .expect("no other metrics recorder is installed before this one");
            handle
        })
        .clone()
}

/// CloudWatch Embedded Metric Format, for Lambda functions.
pub mod emf {
    use std::sync::OnceLock;

    use metrics_cloudwatch_embedded::Collector;

    static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

    /// The CloudWatch namespace the metrics are filed under, unless
    /// `METRICS_NAMESPACE` names another.
    pub const DEFAULT_NAMESPACE: &str = "Ticketing";

    /// Installs the EMF collector as the process's metrics recorder (once per cold
    /// start), with the function's name as a dimension. A process that already has a
    /// recorder (a test that built several functions) keeps it.
    pub fn install(function: &str) {
        COLLECTOR.get_or_init(|| {
            let namespace = std::env::var("METRICS_NAMESPACE")
                .ok()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
            metrics_cloudwatch_embedded::Builder::new()
                .cloudwatch_namespace(namespace)
                .with_dimension("function", function.to_owned())
                .init()
                .ok()
        });
    }

    /// Writes what was recorded since the last flush as one EMF line on stdout,
    /// where Lambda sends it to CloudWatch Logs, which extracts the metrics. Called
    /// after each invocation; does nothing before [`install`].
    pub fn flush() {
        if let Err(error) = flush_to(std::io::stdout()) {
            eprintln!("metrics not written: {error}");
        }
    }

    /// As [`flush`], to `writer`.
    ///
    /// # Errors
    /// When `writer` fails.
    pub fn flush_to(writer: impl std::io::Write) -> std::io::Result<()> {
        match COLLECTOR.get() {
            Some(Some(collector)) => collector.flush(writer),
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn what_was_recorded_is_written_as_emf_lines_with_the_function_as_a_dimension() {
            install("reservations");
            metrics::counter!("holds_total", "outcome" => "granted").increment(2);
            metrics::histogram!("hold_turn_wait_seconds").record(0.004);
            let mut out = Vec::new();
            flush_to(&mut out).unwrap();
            let documents: Vec<serde_json::Value> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            let holds = documents
                .iter()
                .find(|d| d.get("holds_total").is_some())
                .unwrap_or_else(|| panic!("no holds_total in {documents:?}"));
            assert_eq!(holds["holds_total"], 2);
            assert_eq!(holds["outcome"], "granted");
            assert_eq!(holds["function"], "reservations");
            let declared = &holds["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(declared["Namespace"], DEFAULT_NAMESPACE);
            assert_eq!(declared["Metrics"][0]["Name"], "holds_total");
            let dimensions = declared["Dimensions"][0].as_array().unwrap();
            assert!(
                dimensions.contains(&"function".into()) && dimensions.contains(&"outcome".into())
            );
            assert!(documents
                .iter()
                .any(|d| d.get("hold_turn_wait_seconds").is_some()));

            let mut again = Vec::new();
            flush_to(&mut again).unwrap();
            assert!(
                !String::from_utf8(again)
                    .unwrap()
                    .contains("holds_total\":2"),
                "a flush writes what was recorded since the last one"
            );
        }
    }
}
