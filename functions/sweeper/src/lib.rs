//! The `sweeper` Lambda function: an EventBridge schedule invokes it (every minute in
//! `template.yaml`), and it runs one [`Ticketing::sweep`]: records the expiry of
//! unpaid holds whose time is up (their seats are already free for new holds: the
//! sweep only writes that down and tidies) and finishes purchases a crashed function
//! left half done. It answers with the sweep's report as JSON.
//!
//! Layout:
//! - `lib.rs`: [`handle`], the invocation handler, [`SweepError`] and its mapping to
//!   the runtime's [`Diagnostic`], [`ticketing_from_env`]; the tests call these.
//! - `main.rs`: the binary: logging, the command layer built once per cold start, and
//!   `lambda_runtime::run`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{Diagnostic, LambdaEvent};
use ticketing_api::config::{bus_from_env, settings_from_env, ConfigError};
use ticketing_app::{AppError, CommandContext, SweepLimits, SweepReport, SystemClock, Ticketing};
use ticketing_store::StoreConfig;

/// What EventBridge sends on a schedule: `source` `aws.events`, `detail-type`
/// `Scheduled Event`, the scheduled `time` and the rule in `resources`.
pub type ScheduledEvent = CloudWatchEvent;

/// Why an invocation failed. The Lambda runtime reports it as a [`Diagnostic`] whose
/// `errorType` says whether the next run may succeed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep stopped. Work already recorded stays recorded; the next scheduled run
    /// picks up the rest. Retryable when the cause is transient (the database is
    /// unreachable, contention, the payment provider did not answer); any other cause
    /// (an unreadable stored event, say) needs a person.
    #[error("the sweep failed: {0}")]
    Sweep(#[from] AppError),
}

impl SweepError {
    /// Whether running again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            SweepError::Sweep(error) => error.is_transient(),
        }
    }
}

impl From<SweepError> for Diagnostic {
    fn from(error: SweepError) -> Self {
        let error_type = if error.is_retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// How long after a payment was requested the sweeper leaves it alone, in seconds:
/// `SWEEP_PAYMENT_GRACE_SECONDS`, 1 to 3600 (default 120). Keep it above the longest a
/// payment request can take (the HTTP API gives up after 30 seconds): the customer's
/// own request may still be waiting for the provider.
///
/// # Errors
/// [`ConfigError::Invalid`] for a value that is not a number in range.
pub fn sweep_limits_from_env() -> Result<SweepLimits, ConfigError> {
    let mut limits = SweepLimits::default();
    if let Some(value) = std::env::var("SWEEP_PAYMENT_GRACE_SECONDS")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let seconds: i64 = value
            .trim()
            .parse()
            .ok()
            .filter(|s| (1..=3600).contains(s))
            .ok_or(ConfigError::Invalid {
                name: "SWEEP_PAYMENT_GRACE_SECONDS",
                reason: format!("{value:?} is not a number of seconds from 1 to 3600"),
            })?;
        limits.payment_grace = chrono::TimeDelta::seconds(seconds);
    }
    Ok(limits)
}

/// Handles one scheduled invocation: sweeps once as the `system` actor within
/// `limits`, and answers with the report.
///
/// A reservation the sweep could not handle is counted in
/// [`SweepReport::failures`] and tried again next run: the invocation still succeeds,
/// so that one bad reservation does not fail every run.
///
/// # Errors
/// [`SweepError::Sweep`] when the sweep cannot run at all (the store's index cannot be
/// read); it is logged with its cause chain.
#[tracing::instrument(skip_all, fields(scheduled_at = %event.payload.time))]
pub async fn handle(
    ticketing: &Ticketing,
    limits: SweepLimits,
    event: LambdaEvent<ScheduledEvent>,
) -> Result<SweepReport, SweepError> {
    tracing::debug!(
        source = event.payload.source.as_deref().unwrap_or_default(),
        detail_type = event.payload.detail_type.as_deref().unwrap_or_default(),
        "sweeping"
    );
    // The sweep logs its report, and each reservation it failed on with the cause.
    let report = ticketing
        .sweep(&CommandContext::system(), limits)
        .await
        .map_err(|error| {
            let error = SweepError::from(error);
            tracing::error!(
                error.cause_chain = ?error,
                retryable = error.is_retryable(),
                "sweep failed"
            );
            error
        })?;
    // Then what functions left in the outbox (died after their commit, or the broker
    // was down): there is no long-running relay on Lambda. A failure waits for the
    // next run; it does not fail this one, whose sweep is recorded.
    match ticketing.relay_outbox(RELAY_GRACE, RELAY_BATCH).await {
        Ok(0) => {}
        Ok(relayed) => tracing::info!(relayed, "published events left in the outbox"),
        Err(error) => tracing::warn!(error.cause_chain = ?error, "relaying the outbox failed"),
    }
    Ok(report)
}

/// Events younger than this are left to the command that is publishing them.
const RELAY_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// At most this many events per run; a larger backlog takes several runs.
const RELAY_BATCH: usize = 5_000;

/// The command layer the deployed sweeper runs: the store from `DATABASE_URL` (the
/// PostgreSQL pool connects lazily), the settings the HTTP functions use, the system
/// clock and the payment provider the functions use
/// ([`ticketing_api::config::payment_gateway_from_env`]).
///
/// # Errors
/// Any [`ConfigError`] of the environment, or an embedded store that cannot be opened.
pub async fn ticketing_from_env() -> Result<Ticketing, ConfigError> {
    let store = ticketing_store::connect(&StoreConfig::from_env()?).await?;
    // The functions' provider: a charge whose answer a function lost is found here.
    let gateway = ticketing_api::config::payment_gateway_from_env(store.as_ref())?;
    let mut ticketing = Ticketing::new(store, gateway, Arc::new(SystemClock), settings_from_env()?);
    // A payment the sweeper settles is confirmed with its tickets.
    if let Some(keys) = ticketing_api::config::deployed_ticket_keys()? {
        ticketing = ticketing.with_ticket_keys(keys);
    }
    Ok(match bus_from_env().await? {
        Some(bus) => ticketing.with_bus(bus),
        None => ticketing,
    })
}
