//! The live path: batches from the bus ([`EventSource`]) applied to the read models,
//! at least once, until shutdown.
//!
//! For every batch, in this order:
//! 1. fold it ([`Projector::prepare`]): duplicates skipped, gaps filled from the store;
//! 2. put its dead letters (poison messages, undecodable events) on the dead-letter
//!    topic;
//! 3. write it in one transaction (rows, applied versions, dead-letter rows);
//! 4. commit the consumer offsets.
//!
//! A crash anywhere before 4 redelivers the batch; every step is idempotent, so the
//! read models end up as if it had been applied once (the dead-letter topic may hold a
//! letter twice). A failing step is retried with backoff, never skipped, so a broken
//! database stalls the projector (its lag grows, `projector_batch_failures_total`
//! counts) instead of losing events. Shutdown lets the batch in hand finish and commit;
//! only a batch that cannot be written is abandoned, uncommitted, to be redelivered.

use std::future::Future;
use std::time::{Duration, Instant};

use ticketing_bus::{DeadLetterMessage, Delivered, Delivery, EventSource, Origin, PoisonMessage};
use ticketing_read_models::DeadLetter;
use ticketing_store::RecordedEvent;

use crate::metrics::ProjectorMetrics;
use crate::{PreparedBatch, Projector};

/// How the live path batches and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSettings {
    /// At most this many messages per batch (`PROJECTOR_BATCH_SIZE`, default 500).
    pub batch_size: usize,
    /// A batch closes this long after its first message (`PROJECTOR_BATCH_WAIT_MS`,
    /// default 200 ms), or sooner when full.
    pub batch_wait: Duration,
    /// The first pause after a failure; it doubles up to `max_retry_pause`.
    pub retry_pause: Duration,
    pub max_retry_pause: Duration,
    /// Events per batch when catching up from the store (an in-process bus that
    /// missed messages).
    pub catch_up_batch: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            batch_wait: Duration::from_millis(200),
            retry_pause: Duration::from_millis(200),
            max_retry_pause: Duration::from_secs(10),
            catch_up_batch: 1_000,
        }
    }
}

impl LiveSettings {
    /// Reads `PROJECTOR_BATCH_SIZE` and `PROJECTOR_BATCH_WAIT_MS` through `var`.
    ///
    /// # Errors
    /// A message naming the variable when one is not a positive number.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let positive = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|value| {
                    value
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{name} must be a positive number, not `{value}`"))
                })
                .transpose()
        };
        let mut settings = Self::default();
        if let Some(size) = positive("PROJECTOR_BATCH_SIZE")? {
            settings.batch_size = usize::try_from(size).unwrap_or(usize::MAX);
        }
        if let Some(millis) = positive("PROJECTOR_BATCH_WAIT_MS")? {
            settings.batch_wait = Duration::from_millis(millis);
        }
        Ok(settings)
    }
}

/// What a live run did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveReport {
    /// Batches applied and committed.
    pub batches: u64,
    /// Messages in those batches.
    pub messages: u64,
    /// Whether the run ended with a batch it could not write (it will be redelivered).
    pub abandoned_batch: bool,
}

/// Applies batches from `source` until `shutdown` resolves; see the module docs.
pub async fn run_live<S>(
    projector: &Projector,
    source: &mut S,
    settings: &LiveSettings,
    metrics: &ProjectorMetrics,
    shutdown: impl Future<Output = ()>,
) -> LiveReport
where
    S: EventSource + ?Sized,
{
    tokio::pin!(shutdown);
    let mut report = LiveReport::default();
    let mut stopping = false;
    while !stopping {
        if source.take_missed() {
            catch_up(projector, settings, metrics, &mut shutdown).await;
        }
        let batch = tokio::select! {
            biased;
            () = &mut shutdown => break,
            batch = source.next_batch(settings.batch_size, settings.batch_wait) => batch,
        };
        metrics.set_lag(&source.lag());
        let deliveries = match batch {
            Ok(deliveries) if deliveries.is_empty() => continue,
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(error = %error, "receiving from the bus failed");
                metrics.batch_failed();
                if pause_or_stop(settings.retry_pause, &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        let started = Instant::now();
        let size = deliveries.len();
        match apply_until_done(
            projector,
            source,
            deliveries,
            settings,
            metrics,
            &mut shutdown,
        )
        .await
        {
            Applied::Done(outcome) => {
                metrics.record_batch(size, &outcome, started.elapsed().as_secs_f64());
                report.batches += 1;
                report.messages += size as u64;
                tracing::debug!(
                    size,
                    applied = outcome.applied,
                    duplicates = outcome.duplicates,
                    gap_filled = outcome.gap_filled,
                    dead_lettered = outcome.dead_lettered,
                    "batch applied"
                );
            }
            Applied::Abandoned => {
                report.abandoned_batch = true;
                stopping = true;
            }
        }
    }
    report
}

enum Applied {
    Done(crate::BatchOutcome),
    Abandoned,
}

/// Steps 1 to 4 for one batch, each retried until it works; gives up only when asked
/// to stop while the batch cannot be written.
async fn apply_until_done<S, F>(
    projector: &Projector,
    source: &mut S,
    deliveries: Vec<Delivery>,
    settings: &LiveSettings,
    metrics: &ProjectorMetrics,
    shutdown: &mut std::pin::Pin<&mut F>,
) -> Applied
where
    S: EventSource + ?Sized,
    F: Future<Output = ()>,
{
    let (events, poison) = split(deliveries);
    let poison_letters: Vec<DeadLetter> = poison
        .iter()
        .map(|(origin, message)| poison_dead_letter(origin, message))
        .collect();
    let mut pause = settings.retry_pause;
    let failed = |what: &str, error: &dyn std::fmt::Display, pause: &mut Duration| {
        tracing::error!(error = %error, "{what} failed; retrying the batch");
        metrics.batch_failed();
        let current = *pause;
        *pause = (*pause * 2).min(settings.max_retry_pause);
        current
    };
    // Steps 1 to 3: a conflict or failure at any of them starts the batch over.
    let outcome = loop {
        let prepared: PreparedBatch = match projector
            .prepare(
                events.iter().map(|(_, e)| e.clone()).collect(),
                poison_letters.clone(),
            )
            .await
        {
            Ok(prepared) => prepared,
            Err(error) => {
                let wait = failed("folding a batch", &error, &mut pause);
                if pause_or_stop(wait, shutdown).await {
                    return Applied::Abandoned;
                }
                continue;
            }
        };
        let letters = dead_letter_messages(&prepared, &events, &poison);
        if !letters.is_empty() {
            if let Err(error) = source.dead_letter(&letters).await {
                let wait = failed("publishing dead letters", &error, &mut pause);
                if pause_or_stop(wait, shutdown).await {
                    return Applied::Abandoned;
                }
                continue;
            }
        }
        match projector.write_prepared(&prepared).await {
            Ok(()) => break prepared.outcome(),
            Err(error) => {
                let wait = failed("writing a batch", &error, &mut pause);
                if pause_or_stop(wait, shutdown).await {
                    return Applied::Abandoned;
                }
            }
        }
    };
    // Step 4. The batch is written: a failed commit only means redelivery, so it is
    // retried a few times and then left to the next batch's commit.
    for attempt in 1..=3 {
        match source.commit().await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(error = %error, attempt, "committing offsets failed");
                metrics.batch_failed();
                tokio::time::sleep(settings.retry_pause).await;
            }
        }
    }
    Applied::Done(outcome)
}

/// Sleeps `pause`, or less if `shutdown` resolves first; says whether it did.
async fn pause_or_stop<F: Future<Output = ()>>(
    pause: Duration,
    shutdown: &mut std::pin::Pin<&mut F>,
) -> bool {
    tokio::select! {
        biased;
        () = shutdown.as_mut() => true,
        () = tokio::time::sleep(pause) => false,
    }
}

async fn catch_up<F: Future<Output = ()>>(
    projector: &Projector,
    settings: &LiveSettings,
    metrics: &ProjectorMetrics,
    shutdown: &mut std::pin::Pin<&mut F>,
) {
    let mut pause = settings.retry_pause;
    loop {
        match projector.catch_up(settings.catch_up_batch, |_| {}).await {
            Ok(progress) => {
                tracing::info!(
                    events = progress.events,
                    "caught up from the event store after missed messages"
                );
                return;
            }
            Err(error) => {
                tracing::error!(error = %error, "catching up from the event store failed");
                metrics.batch_failed();
                if pause_or_stop(pause, shutdown).await {
                    return;
                }
                pause = (pause * 2).min(settings.max_retry_pause);
            }
        }
    }
}

/// Delivered events with where each was read.
pub type EventsWithOrigin = Vec<(Origin, RecordedEvent)>;
/// Delivered poison messages with where each was read.
pub type PoisonWithOrigin = Vec<(Origin, PoisonMessage)>;

/// Separates a batch's events from its poison messages, each with its origin.
pub fn split(deliveries: Vec<Delivery>) -> (EventsWithOrigin, PoisonWithOrigin) {
    let mut events = Vec::with_capacity(deliveries.len());
    let mut poison = Vec::new();
    for delivery in deliveries {
        match delivery.content {
            Delivered::Event(event) => events.push((delivery.origin, event)),
            Delivered::Poison(message) => poison.push((delivery.origin, message)),
        }
    }
    (events, poison)
}

/// The dead-letter row of a poison message. It has no stream: the row is keyed by
/// where the message was read (`bus:<topic>/<partition>@<offset>`, version 0), so a
/// redelivered poison message is recorded once. The row is for reading: its text
/// has NUL characters replaced (PostgreSQL's `text` and `jsonb` refuse them) and a
/// payload that is not JSON is kept as a string; the dead-letter topic has the
/// message byte for byte.
pub fn poison_dead_letter(origin: &Origin, message: &PoisonMessage) -> DeadLetter {
    let header = |name: &str| {
        message
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let payload = serde_json::from_slice::<serde_json::Value>(&message.payload)
        .ok()
        .filter(|json| !json.to_string().contains("\\u0000"))
        .unwrap_or_else(|| {
            serde_json::Value::String(without_nul(&String::from_utf8_lossy(&message.payload)))
        });
    DeadLetter {
        stream_id: format!("bus:{origin}"),
        version: 0,
        event_type: without_nul(
            header(ticketing_bus::message::headers::EVENT_TYPE).unwrap_or_default(),
        ),
        schema_version: header(ticketing_bus::message::headers::SCHEMA_VERSION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        payload,
        error: without_nul(&message.error),
    }
}

fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// The dead-letter topic's messages for a prepared batch: every poison message as it
/// arrived, and every undecodable event, from its delivery when it came off the bus
/// (it may also have been read from the store to fill a gap).
pub fn dead_letter_messages(
    prepared: &PreparedBatch,
    events: &EventsWithOrigin,
    poison: &PoisonWithOrigin,
) -> Vec<DeadLetterMessage> {
    let mut letters: Vec<DeadLetterMessage> = poison
        .iter()
        .map(|(origin, message)| DeadLetterMessage {
            origin: Some(origin.clone()),
            key: message.key.clone(),
            headers: message.headers.clone(),
            payload: message.payload.clone(),
            reason: message.error.clone(),
        })
        .collect();
    for letter in prepared.dead_lettered_events() {
        let origin = events
            .iter()
            .find(|(_, e)| e.stream_id == letter.stream_id && e.version == letter.version)
            .map(|(origin, _)| origin.clone());
        letters.push(DeadLetterMessage {
            origin,
            key: Some(letter.stream_id.clone().into_bytes()),
            headers: vec![
                (
                    ticketing_bus::message::headers::STREAM_ID.to_owned(),
                    letter.stream_id.clone(),
                ),
                (
                    ticketing_bus::message::headers::STREAM_VERSION.to_owned(),
                    letter.version.to_string(),
                ),
                (
                    ticketing_bus::message::headers::EVENT_TYPE.to_owned(),
                    letter.event_type.clone(),
                ),
                (
                    ticketing_bus::message::headers::SCHEMA_VERSION.to_owned(),
                    letter.schema_version.to_string(),
                ),
            ],
            payload: letter.payload.to_string().into_bytes(),
            reason: letter.error.clone(),
        });
    }
    letters
}

/// The live path without a bus: follows the event store's global order from the
/// stored checkpoint, polling every `settings.batch_wait`, until `shutdown`. What the
/// `projector` binary runs when `KAFKA_BROKERS` is unset (the embedded default, or a
/// deployment that projects straight from PostgreSQL).
pub async fn follow_store(
    projector: &Projector,
    settings: &LiveSettings,
    metrics: &ProjectorMetrics,
    shutdown: impl Future<Output = ()>,
) -> LiveReport {
    tokio::pin!(shutdown);
    let mut report = LiveReport::default();
    let mut pause = settings.retry_pause;
    loop {
        let started = Instant::now();
        let mut batches = Vec::new();
        let caught_up = tokio::select! {
            biased;
            () = &mut shutdown => return report,
            caught_up = projector.catch_up(settings.batch_size, |progress| batches.push(progress)) => caught_up,
        };
        let wait = match caught_up {
            Ok(_) => {
                pause = settings.retry_pause;
                let mut previous = 0;
                for progress in &batches {
                    let size = usize::try_from(progress.events - previous).unwrap_or(usize::MAX);
                    previous = progress.events;
                    metrics.record_applied(size, size);
                    report.batches += 1;
                    report.messages += size as u64;
                }
                if !batches.is_empty() {
                    metrics.record_duration(started.elapsed().as_secs_f64() / batches.len() as f64);
                }
                settings.batch_wait
            }
            Err(error) => {
                tracing::error!(error = %error, "following the event store failed; retrying");
                metrics.batch_failed();
                let current = pause;
                pause = (pause * 2).min(settings.max_retry_pause);
                current
            }
        };
        if pause_or_stop(wait, &mut shutdown).await {
            return report;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            topic: "ticketing-inventory-events".to_owned(),
            partition: 2,
            offset: 41,
        }
    }

    #[test]
    fn a_poison_row_is_keyed_by_its_origin_and_holds_no_nul() {
        let message = PoisonMessage {
            key: None,
            headers: vec![("event-type".to_owned(), "Seats\0Held".to_owned())],
            payload: b"\x00\x01 not json".to_vec(),
            error: "missing header `stream-id`".to_owned(),
        };
        let row = poison_dead_letter(&origin(), &message);
        assert_eq!(row.stream_id, "bus:ticketing-inventory-events/2@41");
        assert_eq!(row.version, 0);
        assert_eq!(row.event_type, "Seats\u{FFFD}Held");
        assert_eq!(
            row.payload,
            serde_json::Value::String("\u{FFFD}\u{1} not json".to_owned())
        );

        let json_with_nul = PoisonMessage {
            payload: br#"{"name": "a\u0000b"}"#.to_vec(),
            ..message.clone()
        };
        // Kept as the text it was (jsonb would refuse the NUL it decodes to).
        assert_eq!(
            poison_dead_letter(&origin(), &json_with_nul).payload,
            serde_json::Value::String(r#"{"name": "a\u0000b"}"#.to_owned())
        );

        let json = PoisonMessage {
            payload: br#"{"quantity": 2}"#.to_vec(),
            ..message
        };
        assert_eq!(
            poison_dead_letter(&origin(), &json).payload,
            serde_json::json!({ "quantity": 2 })
        );
    }

    #[test]
    fn batch_settings_come_from_the_environment_and_refuse_nonsense() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let settings = LiveSettings::from_lookup(vars(&[
            ("PROJECTOR_BATCH_SIZE", "25"),
            ("PROJECTOR_BATCH_WAIT_MS", "40"),
        ]))
        .unwrap();
        assert_eq!(settings.batch_size, 25);
        assert_eq!(settings.batch_wait, Duration::from_millis(40));
        assert_eq!(
            LiveSettings::from_lookup(vars(&[])).unwrap(),
            LiveSettings::default()
        );
        for bad in ["0", "-1", "many", ""] {
            let error = LiveSettings::from_lookup(move |name: &str| {
                (name == "PROJECTOR_BATCH_SIZE").then(|| bad.to_owned())
            })
            .unwrap_err();
            assert!(error.contains("PROJECTOR_BATCH_SIZE"), "{error}");
        }
    }
}
