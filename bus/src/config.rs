//! Choosing the bus from configuration: `KAFKA_BROKERS` set means Kafka (RedPanda);
//! unset means the in-process bus of the embedded default.

use std::sync::Arc;

use crate::{BusError, EventBus, InProcessBus, InProcessConfig};

/// Which bus to publish to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusConfig {
    /// The in-memory bus: nothing leaves the process.
    InProcess(InProcessConfig),
    /// Kafka or RedPanda.
    #[cfg(feature = "kafka")]
    Kafka(crate::KafkaConfig),
}

impl BusConfig {
    /// Reads the configuration from the environment; see [`BusConfig::from_lookup`].
    ///
    /// # Errors
    /// As [`BusConfig::from_lookup`].
    pub async fn from_env() -> Result<Self, BusError> {
        Self::from_lookup(|name| std::env::var(name).ok()).await
    }

    /// Reads the configuration through `var`: Kafka when `KAFKA_BROKERS` or (with
    /// feature `msk`) `MSK_CLUSTER_ARN` is set (see `kafka::kafka_config_from_lookup`,
    /// which asks MSK for the brokers), else the in-process bus.
    ///
    /// # Errors
    /// [`BusError::Config`] when a variable is malformed, when both are set, or when
    /// one is set in a build without the feature it needs;
    /// [`BusError::Unavailable`] when MSK cannot be asked.
    pub async fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, BusError> {
        #[cfg(feature = "kafka")]
        {
            if let Some(kafka) = crate::kafka::kafka_config_from_lookup(&var).await? {
                return Ok(BusConfig::Kafka(kafka));
            }
        }
        #[cfg(not(feature = "kafka"))]
        {
            for name in ["KAFKA_BROKERS", "MSK_CLUSTER_ARN"] {
                if var(name).is_some_and(|value| !value.trim().is_empty()) {
                    return Err(BusError::Config(format!(
                        "{name} is set, but this build has no Kafka support (feature `kafka`)"
                    )));
                }
            }
        }
        Ok(BusConfig::InProcess(InProcessConfig::default()))
    }
}

/// A connected bus, keeping its concrete type for what only one adapter offers
/// (subscribing to the in-process bus).
#[derive(Debug, Clone)]
pub enum Bus {
    InProcess(Arc<InProcessBus>),
    #[cfg(feature = "kafka")]
    Kafka(Arc<crate::KafkaBus>),
}

impl Bus {
    /// The bus as the command layer and the relay use it.
    pub fn publisher(&self) -> Arc<dyn EventBus> {
        match self {
            Bus::InProcess(bus) => bus.clone(),
            #[cfg(feature = "kafka")]
            Bus::Kafka(bus) => bus.clone(),
        }
    }
}

/// Builds the configured bus. Nothing connects yet: the Kafka producer connects on its
/// first publish.
///
/// # Errors
/// [`BusError::Config`] when the Kafka producer cannot be created.
pub fn connect(config: &BusConfig) -> Result<Bus, BusError> {
    match config {
        BusConfig::InProcess(config) => Ok(Bus::InProcess(Arc::new(InProcessBus::new(*config)))),
        #[cfg(feature = "kafka")]
        BusConfig::Kafka(config) => Ok(Bus::Kafka(Arc::new(crate::KafkaBus::new(config.clone())?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_kafka_brokers_the_bus_is_in_process() {
        let config = BusConfig::from_lookup(|_| None).await.unwrap();
        assert_eq!(config, BusConfig::InProcess(InProcessConfig::default()));
        assert!(matches!(connect(&config).unwrap(), Bus::InProcess(_)));
    }

    #[cfg(feature = "kafka")]
    #[tokio::test]
    async fn kafka_brokers_select_kafka() {
        let config = BusConfig::from_lookup(|name| {
            (name == "KAFKA_BROKERS").then(|| "localhost:9092".into())
        })
        .await
        .unwrap();
        assert_eq!(
            config,
            BusConfig::Kafka(crate::KafkaConfig::new("localhost:9092"))
        );
        assert!(matches!(connect(&config).unwrap(), Bus::Kafka(_)));
    }
}
