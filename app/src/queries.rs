//! Reads straight from the event store: the state of one show, section, reservation
//! or payment, as the aggregates see it, consistent with every committed command.
//! The API's availability, sales and customer history read the read models instead
//! (`ticketing-read-models`); these stay for the reads that must not lag
//! (a show, a reservation, ownership checks) and for tests and the demo, which check
//! the aggregates themselves. Decisions never use either.

use serde::{Deserialize, Serialize};
use ticketing_domain::payment::PaymentDetails;
use ticketing_domain::reservation::ReservationDetails;
use ticketing_domain::show::ShowDetails;
use ticketing_domain::*;

use crate::{AppError, Ticketing};

/// Tickets sold and the money they brought, per section and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesSummary {
    pub show_id: ShowId,
    pub tickets_sold: u32,
    /// Revenue of the tickets currently sold (refunded purchases are not counted).
    pub revenue: Money,
    pub by_section: Vec<SectionSales>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSales {
    pub section: SectionName,
    pub tickets_sold: u32,
    pub revenue: Money,
}

impl Ticketing {
    /// # Errors
    /// [`DomainError::ShowNotFound`] or the store's errors.
    pub async fn show(&self, show_id: ShowId) -> Result<ShowDetails, AppError> {
        let show =
            crate::repository::load::<Show>(self.store.as_ref(), &show_stream(show_id)).await?;
        show.state.0.ok_or(DomainError::ShowNotFound.into())
    }

    /// Every section's seats at the clock's current instant.
    ///
    /// # Errors
    /// [`DomainError::ShowNotFound`] or the store's errors.
    pub async fn availability(
        &self,
        show_id: ShowId,
    ) -> Result<Vec<SectionAvailability>, AppError> {
        let now = self.clock.now();
        let mut sections = Vec::new();
        for inventory in self.inventories(show_id).await? {
            sections.push(SectionAvailability {
                section: inventory.section.clone(),
                capacity: inventory.capacity,
                held: inventory.held_count(now),
                sold: inventory.sold_count(),
                available: inventory.available(now),
                unit_price: inventory.unit_price,
            });
        }
        Ok(sections)
    }

    /// # Errors
    /// [`DomainError::ShowNotFound`] or the store's errors.
    pub async fn sales(&self, show_id: ShowId) -> Result<SalesSummary, AppError> {
        let show = self.show(show_id).await?;
        let currency = show.sections[0].unit_price.currency;
        let mut summary = SalesSummary {
            show_id,
            tickets_sold: 0,
            revenue: Money::zero(currency),
            by_section: vec![],
        };
        for inventory in self.inventories(show_id).await? {
            let sold = inventory.sold_count();
            let revenue = inventory.unit_price.times(sold)?;
            summary.tickets_sold += sold;
            summary.revenue = summary.revenue.checked_add(revenue)?;
            summary.by_section.push(SectionSales {
                section: inventory.section,
                tickets_sold: sold,
                revenue,
            });
        }
        Ok(summary)
    }

    /// # Errors
    /// [`DomainError::ReservationNotFound`] or the store's errors.
    pub async fn reservation(
        &self,
        reservation_id: ReservationId,
    ) -> Result<ReservationDetails, AppError> {
        let stream = reservation_stream(reservation_id);
        let reservation =
            crate::repository::load::<Reservation>(self.store.as_ref(), &stream).await?;
        reservation
            .state
            .0
            .ok_or(DomainError::ReservationNotFound.into())
    }

    /// # Errors
    /// [`DomainError::PaymentNotFound`] or the store's errors.
    pub async fn payment(&self, payment_id: PaymentId) -> Result<PaymentDetails, AppError> {
        let stream = payment_stream(payment_id);
        let payment = crate::repository::load::<Payment>(self.store.as_ref(), &stream).await?;
        payment.state.0.ok_or(DomainError::PaymentNotFound.into())
    }

    async fn inventories(&self, show_id: ShowId) -> Result<Vec<SectionInventory>, AppError> {
        let show = self.show(show_id).await?;
        let mut inventories = Vec::with_capacity(show.sections.len());
        for spec in &show.sections {
            // A section split into buckets is read as the sum of its buckets.
            let mut buckets = Vec::new();
            for bucket in 0..spec.buckets.max(1) {
                let stream = bucket_stream(show_id, &spec.name, bucket);
                let inventory =
                    crate::repository::load::<Inventory>(self.store.as_ref(), &stream).await?;
                buckets.push(inventory.state.0.ok_or(DomainError::UnknownSection)?);
            }
            inventories
                .push(SectionInventory::combined(buckets).ok_or(DomainError::UnknownSection)?);
        }
        Ok(inventories)
    }
}

impl Ticketing {
    /// Every reservation a customer placed, newest first.
    ///
    /// This scans the store's global order: too slow to serve (the API pages the
    /// projector's customer-history read model instead); it is the reference the
    /// projector's tests compare that read model with.
    ///
    /// # Errors
    /// The store's errors, or [`AppError::Decode`] for an unreadable event.
    pub async fn customer_reservations(
        &self,
        customer_id: &CustomerId,
    ) -> Result<Vec<ReservationDetails>, AppError> {
        const PAGE: usize = 1_000;
        let mut after = ticketing_store::GlobalPosition::START;
        let mut ids = Vec::new();
        loop {
            let page = self.store.read_all(after, PAGE).await?;
            for recorded in &page {
                if recorded.event_type != "ReservationPlaced" {
                    continue;
                }
                let event = ReservationEvent::decode(
                    &recorded.event_type,
                    recorded.schema_version,
                    recorded.data.clone(),
                )
                .map_err(|source| AppError::Decode {
                    stream_id: recorded.stream_id.clone(),
                    source,
                })?;
                if let ReservationEvent::ReservationPlaced(placed) = event {
                    if placed.customer_id == *customer_id {
                        ids.push(placed.reservation_id);
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.global_position,
                _ => break,
            }
        }
        let mut reservations = Vec::with_capacity(ids.len());
        for id in ids.into_iter().rev() {
            reservations.push(self.reservation(id).await?);
        }
        Ok(reservations)
    }
}
