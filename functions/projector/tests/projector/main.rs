//! The projector function, invoked with the committed Kafka event fixtures (the shape
//! Lambda's self-managed Kafka and MSK event sources send) on a fresh embedded store.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::kafka::KafkaEvent;
use chrono::{TimeZone, Utc};
use ticketing_bus::{BusError, DeadLetterMessage};
use ticketing_domain::{CustomerId, ShowId};
use ticketing_fn_projector::{DeadLetterTopic, Handler, ItemIdentifier, KafkaBatchResponse};
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{TestStore, CUSTOMER, SHOW_ID};
use ticketing_projector::Projector;
use ticketing_read_models::testing::FaultyReadModels;

fn event(name: &str) -> KafkaEvent {
    serde_json::from_value(fixture!(name).json()).expect("a Kafka event Lambda sends")
}

#[derive(Default)]
struct RecordingTopic {
    letters: Mutex<Vec<DeadLetterMessage>>,
}

#[async_trait]
impl DeadLetterTopic for RecordingTopic {
    async fn publish(&self, letters: &[DeadLetterMessage]) -> Result<(), BusError> {
        self.letters.lock().unwrap().extend_from_slice(letters);
        Ok(())
    }
}

fn show() -> ShowId {
    ShowId(SHOW_ID.parse().unwrap())
}

#[tokio::test]
async fn a_batch_is_applied_and_its_poison_goes_to_dead_letters_not_to_failures() {
    let test = TestStore::new().await;
    let topic = Arc::new(RecordingTopic::default());
    let handler = Handler::new(
        Projector::new(test.store.clone(), test.read_models.clone()),
        Some(topic.clone()),
    );

    let response = handler.handle(event("self-managed-kafka-batch.json")).await;
    assert_eq!(response, KafkaBatchResponse::default());

    let now = Utc.with_ymd_and_hms(2035, 6, 1, 10, 5, 0).unwrap();
    let seats = test
        .read_models
        .section_availability(show(), now)
        .await
        .unwrap();
    assert_eq!(seats.len(), 1);
    assert_eq!(
        (seats[0].capacity, seats[0].held, seats[0].available),
        (100, 2, 98)
    );
    let history = test
        .read_models
        .customer_reservations(&CustomerId::parse(CUSTOMER).unwrap(), 10, None)
        .await
        .unwrap();
    assert_eq!(history.reservations.len(), 1);
    assert_eq!(history.reservations[0].amount.amount_minor, 9_000);

    let letters: Vec<(String, u64)> = test
        .read_models
        .dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .map(|stored| (stored.letter.stream_id, stored.letter.version))
        .collect();
    assert_eq!(letters.len(), 2);
    assert!(letters.contains(&("bus:ticketing-inventory-events/0@12".to_owned(), 0)));
    assert!(letters.contains(&(
        "reservation-22222222-2222-4222-8222-222222222222".to_owned(),
        2
    )));
    let published = topic.letters.lock().unwrap();
    assert_eq!(published.len(), 2);
    let poison = published
        .iter()
        .find(|letter| letter.payload == b"not an event")
        .expect("the poison message byte for byte");
    assert_eq!(poison.origin.as_ref().unwrap().offset, 12);
}

#[tokio::test]
async fn a_redelivered_batch_changes_nothing() {
    let test = TestStore::new().await;
    let handler = Handler::new(
        Projector::new(test.store.clone(), test.read_models.clone()),
        None,
    );
    handler.handle(event("msk-batch.json")).await;
    let once = test.read_models.dump().await.unwrap();
    let again = handler.handle(event("msk-batch.json")).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(test.read_models.dump().await.unwrap(), once);
    assert_eq!(once.applied.len(), 1);
}

#[tokio::test]
async fn only_the_partition_that_could_not_be_written_is_reported_from_its_first_record() {
    let test = TestStore::new().await;
    // Writes that touch a purchase fail.
    let failing = Arc::new(
        FaultyReadModels::new(test.read_models.clone()).failing_when(|_, write| {
            write
                .applied
                .iter()
                .any(|(stream, _, _)| stream.starts_with("reservation-"))
        }),
    );
    let handler = Handler::new(Projector::new(test.store.clone(), failing), None);

    let response = handler.handle(event("self-managed-kafka-batch.json")).await;
    let failed: Vec<ItemIdentifier> = response
        .batch_item_failures
        .into_iter()
        .map(|failure| failure.item_identifier)
        .collect();
    let partition = "ticketing-reservation-events-3".to_owned();
    assert_eq!(
        failed,
        [
            ItemIdentifier {
                partition: partition.clone(),
                offset: 40
            },
            ItemIdentifier {
                partition,
                offset: 41
            },
        ]
    );
    // The other partition is applied; nothing of the failed one is.
    let dump = test.read_models.dump().await.unwrap();
    assert_eq!(dump.sections.len(), 1);
    assert!(dump.reservations.is_empty());
    assert!(dump
        .applied
        .iter()
        .all(|(stream, _)| stream.starts_with("inventory-")));
}
