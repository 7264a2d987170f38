//! The command layer's entry point: [`Ticketing`], its settings, and what every use
//! case shares (loading a show or a reservation that must exist). The use cases are in
//! their own modules: `shows`, `holds`, `checkout`, `refunds`, `cancellation`,
//! `sweeper`, `provider_reports`, `tickets`.

use std::sync::Arc;

use chrono::TimeDelta;
use ticketing_bus::EventBus;
use ticketing_domain::show::ShowDetails;
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::execution::RetryPolicy;
use crate::payments::PaymentGateway;
use crate::repository::{load, Loaded};
use crate::{AppError, Clock};

/// Tunables of the command layer.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long seats stay held for an unpaid reservation.
    pub hold_duration: TimeDelta,
    pub retry: RetryPolicy,
    /// Snapshot a stream every this many events (0: never).
    pub snapshot_every: u64,
    /// How long a command waits for its turn on a section before it answers with
    /// contention. Commands that change a section take turns on it, across processes,
    /// instead of racing for its version.
    pub section_wait: std::time::Duration,
    /// How long a command waits for the bus to acknowledge its events after the
    /// commit before it answers and leaves them to the relay: a broker that is down or
    /// hanging costs a buyer this much, not the bus's own timeout.
    pub publish_budget: std::time::Duration,
    /// The most holds on one bucket that this process decides and commits in one
    /// transaction (`hold_batches`); 1 runs every hold on its own.
    pub hold_batch_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hold_duration: TimeDelta::minutes(10),
            retry: RetryPolicy::default(),
            snapshot_every: 50,
            section_wait: std::time::Duration::from_secs(2),
            publish_budget: std::time::Duration::from_millis(300),
            hold_batch_max: 64,
        }
    }
}

/// The command layer: every write of the system goes through here.
pub struct Ticketing {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) payments: Arc<dyn PaymentGateway>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    /// Publishes appended events right after their commit, and marks them published
    /// in groups; without a bus it leaves them all to the relay.
    pub(crate) publisher: Arc<crate::publishing::Publisher>,
    /// The same bus without the breaker: the relay is how the bus is found working
    /// again, so it must not be turned away by the breaker.
    relay_bus: Option<Arc<dyn EventBus>>,
    /// Which buckets of a section this process last saw with free seats.
    pub(crate) bucket_hints: Arc<crate::holds::BucketHints>,
    /// This process's holds waiting for their bucket's batch.
    pub(crate) hold_batches: Arc<crate::hold_batches::HoldBatches>,
    /// The shows this process last loaded for holds.
    pub(crate) known_shows: Arc<crate::known::KnownShows>,
    /// The buckets this process last loaded in their turns.
    pub(crate) known_buckets: Arc<crate::known::KnownBuckets>,
    /// What signs and checks ticket codes; `None`: no ticket is issued.
    pub(crate) ticket_keys: Option<Arc<crate::tickets::codes::TicketKeys>>,
}

pub(crate) fn ensure<T>(value: Option<T>, error: DomainError) -> Result<T, AppError> {
    value.ok_or(AppError::Domain(error))
}

impl Ticketing {
    pub fn new(
        store: Arc<dyn EventStore>,
        payments: Arc<dyn PaymentGateway>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            publisher: Arc::new(crate::publishing::Publisher::new(None, Arc::clone(&store))),
            store,
            payments: Arc::new(crate::payments::Measured(payments)),
            clock,
            settings,
            relay_bus: None,
            bucket_hints: Arc::default(),
            hold_batches: Arc::default(),
            known_shows: Arc::new(crate::known::Known::with_capacity(
                crate::known::MAX_KNOWN_SHOWS,
            )),
            known_buckets: Arc::new(crate::known::Known::with_capacity(
                crate::known::MAX_KNOWN_BUCKETS,
            )),
            ticket_keys: None,
        }
    }

    /// Publishes every command's events to `bus` right after their commit, and marks
    /// them published in the store's outbox. A failed publish does not fail the
    /// command: the events stay in the outbox and the relay publishes them
    /// (`ticketing_bus::relay`).
    pub fn with_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        // A command waits for the bus within its publish budget. Behind a breaker, a
        // broker that is down costs the commands in flight their budget until a
        // publish has failed, and then nothing (the relay publishes meanwhile).
        let cool_down = ticketing_bus::CircuitBreaker::<()>::DEFAULT_COOL_DOWN;
        let breaker = ticketing_bus::CircuitBreaker::new(bus.clone(), cool_down);
        self.relay_bus = Some(bus);
        self.publisher = Arc::new(crate::publishing::Publisher::new(
            Some(Arc::new(breaker)),
            Arc::clone(&self.store),
        ));
        self
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Publishes what commands left in the outbox that is older than `grace` (a
    /// function that died between its commit and its publish, a broker that was
    /// down), and returns how many events it published: 0 without a bus. The grace
    /// leaves events of commands still publishing to them; publishing twice would
    /// be harmless, only wasteful. What the scheduled sweeper function runs after its
    /// sweep, so that a deployment without a long-running relay still keeps the
    /// store -> bus guarantee.
    ///
    /// # Errors
    /// [`ticketing_bus::RelayError`] when the outbox cannot be read or the bus refuses;
    /// the events stay in the outbox for the next run.
    pub async fn relay_outbox(
        &self,
        grace: std::time::Duration,
        batch: usize,
    ) -> Result<usize, ticketing_bus::RelayError> {
        let Some(bus) = &self.relay_bus else {
            return Ok(0);
        };
        // Wall-clock time, not the injected clock: the outbox's times are the
        // database's commit times.
        let older_than = chrono::Utc::now()
            - chrono::TimeDelta::from_std(grace).unwrap_or(chrono::TimeDelta::zero());
        ticketing_bus::relay_once(self.store.as_ref(), bus.as_ref(), Some(older_than), batch).await
    }

    /// How many of this process's holds wait for their bucket's batch or are being
    /// decided in one: for diagnostics, and for tests that line holds up behind a turn.
    pub fn holds_in_batches(&self) -> usize {
        self.hold_batches.in_batches()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, AppError> {
        load::<A>(self.store.as_ref(), stream_id).await
    }

    pub(crate) async fn load_existing_show(
        &self,
        show_id: ShowId,
    ) -> Result<(Loaded<Show>, ShowDetails), AppError> {
        let show = self.load::<Show>(&show_stream(show_id)).await?;
        let details = ensure(show.state.0.clone(), DomainError::ShowNotFound)?;
        Ok((show, details))
    }

    pub(crate) async fn load_existing_reservation(
        &self,
        reservation_id: ReservationId,
    ) -> Result<(Loaded<Reservation>, reservation::ReservationDetails), AppError> {
        let reservation = self
            .load::<Reservation>(&reservation_stream(reservation_id))
            .await?;
        let details = ensure(
            reservation.state.0.clone(),
            DomainError::ReservationNotFound,
        )?;
        Ok((reservation, details))
    }
}

impl<A: Aggregate> Loaded<A> {
    /// A stream that must not exist yet.
    pub fn empty(stream_id: String) -> Self {
        Self {
            stream_id,
            state: A::default(),
            version: 0,
            turn: None,
        }
    }
}
