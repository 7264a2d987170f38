//! Choosing and connecting a backend from configuration.
//!
//! `DATABASE_URL` picks the backend by its scheme: `postgres://` or `postgresql://` for
//! PostgreSQL, `sqlite:` for an SQLite file. Without it the store is the embedded
//! default, `ticketing.db` in the working directory, so that the system runs with no
//! set-up at all.
//!
//! [`load_env_file`] reads a `.env` file into the environment first, for every binary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::{EventStore, StoreError};

/// The SQLite file used when no `DATABASE_URL` is configured.
pub const DEFAULT_SQLITE_PATH: &str = "ticketing.db";

/// The pool size when `DATABASE_MAX_CONNECTIONS` is not set.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// The file of settings that every binary reads at start-up when there is one.
pub const ENV_FILE: &str = ".env";

/// A `.env` file that exists but cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the settings in {}: {source}", path.display())]
pub struct EnvFileError {
    pub path: PathBuf,
    #[source]
    pub source: dotenvy::Error,
}

/// Reads the nearest [`ENV_FILE`] (in the working directory or one of its parents,
/// so that a binary started from a crate's folder finds the workspace's) into the
/// environment, and returns its path; `None` when there is none. A variable that is
/// already set keeps its value: the real environment wins over the file. Call it
/// before anything reads the environment (argument parsing, logging).
///
/// # Errors
/// [`EnvFileError`] when the file exists but cannot be read or has a malformed line:
/// a typo must stop the process at start-up, not leave a setting silently unset.
pub fn load_env_file() -> Result<Option<PathBuf>, EnvFileError> {
    match std::env::current_dir() {
        Ok(dir) => load_env_file_from(&dir),
        // No working directory (deleted under the process): nothing to read.
        Err(_) => Ok(None),
    }
}

/// [`load_env_file`] from `dir` instead of the working directory.
///
/// # Errors
/// As [`load_env_file`].
pub fn load_env_file_from(dir: &Path) -> Result<Option<PathBuf>, EnvFileError> {
    let Some(path) = dir
        .ancestors()
        .map(|dir| dir.join(ENV_FILE))
        .find(|path| path.is_file())
    else {
        return Ok(None);
    };
    dotenvy::from_path(&path).map_err(|source| EnvFileError {
        path: path.clone(),
        source,
    })?;
    Ok(Some(path))
}

/// Which database a configuration points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A PostgreSQL server: the deployment backend.
    Postgres,
    /// An SQLite file: the embedded default and `sqlite:` URLs.
    Sqlite,
}

/// Where the event store lives and how many connections it may hold.
///
/// `Debug` is written by hand so that the URL's password never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The database URL; `None` selects the embedded SQLite default.
    pub database_url: Option<String>,
    /// The connection pool's size.
    pub max_connections: u32,
}

impl Default for StoreConfig {
    /// The embedded default: no URL, a pool of [`DEFAULT_MAX_CONNECTIONS`].
    fn default() -> Self {
        StoreConfig {
            database_url: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl StoreConfig {
    /// Reads `DATABASE_URL` (unset or empty: the embedded default) and
    /// `DATABASE_MAX_CONNECTIONS` (default [`DEFAULT_MAX_CONNECTIONS`]).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when `DATABASE_MAX_CONNECTIONS` is not a positive
    /// integer: a typo in the environment should stop the process at start-up, not
    /// silently pick another pool size.
    pub fn from_env() -> Result<Self, StoreError> {
        let database_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty());
        let max_connections = match std::env::var("DATABASE_MAX_CONNECTIONS") {
            Ok(value) if !value.trim().is_empty() => parse_max_connections(&value)?,
            _ => DEFAULT_MAX_CONNECTIONS,
        };
        Ok(StoreConfig {
            database_url,
            max_connections,
        })
    }

    /// Which backend the URL selects.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a scheme that is neither PostgreSQL nor SQLite.
    pub fn backend(&self) -> Result<Backend, StoreError> {
        match self.database_url.as_deref() {
            None => Ok(Backend::Sqlite),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Backend::Postgres)
            }
            Some(url) if url.starts_with("sqlite:") => Ok(Backend::Sqlite),
            Some(url) => {
                let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
                Err(StoreError::Invalid(format!(
                    "DATABASE_URL has the unsupported scheme `{scheme}`: use postgres://, \
                     postgresql:// or sqlite:, or leave it unset for the embedded SQLite file"
                )))
            }
        }
    }

    /// The URL with its password replaced by `***`, for log lines and error messages.
    pub fn redacted_url(&self) -> Option<String> {
        self.database_url.as_deref().map(redact_url)
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("database_url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Connects the configured backend.
///
/// SQLite is migrated on connect, because the embedded default must need no set-up.
/// PostgreSQL is not: its schema is changed deliberately with [`migrate`]
/// (`ticketing migrate`), and [`open_postgres`] refuses a database that lacks a
/// migration.
///
/// # Errors
/// - [`StoreError::Invalid`] for an unsupported URL scheme, an unparsable URL or a pool
///   size of zero.
/// - [`StoreError::Unavailable`] / [`StoreError::Database`] /
///   [`StoreError::Migration`] when the SQLite file cannot be opened or migrated.
#[tracing::instrument(skip(config), fields(backend))]
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn EventStore>, StoreError> {
    check_pool_size(config.max_connections)?;
    let backend = config.backend()?;
    tracing::Span::current().record("backend", tracing::field::debug(backend));
    match (backend, config.database_url.as_deref()) {
        (Backend::Postgres, Some(url)) => {
            let store = open_postgres(url, config.max_connections).await?;
            Ok(Arc::new(store))
        }
        (_, url) => {
            let location = url.unwrap_or(DEFAULT_SQLITE_PATH);
            let store = SqliteStore::open_with(location, config.max_connections).await?;
            Ok(Arc::new(store))
        }
    }
}

/// The PostgreSQL store at `url`, once its schema is found to be the one this binary
/// needs: a binary started on a new or outdated database stops at once with a line
/// naming `ticketing migrate`, rather than answer every request with a 500.
///
/// The check is the pool's first query, so its connection is then ready for the first
/// request: a cold start with the database up makes no more round trips than before,
/// it makes the first one sooner. A database that cannot be reached within
/// [`SCHEMA_CHECK_TIMEOUT`] does not stop the start: the pool connects when it is
/// back, and requests meanwhile answer 503.
///
/// # Errors
/// [`StoreError::Invalid`] for an unparsable URL; [`StoreError::SchemaBehind`]; any
/// other failure of the check that is not [`StoreError::is_transient`].
pub async fn open_postgres(url: &str, max_connections: u32) -> Result<PostgresStore, StoreError> {
    let store = PostgresStore::connect(url, max_connections).await?;
    match tokio::time::timeout(SCHEMA_CHECK_TIMEOUT, store.check_schema()).await {
        Ok(Ok(())) => Ok(store),
        Ok(Err(error)) if !error.is_transient() => Err(error),
        Ok(Err(error)) => {
            tracing::warn!(
                error.cause_chain = ?error,
                "the database is unreachable; its schema is not checked"
            );
            Ok(store)
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?SCHEMA_CHECK_TIMEOUT,
                "the database did not answer; its schema is not checked"
            );
            Ok(store)
        }
    }
}

/// How long a start waits for the database to answer its schema check.
pub const SCHEMA_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Brings the configured database's schema up to date: the `ticketing migrate`
/// command.
///
/// # Errors
/// As [`connect`], and [`StoreError::Migration`] when a migration fails.
#[tracing::instrument(skip(config), fields(backend))]
pub async fn migrate(config: &StoreConfig) -> Result<(), StoreError> {
    check_pool_size(config.max_connections)?;
    let backend = config.backend()?;
    tracing::Span::current().record("backend", tracing::field::debug(backend));
    match (backend, config.database_url.as_deref()) {
        (Backend::Postgres, Some(url)) => {
            let store = PostgresStore::connect(url, config.max_connections).await?;
            let result = store.migrate().await;
            store.pool().close().await;
            result
        }
        (_, url) => {
            // Opening migrates; closing flushes the WAL back into the file.
            let store = SqliteStore::open_with(url.unwrap_or(DEFAULT_SQLITE_PATH), 1).await?;
            store.pool().close().await;
            Ok(())
        }
    }
}

fn check_pool_size(max_connections: u32) -> Result<(), StoreError> {
    if max_connections == 0 {
        return Err(StoreError::Invalid(
            "the connection pool needs at least one connection".into(),
        ));
    }
    Ok(())
}

fn parse_max_connections(value: &str) -> Result<u32, StoreError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(StoreError::Invalid(format!(
            "DATABASE_MAX_CONNECTIONS must be a positive integer, not `{value}`"
        ))),
    }
}

/// Replaces the password of a URL with `***`, both in the user info
/// (`postgres://user:secret@host`) and in `password=` query parameters.
pub(crate) fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut redacted = match before_query.find("://") {
        Some(scheme_end) => {
            let authority_start = scheme_end + 3;
            let authority_end = before_query[authority_start..]
                .find(['/', '#'])
                .map_or(before_query.len(), |i| authority_start + i);
            let authority = &before_query[authority_start..authority_end];
            let authority = match authority.rfind('@') {
                Some(at) => match authority[..at].split_once(':') {
                    Some((user, _password)) => format!("{user}:***{}", &authority[at..]),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!(
                "{}{}{}",
                &before_query[..authority_start],
                authority,
                &before_query[authority_end..]
            )
        }
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&pairs.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: Option<&str>) -> StoreConfig {
        StoreConfig {
            database_url: url.map(str::to_owned),
            max_connections: 10,
        }
    }

    #[test]
    fn an_env_file_in_a_parent_folder_is_read_and_the_real_environment_wins() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join(ENV_FILE),
            "# a comment\nTICKETING_ENV_FILE_TEST_A=from-file\nTICKETING_ENV_FILE_TEST_B=from-file\n",
        )
        .unwrap();
        let nested = root.path().join("functions").join("shows");
        std::fs::create_dir_all(&nested).unwrap();
        std::env::set_var("TICKETING_ENV_FILE_TEST_B", "from-environment");

        let found = load_env_file_from(&nested).unwrap();

        assert_eq!(found, Some(root.path().join(ENV_FILE)));
        assert_eq!(
            std::env::var("TICKETING_ENV_FILE_TEST_A").as_deref(),
            Ok("from-file")
        );
        assert_eq!(
            std::env::var("TICKETING_ENV_FILE_TEST_B").as_deref(),
            Ok("from-environment")
        );
    }

    #[test]
    fn a_malformed_env_file_is_an_error_that_names_the_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join(ENV_FILE);
        std::fs::write(
            &path,
            "TICKETING_ENV_FILE_TEST_C=ok\nthis line has no equals sign\n",
        )
        .unwrap();

        let error = load_env_file_from(root.path()).unwrap_err();

        assert_eq!(error.path, path);
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn debug_output_never_contains_the_password() {
        let config = config(Some("postgres://app:s3cret@db.internal:5432/ticketing"));
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("postgres://app:***@db.internal:5432/ticketing"),
            "{printed}"
        );
    }

    #[test]
    fn password_query_parameters_are_redacted() {
        assert_eq!(
            redact_url("postgres://db/ticketing?user=app&password=s3cret&sslmode=require"),
            "postgres://db/ticketing?user=app&password=***&sslmode=require"
        );
    }

    #[test]
    fn urls_without_a_password_are_printed_unchanged() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "sqlite:ticketing.db",
            "sqlite://data/ticketing.db?mode=rwc",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn the_scheme_selects_the_backend() {
        assert_eq!(config(None).backend().unwrap(), Backend::Sqlite);
        assert_eq!(
            config(Some("sqlite:x.db")).backend().unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            config(Some("postgres://h/d")).backend().unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            config(Some("postgresql://h/d")).backend().unwrap(),
            Backend::Postgres
        );
    }

    #[test]
    fn an_unknown_scheme_is_invalid_and_does_not_echo_the_url() {
        let err = config(Some("mysql://root:s3cret@h/d"))
            .backend()
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Invalid(_)));
        assert!(message.contains("mysql"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn max_connections_must_be_a_positive_integer() {
        assert_eq!(parse_max_connections(" 4 ").unwrap(), 4);
        assert!(parse_max_connections("0").is_err());
        assert!(parse_max_connections("ten").is_err());
    }
}
