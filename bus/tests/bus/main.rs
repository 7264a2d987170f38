//! The bus adapters and the relay, end to end: the in-process bus and the Kafka bus
//! against librdkafka's protocol-level mock broker (`rdkafka::mocking::MockCluster`),
//! and the relay on both event store backends (`sqlite::<behaviour>`,
//! `postgres::<behaviour>`), each test on a fresh database.
//!
//! Layout:
//! - `support.rs`: events appended straight to the store, and a Kafka consumer for
//!   checking what reached the mock broker.
//! - `in_process.rs`: the in-process bus.
//! - `kafka.rs`: the Kafka bus: topics, keys, headers; a broker that is down.
//! - `consumer.rs`: the Kafka source: batches, commits and resuming, poison and dead
//!   letters, lag, on a mock cluster whose consumer groups form at once.
//! - `relay.rs`: the relay's behaviours, run on both backends.
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that a PostgreSQL test is
//! reported as skipped (ignored) by name when no server answers and `CI` is not set
//! ([`ticketing_store::testing::postgres_trial`]). A new test is listed in its
//! module's `trials()`.

mod consumer;
mod in_process;
mod kafka;
mod relay;
mod support;

use ticketing_store::testing::run_trials;

fn main() {
    let mut trials = relay::trials();
    trials.extend(consumer::trials());
    trials.extend(in_process::trials());
    trials.extend(kafka::trials());
    run_trials(trials);
}
