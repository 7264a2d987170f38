//! The oversell check: the seats the tool was granted, against what the API reports
//! (held + sold) and, given the event store's URL, against the `SeatsHeld` events of
//! the section's inventory stream(s).
//!
//! Both sides are counted before and after the load, so that a reused show's earlier
//! seats do not count as this run's. The verdicts are pure functions; the SQL reads
//! are at the bottom.

use std::str::FromStr;

use anyhow::{bail, Context};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, Row, SqlitePool};

/// One verdict, printed as a line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A section's taken seats as `GET /v1/shows/{id}/availability` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApiSeats {
    pub capacity: u64,
    pub held: u64,
    pub sold: u64,
}

impl ApiSeats {
    pub fn taken(self) -> u64 {
        self.held + self.sold
    }
}

/// The API's verdicts: the seats taken during the run are exactly the seats granted,
/// and no more seats are taken than the section has.
pub fn api_checks(granted: u64, before: ApiSeats, after: ApiSeats) -> Vec<Check> {
    let added = after.taken().saturating_sub(before.taken());
    let since = if before.taken() > 0 {
        format!(" ({} already taken before the run)", before.taken())
    } else {
        String::new()
    };
    vec![
        Check {
            name: "API: seats granted == held + sold".into(),
            passed: after.taken() == before.taken() + granted,
            detail: format!(
                "{granted} granted, {added} taken during the run ({} held + {} sold now){since}",
                after.held, after.sold
            ),
        },
        Check {
            name: "API: held + sold <= capacity".into(),
            passed: after.taken() <= after.capacity,
            detail: format!("{} <= {}", after.taken(), after.capacity),
        },
    ]
}

/// A section's seats as its inventory events record them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoredSeats {
    /// Inventory streams of the section (one unless the section is split).
    pub streams: u64,
    /// Seats in `SeatsHeld` events.
    pub held: u64,
    /// Seats in `SeatsReleased` and `SeatsReturned` events: back on sale.
    pub given_back: u64,
}

/// The event store's verdicts: this run's `SeatsHeld` seats are exactly the seats
/// granted, and the seats held and not given back fit in the section.
///
/// The second check is the brief "`SeatsHeld` seats <= capacity" when no seat was ever
/// given back (a fresh section, holds that have not expired), and stays true for a
/// reused section whose released seats were held again.
pub fn store_checks(
    granted: u64,
    capacity: u64,
    before: StoredSeats,
    after: StoredSeats,
) -> Vec<Check> {
    let added = after.held.saturating_sub(before.held);
    let outstanding = after.held.saturating_sub(after.given_back);
    let given_back = if after.given_back > 0 {
        format!(" ({} held - {} given back)", after.held, after.given_back)
    } else {
        String::new()
    };
    vec![
        Check {
            name: "SQL: SeatsHeld seats == seats granted".into(),
            passed: after.held == before.held + granted,
            detail: format!(
                "{added} seats held during the run in {} stream(s), {granted} granted",
                after.streams
            ),
        },
        Check {
            name: "SQL: SeatsHeld seats <= capacity".into(),
            passed: outstanding <= capacity,
            detail: format!("{outstanding} <= {capacity}{given_back}"),
        },
    ]
}

/// The id prefix of a section's inventory stream(s): `inventory-<show>-<section>`, the
/// section in lower case. A split section's streams extend it.
pub fn stream_prefix(show_id: &str, section: &str) -> String {
    format!("inventory-{show_id}-{}", section.to_lowercase())
}

/// Whether `stream_id` belongs to the section of `prefix`, and not to another section
/// whose name merely starts with the same words (`Floor` and `Floor B`): a stream goes
/// to the section with the longest matching prefix.
pub fn belongs_to(stream_id: &str, prefix: &str, other_prefixes: &[String]) -> bool {
    stream_id.starts_with(prefix)
        && !other_prefixes
            .iter()
            .any(|other| other.len() > prefix.len() && stream_id.starts_with(other.as_str()))
}

/// Totals of per-stream rows `(stream_id, held, given_back)` of the section.
pub fn total_of(
    rows: impl IntoIterator<Item = (String, i64, i64)>,
    prefix: &str,
    other_prefixes: &[String],
) -> StoredSeats {
    let mut seats = StoredSeats::default();
    for (stream_id, held, given_back) in rows {
        if belongs_to(&stream_id, prefix, other_prefixes) {
            seats.streams += 1;
            seats.held += u64::try_from(held).unwrap_or(0);
            seats.given_back += u64::try_from(given_back).unwrap_or(0);
        }
    }
    seats
}

/// A read-only connection to the event store.
pub enum EventStore {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Seats per inventory stream whose id starts with `$1`. `seats` is the v1 name of
/// `quantity` in `SeatsHeld`. `starts_with` takes the prefix literally (no `LIKE`
/// wildcards); it scans the events table, which is fine for a check run once.
const POSTGRES_SEATS: &str = "\
    select stream_id, \
           coalesce(sum(coalesce(data->>'quantity', data->>'seats')::bigint) \
                    filter (where event_type = 'SeatsHeld'), 0)::bigint as held, \
           coalesce(sum((data->>'quantity')::bigint) \
                    filter (where event_type in ('SeatsReleased', 'SeatsReturned')), 0)::bigint \
               as given_back \
      from events \
     where starts_with(stream_id, $1) \
     group by stream_id";

/// The same on the embedded store, where `data` is JSON text.
const SQLITE_SEATS: &str = "\
    select stream_id, \
           cast(coalesce(sum(case when event_type = 'SeatsHeld' then \
               coalesce(json_extract(data, '$.quantity'), json_extract(data, '$.seats')) end), 0) \
               as integer) as held, \
           cast(coalesce(sum(case when event_type in ('SeatsReleased', 'SeatsReturned') then \
               json_extract(data, '$.quantity') end), 0) as integer) as given_back \
      from events \
     where substr(stream_id, 1, length(?1)) = ?1 \
     group by stream_id";

impl EventStore {
    /// Connects to a `postgres://` or `sqlite:` URL; SQLite read-only.
    ///
    /// # Errors
    /// Another scheme, or a database that cannot be reached.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .context("connecting to PostgreSQL (--database-url)")?;
            Self::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("--database-url is not a valid SQLite URL")?
                .read_only(true)
                .create_if_missing(false);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .with_context(|| format!("opening the SQLite event store {url}"))?;
            Self::Sqlite(pool)
        } else {
            bail!("--database-url must start with postgres:// or sqlite: (got {url:?})");
        };
        Ok(store)
    }

    /// The section's seats: the streams under `prefix` that no longer prefix in
    /// `other_prefixes` claims.
    ///
    /// # Errors
    /// When the query fails (a database without the event store's tables).
    pub async fn section_seats(
        &self,
        prefix: &str,
        other_prefixes: &[String],
    ) -> anyhow::Result<StoredSeats> {
        let rows = match self {
            Self::Postgres(pool) => sqlx::query(POSTGRES_SEATS)
                .bind(prefix)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?,
            Self::Sqlite(pool) => sqlx::query(SQLITE_SEATS)
                .bind(prefix)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?,
        };
        Ok(total_of(rows, prefix, other_prefixes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(capacity: u64, held: u64, sold: u64) -> ApiSeats {
        ApiSeats {
            capacity,
            held,
            sold,
        }
    }

    fn passed(checks: &[Check]) -> Vec<bool> {
        checks.iter().map(|c| c.passed).collect()
    }

    #[test]
    fn api_matches_a_clean_sellout() {
        let checks = api_checks(500, seats(500, 0, 0), seats(500, 500, 0));
        assert_eq!(passed(&checks), [true, true]);
    }

    #[test]
    fn api_counts_only_seats_taken_during_the_run() {
        // A reused show with 20 seats sold before: 100 granted now.
        let checks = api_checks(100, seats(500, 0, 20), seats(500, 100, 20));
        assert_eq!(passed(&checks), [true, true]);
        assert!(checks[0].detail.contains("20 already taken"));
    }

    #[test]
    fn api_flags_seats_the_tool_was_not_granted_and_an_oversold_section() {
        // The API reports 502 taken of 500, the tool was granted 500.
        let checks = api_checks(500, seats(500, 0, 0), seats(500, 502, 0));
        assert_eq!(passed(&checks), [false, false]);
        // Fewer taken than granted (a lost hold) fails the first check only.
        let checks = api_checks(500, seats(500, 0, 0), seats(500, 499, 0));
        assert_eq!(passed(&checks), [false, true]);
    }

    fn stored(streams: u64, held: u64, given_back: u64) -> StoredSeats {
        StoredSeats {
            streams,
            held,
            given_back,
        }
    }

    #[test]
    fn store_matches_a_clean_sellout_over_split_streams() {
        let checks = store_checks(500, 500, stored(0, 0, 0), stored(4, 500, 0));
        assert_eq!(passed(&checks), [true, true]);
        assert!(checks[0].detail.contains("4 stream(s)"));
    }

    #[test]
    fn store_flags_held_seats_beyond_capacity_or_the_grants() {
        let checks = store_checks(500, 500, stored(0, 0, 0), stored(1, 501, 0));
        assert_eq!(passed(&checks), [false, false]);
    }

    #[test]
    fn store_counts_released_seats_held_again_once() {
        // 50 seats released before the run and held again during it: 550 SeatsHeld
        // seats in a 500-seat section is no oversell.
        let checks = store_checks(500, 500, stored(1, 50, 50), stored(1, 550, 50));
        assert_eq!(passed(&checks), [true, true]);
    }

    #[test]
    fn streams_go_to_the_section_with_the_longest_prefix() {
        let show = "0192";
        let floor = stream_prefix(show, "Floor");
        let others = vec![
            stream_prefix(show, "Floor B"),
            stream_prefix(show, "Balcony"),
        ];
        assert_eq!(floor, "inventory-0192-floor");
        assert!(belongs_to("inventory-0192-floor", &floor, &others));
        assert!(belongs_to("inventory-0192-floor-3", &floor, &others));
        assert!(!belongs_to("inventory-0192-floor b", &floor, &others));
        assert!(!belongs_to("inventory-0192-floor b-3", &floor, &others));
        assert!(!belongs_to("inventory-0192-balcony", &floor, &others));

        let rows = [
            ("inventory-0192-floor-1".to_owned(), 200, 0),
            ("inventory-0192-floor-2".to_owned(), 300, 10),
            ("inventory-0192-floor b".to_owned(), 99, 0),
        ];
        assert_eq!(total_of(rows, &floor, &others), stored(2, 500, 10));
    }
}
