//! Where the DynamoDB read models are: the table names (one prefix for all of them)
//! and, for a local server, the endpoint.

use crate::ConnectError;

/// The prefix of every table when `DYNAMODB_TABLE_PREFIX` is not set.
pub const DEFAULT_TABLE_PREFIX: &str = "ticketing-";

/// The DynamoDB read models' settings.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `DYNAMODB_TABLE_PREFIX` | `ticketing-` | prefix of the tables' names ([`TableNames`]) |
/// | `DYNAMODB_ENDPOINT_URL` | unset: the region's endpoint | a local server (moto, LocalStack, DynamoDB Local) |
///
/// Credentials and the region come from the AWS SDK's usual chain (on Lambda, the
/// function's role and `AWS_REGION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbConfig {
    pub tables: TableNames,
    pub endpoint_url: Option<String>,
}

impl DynamoDbConfig {
    /// The settings for tables named with `prefix`, on the region's endpoint.
    ///
    /// # Errors
    /// [`ConnectError::Invalid`] for a prefix that cannot start a table name.
    pub fn with_prefix(prefix: &str) -> Result<Self, ConnectError> {
        Ok(Self {
            tables: TableNames::with_prefix(prefix)?,
            endpoint_url: None,
        })
    }

    /// The settings from `DYNAMODB_TABLE_PREFIX` and `DYNAMODB_ENDPOINT_URL`.
    ///
    /// # Errors
    /// [`ConnectError::Invalid`] for a malformed prefix or endpoint.
    pub fn from_env() -> Result<Self, ConnectError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = Self::with_prefix(
            &var("DYNAMODB_TABLE_PREFIX").unwrap_or(DEFAULT_TABLE_PREFIX.into()),
        )?;
        if let Some(url) = var("DYNAMODB_ENDPOINT_URL") {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConnectError::Invalid {
                    name: "DYNAMODB_ENDPOINT_URL",
                    reason: format!("{url:?} is not an http:// or https:// URL"),
                });
            }
            config.endpoint_url = Some(url);
        }
        Ok(config)
    }
}

/// The tables, each named `<prefix><table>` (docs/adr/0011-dynamodb-read-models.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// A section's seats and sales totals, by `stream_id`; GSI `by_show`.
    pub sections: String,
    /// Hourly sales, by `show_id` and `hour#section`.
    pub sales_by_hour: String,
    /// The customer history, by `stream_id`; GSI `by_customer`.
    pub reservations: String,
    /// Tickets, by `stream_id`; GSIs `by_show` and `by_holder`.
    pub tickets: String,
    /// Tickets revoked by their purchase's refund or cancellation, by `ticket_id`;
    /// GSI `by_show`.
    pub ticket_revocations: String,
    /// Each stream's applied version, by `stream_id`.
    pub applied: String,
    /// Dead letters, by `stream_id` and `version`.
    pub dead_letters: String,
    /// Checkpoints of the global order, by `name`.
    pub checkpoints: String,
}

/// The index by show: of [`TableNames::sections`] sorted by section name, of
/// [`TableNames::tickets`] by `held_since#ticket_id`, of
/// [`TableNames::ticket_revocations`] by `revoked_at`.
pub const BY_SHOW: &str = "by_show";
/// The index of [`TableNames::reservations`] by customer, sorted by
/// `placed_at#reservation_id`.
pub const BY_CUSTOMER: &str = "by_customer";
/// The index of [`TableNames::tickets`] by holder, sorted by
/// `held_since#ticket_id`.
pub const BY_HOLDER: &str = "by_holder";

impl TableNames {
    /// The table names for `prefix`.
    ///
    /// # Errors
    /// [`ConnectError::Invalid`] when the prefix holds characters a table name may
    /// not (DynamoDB allows `a-z A-Z 0-9 _ - .`) or is too long.
    pub fn with_prefix(prefix: &str) -> Result<Self, ConnectError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if !prefix.chars().all(allowed) || prefix.len() > 200 {
            return Err(ConnectError::Invalid {
                name: "DYNAMODB_TABLE_PREFIX",
                reason: format!(
                    "{prefix:?} may only hold letters, digits, `_`, `-` and `.` (at most 200)"
                ),
            });
        }
        let name = |table: &str| format!("{prefix}{table}");
        Ok(Self {
            sections: name("read-sections"),
            sales_by_hour: name("read-sales-by-hour"),
            reservations: name("read-customer-reservations"),
            tickets: name("read-tickets"),
            ticket_revocations: name("read-ticket-revocations"),
            applied: name("projection-applied"),
            dead_letters: name("projection-dead-letters"),
            checkpoints: name("projection-checkpoints"),
        })
    }

    /// Every table, for creating and clearing them.
    pub fn all(&self) -> [&str; 8] {
        [
            &self.sections,
            &self.sales_by_hour,
            &self.reservations,
            &self.tickets,
            &self.ticket_revocations,
            &self.applied,
            &self.dead_letters,
            &self.checkpoints,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_after_the_prefix() {
        let tables = TableNames::with_prefix("prod-").unwrap();
        assert_eq!(tables.sections, "prod-read-sections");
        assert_eq!(tables.applied, "prod-projection-applied");
        assert_eq!(tables.tickets, "prod-read-tickets");
        assert_eq!(tables.ticket_revocations, "prod-read-ticket-revocations");
    }

    #[test]
    fn a_prefix_a_table_name_cannot_hold_is_refused() {
        let error = TableNames::with_prefix("my tables/").unwrap_err();
        assert!(
            error.to_string().contains("DYNAMODB_TABLE_PREFIX"),
            "{error}"
        );
    }
}
