//! DynamoDB read models for tests (features `testing` and `dynamodb`), shared by the
//! projector's suite and the queries function's: a real DynamoDB API server
//! (`moto_server`, or any other at `TEST_DYNAMODB_URL`, default
//! [`DEFAULT_TEST_DYNAMODB_URL`]), with tables of a fresh prefix per test, deleted
//! afterwards even when the test panics. A test that needs it is a
//! [`dynamodb_trial`]: reported as skipped, by name, when no server answers and `CI`
//! is not set; with `CI` set it fails.

use std::future::Future;
use std::panic::resume_unwind;
use std::sync::OnceLock;
use std::time::Duration;

use crate::dynamodb::{DynamoDbReadModels, TableNames};
use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;
use ticketing_store::testing::Trial;
use uuid::Uuid;

/// Where `infra/test` starts `moto_server`.
pub const DEFAULT_TEST_DYNAMODB_URL: &str = "http://127.0.0.1:5000";

/// How often the test client sends a request that the server answered with a
/// retryable error. moto_server answers `TransactWriteItems` with a 500 when another
/// request changes a table while it copies the table for its rollback (a
/// `RuntimeError: dictionary changed size during iteration` in its log; hundreds in
/// one run of the whole suite, whose tests write eight streams at a time). The
/// failure comes before anything is written, so sending the request again is sound;
/// the SDK's default of three attempts was exhausted about once a run. The test
/// clients share a retry partition without a retry quota, so that many such answers
/// at once never stop a retry either.
const TEST_SERVER_MAX_ATTEMPTS: u32 = 10;

/// A client of the test server with fixed dummy credentials (set here, not in the
/// process environment, which other tests share).
pub fn client(url: &str) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(url)
        .retry_config(RetryConfig::standard().with_max_attempts(TEST_SERVER_MAX_ATTEMPTS))
        .retry_partition(
            RetryPartition::custom("ticketing-test-server")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// The test server: `TEST_DYNAMODB_URL`, else [`DEFAULT_TEST_DYNAMODB_URL`].
pub fn test_url() -> String {
    std::env::var("TEST_DYNAMODB_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DYNAMODB_URL.to_owned())
}

/// Whether the server of [`test_url`] accepts a TCP connection (probed once per
/// process). A URL without a host counts as reachable: the test then runs and says
/// why it cannot connect.
pub fn dynamodb_reachable() -> bool {
    static REACHABLE: OnceLock<bool> = OnceLock::new();
    *REACHABLE.get_or_init(|| {
        let url = test_url();
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", &url));
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => match port.parse() {
                Ok(port) => (host, port),
                Err(_) => return true,
            },
            None if scheme == "https" => (authority, 443),
            None => (authority, 80),
        };
        host.is_empty()
            || ticketing_store::testing::accepts_connections(host.trim_matches(['[', ']']), port)
    })
}

/// A trial for a test that uses [`with_dynamodb`]: skipped by name when
/// [`dynamodb_reachable`] says no and `CI` is not set
/// ([`ticketing_store::testing::trial_needing`]).
pub fn dynamodb_trial<F, Fut>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    ticketing_store::testing::trial_needing(dynamodb_reachable(), name, test)
}

/// Runs `test` on DynamoDB read models in tables of their own. Its trial
/// ([`dynamodb_trial`]) is skipped when no server answers; one that runs without a
/// server fails.
///
/// # Panics
/// When the server is unreachable and `CI` is set, when the tables cannot be
/// created, and with the test's own panic.
pub async fn with_dynamodb<F, Fut>(test_name: &str, test: F)
where
    F: FnOnce(DynamoDbReadModels) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = test_url();
    let client = client(&url);
    let reached = tokio::time::timeout(Duration::from_secs(5), client.list_tables().send()).await;
    if let Err(reason) = reached
        .map_err(|_| "connecting timed out".to_owned())
        .and_then(|answer| {
            answer
                .map(|_| ())
                .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
        })
    {
        ticketing_store::testing::service_missing(
            &format!("DynamoDB at {url} is unreachable: {reason}"),
            "CI must run the DynamoDB tests (moto_server -H 127.0.0.1 -p 5000)",
        );
    }

    let prefix = format!("test-{}-", Uuid::new_v4().simple());
    let tables = TableNames::with_prefix(&prefix).expect("a valid prefix");
    let read_models = DynamoDbReadModels::new(client.clone(), tables.clone());
    read_models
        .create_tables()
        .await
        .expect("the test tables are created");
    // Its own task, so that a panic is caught and the tables are still deleted.
    let outcome = tokio::spawn(test(read_models)).await;
    for table in tables.all() {
        let _ = client.delete_table().table_name(table).send().await;
    }
    if let Err(e) = outcome {
        if e.is_panic() {
            resume_unwind(e.into_panic());
        }
        panic!("{test_name} was cancelled: {e}");
    }
}
