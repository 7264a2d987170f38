//! Choosing and connecting a backend from configuration.

use std::future::Future;
use std::time::{Duration, Instant};

use ticketing_store::testing::Trial;
use ticketing_store::{connect, migrate, Backend, ExpectedVersion, StoreConfig, StoreError};

use crate::harness::{events, to_stream};

/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    ticketing_store::trials![
        current_thread_trial =>
            connect_with_a_sqlite_url_creates_and_migrates_the_file,
            migrate_prepares_a_sqlite_file_that_connect_then_uses,
            connect_to_an_unreachable_postgres_starts_anyway_and_its_calls_are_unavailable,
            connect_refuses_an_unsupported_scheme,
            connect_refuses_an_empty_pool,
    ]
}

/// A trial on a current-thread runtime, as `#[tokio::test]` ran these: none needs a
/// server.
fn current_thread_trial<F, Fut>(name: String, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    Trial::test(name, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the test's Tokio runtime starts")
            .block_on(test());
        Ok(())
    })
}

fn config(url: &str) -> StoreConfig {
    StoreConfig {
        database_url: Some(url.to_owned()),
        max_connections: 2,
    }
}

async fn connect_with_a_sqlite_url_creates_and_migrates_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.db");
    let config = config(&format!("sqlite:{}", path.display()));
    assert_eq!(config.backend().unwrap(), Backend::Sqlite);

    let store = connect(&config).await.unwrap();
    store
        .append(
            vec![to_stream(
                "show-1",
                ExpectedVersion::NoStream,
                events("ShowCreated", 1),
            )],
            None,
        )
        .await
        .unwrap();

    assert!(path.exists());
    assert_eq!(store.stream_version("show-1").await.unwrap(), 1);
}

async fn migrate_prepares_a_sqlite_file_that_connect_then_uses() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "sqlite:{}",
        dir.path().join("migrated.db").display()
    ));

    migrate(&config).await.unwrap();
    migrate(&config).await.unwrap();

    let store = connect(&config).await.unwrap();
    assert_eq!(store.stream_version("show-1").await.unwrap(), 0);
}

async fn connect_to_an_unreachable_postgres_starts_anyway_and_its_calls_are_unavailable() {
    // Port 1 on the loopback: nothing listens, so connecting is refused at once.
    let config = config("postgres://postgres:s3cret@127.0.0.1:1/ticketing");
    let started = Instant::now();
    let store = connect(&config)
        .await
        .expect("a database that cannot be reached does not stop a start");
    // The pool itself would go on trying for its 5 s acquire timeout.
    assert!(
        started.elapsed() < ticketing_store::config::SCHEMA_CHECK_TIMEOUT + Duration::from_secs(2),
        "the schema check gives up after its own timeout: {:?}",
        started.elapsed()
    );

    let err = store.stream_version("show-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

async fn connect_refuses_an_unsupported_scheme() {
    let err = connect(&config("mysql://root:s3cret@127.0.0.1/ticketing"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cret"));
}

async fn connect_refuses_an_empty_pool() {
    let mut config = config("sqlite::memory:");
    config.max_connections = 0;
    let err = connect(&config).await.err().unwrap();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}
