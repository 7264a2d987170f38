//! The Kafka consumer side: [`KafkaSource`], the projector's [`EventSource`] over a
//! consumer group subscribed to every event topic.
//!
//! Offsets are committed only when the projector says a batch is applied
//! ([`EventSource::commit`]), never automatically: after a crash or a rebalance the
//! group resumes at the last commit and the uncommitted messages come again (at
//! least once). Rebalances are tracked by the consumer's context: offsets delivered
//! from a partition before it was revoked are not committed, since the partition may
//! now belong to another member whose progress they would overwrite.
//! The context also keeps the consumer lag that librdkafka's statistics report.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::time::Instant;

use super::{BusContext, KafkaSourceConfig, KafkaSourceError};
use crate::message::TOPICS;
use crate::source::{
    DeadLetterMessage, Delivered, Delivery, EventSource, Origin, PartitionLag, DEAD_LETTER_TOPIC,
};
use crate::BusError;

/// A partition: its topic and number.
type PartitionId = (String, i32);

/// What librdkafka's callbacks tell the source: the current assignment, what was
/// revoked since the source last looked, and the latest consumer lag. Callbacks may run on
/// librdkafka's threads, hence the locks.
#[derive(Debug, Default)]
struct SourceContext {
    assigned: Mutex<HashSet<PartitionId>>,
    /// Revoked since the source last looked (see [`forget_revoked`]).
    revoked: Mutex<HashSet<PartitionId>>,
    lag: Mutex<Vec<PartitionLag>>,
    /// The brokers' authentication (MSK IAM tokens).
    #[cfg(feature = "msk")]
    auth: BusContext,
}

/// A lock that a panic elsewhere does not make unusable: every value guarded here is
/// replaced or extended whole, so it is never left half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn partition_ids(partitions: &TopicPartitionList) -> Vec<PartitionId> {
    partitions
        .elements()
        .iter()
        .map(|element| (element.topic().to_owned(), element.partition()))
        .collect()
}

impl ClientContext for SourceContext {
    #[cfg(feature = "msk")]
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    #[cfg(feature = "msk")]
    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.auth.oauth_token()
    }

    fn stats(&self, statistics: Statistics) {
        let mut lags: Vec<PartitionLag> = statistics
            .topics
            .values()
            .flat_map(|topic| {
                topic
                    .partitions
                    .values()
                    // Partition -1 is librdkafka's internal "unassigned" partition; a lag
                    // of -1 means unknown (no committed offset or high watermark yet).
                    .filter(|partition| partition.partition >= 0 && partition.consumer_lag >= 0)
                    .map(|partition| PartitionLag {
                        topic: topic.topic.clone(),
                        partition: partition.partition,
                        lag: partition.consumer_lag,
                    })
            })
            .collect();
        lags.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        *lock(&self.lag) = lags;
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(facility, "{message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility, "{message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka consumer error");
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Before the consumer gives the partitions up, so that no commit of this
        // source can slip in between.
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked = partition_ids(partitions);
            tracing::info!(partitions = ?revoked, "partitions revoked");
            let mut assigned = lock(&self.assigned);
            for partition in &revoked {
                assigned.remove(partition);
            }
            lock(&self.revoked).extend(revoked);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // Eager assignment revokes everything first, so adding is right for both
            // the eager and the cooperative protocols.
            Rebalance::Assign(partitions) => {
                let assigned = partition_ids(partitions);
                tracing::info!(partitions = ?assigned, "partitions assigned");
                lock(&self.assigned).extend(assigned);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "the rebalance failed"),
        }
    }
}

/// The event topics as an [`EventSource`], through a consumer group
/// ([`KafkaSourceConfig::group_id`]).
///
/// Dead letters go to [`DEAD_LETTER_TOPIC`] through an idempotent producer
/// configured like the [`super::KafkaBus`]'s. Dropping the source leaves the group
/// (a short blocking round trip), so that its partitions are reassigned at once.
pub struct KafkaSource {
    /// Shared with the blocking commit task (see [`EventSource::commit`]).
    consumer: Arc<StreamConsumer<SourceContext>>,
    dead_letters: FutureProducer<BusContext>,
    config: KafkaSourceConfig,
    /// The highest offset delivered per partition since the last successful commit.
    delivered: BTreeMap<PartitionId, i64>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("config", &self.config)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// Creates the consumer, subscribed to every event topic, and the dead-letter
    /// producer. Both connect in the background; the group is joined on the first
    /// [`EventSource::next_batch`]. Must be called within a Tokio runtime (the
    /// consumer keeps a task there).
    ///
    /// # Errors
    /// [`KafkaSourceError::Client`] when librdkafka refuses the configuration.
    pub fn new(config: KafkaSourceConfig) -> Result<Self, KafkaSourceError> {
        let auth = BusContext::for_config(&config.kafka);
        Self::with_auth(config, auth)
    }

    /// Creates the source with `auth` for the consumer's authentication instead of
    /// the one `config` implies.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_auth(
        config: KafkaSourceConfig,
        auth: BusContext,
    ) -> Result<Self, KafkaSourceError> {
        let dead_letters = config
            .kafka
            .producer_config()
            .create_with_context(auth.clone())
            .map_err(|source| KafkaSourceError::Client {
                client: "dead-letter producer",
                source,
            })?;
        let consumer: StreamConsumer<SourceContext> = config
            .consumer_config()
            .create_with_context(SourceContext {
                #[cfg(feature = "msk")]
                auth,
                ..SourceContext::default()
            })
            .map_err(|source| KafkaSourceError::Client {
                client: "consumer",
                source,
            })?;
        consumer
            .subscribe(&TOPICS)
            .map_err(|source| KafkaSourceError::Client {
                client: "consumer",
                source,
            })?;
        Ok(Self {
            consumer: Arc::new(consumer),
            dead_letters,
            config,
            delivered: BTreeMap::new(),
        })
    }

    pub fn config(&self) -> &KafkaSourceConfig {
        &self.config
    }

    /// The next message before `deadline`; `Ok(None)` at the deadline.
    async fn receive_until(&mut self, deadline: Instant) -> Result<Option<Delivery>, BusError> {
        loop {
            // `recv` is cancel-safe: a message is taken off the queue only by the poll
            // that returns it, so the timeout loses nothing.
            let received = tokio::time::timeout_at(deadline, self.consumer.recv()).await;
            // Rebalance callbacks run while `recv` polls: what they revoked was revoked
            // after everything delivered so far and before the message received now.
            forget_revoked(self.consumer.context(), &mut self.delivered);
            let Ok(received) = received else {
                return Ok(None);
            };
            match received {
                Ok(message) => {
                    let delivery = delivery(&message);
                    let partition = (delivery.origin.topic.clone(), delivery.origin.partition);
                    let highest = self.delivered.entry(partition).or_insert(i64::MIN);
                    *highest = (*highest).max(delivery.origin.offset);
                    return Ok(Some(delivery));
                }
                Err(error @ KafkaError::MessageConsumptionFatal(_)) => {
                    return Err(KafkaSourceError::Consumer(error).into());
                }
                // Everything else (a broker unreachable, a topic not created yet) is
                // librdkafka telling us what it is already retrying.
                Err(error) => tracing::warn!(%error, "Kafka consumer error; retrying"),
            }
        }
    }
}

/// Drops the delivered offsets of partitions revoked since the last look: their
/// messages come again to whoever owns the partitions now, and committing them could
/// overwrite that owner's progress. A partition assigned back keeps what is delivered
/// after.
fn forget_revoked(context: &SourceContext, delivered: &mut BTreeMap<PartitionId, i64>) {
    let revoked = std::mem::take(&mut *lock(&context.revoked));
    if !revoked.is_empty() {
        delivered.retain(|partition, _| !revoked.contains(partition));
    }
}

/// A received message as the projector sees it.
fn delivery(message: &BorrowedMessage<'_>) -> Delivery {
    let origin = Origin {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
    };
    let headers: Vec<(String, String)> = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .filter_map(|header| {
                    let value = std::str::from_utf8(header.value?).ok()?;
                    Some((header.key.to_owned(), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let content = Delivered::decode(message.key(), headers, message.payload());
    Delivery { origin, content }
}

/// Publishes `letters` to [`DEAD_LETTER_TOPIC`] with `producer` and waits for every
/// acknowledgement: the projector's consumer and, on Lambda, [`super::KafkaBus`] share it.
pub(super) async fn send_dead_letters(
    producer: &FutureProducer<BusContext>,
    letters: &[DeadLetterMessage],
) -> Result<(), BusError> {
    // Queue every letter, then wait for each acknowledgement: one round trip.
    let mut acknowledgements = Vec::with_capacity(letters.len());
    for letter in letters {
        let origin = letter
            .origin
            .as_ref()
            .map_or_else(|| "the event store".to_owned(), Origin::to_string);
        tracing::warn!(topic = DEAD_LETTER_TOPIC, %origin, reason = %letter.reason, "dead letter");
        let mut record = FutureRecord::<[u8], [u8]>::to(DEAD_LETTER_TOPIC)
            .payload(letter.payload.as_slice())
            .headers(super::record_headers(&letter.all_headers()));
        if let Some(key) = &letter.key {
            record = record.key(key.as_slice());
        }
        let acknowledgement =
            producer
                .send_result(record)
                .map_err(|(source, _)| KafkaSourceError::DeadLetter {
                    origin: origin.clone(),
                    source,
                })?;
        acknowledgements.push((origin, acknowledgement));
    }
    for (origin, acknowledgement) in acknowledgements {
        match acknowledgement.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => {
                return Err(KafkaSourceError::DeadLetter { origin, source }.into())
            }
            Err(_) => return Err(KafkaSourceError::DeadLetterCancelled { origin }.into()),
        }
    }
    Ok(())
}

fn describe(offsets: &BTreeMap<PartitionId, i64>) -> String {
    offsets
        .iter()
        .map(|((topic, partition), offset)| format!("{topic}/{partition}@{}", offset + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl EventSource for KafkaSource {
    #[tracing::instrument(skip(self), fields(group = %self.config.group_id))]
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let max = max.max(1);
        let Some(first) = self.receive_until(Instant::now() + wait).await? else {
            return Ok(Vec::new());
        };
        let deadline = Instant::now() + wait;
        let mut batch = vec![first];
        while batch.len() < max {
            match self.receive_until(deadline).await? {
                Some(delivery) => batch.push(delivery),
                None => break,
            }
        }
        Ok(batch)
    }

    /// Commits, for each partition delivered since the last commit, the offset after
    /// the highest one delivered since the partition was last assigned (what was
    /// delivered before a revocation is not committed).
    ///
    /// The commit is synchronous, on a blocking thread: an asynchronous commit reports
    /// its result through the consumer's commit callback, which the stream consumer
    /// only serves while someone polls for messages, and the projector must know the
    /// result before it goes on. One round trip per batch is cheap. A broker that is
    /// down fails the commit after librdkafka's request timeout.
    #[tracing::instrument(skip(self), fields(group = %self.config.group_id))]
    async fn commit(&mut self) -> Result<(), BusError> {
        forget_revoked(self.consumer.context(), &mut self.delivered);
        if self.delivered.is_empty() {
            return Ok(());
        }
        let offsets_text = describe(&self.delivered);
        let mut offsets = TopicPartitionList::with_capacity(self.delivered.len());
        for ((topic, partition), offset) in &self.delivered {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(offset + 1))
                .map_err(|source| KafkaSourceError::Commit {
                    offsets: offsets_text.clone(),
                    source,
                })?;
        }
        let consumer = Arc::clone(&self.consumer);
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => {
                tracing::debug!(offsets = %offsets_text, "offsets committed");
                self.delivered.clear();
                Ok(())
            }
            // The offsets stay pending: the next commit tries them again.
            Ok(Err(source)) => Err(KafkaSourceError::Commit {
                offsets: offsets_text,
                source,
            }
            .into()),
            Err(_) => Err(KafkaSourceError::CommitInterrupted {
                offsets: offsets_text,
            }
            .into()),
        }
    }

    #[tracing::instrument(skip(self, letters), fields(count = letters.len()))]
    async fn dead_letter(&mut self, letters: &[DeadLetterMessage]) -> Result<(), BusError> {
        send_dead_letters(&self.dead_letters, letters).await
    }

    /// The lag of each assigned partition from the latest statistics: the messages
    /// after the group's committed offset. A partition the group never committed has
    /// no known lag yet and is left out.
    fn lag(&self) -> Vec<PartitionLag> {
        let context = self.consumer.context();
        let assigned = lock(&context.assigned);
        lock(&context.lag)
            .iter()
            .filter(|lag| assigned.contains(&(lag.topic.clone(), lag.partition)))
            .cloned()
            .collect()
    }
}
