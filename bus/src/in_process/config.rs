/// Settings of the [`super::InProcessBus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InProcessConfig {
    /// How many of the latest messages the log keeps for [`super::InProcessBus::messages`];
    /// older ones are dropped, so a long-running `serve` does not grow without bound.
    pub retain: usize,
    /// How many messages a slow subscriber may fall behind before it misses some
    /// (it then gets `RecvError::Lagged` and should catch up from the event store).
    pub channel_capacity: usize,
}

impl Default for InProcessConfig {
    fn default() -> Self {
        Self {
            retain: 10_000,
            channel_capacity: 1_024,
        }
    }
}
