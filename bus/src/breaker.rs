//! A circuit breaker around a bus, for publishers on a request's path.
//!
//! A command publishes its events right after it commits and waits for the bus's
//! acknowledgement. With the broker down, every command would wait for the bus's full
//! timeout before giving up; a flash sale would slow to that pace. After a failure the
//! breaker opens for a cool-down: publishes fail at once and the events stay in the
//! outbox, for the relay (which talks to the bus directly) to publish when the broker
//! is back. The first publish after the cool-down is the trial: success closes the
//! breaker, failure opens it again.
//!
//! The command layer also bounds its own wait for a publish (its publish budget), so a
//! broker that hangs costs the commands in flight only that much while the publish
//! goes on, and fails, behind them.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use ticketing_store::RecordedEvent;
use tokio::time::Instant;

use crate::{BusError, EventBus};

/// The gauge of the breaker's state: 1 from a failed publish until one succeeds
/// (open, then half-open once the cool-down is over), else 0.
pub const OPEN_GAUGE: &str = "bus_breaker_open";

/// An [`EventBus`] that stops calling a failing bus for a while.
pub struct CircuitBreaker<B> {
    inner: B,
    cool_down: Duration,
    open_until: Mutex<Option<Instant>>,
}

impl<B> CircuitBreaker<B> {
    /// How long the breaker stays open after a failure, unless told otherwise.
    pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(30);

    pub fn new(inner: B, cool_down: Duration) -> Self {
        Self {
            inner,
            cool_down,
            open_until: Mutex::new(None),
        }
    }

    /// Whether publishes are being refused without calling the bus.
    pub fn is_open(&self) -> bool {
        self.open_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }

    fn set_open_until(&self, until: Option<Instant>) {
        *self
            .open_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }
}

#[async_trait]
impl<B: EventBus> EventBus for CircuitBreaker<B> {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), BusError> {
        if self.is_open() {
            return Err(BusError::Unavailable(
                "circuit open after a recent failure; the relay will publish".into(),
            ));
        }
        match self.inner.publish(events).await {
            Ok(()) => {
                self.set_open_until(None);
                metrics::gauge!(OPEN_GAUGE).set(0.0);
                Ok(())
            }
            Err(error) => {
                self.set_open_until(Some(Instant::now() + self.cool_down));
                metrics::gauge!(OPEN_GAUGE).set(1.0);
                Err(error)
            }
        }
    }
}

#[async_trait]
impl EventBus for std::sync::Arc<dyn EventBus> {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), BusError> {
        self.as_ref().publish(events).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl EventBus for &Flaky {
        async fn publish(&self, _events: &[RecordedEvent]) -> Result<(), BusError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(BusError::Unavailable("broker down".into()))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_opens_the_breaker_for_the_cool_down_then_one_trial_closes_it() {
        let bus = Flaky::default();
        let breaker = CircuitBreaker::new(&bus, Duration::from_secs(30));
        assert!(breaker.publish(&[]).await.is_ok());
        bus.down.store(true, Ordering::SeqCst);
        assert!(breaker.publish(&[]).await.is_err());
        assert!(breaker.is_open());
        // While open, the bus is not called at all.
        for _ in 0..5 {
            assert!(breaker.publish(&[]).await.is_err());
        }
        assert_eq!(bus.calls.load(Ordering::SeqCst), 2);
        // After the cool-down a failing trial opens it again.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(breaker.publish(&[]).await.is_err());
        assert_eq!(bus.calls.load(Ordering::SeqCst), 3);
        assert!(breaker.is_open());
        // A successful trial closes it.
        bus.down.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(breaker.publish(&[]).await.is_ok());
        assert!(!breaker.is_open());
        assert!(breaker.publish(&[]).await.is_ok());
        assert_eq!(bus.calls.load(Ordering::SeqCst), 5);
    }
}
