//! Amazon MSK with IAM authentication (feature `msk`): the brokers from the cluster's
//! ARN, and the OAUTHBEARER tokens librdkafka asks for.
//!
//! - [`MskConfig`]: `MSK_CLUSTER_ARN` (instead of `KAFKA_BROKERS`), its region.
//! - [`bootstrap_brokers`]: `GetBootstrapBrokers`, the SASL/IAM broker string, once per
//!   cold start.
//! - [`auth_token`]: MSK's IAM token, a SigV4-presigned `kafka-cluster:Connect` URL for
//!   `kafka.<region>.amazonaws.com`, base64url without padding, as the MSK IAM signer
//!   libraries make it.
//! - [`MskTokens`]: what the clients' context calls when librdkafka wants a token.
//! - [`kafka_config`]: all of it as a [`super::KafkaConfig`], at cold start.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use base64::Engine;

use crate::BusError;

/// How long a token is valid: MSK's maximum.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// The action a token authorises.
const CONNECT_ACTION: &str = "kafka-cluster:Connect";
/// The `User-Agent` query parameter MSK logs for the client.
const USER_AGENT: &str = concat!("ticketing-bus/", env!("CARGO_PKG_VERSION"));

/// An MSK cluster to use instead of `KAFKA_BROKERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MskConfig {
    pub cluster_arn: String,
    /// The cluster's region, from its ARN: where the token is signed for.
    pub region: String,
}

impl MskConfig {
    /// Reads `MSK_CLUSTER_ARN` through `var`: `None` when unset or empty.
    ///
    /// # Errors
    /// [`BusError::Config`] for something that is not an MSK cluster ARN.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, BusError> {
        let Some(arn) = var("MSK_CLUSTER_ARN").filter(|a| !a.trim().is_empty()) else {
            return Ok(None);
        };
        let arn = arn.trim().to_owned();
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "kafka", region, account, resource]
                if partition.starts_with("aws")
                    && !region.is_empty()
                    && account.len() == 12
                    && resource.starts_with("cluster/") =>
            {
                Ok(Some(Self {
                    region: (*region).to_owned(),
                    cluster_arn: arn,
                }))
            }
            _ => Err(BusError::Config(format!(
                "MSK_CLUSTER_ARN must be an MSK cluster ARN \
                 (arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>), not `{arn}`"
            ))),
        }
    }
}

/// The cluster's bootstrap brokers for SASL/IAM clients (port 9098).
///
/// # Errors
/// [`BusError::Unavailable`] when MSK cannot be asked; [`BusError::Config`] when the
/// cluster has no IAM access enabled (no SASL/IAM broker string).
pub async fn bootstrap_brokers(
    client: &aws_sdk_kafka::Client,
    config: &MskConfig,
) -> Result<String, BusError> {
    let output = client
        .get_bootstrap_brokers()
        .cluster_arn(&config.cluster_arn)
        .send()
        .await
        .map_err(|e| {
            BusError::Unavailable(
                format!(
                    "GetBootstrapBrokers for {}: {}",
                    config.cluster_arn,
                    aws_sdk_kafka::error::DisplayErrorContext(e)
                )
                .into(),
            )
        })?;
    output
        .bootstrap_broker_string_sasl_iam()
        .filter(|brokers| !brokers.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            BusError::Config(format!(
                "the MSK cluster {} has no IAM-authenticated brokers: enable IAM access control",
                config.cluster_arn
            ))
        })
}

/// MSK's IAM authentication token for `region`, signed with `credentials` at `now`,
/// and when it expires (milliseconds since the epoch, what librdkafka wants).
///
/// # Errors
/// [`BusError::Config`] when the request cannot be signed (malformed credentials).
pub fn auth_token(
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<(String, i64), BusError> {
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    use aws_sigv4::sign::v4;

    let failed = |e: &dyn std::fmt::Display| BusError::Config(format!("signing an MSK token: {e}"));
    let mut url = url::Url::parse(&format!("https://kafka.{region}.amazonaws.com/"))
        .map_err(|e| failed(&e))?;
    url.query_pairs_mut().append_pair("Action", CONNECT_ACTION);

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?;
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(request, &params.into())
        .map_err(|e| failed(&e))?
        .into_parts();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
        query.append_pair("User-Agent", USER_AGENT);
    }
    let signed_at = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| failed(&e))?;
    let expires_ms = i64::try_from((signed_at + TOKEN_LIFETIME).as_millis()).unwrap_or(i64::MAX);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_str());
    Ok((token, expires_ms))
}

/// Signs tokens for the clients' context with the AWS SDK's default credentials (on
/// Lambda, the function's role).
///
/// librdkafka asks for a token synchronously, from whichever thread serves its
/// callbacks (a runtime worker, for the consumer); the credentials chain is
/// asynchronous. So each token is made on a helper thread with a small runtime of its
/// own, which never blocks a worker of the caller's runtime. It happens once per token
/// lifetime.
#[derive(Debug, Clone)]
pub struct MskTokens {
    region: String,
    /// Where the credentials come from; `None`: the SDK's default chain, loaded
    /// afresh for each token.
    credentials: Option<SharedCredentialsProvider>,
}

impl MskTokens {
    /// Tokens for `region`, signed with the SDK's default credentials.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            credentials: None,
        }
    }

    /// Tokens for `region`, signed with `credentials` (an assumed role, or fixed
    /// credentials in a test).
    pub fn with_credentials(
        region: impl Into<String>,
        credentials: impl ProvideCredentials + 'static,
    ) -> Self {
        Self {
            region: region.into(),
            credentials: Some(SharedCredentialsProvider::new(credentials)),
        }
    }

    /// A fresh token and its expiry.
    ///
    /// # Errors
    /// A message for librdkafka's log when no credentials can be found or signed.
    pub fn token(&self) -> Result<(String, i64), String> {
        let region = self.region.clone();
        let configured = self.credentials.clone();
        let credentials = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("a runtime for the credentials lookup: {e}"))?;
                    runtime.block_on(async move {
                        let provider = match configured {
                            Some(provider) => provider,
                            None => aws_config::defaults(aws_config::BehaviorVersion::latest())
                                .region(aws_config::Region::new(region))
                                .load()
                                .await
                                .credentials_provider()
                                .ok_or("no AWS credentials provider is configured")?,
                        };
                        provider
                            .provide_credentials()
                            .await
                            .map_err(|e| format!("loading AWS credentials: {e}"))
                    })
                })
                .join()
                .map_err(|_| "loading AWS credentials panicked".to_owned())?
        })?;
        auth_token(&self.region, &credentials, SystemTime::now()).map_err(|e| e.to_string())
    }
}

/// How long asking MSK for the brokers may take at cold start, retries included:
/// from private subnets without a route to the MSK API (no NAT, no `kafka` VPC
/// endpoint) the function fails with a clear error instead of hanging until Lambda's
/// own timeout.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The Kafka settings for `msk`: its SASL/IAM brokers (asked of MSK, with the AWS
/// SDK's default configuration in the cluster's region) and IAM authentication; the
/// rest as [`super::KafkaConfig::from_lookup`] reads it through `var`.
///
/// # Errors
/// As [`bootstrap_brokers`], and a malformed Kafka setting.
pub async fn kafka_config(
    msk: &MskConfig,
    var: impl Fn(&str) -> Option<String>,
) -> Result<super::KafkaConfig, BusError> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(msk.region.clone()))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(DISCOVERY_TIMEOUT)
                .build(),
        )
        .load()
        .await;
    kafka_config_with(&aws_sdk_kafka::Client::new(&sdk), msk, var).await
}

/// [`kafka_config`] with the MSK client given.
///
/// # Errors
/// As [`kafka_config`].
pub async fn kafka_config_with(
    client: &aws_sdk_kafka::Client,
    msk: &MskConfig,
    var: impl Fn(&str) -> Option<String>,
) -> Result<super::KafkaConfig, BusError> {
    let brokers = bootstrap_brokers(client, msk).await?;
    with_brokers(msk, &brokers, var)
}

fn with_brokers(
    msk: &MskConfig,
    brokers: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<super::KafkaConfig, BusError> {
    let lookup = |name: &str| {
        if name == "KAFKA_BROKERS" {
            Some(brokers.to_owned())
        } else {
            var(name)
        }
    };
    let mut config = super::KafkaConfig::from_lookup(lookup)?
        .ok_or_else(|| BusError::Config("MSK returned no brokers".to_owned()))?;
    config.auth = super::KafkaAuth::MskIam {
        region: msk.region.clone(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(token: &str) -> (url::Url, Vec<(String, String)>) {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("base64url without padding");
        let url = url::Url::parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
        let pairs = url.query_pairs().into_owned().collect();
        (url, pairs)
    }

    #[test]
    fn a_token_is_a_presigned_connect_url_for_the_regions_kafka_endpoint() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token".to_owned()),
            None,
            "tests",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let (token, expires_ms) = auth_token("eu-west-1", &credentials, now).unwrap();
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'));
        assert_eq!(expires_ms, (1_780_000_000 + 900) * 1000);

        let (url, pairs) = query(&token);
        assert_eq!(url.host_str(), Some("kafka.eu-west-1.amazonaws.com"));
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .unwrap_or_else(|| panic!("no {name} in {url}"))
        };
        assert_eq!(param("Action"), "kafka-cluster:Connect");
        assert_eq!(param("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            param("X-Amz-Credential"),
            "AKIDEXAMPLE/20260528/eu-west-1/kafka-cluster/aws4_request"
        );
        assert_eq!(param("X-Amz-Date"), "20260528T202640Z");
        assert_eq!(param("X-Amz-Expires"), "900");
        assert_eq!(param("X-Amz-SignedHeaders"), "host");
        assert_eq!(param("X-Amz-Security-Token"), "session-token");
        let signature = param("X-Amz-Signature");
        assert_eq!(signature.len(), 64);
        assert!(signature.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(param("User-Agent").starts_with("ticketing-bus/"));

        // Signed again at the same instant: the same token; a second later: another.
        assert_eq!(auth_token("eu-west-1", &credentials, now).unwrap().0, token);
        let later = now + Duration::from_secs(1);
        assert_ne!(
            auth_token("eu-west-1", &credentials, later).unwrap().0,
            token
        );
    }

    #[test]
    fn the_cluster_arn_names_the_region_and_anything_else_is_refused() {
        let arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/ticketing/6a3d9c5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f-1";
        let config = MskConfig::from_lookup(|name| (name == "MSK_CLUSTER_ARN").then(|| arn.into()))
            .unwrap()
            .unwrap();
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.cluster_arn, arn);
        assert_eq!(MskConfig::from_lookup(|_| None).unwrap(), None);
        let error = MskConfig::from_lookup(|_| Some("b-1.example:9098".into())).unwrap_err();
        assert!(error.to_string().contains("MSK_CLUSTER_ARN"), "{error}");
    }

    fn cluster() -> MskConfig {
        MskConfig {
            cluster_arn: "arn:aws:kafka:eu-west-1:123456789012:cluster/ticketing/abc-1".into(),
            region: "eu-west-1".into(),
        }
    }

    #[tokio::test]
    async fn the_brokers_are_the_clusters_sasl_iam_bootstrap_string() {
        use aws_sdk_kafka::operation::get_bootstrap_brokers::GetBootstrapBrokersOutput;
        use aws_smithy_mocks::{mock, mock_client};

        let iam = "b-1.ticketing.abc.c2.kafka.eu-west-1.amazonaws.com:9098,\
                   b-2.ticketing.abc.c2.kafka.eu-west-1.amazonaws.com:9098";
        let answer = mock!(aws_sdk_kafka::Client::get_bootstrap_brokers)
            .match_requests(|request| request.cluster_arn() == Some(cluster().cluster_arn.as_str()))
            .then_output(move || {
                GetBootstrapBrokersOutput::builder()
                    .bootstrap_broker_string("b-1.plaintext:9092")
                    .bootstrap_broker_string_sasl_iam(iam)
                    .build()
            });
        let client = mock_client!(aws_sdk_kafka, [&answer]);
        let config = kafka_config_with(&client, &cluster(), |name| {
            (name == "KAFKA_CLIENT_ID").then(|| "projector-fn".into())
        })
        .await
        .unwrap();
        assert_eq!(answer.num_calls(), 1);
        assert_eq!(config.brokers, iam);
        assert_eq!(config.client_id, "projector-fn");
        assert_eq!(
            config.auth,
            crate::kafka::KafkaAuth::MskIam {
                region: "eu-west-1".into()
            }
        );
        let producer = config.producer_config();
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(producer.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(producer.get("ssl.ca.location"), Some("probe"));
    }

    #[tokio::test]
    async fn a_cluster_without_iam_access_is_a_configuration_error() {
        use aws_sdk_kafka::operation::get_bootstrap_brokers::GetBootstrapBrokersOutput;
        use aws_smithy_mocks::{mock, mock_client};

        let answer = mock!(aws_sdk_kafka::Client::get_bootstrap_brokers).then_output(|| {
            GetBootstrapBrokersOutput::builder()
                .bootstrap_broker_string_tls("b-1.tls:9094")
                .build()
        });
        let client = mock_client!(aws_sdk_kafka, [&answer]);
        let error = bootstrap_brokers(&client, &cluster()).await.unwrap_err();
        assert!(
            matches!(&error, BusError::Config(reason) if reason.contains("IAM")),
            "{error}"
        );
    }

    /// Credentials that count how often they are asked for.
    #[derive(Debug, Clone, Default)]
    struct CountedCredentials(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl CountedCredentials {
        fn asked(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }

        /// Waits up to ten seconds for the first request.
        async fn first_request(&self) -> usize {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while self.asked() == 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.asked()
        }
    }

    impl ProvideCredentials for CountedCredentials {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "tests",
            )))
        }
    }

    /// MSK's settings for a broker that accepts connections and never answers: the
    /// clients get as far as wanting a token.
    fn silent_broker() -> (std::net::TcpListener, super::super::KafkaConfig) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = super::super::KafkaConfig::new(listener.local_addr().unwrap().to_string());
        config.auth = super::super::KafkaAuth::MskIam {
            region: "eu-west-1".into(),
        };
        config.message_timeout = Duration::from_millis(500);
        (listener, config)
    }

    #[tokio::test]
    async fn the_producer_is_built_with_tls_and_signs_its_token_with_the_credentials() {
        let (_broker, config) = silent_broker();
        let credentials = CountedCredentials::default();
        let context = super::super::BusContext::with_tokens(MskTokens::with_credentials(
            "eu-west-1",
            credentials.clone(),
        ));
        // librdkafka refuses SASL_SSL and OAUTHBEARER when built without OpenSSL.
        let bus = super::super::KafkaBus::with_context(config, context)
            .expect("a producer with MSK's security settings");
        assert!(
            credentials.first_request().await >= 1,
            "the producer never asked for a token"
        );
        drop(bus);
    }

    #[tokio::test]
    async fn the_projectors_consumer_signs_its_token_with_the_credentials() {
        use crate::EventSource;

        let (_broker, config) = silent_broker();
        let credentials = CountedCredentials::default();
        let auth = super::super::BusContext::with_tokens(MskTokens::with_credentials(
            "eu-west-1",
            credentials.clone(),
        ));
        let mut source = super::super::KafkaSource::with_auth(
            super::super::KafkaSourceConfig::new(config),
            auth,
        )
        .expect("a consumer with MSK's security settings");
        // Nothing arrives from a silent broker; asking serves the consumer's queue.
        let batch = source
            .next_batch(10, Duration::from_millis(300))
            .await
            .expect("an empty batch");
        assert!(batch.is_empty());
        assert!(
            credentials.first_request().await >= 1,
            "the consumer never asked for a token"
        );
    }
}
