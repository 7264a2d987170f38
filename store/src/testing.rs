//! Test support: a fresh, migrated database per test, on either backend, so that the
//! store's contract suite and the suites of the crates above it run the same way, and
//! the trials that report a test whose service is missing as skipped, by name.
//!
//! - [`with_sqlite`]: a new SQLite file in a temporary directory, removed afterwards.
//! - [`with_postgres`]: a new database `store_test_<uuid>` on the server named by
//!   `TEST_DATABASE_URL` (default [`DEFAULT_TEST_DATABASE_URL`]), migrated, and dropped
//!   `WITH (FORCE)` afterwards even when the test panics. When the server cannot be
//!   reached the test fails ([`service_missing`]).
//! - [`with_new_postgres_database`]: the same, left empty, for tests of what a binary
//!   does with a database nobody has migrated.
//! - [`async_trial`], [`sync_trial`], [`postgres_trial`] and [`trial_needing`], listed
//!   with [`trials!`](crate::trials) and
//!   [`trials_on_both_backends!`](crate::trials_on_both_backends), and run by
//!   [`run_trials`]: tests as `libtest_mimic` trials, for the test binaries declared
//!   with `harness = false` (every suite that needs a service). A trial whose service
//!   is missing is marked ignored when `CI` is not set, so that nextest and
//!   `cargo test` report it as skipped under its own name instead of as passed; with
//!   `CI` set it runs and fails. libtest's harness has no way to skip a test once it
//!   has started, which is why these binaries do without it.
//!
//! Behind the crate's `testing` feature, which this crate's and other crates' tests
//! turn on as a dev-dependency feature: no production binary links it.

use std::future::Future;
use std::net::{TcpStream, ToSocketAddrs};
use std::panic::resume_unwind;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::Arguments;
pub use libtest_mimic::Trial;
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
        accepts_connections(host, port)
    })
}

/// Whether something listens at `host`:`port`: a TCP connection opened within half a
/// second to any of the addresses the name resolves to. The probe every service's
/// trials use to decide whether to run.
pub fn accepts_connections(host: &str, port: u16) -> bool {
    (host, port).to_socket_addrs().is_ok_and(|mut addresses| {
        addresses.any(|address| TcpStream::connect_timeout(&address, PROBE_TIMEOUT).is_ok())
    })
}

/// Runs `trials` as the test binary's harness, with the command line's arguments (the
/// ones libtest and nextest pass), and exits with the outcome. The `main` of a test
/// binary declared with `harness = false`.
pub fn run_trials(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}

/// The name libtest gives the test function `test` of the module `module_path` (as
/// `module_path!()` gives it, crate first): the path without the crate's name. Used by
/// [`trials!`](crate::trials).
#[doc(hidden)]
pub fn trial_name(module_path: &str, test: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{test}"),
        None => test.to_owned(),
    }
}

/// The trials of the listed test functions, each made by the function before its `=>`
/// ([`async_trial`], [`postgres_trial`], [`sync_trial`], or a crate's own) and named as
/// libtest would name a test function of the module the macro is used in:
///
/// ```ignore
/// pub fn trials() -> Vec<Trial> {
///     ticketing_store::trials![
///         async_trial => a_test, another_test;
///         postgres_trial => a_test_of_the_database;
///     ]
/// }
/// ```
#[macro_export]
macro_rules! trials {
    ($($make:path => $($test:ident),+ $(,)?);+ $(;)?) => {{
        let mut trials: ::std::vec::Vec<$crate::testing::Trial> = ::std::vec::Vec::new();
        $($(
            trials.push($make(
                $crate::testing::trial_name(module_path!(), stringify!($test)),
                $test,
            ));
        )+)+
        trials
    }};
}

/// The trials of the listed behaviours (async functions taking an `Arc` of a store),
/// each run on a fresh SQLite file ([`with_sqlite`]) and on a fresh PostgreSQL
/// database ([`with_postgres`], a [`postgres_trial`]), named `sqlite::<behaviour>` and
/// `postgres::<behaviour>` after the function's own name:
///
/// ```ignore
/// let trials = ticketing_store::trials_on_both_backends![relay::a_behaviour, another];
/// ```
#[macro_export]
macro_rules! trials_on_both_backends {
    ($($behaviour:path),+ $(,)?) => {{
        let mut trials: ::std::vec::Vec<$crate::testing::Trial> = ::std::vec::Vec::new();
        $(
            trials.push($crate::testing::async_trial(
                $crate::testing::backend_trial_name("sqlite", stringify!($behaviour)),
                || $crate::testing::with_sqlite(|store| $behaviour(::std::sync::Arc::new(store))),
            ));
        )+
        $(
            let name = $crate::testing::backend_trial_name("postgres", stringify!($behaviour));
            trials.push($crate::testing::postgres_trial(name.clone(), move || async move {
                $crate::testing::with_postgres(&name, |store| {
                    $behaviour(::std::sync::Arc::new(store))
                })
                .await
            }));
        )+
        trials
    }};
}

/// `<backend>::<function>` for the function `behaviour` names (a path, perhaps
/// qualified). Used by [`trials_on_both_backends!`](crate::trials_on_both_backends).
#[doc(hidden)]
pub fn backend_trial_name(backend: &str, behaviour: &str) -> String {
    let function = behaviour.rsplit("::").next().unwrap_or(behaviour).trim();
    format!("{backend}::{function}")
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

/// A trial named `name` that runs `test` on the test's own thread, as `#[test]` does.
pub fn sync_trial<F>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() + Send + 'static,
{
    Trial::test(name, move || {
        test();
        Ok(())
    })
}

/// An [`async_trial`] for a test that needs a service (a server, a broker, a program):
/// marked ignored, under the same name, when `reachable` is false and `CI` is not set,
/// so that the run reports it as skipped. With `CI` set it always runs, and fails
/// without its service. Run anyway (`--ignored`, nextest's `--run-ignored`), it fails
/// too.
pub fn trial_needing<F, Fut>(reachable: bool, name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let skipped = std::env::var_os("CI").is_none() && !reachable;
    async_trial(name, test).with_ignored_flag(skipped)
}

/// A [`trial_needing`] PostgreSQL, for a test that uses [`with_postgres`] or
/// [`with_new_postgres_database`] ([`postgres_reachable`]).
pub fn postgres_trial<F, Fut>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    trial_needing(postgres_reachable(), name, test)
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

/// Fails the test whose service is missing (`missing` says which and why). With `CI`
/// set the message says `in_ci`: there every service must be present. Elsewhere the
/// test's trial is skipped when its probe finds the service missing, so a test that
/// gets here was asked for (`--ignored`) or lost its service after the probe.
///
/// # Panics
/// Always.
pub fn service_missing(missing: &str, in_ci: &str) -> ! {
    if std::env::var_os("CI").is_some() {
        panic!("{missing}; {in_ci}");
    }
    panic!("{missing}; its trial ran (asked for with --ignored, or the service went away after the probe), so it fails");
}

/// Runs `test` against a freshly created and migrated PostgreSQL database. A test that
/// uses it is a [`postgres_trial`], skipped by name outside CI when no server answers.
/// `test_name` is only used in failure messages.
///
/// # Panics
/// When the server is unreachable ([`service_missing`]), when the
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
            service_missing(
                &format!("PostgreSQL at {shown} is unreachable: {reason}"),
                "CI must run the PostgreSQL tests",
            );
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
