//! Test support (feature `testing`).
//!
//! - [`FaultyReadModels`]: read models that fail on purpose, for tests of what the
//!   projector and its drivers do when a write is refused part-way.
//! - `dynamodb` (with feature `dynamodb`): DynamoDB read models in tables of their
//!   own on a test server, for every suite that runs on DynamoDB.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use ticketing_domain::{CustomerId, SectionAvailability, ShowId, Timestamp};
use ticketing_store::{GlobalPosition, StreamVersion};

use crate::model::{BatchWrite, LoadedRows};
use crate::{
    ReadModelDump, ReadModelError, ReadModelStore, ReservationCursor, ReservationPage,
    RevokedTicket, SectionAdmissions, ShowSales, StoredDeadLetter, TicketCursor, TicketPage,
};

/// Which writes fail: given the write's number (from 0, counting every write the
/// store was asked for) and the write.
type FailWhen = dyn Fn(usize, &BatchWrite) -> bool + Send + Sync;

/// `inner`, except that the writes [`Self::failing_when`] picks fail with
/// [`ReadModelError::ServiceUnavailable`] and write nothing, and that it may claim
/// another [`ReadModelStore::max_hours_per_stream`].
pub struct FaultyReadModels {
    inner: Arc<dyn ReadModelStore>,
    fail_when: Box<FailWhen>,
    max_hours: Option<Option<usize>>,
    writes: AtomicUsize,
}

impl FaultyReadModels {
    /// `inner` as it is, until told otherwise.
    pub fn new(inner: Arc<dyn ReadModelStore>) -> Self {
        Self {
            inner,
            fail_when: Box::new(|_, _| false),
            max_hours: None,
            writes: AtomicUsize::new(0),
        }
    }

    /// Fails the writes for which `fail_when(number, write)` holds.
    #[must_use]
    pub fn failing_when(
        mut self,
        fail_when: impl Fn(usize, &BatchWrite) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.fail_when = Box::new(fail_when);
        self
    }

    /// Claims `max` as its bound on the hours of one stream's part of a write.
    #[must_use]
    pub fn with_max_hours_per_stream(mut self, max: Option<usize>) -> Self {
        self.max_hours = Some(max);
        self
    }

    /// How many writes it was asked for, failed ones included.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ReadModelStore for FaultyReadModels {
    async fn applied_versions(
        &self,
        stream_ids: &[String],
    ) -> Result<BTreeMap<String, StreamVersion>, ReadModelError> {
        self.inner.applied_versions(stream_ids).await
    }

    async fn load(&self, stream_ids: &[String]) -> Result<LoadedRows, ReadModelError> {
        self.inner.load(stream_ids).await
    }

    async fn write(&self, batch: &BatchWrite) -> Result<(), ReadModelError> {
        let number = self.writes.fetch_add(1, Ordering::SeqCst);
        if (self.fail_when)(number, batch) {
            return Err(ReadModelError::ServiceUnavailable(
                "failed by the test".into(),
            ));
        }
        self.inner.write(batch).await
    }

    fn max_hours_per_stream(&self) -> Option<usize> {
        self.max_hours
            .unwrap_or_else(|| self.inner.max_hours_per_stream())
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
        now: Timestamp,
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

    async fn revoked_tickets(
        &self,
        show_id: ShowId,
        since: Option<Timestamp>,
    ) -> Result<Vec<RevokedTicket>, ReadModelError> {
        self.inner.revoked_tickets(show_id, since).await
    }

    async fn show_admissions(
        &self,
        show_id: ShowId,
    ) -> Result<Vec<SectionAdmissions>, ReadModelError> {
        self.inner.show_admissions(show_id).await
    }

    async fn holder_tickets(
        &self,
        holder: &CustomerId,
        limit: usize,
        cursor: Option<TicketCursor>,
    ) -> Result<TicketPage, ReadModelError> {
        self.inner.holder_tickets(holder, limit, cursor).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, ReadModelError> {
        self.inner.dead_letters(limit).await
    }

    async fn dump(&self) -> Result<ReadModelDump, ReadModelError> {
        self.inner.dump().await
    }
}
