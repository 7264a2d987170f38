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

mod consumer;
mod in_process;
mod kafka;
mod relay;
mod support;

macro_rules! on_both_backends {
    ($($behaviour:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    ticketing_store::testing::with_sqlite(|store| crate::relay::$behaviour(std::sync::Arc::new(store))).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    ticketing_store::testing::with_postgres(
                        concat!("postgres::", stringify!($behaviour)),
                        |store| crate::relay::$behaviour(std::sync::Arc::new(store)),
                    )
                    .await;
                }
            )+
        }
    };
}

on_both_backends! {
    the_relay_publishes_what_a_writer_left_behind_and_never_twice_once_marked,
    the_relay_leaves_events_younger_than_older_than_to_their_writer,
    a_failed_publish_marks_nothing_and_the_next_pass_publishes_everything,
    the_relay_works_through_a_backlog_in_batches_in_global_order,
    an_event_without_a_topic_is_left_in_the_outbox_and_the_rest_is_published,
    run_relay_drains_the_backlog_and_stops_on_shutdown,
}
