//! The projector function, invoked with the committed Kafka event fixtures (the shape
//! Lambda's self-managed Kafka and MSK event sources send) on a fresh embedded store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::kafka::KafkaEvent;
use chrono::{TimeZone, Utc};
use ticketing_bus::{BusError, DeadLetterMessage};
use ticketing_domain::{CustomerId, ShowId};
use ticketing_fn_projector::{DeadLetterTopic, Handler, ItemIdentifier, KafkaBatchResponse};
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{TestStore, CUSTOMER, SHOW_ID};
use ticketing_projector::{
    BatchWrite, Projector, ReadModelDump, ReadModelError, ReadModelStore, ReservationCursor,
    ReservationPage, ReservationView, SectionAvailability, SectionView, ShowSales,
    StoredDeadLetter,
};
use ticketing_store::{GlobalPosition, StreamVersion};

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

/// Read models whose writes fail for the streams starting with `failing`.
struct FailingFor {
    inner: Arc<dyn ReadModelStore>,
    failing: &'static str,
}

#[async_trait]
impl ReadModelStore for FailingFor {
    async fn applied_versions(
        &self,
        stream_ids: &[String],
    ) -> Result<BTreeMap<String, StreamVersion>, ReadModelError> {
        self.inner.applied_versions(stream_ids).await
    }
    async fn load(
        &self,
        stream_ids: &[String],
    ) -> Result<(Vec<SectionView>, Vec<ReservationView>), ReadModelError> {
        self.inner.load(stream_ids).await
    }
    async fn write(&self, batch: &BatchWrite) -> Result<(), ReadModelError> {
        if batch
            .applied
            .iter()
            .any(|(stream, _, _)| stream.starts_with(self.failing))
        {
            return Err(ReadModelError::ServiceUnavailable(
                "throttled by the test".into(),
            ));
        }
        self.inner.write(batch).await
    }
    async fn clear(&self) -> Result<(), ReadModelError> {
        self.inner.clear().await
    }
    async fn checkpoint(&self, name: &str) -> Result<Option<GlobalPosition>, ReadModelError> {
        self.inner.checkpoint(name).await
    }
    async fn section_availability(
        &self,
        show_id: ShowId,
        now: ticketing_domain::Timestamp,
    ) -> Result<Vec<SectionAvailability>, ReadModelError> {
        self.inner.section_availability(show_id, now).await
    }
    async fn show_sales(&self, show_id: ShowId) -> Result<Option<ShowSales>, ReadModelError> {
        self.inner.show_sales(show_id).await
    }
    async fn customer_reservations(
        &self,
        customer_id: &CustomerId,
        limit: usize,
        cursor: Option<ReservationCursor>,
    ) -> Result<ReservationPage, ReadModelError> {
        self.inner
            .customer_reservations(customer_id, limit, cursor)
            .await
    }
    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, ReadModelError> {
        self.inner.dead_letters(limit).await
    }
    async fn dump(&self) -> Result<ReadModelDump, ReadModelError> {
        self.inner.dump().await
    }
}

#[tokio::test]
async fn only_the_partition_that_could_not_be_written_is_reported_from_its_first_record() {
    let test = TestStore::new().await;
    let failing = Arc::new(FailingFor {
        inner: test.read_models.clone(),
        failing: "reservation-",
    });
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
