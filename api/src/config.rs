//! The API's configuration, from environment variables (a `.env` file is read by the
//! binaries, not here).
//!
//! | variable | meaning |
//! |---|---|
//! | `JWT_HS256_SECRET` | verify tokens with this shared secret (≥ 32 bytes) |
//! | `JWT_RS256_PUBLIC_KEY` | or with this RSA public key (PEM) |
//! | `JWT_ISSUER`, `JWT_AUDIENCE` | required `iss` / `aud`, when set |
//! | `HOLD_DURATION_SECONDS` | how long unpaid seats stay held (default 600) |
//!
//! With neither key set, only claims verified by API Gateway's JWT authorizer are
//! accepted: that is the Lambda deployment.

use std::sync::Arc;

use chrono::TimeDelta;
use ticketing_app::payments::SimulatedGateway;
use ticketing_app::{Settings, SystemClock, TicketKeys, Ticketing};
use ticketing_bus::EventBus;
use ticketing_read_models::ReadModelStore;
use ticketing_store::{EventStore, StoreConfig};

use crate::auth::{AuthConfig, Authenticator, VerificationKey};
use crate::ApiState;

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Key(#[from] crate::auth::InvalidKey),
    #[error(transparent)]
    TicketKeys(#[from] ticketing_app::tickets::codes::InvalidKeys),
    #[error(transparent)]
    Store(#[from] ticketing_store::StoreError),
    #[error(transparent)]
    Bus(#[from] ticketing_bus::BusError),
    #[error(transparent)]
    ReadModels(#[from] ticketing_read_models::ConnectError),
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The token verification configured in the environment.
///
/// # Errors
/// [`ConfigError::Invalid`] when both keys are set.
pub fn auth_from_env() -> Result<AuthConfig, ConfigError> {
    let key = match (var("JWT_HS256_SECRET"), var("JWT_RS256_PUBLIC_KEY")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                name: "JWT_HS256_SECRET",
                reason: "set either JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY, not both".into(),
            })
        }
        (Some(secret), None) => Some(VerificationKey::Hs256Secret(secret.into_bytes())),
        (None, Some(pem)) => Some(VerificationKey::Rs256PublicKeyPem(pem.replace("\\n", "\n"))),
        (None, None) => None,
    };
    Ok(AuthConfig {
        key,
        issuer: var("JWT_ISSUER"),
        audience: var("JWT_AUDIENCE"),
    })
}

/// The command layer's settings from the environment.
///
/// # Errors
/// [`ConfigError::Invalid`] for a hold duration that is not 30 to 3600 seconds, a
/// section wait that is not 1 to 30,000 milliseconds, a publish budget that is not 1
/// to 60,000 milliseconds, or a hold batch that is not 1 to 256 holds.
pub fn settings_from_env() -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    if let Some(seconds) = number_var("HOLD_DURATION_SECONDS", 30..=3600, "seconds")? {
        settings.hold_duration = TimeDelta::seconds(seconds.try_into().unwrap_or(i64::MAX));
    }
    if let Some(millis) = number_var("SECTION_WAIT_MS", 1..=30_000, "milliseconds")? {
        settings.section_wait = std::time::Duration::from_millis(millis);
    }
    if let Some(millis) = number_var("PUBLISH_BUDGET_MS", 1..=60_000, "milliseconds")? {
        settings.publish_budget = std::time::Duration::from_millis(millis);
    }
    if let Some(holds) = number_var("HOLD_BATCH_MAX", 1..=256, "holds")? {
        settings.hold_batch_max = usize::try_from(holds).unwrap_or(usize::MAX);
    }
    Ok(settings)
}

/// The keys that sign ticket codes, from `TICKET_SIGNING_KEYS`
/// (`kid=<base64url 32-byte seed>`, comma separated, the first signing; `ticketing
/// keygen` prints one); `None` when unset.
///
/// # Errors
/// [`ConfigError::TicketKeys`] for a malformed value.
pub fn ticket_keys_from_env() -> Result<Option<TicketKeys>, ConfigError> {
    var("TICKET_SIGNING_KEYS")
        .map(|text| TicketKeys::parse(&text))
        .transpose()
        .map_err(ConfigError::from)
}

/// [`ticket_keys_from_env`] for a deployed process, which has no other key to fall
/// back on: unset, a warning says that no ticket is issued until one is set.
///
/// # Errors
/// As [`ticket_keys_from_env`].
pub fn deployed_ticket_keys() -> Result<Option<TicketKeys>, ConfigError> {
    let keys = ticket_keys_from_env()?;
    if keys.is_none() {
        tracing::warn!(
            "TICKET_SIGNING_KEYS is not set: confirmed purchases get their tickets once a key is configured"
        );
    }
    Ok(keys)
}

/// The variable `name` as a number of `unit` in `range`, if it is set.
fn number_var(
    name: &'static str,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<Option<u64>, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(None);
    };
    raw.parse()
        .ok()
        .filter(|n| range.contains(n))
        .map(Some)
        .ok_or_else(|| ConfigError::Invalid {
            name,
            reason: format!(
                "{raw:?} is not a number of {unit} between {} and {}",
                range.start(),
                range.end()
            ),
        })
}

/// The payment provider `PAYMENT_PROVIDER` names: `simulated` (the default), a
/// test-mode provider whose records are kept in `store`'s database so that every
/// function of a deployment sees the charges the others made; or `stripe`, with
/// `STRIPE_SECRET_KEY` (and `STRIPE_API_BASE`, Stripe's API unless set: a stand-in's
/// address in tests).
///
/// # Errors
/// [`ConfigError::Invalid`] for another provider, or `stripe` without a secret key.
pub fn payment_gateway_from_env(
    store: &dyn EventStore,
) -> Result<Arc<dyn ticketing_app::payments::PaymentGateway>, ConfigError> {
    payment_gateway(
        var("PAYMENT_PROVIDER").as_deref(),
        var("STRIPE_SECRET_KEY"),
        var("STRIPE_API_BASE"),
        store,
    )
}

/// [`payment_gateway_from_env`] with the variables' values given.
fn payment_gateway(
    provider: Option<&str>,
    stripe_secret_key: Option<String>,
    stripe_api_base: Option<String>,
    store: &dyn EventStore,
) -> Result<Arc<dyn ticketing_app::payments::PaymentGateway>, ConfigError> {
    match provider.map_or("simulated", str::trim) {
        "simulated" => Ok(Arc::new(SimulatedGateway::sharing(store))),
        "stripe" => {
            let secret_key = stripe_secret_key.ok_or(ConfigError::Invalid {
                name: "STRIPE_SECRET_KEY",
                reason: "PAYMENT_PROVIDER=stripe needs the account's secret key".into(),
            })?;
            let mut config = ticketing_app::payments::StripeConfig::new(secret_key);
            if let Some(base) = stripe_api_base {
                config.api_base = base;
            }
            let gateway = ticketing_app::payments::StripeGateway::new(config).map_err(|e| {
                ConfigError::Invalid {
                    name: "PAYMENT_PROVIDER",
                    reason: e.to_string(),
                }
            })?;
            Ok(Arc::new(gateway))
        }
        other => Err(ConfigError::Invalid {
            name: "PAYMENT_PROVIDER",
            reason: format!("{other:?} is neither `simulated` nor `stripe`"),
        }),
    }
}

/// `STRIPE_WEBHOOK_SECRET`: the secrets Stripe signs webhooks with (`whsec_...`),
/// comma separated (two while one is rotated out); empty when unset.
pub fn stripe_webhook_secrets_from_env() -> Arc<[String]> {
    var("STRIPE_WEBHOOK_SECRET")
        .map(|secrets| {
            secrets
                .split(',')
                .map(str::trim)
                .filter(|secret| !secret.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The state over an already connected store and its read models (from
/// [`ticketing_read_models::connect_with_read_models`]), with the system clock and the
/// payment provider of [`payment_gateway_from_env`].
///
/// # Errors
/// [`ConfigError::Key`] for an unusable verification key.
pub fn state_with(
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModelStore>,
    auth: &AuthConfig,
    settings: Settings,
    ticket_keys: Option<TicketKeys>,
) -> Result<ApiState, ConfigError> {
    state_with_bus(store, read_models, None, auth, settings, ticket_keys)
}

/// As [`state_with`], with commands publishing their events to `bus` right after
/// they commit (what the bus misses, the outbox relay publishes later). Tickets are
/// signed with `ticket_keys`; without keys none is issued.
///
/// # Errors
/// [`ConfigError::Key`] for an unusable verification key; as
/// [`payment_gateway_from_env`].
pub fn state_with_bus(
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModelStore>,
    bus: Option<Arc<dyn EventBus>>,
    auth: &AuthConfig,
    settings: Settings,
    ticket_keys: Option<TicketKeys>,
) -> Result<ApiState, ConfigError> {
    let gateway = payment_gateway_from_env(store.as_ref())?;
    let mut ticketing = Ticketing::new(store, gateway, Arc::new(SystemClock), settings);
    if let Some(bus) = bus {
        ticketing = ticketing.with_bus(bus);
    }
    if let Some(keys) = ticket_keys {
        ticketing = ticketing.with_ticket_keys(keys);
    }
    Ok(ApiState {
        ticketing: Arc::new(ticketing),
        read_models,
        authenticator: Arc::new(Authenticator::new(auth)?),
        stripe_webhook_secrets: stripe_webhook_secrets_from_env(),
    })
}

/// Everything from the environment: what a Lambda function does at cold start. The
/// event store and the read models share one PostgreSQL pool, which connects lazily,
/// on the first request; with `READ_MODEL_STORE=dynamodb` (a build with
/// `ticketing-read-models`'s `dynamodb` feature, as the `queries` function is) the read
/// models are DynamoDB tables instead.
///
/// # Errors
/// Any [`ConfigError`].
pub async fn state_from_env() -> Result<ApiState, ConfigError> {
    state_from_environment(true).await
}

/// [`state_from_env`] without a bus, for a function that reads (the `queries`
/// function): it neither starts a producer nor asks MSK for brokers at cold start.
/// The only events it records, the tickets of a purchase confirmed before tickets
/// existed (issued at their first listing), wait in the outbox for the relay.
///
/// # Errors
/// Any [`ConfigError`].
pub async fn read_only_state_from_env() -> Result<ApiState, ConfigError> {
    state_from_environment(false).await
}

async fn state_from_environment(publishes: bool) -> Result<ApiState, ConfigError> {
    let (store, read_models) = ticketing_read_models::connect_configured(
        &StoreConfig::from_env()?,
        &ticketing_read_models::ReadModelConfig::from_env()?,
    )
    .await?;
    let bus = if publishes {
        bus_from_env().await?
    } else {
        None
    };
    state_with_bus(
        store,
        read_models,
        bus,
        &auth_from_env()?,
        settings_from_env()?,
        deployed_ticket_keys()?,
    )
}

/// The bus the deployed functions publish to after every commit: Kafka when
/// `KAFKA_BROKERS` is set, MSK when `MSK_CLUSTER_ARN` is (its brokers asked of MSK
/// here, once per cold start, and IAM authentication), else none (an in-process bus
/// in a function would reach no one; the events wait in the outbox). A binary that
/// publishes to Kafka must be built with `ticketing-bus`'s `kafka` feature, and to
/// MSK with its `msk` feature, as the functions are.
///
/// # Errors
/// [`ConfigError::Bus`] for a malformed or ambiguous Kafka setting, a setting the
/// build has no support for, or an MSK that cannot be asked for its brokers.
pub async fn bus_from_env() -> Result<Option<Arc<dyn EventBus>>, ConfigError> {
    let config = ticketing_bus::BusConfig::from_env().await?;
    if matches!(config, ticketing_bus::BusConfig::InProcess(_)) {
        return Ok(None);
    }
    Ok(Some(ticketing_bus::connect(&config)?.publisher()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_payment_provider_is_chosen_by_name_and_stripe_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = ticketing_store::sqlite::SqliteStore::open(
            dir.path().join("events.db").to_str().unwrap(),
        )
        .await
        .unwrap();
        let named = |provider: Option<&str>, key: Option<&str>| {
            payment_gateway(provider, key.map(str::to_owned), None, &store)
                .map(|gateway| format!("{gateway:?}"))
        };
        assert!(named(None, None).unwrap().starts_with("SimulatedGateway"));
        assert!(named(Some("simulated"), None)
            .unwrap()
            .starts_with("SimulatedGateway"));
        assert!(named(Some("stripe"), Some("sk_test_x"))
            .unwrap()
            .starts_with("StripeGateway"));
        assert!(matches!(
            named(Some("stripe"), None),
            Err(ConfigError::Invalid {
                name: "STRIPE_SECRET_KEY",
                ..
            })
        ));
        assert!(matches!(
            named(Some("paypal"), None),
            Err(ConfigError::Invalid {
                name: "PAYMENT_PROVIDER",
                ..
            })
        ));
    }
}
