//! Test support: a fresh, migrated database per test, on either backend, so that the
//! store's contract suite and the command layer's tests run the same way, and the
//! trials that report a PostgreSQL test as skipped, by name, when no server answers.
//!
//! - [`with_sqlite`]: a new SQLite file in a temporary directory, removed afterwards.
//! - [`with_postgres`]: a new database `store_test_<uuid>` on the server named by
//!   `TEST_DATABASE_URL` (default [`DEFAULT_TEST_DATABASE_URL`]), migrated, and dropped
//!   `WITH (FORCE)` afterwards even when the test panics. When the server cannot be
//!   reached, see [`skip_unless_ci`]: with `CI` set the test fails, since there a
//!   missing database must fail the run, not pass it silently.
//! - [`with_new_postgres_database`]: the same, left empty, for tests of what a binary
//!   does with a database nobody has migrated.
//! - [`async_trial`] and [`postgres_trial`]: tests as `libtest_mimic` trials, for test
//!   binaries declared with `harness = false` (the store's `contract` and the command
//!   layer's `commands`). A PostgreSQL trial is marked ignored when
//!   [`postgres_reachable`] says no and `CI` is not set, so that nextest and
//!   `cargo test` report it as skipped under its own name instead of as passed.
//!
//! Behind the crate's `testing` feature, which this crate's and other crates' tests
//! turn on as a dev-dependency feature: no production binary links it.

use std::future::Future;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::panic::resume_unwind;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::Trial;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::{EventStore, GlobalPosition, RecordedEvent, StoreConfig};

/// The server the PostgreSQL tests use when `TEST_DATABASE_URL` is not set: a local
/// server with trust authentication, as on the development machines and in CI.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long [`postgres_reachable`] waits for the server to accept a connection: a
/// server on this machine or the local network answers in a few milliseconds, and a
/// missing one on the loopback refuses at once.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Set once this process has built a trial: its tests then report a missing service
/// by name (as ignored), and [`skip_unless_ci`] fails the test that still runs.
static TRIALS: AtomicBool = AtomicBool::new(false);

/// The URL of the server the PostgreSQL tests use: `TEST_DATABASE_URL`, or
/// [`DEFAULT_TEST_DATABASE_URL`].
fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Whether the PostgreSQL server of `TEST_DATABASE_URL` accepts a connection: a TCP
/// connection to its host and port (or to its Unix socket) opened within half a
/// second, without speaking PostgreSQL's protocol. Probed once per process, so that a
/// test binary decides which of its trials to ignore in one go and cheaply (nextest
/// runs each test in a process of its own).
///
/// A URL that does not parse counts as reachable: the test then runs and says why it
/// cannot connect.
pub fn postgres_reachable() -> bool {
    static REACHABLE: OnceLock<bool> = OnceLock::new();
    *REACHABLE.get_or_init(|| {
        let Ok(options) = PgConnectOptions::from_str(&test_database_url()) else {
            return true;
        };
        let (host, port) = (options.get_host(), options.get_port());
        #[cfg(unix)]
        if host.starts_with('/') {
            let socket = format!("{}/.s.PGSQL.{port}", host.trim_end_matches('/'));
            return std::os::unix::net::UnixStream::connect(socket).is_ok();
        }
        (host, port).to_socket_addrs().is_ok_and(|mut addresses| {
            addresses.any(|address| TcpStream::connect_timeout(&address, PROBE_TIMEOUT).is_ok())
        })
    })
}

/// A trial named `name` that runs the future `test` returns on a fresh multi-thread
/// Tokio runtime with two workers, as `#[tokio::test(flavor = "multi_thread",
/// worker_threads = 2)]` does. A panic fails the trial.
///
/// # Panics
/// When the runtime cannot be built (the trial fails).
pub fn async_trial<F, Fut>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    TRIALS.store(true, Ordering::Relaxed);
    Trial::test(name, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the test's Tokio runtime starts")
            .block_on(test());
        Ok(())
    })
}

/// An [`async_trial`] for a test that needs PostgreSQL ([`with_postgres`] or
/// [`with_new_postgres_database`]): marked ignored, under the same name, when the
/// server is unreachable ([`postgres_reachable`]) and `CI` is not set, so that the
/// run reports it as skipped. With `CI` set it always runs, and fails without a
/// server. Run anyway (`--ignored`, nextest's `--run-ignored`), it fails too.
pub fn postgres_trial<F, Fut>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let skipped = std::env::var_os("CI").is_none() && !postgres_reachable();
    async_trial(name, test).with_ignored_flag(skipped)
}

/// Runs `test` against a freshly created and migrated SQLite file.
///
/// # Panics
/// When the temporary file cannot be created or migrated.
pub async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(SqliteStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(path.to_str().expect("a UTF-8 temporary path"))
        .await
        .expect("the SQLite store opens and migrates");
    let pool = store.pool().clone();
    test(store).await;
    pool.close().await;
}

/// What a test does when a service it needs is missing (`missing` says which and
/// why): with `CI` set it fails, saying `in_ci`; elsewhere it notes on stderr that
/// `test_name` is skipped, and the caller returns, so that the harness reports the
/// test as passed.
///
/// That note is for the test binaries still on libtest's harness. The binaries whose
/// tests are trials ([`postgres_trial`]) report such a test as skipped by name
/// before it runs; one that runs anyway (asked for with `--ignored`, or the service
/// gone since the probe) fails here instead of passing.
///
/// # Panics
/// With `CI` set, and in a process whose tests are trials.
pub fn skip_unless_ci(test_name: &str, missing: &str, in_ci: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{missing}; {in_ci}");
    }
    if TRIALS.load(Ordering::Relaxed) {
        panic!("{missing}; this trial was not skipped (asked for with --ignored, or the server takes TCP connections), so it fails");
    }
    // Written to the stderr handle rather than with `eprintln!`, which the test
    // harness captures and shows only for failing tests.
    let _ = writeln!(
        std::io::stderr(),
        "skipping {test_name}: {missing}; set CI to make this fail"
    );
}

/// Runs `test` against a freshly created and migrated PostgreSQL database. When no
/// server answers it fails with `CI` set; elsewhere, in a binary on libtest's harness,
/// it notes on stderr that `test_name` is skipped and returns, so the test passes
/// ([`skip_unless_ci`]). Binaries whose tests are trials wrap it in a
/// [`postgres_trial`], reported as skipped by name instead. `test_name` is only used
/// in that note and in failure messages.
///
/// # Panics
/// When the server is unreachable and `CI` is set or the test is a trial, when the
/// database cannot be created, migrated or dropped, and with the test's own panic.
pub async fn with_postgres<F, Fut>(test_name: &str, test: F)
where
    F: FnOnce(PostgresStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_database(test_name, true, |store, _| test(store)).await;
}

/// Runs `test` with the URL of a freshly created PostgreSQL database that nothing has
/// migrated; a missing server is handled as in [`with_postgres`].
///
/// # Panics
/// As [`with_postgres`].
pub async fn with_new_postgres_database<F, Fut>(test_name: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_database(test_name, false, |_, url| test(url)).await;
}

/// `url` naming the database `name` instead of its own.
fn url_of_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut named = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        named.push('?');
        named.push_str(query);
    }
    named
}

async fn with_database<F, Fut>(test_name: &str, migrate: bool, test: F)
where
    F: FnOnce(PostgresStore, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = test_database_url();
    let options = PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is a PostgreSQL URL");
    let connecting = PgConnection::connect_with(&options);
    let mut admin = match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(Ok(connection)) => connection,
        outcome => {
            let reason = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "connecting timed out".to_owned(),
            };
            let shown = StoreConfig {
                database_url: Some(url.clone()),
                ..StoreConfig::default()
            }
            .redacted_url()
            .unwrap_or_default();
            skip_unless_ci(
                test_name,
                &format!("PostgreSQL at {shown} is unreachable: {reason}"),
                "CI must run the PostgreSQL tests",
            );
            return;
        }
    };

    let name = format!("store_test_{}", Uuid::new_v4().simple());
    sqlx::raw_sql(&format!(r#"create database "{name}""#))
        .execute(&mut admin)
        .await
        .expect("the test database is created");

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone().database(&name))
        .await
        .expect("the test database accepts connections");
    let store = PostgresStore::new(pool.clone());
    let migrated = if migrate {
        store.migrate().await
    } else {
        Ok(())
    };
    // The test runs as its own task so that a panic is caught and the database is
    // still dropped.
    let outcome = match migrated {
        Ok(()) => Some(tokio::spawn(test(store, url_of_database(&url, &name))).await),
        Err(_) => None,
    };

    // A panicking test may leave a connection checked out; FORCE ends it anyway.
    let _ = tokio::time::timeout(Duration::from_secs(5), pool.close()).await;
    sqlx::raw_sql(&format!(r#"drop database if exists "{name}" with (force)"#))
        .execute(&mut admin)
        .await
        .expect("the test database is dropped");
    let _ = admin.close().await;

    if let Err(e) = migrated {
        panic!("the PostgreSQL migrations do not apply: {e}");
    }
    if let Some(Err(e)) = outcome {
        if e.is_panic() {
            resume_unwind(e.into_panic());
        }
        panic!("{test_name} was cancelled: {e}");
    }
}

/// Reads the global order until at least `expected` events are visible, or ten seconds
/// have passed, and returns the last read.
///
/// On PostgreSQL any transaction in flight anywhere on the server (another test's
/// append, say) holds back what [`EventStore::read_all`] may return, so a test that
/// expects its own committed events waits for the horizon to pass them.
///
/// # Panics
/// When a read fails.
pub async fn read_all_settled(
    store: &dyn EventStore,
    after: GlobalPosition,
    limit: usize,
    expected: usize,
) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = store
            .read_all(after, limit)
            .await
            .expect("read_all succeeds");
        if events.len() >= expected || tokio::time::Instant::now() >= deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::url_of_database;

    #[test]
    fn a_test_database_url_keeps_the_server_the_user_and_the_parameters() {
        assert_eq!(
            url_of_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            url_of_database("postgres://u:p@db/app?sslmode=disable", "t2"),
            "postgres://u:p@db/t2?sslmode=disable"
        );
        assert_eq!(
            url_of_database("postgres://db:5432", "t3"),
            "postgres://db:5432/t3"
        );
    }
}
