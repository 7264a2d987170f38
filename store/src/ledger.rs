//! Where the simulated payment provider keeps its charges and refunds
//! ([`ProviderLedger`]): in memory for one process, or in the event store's database so
//! that every Lambda function and the sweeper of a deployment see the same charges
//! (table `simulated_provider_ledger`, migration 0007).
//!
//! The ledger is a map from `(kind, key)` to a JSON entry in which the first writer
//! wins: what the provider's own records do for an idempotency key. The provider's
//! rules (what a charge is, when a refund is refused) stay in the provider.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::StoreError;

/// The simulated provider's records: entries by kind (`charge`, `refund`, ...) and
/// key, each written once.
#[async_trait]
pub trait ProviderLedger: Send + Sync + std::fmt::Debug {
    /// The entry under `(kind, key)`: `entry` if there was none (it is recorded), or
    /// the one recorded first.
    ///
    /// # Errors
    /// Infrastructure failures.
    async fn record_once(&self, kind: &str, key: &str, entry: Value) -> Result<Value, StoreError>;

    /// The entry under `(kind, key)`, if one was recorded.
    ///
    /// # Errors
    /// Infrastructure failures.
    async fn entry(&self, kind: &str, key: &str) -> Result<Option<Value>, StoreError>;
}

/// A ledger in this process's memory: one provider instance's view only.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<HashMap<(String, String), Value>>,
}

impl MemoryLedger {
    /// Every entry of `kind`, in no particular order.
    pub fn entries(&self, kind: &str) -> Vec<Value> {
        self.lock()
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, entry)| entry.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Value>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl ProviderLedger for MemoryLedger {
    async fn record_once(&self, kind: &str, key: &str, entry: Value) -> Result<Value, StoreError> {
        Ok(self
            .lock()
            .entry((kind.to_owned(), key.to_owned()))
            .or_insert(entry)
            .clone())
    }

    async fn entry(&self, kind: &str, key: &str) -> Result<Option<Value>, StoreError> {
        Ok(self.lock().get(&(kind.to_owned(), key.to_owned())).cloned())
    }
}
