use thiserror::Error;

use crate::BusError;

/// Why the in-process bus refused to publish.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InProcessError {
    /// The bus is paused ([`super::InProcessBus::pause`]): it behaves like a broker
    /// that is down, so that the embedded setup can show and test the outbox at work.
    #[error("the in-process bus is paused")]
    Paused,
}

impl From<InProcessError> for BusError {
    fn from(error: InProcessError) -> Self {
        BusError::Unavailable(Box::new(error))
    }
}
