//! Value types that can only be built through checked constructors ("parse, don't
//! validate"): once a `Quantity` or a `Money` exists, it is valid.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::DomainError;

/// A UTC instant. Decisions receive it as an argument; the domain never reads a clock.
pub type Timestamp = DateTime<Utc>;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUID v7), so ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a show: a concert, a match, anything people buy tickets for.
    ShowId
);
uuid_id!(
    /// Identifies one purchase process, from hold to confirmation.
    ReservationId
);
uuid_id!(
    /// Identifies one payment; also the payment provider's idempotency key.
    PaymentId
);
uuid_id!(
    /// Identifies one ticket: one seat's right of entry.
    TicketId
);

macro_rules! principal_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks an identity provider's subject: 1 to 128 visible characters.
            ///
            /// # Errors
            /// [`DomainError::InvalidPrincipal`] when empty, too long or containing
            /// whitespace or control characters.
            pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
                let value = value.into();
                let valid = !value.is_empty()
                    && value.chars().count() <= 128
                    && !value.chars().any(|c| c.is_control() || c.is_whitespace());
                if valid {
                    Ok(Self(value))
                } else {
                    Err(DomainError::InvalidPrincipal { kind: $what })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(raw).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

principal_id!(
    /// The customer who buys: the `sub` of a customer's token.
    CustomerId,
    "customer id"
);
principal_id!(
    /// The organizer who owns a show: the `sub` of an organizer's token.
    OrganizerId,
    "organizer id"
);

/// A section's name, unique within its show (case-insensitively). It is part of the
/// section's stream id, so it is kept to letters, digits, spaces, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SectionName(String);

impl SectionName {
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// [`DomainError::InvalidSectionName`] when empty, longer than 64 characters, with
    /// leading or trailing spaces, or with characters other than letters, digits, space,
    /// `-` and `_`.
    pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
        let value = value.into();
        let valid = !value.is_empty()
            && value.chars().count() <= Self::MAX_LEN
            && value.trim() == value
            && value
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_');
        if valid {
            Ok(Self(value))
        } else {
            Err(DomainError::InvalidSectionName(value))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Two names that differ only in case name the same section.
    pub fn same_as(&self, other: &SectionName) -> bool {
        self.0.to_lowercase() == other.0.to_lowercase()
    }
}

impl<'de> Deserialize<'de> for SectionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many seats one order asks for: at least 1 and at most [`Quantity::MAX`]; each
/// show may set a lower per-order limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    /// No show may sell more than this many seats in one order.
    pub const MAX: u32 = 100;

    /// # Errors
    /// [`DomainError::QuantityZero`] for 0, [`DomainError::QuantityAboveLimit`] above
    /// [`Quantity::MAX`].
    pub fn new(value: u32) -> Result<Self, DomainError> {
        match value {
            0 => Err(DomainError::QuantityZero),
            v if v > Self::MAX => Err(DomainError::QuantityAboveLimit {
                requested: v,
                limit: Self::MAX,
            }),
            v => Ok(Self(v)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(u32::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// An active ISO 4217 currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// Active ISO 4217 codes (funds and precious metals excluded).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD",
    "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
    "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN",
    "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD",
    "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES",
    "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN",
    "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP",
    "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK",
    "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
    "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES", "VND",
    "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

impl Currency {
    /// Every code [`Currency::parse`] accepts, in order.
    pub const CODES: &'static [&'static str] = ISO_4217;

    /// # Errors
    /// [`DomainError::InvalidCurrency`] unless `code` is an active ISO 4217 code in
    /// upper case.
    pub fn parse(code: &str) -> Result<Self, DomainError> {
        if ISO_4217.binary_search(&code).is_ok() {
            let bytes = code.as_bytes();
            Ok(Self([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(DomainError::InvalidCurrency(
                code.chars().take(16).collect(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from ASCII codes of the list above.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An amount of money in integer minor units (cents) of a currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    /// The largest price of one seat: ten million major units.
    pub const MAX_UNIT_PRICE_MINOR: i64 = 1_000_000_000;

    /// A price for one seat: positive and at most [`Money::MAX_UNIT_PRICE_MINOR`].
    ///
    /// # Errors
    /// [`DomainError::InvalidPrice`] outside that range.
    pub fn unit_price(amount_minor: i64, currency: Currency) -> Result<Self, DomainError> {
        if (1..=Self::MAX_UNIT_PRICE_MINOR).contains(&amount_minor) {
            Ok(Self {
                amount_minor,
                currency,
            })
        } else {
            Err(DomainError::InvalidPrice(amount_minor))
        }
    }

    /// A zero amount in `currency`, where sums start.
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount_minor: 0,
            currency,
        }
    }

    /// The price of `quantity` seats at this unit price.
    ///
    /// # Errors
    /// [`DomainError::AmountOverflow`] if the product does not fit (it cannot for a
    /// checked unit price and quantity, but money arithmetic is never unchecked).
    pub fn times(self, quantity: u32) -> Result<Self, DomainError> {
        self.amount_minor
            .checked_mul(i64::from(quantity))
            .map(|amount_minor| Self {
                amount_minor,
                currency: self.currency,
            })
            .ok_or(DomainError::AmountOverflow)
    }

    /// The sum of two amounts of the same currency.
    ///
    /// # Errors
    /// [`DomainError::CurrencyMismatch`] for different currencies,
    /// [`DomainError::AmountOverflow`] on overflow.
    pub fn checked_add(self, other: Money) -> Result<Self, DomainError> {
        if self.currency != other.currency {
            return Err(DomainError::CurrencyMismatch);
        }
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|amount_minor| Self {
                amount_minor,
                currency: self.currency,
            })
            .ok_or(DomainError::AmountOverflow)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Display only: two decimals suit most currencies; the wire carries minor units.
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_list_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn currency_accepts_iso_codes_and_rejects_others() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("ABC").is_err());
    }

    #[test]
    fn quantity_rejects_zero_and_above_the_absolute_limit() {
        assert_eq!(Quantity::new(0), Err(DomainError::QuantityZero));
        assert!(matches!(
            Quantity::new(Quantity::MAX + 1),
            Err(DomainError::QuantityAboveLimit { .. })
        ));
        assert_eq!(Quantity::new(3).unwrap().get(), 3);
    }

    #[test]
    fn quantity_deserialization_applies_the_same_checks() {
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("-1").is_err());
        assert!(serde_json::from_str::<Quantity>("4294967296").is_err());
        assert_eq!(serde_json::from_str::<Quantity>("2").unwrap().get(), 2);
    }

    #[test]
    fn section_names_are_checked() {
        assert!(SectionName::parse("General Admission").is_ok());
        assert!(SectionName::parse("").is_err());
        assert!(SectionName::parse(" padded").is_err());
        assert!(SectionName::parse("a/b").is_err());
        assert!(SectionName::parse("x".repeat(65)).is_err());
        let a = SectionName::parse("Floor").unwrap();
        assert!(a.same_as(&SectionName::parse("FLOOR").unwrap()));
    }

    #[test]
    fn unit_prices_must_be_positive_and_bounded() {
        let eur = Currency::parse("EUR").unwrap();
        assert!(Money::unit_price(0, eur).is_err());
        assert!(Money::unit_price(-5, eur).is_err());
        assert!(Money::unit_price(Money::MAX_UNIT_PRICE_MINOR + 1, eur).is_err());
        let price = Money::unit_price(4_500, eur).unwrap();
        assert_eq!(price.times(2).unwrap().amount_minor, 9_000);
        assert_eq!(price.to_string(), "45.00 EUR");
    }

    #[test]
    fn adding_money_of_different_currencies_fails() {
        let eur = Money::zero(Currency::parse("EUR").unwrap());
        let usd = Money::zero(Currency::parse("USD").unwrap());
        assert_eq!(eur.checked_add(usd), Err(DomainError::CurrencyMismatch));
    }

    #[test]
    fn principals_are_checked() {
        assert!(CustomerId::parse("auth0|abc").is_ok());
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("a b").is_err());
        assert!(OrganizerId::parse("o".repeat(129)).is_err());
    }
}
