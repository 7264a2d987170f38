//! The JSON shapes of the API. Requests refuse unknown fields; amounts are integer
//! minor units with an ISO 4217 currency; instants are RFC 3339 UTC.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketing_domain::reservation::{ReservationDetails, ReservationStatus};
use ticketing_domain::show::{SalesStatus, ShowDetails};
use ticketing_domain::*;
use ticketing_read_models::{ReservationCursor, SalesFigures, ShowSales, TicketCursor};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;

// Every constraint on a request field is one the server enforces, stated in the
// regular-expression dialect of JSON Schema where a pattern is needed, so that a
// request the document allows is one the server accepts and the other way round.

/// A section name as [`SectionName::parse`] accepts it: letters and digits (what
/// `char::is_alphanumeric` accepts), spaces, `-` and `_`, no space at either end.
///
/// The letters and digits are spelled out as ranges of characters
/// ([`ALPHANUMERIC_CLASS`]): `\p{Alphabetic}` would say the same, but the Unicode
/// classes that schema-driven generators understand (`\p{L}`, `\p{N}`) do not, and a
/// client must be able to build the names the server takes.
pub fn section_name_pattern() -> &'static str {
    static PATTERN: OnceLock<String> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let class = ALPHANUMERIC_CLASS.trim_end_matches('\n');
        format!("^[{class}_-]([{class} _-]*[{class}_-])?$")
    })
}

/// Every character `char::is_alphanumeric` accepts, as the ranges of a regular
/// expression's character class (`a-z` style, single characters alone). Generated
/// once rather than at start-up, where scanning every code point cost a Lambda cold
/// start about 20 ms; `the_alphanumeric_class_is_what_char_is_alphanumeric_accepts`
/// checks it against the standard library in use and says how to regenerate it.
pub const ALPHANUMERIC_CLASS: &str = include_str!("alphanumeric_class.txt");

/// Integers in request bodies. JSON Schema's `integer` is any number without a
/// fractional part, `2.0` as much as `2`; serde's integer types refuse the former, so
/// these read a number and accept it when it is whole and in range.
mod whole {
    use serde::de::{Error, Unexpected};
    use serde::{Deserialize, Deserializer};
    use serde_json::Number;

    fn integer<T: TryFrom<i128>>(number: &Number) -> Option<T> {
        let value = match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(i), _, _) => i128::from(i),
            (_, Some(u), _) => i128::from(u),
            // Beyond 2^53 a float is not exact, but every bound here is far below.
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e18 => f as i128,
            _ => return None,
        };
        T::try_from(value).ok()
    }

    pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        let number = Number::deserialize(d)?;
        integer(&number).ok_or_else(|| {
            D::Error::invalid_value(
                Unexpected::Other(&number.to_string()),
                &"a whole number in range",
            )
        })
    }

    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<Number>::deserialize(d)? {
            None => Ok(None),
            Some(number) => integer(&number).map(Some).ok_or_else(|| {
                D::Error::invalid_value(
                    Unexpected::Other(&number.to_string()),
                    &"a whole number in range",
                )
            }),
        }
    }
}

pub(crate) fn section_name_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "1 to 64 letters, digits, spaces, `-` and `_`, with no space at either end.",
        ))
        .min_length(Some(1))
        .max_length(Some(SectionName::MAX_LEN))
        .pattern(Some(section_name_pattern()))
        .examples([serde_json::json!("General Admission")])
        .build()
}
/// A show's title or venue: no control character, and not only white space.
pub const SHOW_TEXT_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";
/// A card token as `CardToken::parse` accepts it.
pub const CARD_TOKEN_PATTERN: &str = "^[A-Za-z0-9_]+$";
/// A page cursor as [`encode_cursor`] writes it and [`ReservationPageQuery::cursor`]
/// reads it.
pub const CURSOR_PATTERN: &str = "^-?[0-9]{1,19}_[0-9a-f]{32}$";

/// The schema of a currency code in a request: one of the codes the server accepts.
fn currency_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("An active ISO 4217 code, in upper case."))
        .enum_values(Some(Currency::CODES.iter().copied()))
        .examples([serde_json::json!("EUR")])
        .build()
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    /// Letters, digits, spaces, `-` and `_`, with no space at either end; unique in
    /// the show regardless of case.
    #[schema(schema_with = section_name_schema)]
    pub name: String,
    #[schema(example = 100, minimum = 1, maximum = 100000)]
    #[serde(deserialize_with = "whole::required")]
    pub capacity: u32,
    /// The price of one seat in minor units of the show's currency.
    #[schema(example = 4500, minimum = 1, maximum = 1000000000)]
    #[serde(deserialize_with = "whole::required")]
    pub unit_price_minor: i64,
    /// Into how many escrow buckets the section's seats are split: holds in different
    /// buckets never wait for each other, so a large section sells faster in a rush.
    /// Without it, one bucket per 5,000 seats (1 to 16). At most 64, and no more than
    /// the capacity (422 otherwise).
    #[schema(example = 4, minimum = 1, maximum = 64)]
    #[serde(default, deserialize_with = "whole::optional")]
    pub buckets: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShow {
    /// 1 to 200 characters, not only white space, no control characters; surrounding
    /// white space is dropped.
    #[schema(
        example = "Summer Music Festival",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: String,
    /// As `title`.
    #[schema(
        example = "Riverside Arena",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub venue: String,
    /// When the show starts; it must be in the future (422 otherwise).
    #[schema(example = "2030-07-14T20:00:00Z")]
    pub starts_at: DateTime<Utc>,
    /// ISO 4217 code of every section's price.
    #[schema(schema_with = currency_schema)]
    pub currency: String,
    /// Seats one order may hold (default 10, at most 100).
    #[schema(example = 10, minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "whole::optional")]
    pub max_per_order: Option<u32>,
    /// 1 to 50 sections, with names that differ regardless of case (422 otherwise).
    #[schema(min_items = 1, max_items = 50)]
    pub sections: Vec<NewSection>,
}

impl NewShow {
    /// # Errors
    /// 422 with the domain's reason.
    pub fn into_plan(self) -> Result<ShowPlan, ApiError> {
        let currency = Currency::parse(&self.currency)?;
        let sections = self
            .sections
            .into_iter()
            .map(|s| {
                Ok(SectionSpec {
                    name: SectionName::parse(s.name)?,
                    capacity: s.capacity,
                    unit_price: Money::unit_price(s.unit_price_minor, currency)?,
                    buckets: s.buckets.unwrap_or_else(|| default_buckets(s.capacity)),
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        let max_per_order = self.max_per_order.unwrap_or(show::DEFAULT_MAX_PER_ORDER);
        Ok(ShowPlan::new(
            self.title,
            self.venue,
            self.starts_at,
            sections,
            max_per_order,
        )?)
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelShow {
    /// Told to customers; up to 500 characters are kept.
    #[schema(example = "The headliner is ill")]
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Section {
    pub name: String,
    pub capacity: u32,
    pub unit_price_minor: i64,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SalesState {
    Scheduled,
    OnSale,
    Closed,
    Cancelled,
}

impl From<SalesStatus> for SalesState {
    fn from(status: SalesStatus) -> Self {
        match status {
            SalesStatus::Scheduled => Self::Scheduled,
            SalesStatus::OnSale => Self::OnSale,
            SalesStatus::Closed => Self::Closed,
            SalesStatus::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShowView {
    pub show_id: Uuid,
    pub organizer_id: String,
    pub title: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub sales: SalesState,
    pub currency: String,
    pub max_per_order: u32,
    pub sections: Vec<Section>,
}

impl From<ShowDetails> for ShowView {
    fn from(show: ShowDetails) -> Self {
        Self {
            show_id: show.show_id.0,
            organizer_id: show.organizer_id.to_string(),
            title: show.title,
            venue: show.venue,
            starts_at: show.starts_at,
            sales: show.status.into(),
            currency: show.sections[0].unit_price.currency.to_string(),
            max_per_order: show.max_per_order,
            sections: show
                .sections
                .into_iter()
                .map(|s| Section {
                    name: s.name.to_string(),
                    capacity: s.capacity,
                    unit_price_minor: s.unit_price.amount_minor,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionSeats {
    pub name: String,
    pub capacity: u32,
    /// Seats in holds that have not expired.
    pub held: u32,
    pub sold: u32,
    pub available: u32,
    pub unit_price_minor: i64,
}

impl From<SectionAvailability> for SectionSeats {
    fn from(s: SectionAvailability) -> Self {
        Self {
            name: s.section.to_string(),
            capacity: s.capacity,
            held: s.held,
            sold: s.sold,
            available: s.available,
            unit_price_minor: s.unit_price.amount_minor,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Availability {
    pub show_id: Uuid,
    pub as_of: DateTime<Utc>,
    pub currency: String,
    pub sections: Vec<SectionSeats>,
}

/// Money and tickets of a show, a section or an hour. `tickets_sold` and
/// `revenue_minor` count what is sold now (refunded seats are not counted), as they
/// always have; the other fields say how it came to that.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SalesFiguresView {
    /// Tickets sold and not refunded. For an hour: sold minus refunded in that hour,
    /// which is negative when refunds outnumber sales.
    pub tickets_sold: i64,
    /// Net revenue: gross revenue minus refunds.
    pub revenue_minor: i64,
    /// Everything ever sold, refunded or not.
    pub gross_revenue_minor: i64,
    /// Refunded purchases.
    pub refunds_count: i64,
    /// Money given back by those refunds.
    pub refunds_minor: i64,
}

impl From<&SalesFigures> for SalesFiguresView {
    fn from(f: &SalesFigures) -> Self {
        Self {
            tickets_sold: f.tickets_sold,
            revenue_minor: f.net_revenue.amount_minor,
            gross_revenue_minor: f.gross_revenue.amount_minor,
            refunds_count: f.refunds_count,
            refunds_minor: f.refunds_amount.amount_minor,
        }
    }
}

impl SalesFiguresView {
    /// Nothing sold yet.
    pub const ZERO: Self = Self {
        tickets_sold: 0,
        revenue_minor: 0,
        gross_revenue_minor: 0,
        refunds_count: 0,
        refunds_minor: 0,
    };
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionSalesView {
    pub name: String,
    #[serde(flatten)]
    pub figures: SalesFiguresView,
}

/// One hour's sales and refunds, by when they were recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HourlySalesView {
    /// The start of the hour (UTC).
    pub hour: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: SalesFiguresView,
}

/// A show's sales, as projected: in total, by section and by hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sales {
    pub show_id: Uuid,
    pub currency: String,
    /// Show totals (`tickets_sold`, `revenue_minor`, `gross_revenue_minor`,
    /// `refunds_count`, `refunds_minor`).
    #[serde(flatten)]
    pub total: SalesFiguresView,
    pub sections: Vec<SectionSalesView>,
    /// Hours with sales or refunds, oldest first.
    pub by_hour: Vec<HourlySalesView>,
}

impl From<ShowSales> for Sales {
    fn from(s: ShowSales) -> Self {
        Self {
            show_id: s.show_id.0,
            currency: s.total.net_revenue.currency.to_string(),
            total: (&s.total).into(),
            sections: s
                .by_section
                .iter()
                .map(|(name, figures)| SectionSalesView {
                    name: name.to_string(),
                    figures: figures.into(),
                })
                .collect(),
            by_hour: s
                .by_hour
                .iter()
                .map(|(hour, figures)| HourlySalesView {
                    hour: *hour,
                    figures: figures.into(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReservation {
    pub show_id: Uuid,
    /// The name of one of the show's sections (422 `unknown-section` otherwise).
    #[schema(schema_with = section_name_schema)]
    pub section: String,
    /// Seats to hold: at most 100, and at most the show's `max_per_order` (422
    /// otherwise).
    #[schema(example = 2, minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "whole::required")]
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldReservation {
    pub reservation_id: Uuid,
    pub show_id: Uuid,
    pub section: String,
    pub quantity: u32,
    pub amount_minor: i64,
    pub currency: String,
    /// Pay before this instant, or the seats go back on sale.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Held,
    PaymentPending,
    Paid,
    Confirmed,
    Expired,
    Cancelled,
    PaymentDeclined,
    Refunded,
}

impl From<ReservationStatus> for ReservationState {
    fn from(status: ReservationStatus) -> Self {
        use ReservationStatus as S;
        match status {
            S::Held => Self::Held,
            S::PaymentPending => Self::PaymentPending,
            S::Paid => Self::Paid,
            S::Confirmed => Self::Confirmed,
            S::Expired => Self::Expired,
            S::Cancelled => Self::Cancelled,
            S::PaymentDeclined => Self::PaymentDeclined,
            S::Refunded => Self::Refunded,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    pub reservation_id: Uuid,
    pub show_id: Uuid,
    pub section: String,
    pub customer_id: String,
    pub quantity: u32,
    pub amount_minor: i64,
    pub currency: String,
    pub status: ReservationState,
    pub placed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The payment requested for it. Absent from the history
    /// (`GET /v1/customers/me/reservations`), which does not keep it: read the
    /// reservation for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
}

impl From<ReservationDetails> for ReservationView {
    fn from(r: ReservationDetails) -> Self {
        Self {
            reservation_id: r.reservation_id.0,
            show_id: r.show_id.0,
            section: r.section.to_string(),
            customer_id: r.customer_id.to_string(),
            quantity: r.quantity,
            amount_minor: r.amount.amount_minor,
            currency: r.amount.currency.to_string(),
            status: r.status.into(),
            placed_at: r.placed_at,
            expires_at: r.expires_at,
            payment_id: r.payment_id.map(|p| p.0),
        }
    }
}

impl From<ticketing_read_models::ReservationView> for ReservationView {
    fn from(r: ticketing_read_models::ReservationView) -> Self {
        Self {
            reservation_id: r.reservation_id.0,
            show_id: r.show_id.0,
            section: r.section.to_string(),
            customer_id: r.customer_id.to_string(),
            quantity: r.quantity,
            amount_minor: r.amount.amount_minor,
            currency: r.amount.currency.to_string(),
            status: r.state.into(),
            placed_at: r.placed_at,
            expires_at: r.expires_at,
            payment_id: None,
        }
    }
}

/// A page of the caller's reservations, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationList {
    pub reservations: Vec<ReservationView>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The query of a customer's pages: `GET /v1/customers/me/reservations` and
/// `GET /v1/customers/me/tickets`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; opaque.
    #[param(pattern = "^-?[0-9]{1,19}_[0-9a-f]{32}$", max_length = 53)]
    pub cursor: Option<String>,
}

/// The largest page of a customer's reservations or tickets.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

impl PageQuery {
    /// The page size asked for.
    ///
    /// # Errors
    /// A 422 problem for a limit outside 1 to [`MAX_PAGE_SIZE`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.unwrap_or(DEFAULT_PAGE_SIZE) {
            limit @ 1..=MAX_PAGE_SIZE => Ok(limit as usize),
            other => Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_PAGE_SIZE}, not {other}"
            ))),
        }
    }

    /// Where a page of reservations starts.
    ///
    /// # Errors
    /// A 400 problem for a cursor that no page handed out.
    pub fn reservation_cursor(&self) -> Result<Option<ReservationCursor>, ApiError> {
        Ok(self.page_key()?.map(|(placed_at, id)| ReservationCursor {
            placed_at,
            reservation_id: ReservationId(id),
        }))
    }

    /// Where a page of tickets starts.
    ///
    /// # Errors
    /// A 400 problem for a cursor that no page handed out.
    pub fn ticket_cursor(&self) -> Result<Option<TicketCursor>, ApiError> {
        Ok(self.page_key()?.map(|(held_since, id)| TicketCursor {
            held_since,
            ticket_id: TicketId(id),
        }))
    }

    fn page_key(&self) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// A page cursor on the wire: `<instant in Unix nanoseconds>_<id>` (a reservation's
/// `placed_at` and id, a ticket's `held_since` and id). It is documented as opaque so
/// that it may change; URL-safe as it is.
pub fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    // Instants outside 1677..2262 cannot be stored instants; 0 keeps the cursor valid.
    let nanos = at.timestamp_nanos_opt().unwrap_or_default();
    format!("{nanos}_{}", id.simple())
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let malformed = || {
        ApiError::bad_request(format!(
            "cursor {raw:?} is not one this API handed out; pass a `next_cursor` unchanged"
        ))
    };
    // Exactly the documented pattern of `cursor`: what encode_cursor writes, no more (a
    // UUID in another of its spellings would be a cursor no page handed out).
    let (nanos, id) = raw.split_once('_').ok_or_else(malformed)?;
    let digits = nanos.strip_prefix('-').unwrap_or(nanos);
    let lowercase_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if !(1..=19).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || id.len() != 32
        || !id.chars().all(lowercase_hex)
    {
        return Err(malformed());
    }
    // Nineteen digits can exceed an i64: such an instant is past any reservation, so
    // it is held at the end of time rather than refused.
    let nanos: i128 = nanos.parse().map_err(|_| malformed())?;
    let nanos = i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX });
    let id = Uuid::try_parse(id).map_err(|_| malformed())?;
    Ok((DateTime::from_timestamp_nanos(nanos), id))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    /// A tokenised card from the payment page, never a card number: 1 to 128 ASCII
    /// letters, digits and `_`.
    #[schema(
        example = "tok_visa",
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_]+$"
    )]
    pub card_token: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfirmedPurchase {
    pub reservation_id: Uuid,
    pub payment_id: Uuid,
    pub status: ReservationState,
    pub amount_minor: i64,
    pub currency: String,
}

/// A payment the customer must authenticate (3-D Secure) before it can be taken.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentActionRequired {
    pub reservation_id: Uuid,
    pub payment_id: Uuid,
    /// Always `payment_pending`: the outcome arrives from the provider.
    pub status: ReservationState,
    /// What to do next: `authenticate`, in the customer's browser, with the provider's
    /// client library (Stripe.js: `stripe.handleNextAction({clientSecret})`).
    pub next_action: String,
    /// The provider's client secret of the payment. Hand it to the customer's browser
    /// only; do not log or store it.
    pub client_secret: String,
    /// The seats stay held until then; a payment not finished by then is cancelled.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CancelledReservation {
    pub reservation_id: Uuid,
    pub status: ReservationState,
    /// The amount paid back, when the purchase had been paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded_minor: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refund {
    pub payment_id: Uuid,
    pub refunded_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShowStatus {
    pub show_id: Uuid,
    pub sales: SalesState,
}

/// Into how many escrow buckets to split a section.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSection {
    /// More than the section has now; at most 64 and no more than its seats (422
    /// otherwise).
    #[schema(example = 8, minimum = 2, maximum = 64)]
    #[serde(deserialize_with = "whole::required")]
    pub buckets: u32,
}

/// A section of a show, in a path.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SectionPath {
    /// The show.
    pub id: Uuid,
    /// The section's name (percent-encoded), as the show lists it; case does not
    /// matter.
    #[param(schema_with = section_name_schema)]
    pub section: String,
}

/// A section's escrow buckets after a split or a rebalance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionBucketsView {
    #[schema(example = "Floor")]
    pub section: String,
    #[schema(example = 8)]
    pub buckets: u32,
    /// Free seats moved between buckets by this request.
    #[schema(example = 1200)]
    pub moved: u32,
}

#[cfg(test)]
mod tests {
    /// [`ALPHANUMERIC_CLASS`] computed from `char::is_alphanumeric` over every code point.
    fn alphanumeric_class() -> String {
        let mut class = String::new();
        let mut push = |(first, last): (char, char)| {
            class.push(first);
            if last != first {
                if u32::from(last) > u32::from(first) + 1 {
                    class.push('-');
                }
                class.push(last);
            }
        };
        let mut run: Option<(char, char)> = None;
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if !c.is_alphanumeric() {
                continue;
            }
            run = match run {
                Some((first, last)) if u32::from(last) + 1 == u32::from(c) => Some((first, c)),
                Some(done) => {
                    push(done);
                    Some((c, c))
                }
                None => Some((c, c)),
            };
        }
        if let Some(done) = run {
            push(done);
        }
        class
    }

    #[test]
    fn the_alphanumeric_class_is_what_char_is_alphanumeric_accepts() {
        let computed = alphanumeric_class();
        if std::env::var_os("UPDATE_ALPHANUMERIC_CLASS").is_some() {
            let file = concat!(env!("CARGO_MANIFEST_DIR"), "/src/alphanumeric_class.txt");
            std::fs::write(file, format!("{computed}\n")).unwrap();
        }
        assert!(
            super::ALPHANUMERIC_CLASS.trim_end_matches('\n') == computed,
            "api/src/alphanumeric_class.txt is not what this Rust's char::is_alphanumeric \
             accepts: regenerate it with UPDATE_ALPHANUMERIC_CLASS=1 cargo test -p \
             ticketing-api --lib alphanumeric_class"
        );
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// It admits its holder once.
    Valid,
    /// It was let in (see `admitted_at`, `gate`).
    Admitted,
    /// It admits no one: its purchase was refunded or cancelled (see `revoked_because`).
    Revoked,
}

/// One ticket: one seat's right of entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    pub ticket_id: Uuid,
    pub reservation_id: Uuid,
    pub show_id: Uuid,
    pub section: String,
    /// The customer who may use it: the buyer, or whoever it was transferred to.
    pub holder: String,
    pub status: TicketStatus,
    /// What its QR code carries, to show at the door: a signed code (see
    /// `GET /v1/keys`). Only its holder sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Counts its codes: 0 when issued, one more per transfer.
    pub generation: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// `refunded` or `cancelled`, for a revoked ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_because: Option<String>,
}

impl From<ticketing_app::tickets::TicketView> for TicketView {
    fn from(t: ticketing_app::tickets::TicketView) -> Self {
        use ticketing_app::tickets::TicketState as S;
        let (status, admitted_at, gate, revoked_because) = match t.state {
            S::Valid => (TicketStatus::Valid, None, None, None),
            S::Admitted { scanned_at, gate } => {
                (TicketStatus::Admitted, Some(scanned_at), gate, None)
            }
            S::Revoked { reason } => (TicketStatus::Revoked, None, None, Some(reason.to_string())),
        };
        Self {
            ticket_id: t.ticket_id.0,
            reservation_id: t.reservation_id.0,
            show_id: t.show_id.0,
            section: t.section.to_string(),
            holder: t.holder.to_string(),
            status,
            code: t.code,
            generation: t.generation,
            admitted_at,
            gate,
            revoked_because,
        }
    }
}

impl From<ticketing_read_models::HeldTicket> for TicketView {
    /// As the ticket read from its stream is shown, from its projected row.
    fn from(held: ticketing_read_models::HeldTicket) -> Self {
        use ticketing_app::tickets::TicketState as S;
        let t = held.ticket;
        let state = match (held.revoked, t.admitted_at) {
            (Some(reason), _) => S::Revoked { reason },
            (None, Some(scanned_at)) => S::Admitted {
                scanned_at,
                gate: t.gate,
            },
            (None, None) => S::Valid,
        };
        ticketing_app::tickets::TicketView {
            ticket_id: t.ticket_id,
            reservation_id: t.reservation_id,
            show_id: t.show_id,
            section: t.section,
            holder: t.holder,
            generation: t.generation,
            // A list is not where a code is shown: `GET /v1/tickets/{id}` is.
            code: None,
            state,
        }
        .into()
    }
}

/// A page of the tickets the caller holds, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldTicketList {
    /// Without their codes: `GET /v1/tickets/{id}` shows a ticket's code.
    pub tickets: Vec<TicketView>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The query of `GET /v1/shows/{id}/revoked-tickets`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevokedTicketsQuery {
    /// Only tickets revoked after this instant (RFC 3339); every one without it.
    pub since: Option<DateTime<Utc>>,
}

/// A ticket scanners must refuse.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevokedTicketView {
    pub ticket_id: Uuid,
    /// `refunded` or `cancelled` (every code of the ticket is refused), or
    /// `transferred` (only a code of `valid_generation` admits).
    pub reason: String,
    pub revoked_at: DateTime<Utc>,
    /// For a transferred ticket: the generation of its one valid code (the third
    /// claim of a code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_generation: Option<u32>,
}

impl From<ticketing_read_models::RevokedTicket> for RevokedTicketView {
    fn from(r: ticketing_read_models::RevokedTicket) -> Self {
        Self {
            ticket_id: r.ticket_id.0,
            reason: r.reason.to_string(),
            revoked_at: r.revoked_at,
            valid_generation: r.valid_generation,
        }
    }
}

/// What an offline scanner must refuse at a show's door, oldest revocation first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevokedTicketList {
    pub show_id: Uuid,
    /// When this answer was read. The list is projected, so a revocation can show
    /// up shortly after its `revoked_at`: poll with `since` a few minutes before the
    /// last `as_of` (entries already known are harmless to receive again).
    pub as_of: DateTime<Utc>,
    pub revoked: Vec<RevokedTicketView>,
}

/// Tickets at the door: issued = admitted + revoked + remaining.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct AdmissionFigures {
    /// Every ticket issued.
    pub issued: u64,
    /// Let in (an admission stays counted if its purchase is refunded afterwards).
    pub admitted: u64,
    /// Revoked by a refund or a cancellation before being used.
    pub revoked: u64,
    /// Valid and not let in yet: who is still to come.
    pub remaining: u64,
}

impl From<&ticketing_read_models::SectionAdmissions> for AdmissionFigures {
    fn from(s: &ticketing_read_models::SectionAdmissions) -> Self {
        Self {
            issued: s.issued,
            admitted: s.admitted,
            revoked: s.revoked,
            remaining: s.remaining,
        }
    }
}

impl AdmissionFigures {
    fn add(&mut self, other: Self) {
        self.issued += other.issued;
        self.admitted += other.admitted;
        self.revoked += other.revoked;
        self.remaining += other.remaining;
    }
}

/// One section's tickets at the door.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionAdmissionsView {
    pub name: String,
    #[serde(flatten)]
    pub figures: AdmissionFigures,
}

/// A show's tickets at the door, in total and by section (every section of the
/// show, in its order).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Admissions {
    pub show_id: Uuid,
    pub as_of: DateTime<Utc>,
    pub total: AdmissionFigures,
    pub sections: Vec<SectionAdmissionsView>,
}

impl Admissions {
    /// Every section of `show`, with the figures projected for it (zero for one
    /// without tickets yet).
    pub fn of(
        show: &ticketing_domain::show::ShowDetails,
        projected: &[ticketing_read_models::SectionAdmissions],
        as_of: DateTime<Utc>,
    ) -> Self {
        let sections: Vec<SectionAdmissionsView> = show
            .sections
            .iter()
            .map(|section| SectionAdmissionsView {
                name: section.name.to_string(),
                figures: projected
                    .iter()
                    .find(|p| p.section == section.name)
                    .map(AdmissionFigures::from)
                    .unwrap_or_default(),
            })
            .collect();
        let mut total = AdmissionFigures::default();
        for section in &sections {
            total.add(section.figures);
        }
        Self {
            show_id: show.show_id.0,
            as_of,
            total,
            sections,
        }
    }
}

/// What became of a Stripe event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookReceipt {
    pub event_id: String,
    /// `applied` (a pending payment took its outcome), `already_settled` (nothing
    /// changed), or `ignored` (not about a payment of ours).
    pub outcome: String,
}

/// A reservation's tickets, one per seat.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketList {
    pub reservation_id: Uuid,
    pub tickets: Vec<TicketView>,
}

/// A public key that verifies ticket codes: a JSON Web Key (RFC 8037).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketPublicKey {
    /// `OKP`
    pub kty: String,
    /// `Ed25519`
    pub crv: String,
    /// `EdDSA`
    pub alg: String,
    /// `sig`
    #[serde(rename = "use")]
    pub usage: String,
    /// The key id a code names (its second dot-separated part).
    pub kid: String,
    /// The public key, base64url without padding.
    pub x: String,
}

/// The keys that verify ticket codes, as a JWK set. A code is
/// `T1.<kid>.<claims>.<signature>`: the Ed25519 signature (base64url) of the text
/// `T1.<kid>.<claims>`; the claims (base64url, 36 bytes) are the ticket id (16 bytes),
/// the show id (16) and the code's generation (4, big-endian). A code whose `kid` is
/// not here is refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketKeySet {
    pub keys: Vec<TicketPublicKey>,
}

/// A scan at the door.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCheckIn {
    /// The code read from the ticket's QR code: `T1.<kid>.<claims>.<signature>` (see
    /// `GET /v1/keys`). One in this form that no key of this deployment signed is
    /// answered `404 invalid-ticket-code`.
    #[schema(pattern = r"^T1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{48}\.[A-Za-z0-9_-]{86}$")]
    pub code: String,
    /// The show being let in: a ticket for another show is refused (422 `wrong-show`).
    #[serde(default)]
    pub show_id: Option<Uuid>,
    /// Where it was scanned, kept with the admission.
    #[schema(min_length = 1, max_length = 64)]
    #[serde(default)]
    pub gate: Option<String>,
    /// When it was scanned (a scanner that was offline uploads its scans later); now
    /// when absent. At most 5 minutes ahead of the server's clock.
    #[serde(default)]
    pub scanned_at: Option<DateTime<Utc>>,
}

/// A ticket let in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckInAdmitted {
    pub ticket_id: Uuid,
    pub show_id: Uuid,
    pub section: String,
    /// When the admitting scan was made.
    pub scanned_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// Set when this scan, uploaded late, was earlier than the admission recorded
    /// before: that one was the duplicate, and this one is the admission now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_scan_at: Option<DateTime<Utc>>,
}

impl From<ticketing_app::tickets::Admitted> for CheckInAdmitted {
    fn from(a: ticketing_app::tickets::Admitted) -> Self {
        Self {
            ticket_id: a.ticket_id.0,
            show_id: a.show_id.0,
            section: a.section.to_string(),
            scanned_at: a.scanned_at,
            gate: a.gate,
            superseded_scan_at: a.superseded.map(|s| s.scanned_at),
        }
    }
}

/// A scan made offline: as [`NewCheckIn`], with the instant it was made.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOfflineScan {
    /// As in `POST /v1/checkins`.
    #[schema(pattern = r"^T1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{48}\.[A-Za-z0-9_-]{86}$")]
    pub code: String,
    #[serde(default)]
    pub show_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 64)]
    #[serde(default)]
    pub gate: Option<String>,
    /// When it was scanned: the earliest scan of a ticket admits it. At most 5 minutes
    /// ahead of the server's clock.
    pub scanned_at: DateTime<Utc>,
}

impl From<NewOfflineScan> for NewCheckIn {
    fn from(scan: NewOfflineScan) -> Self {
        Self {
            code: scan.code,
            show_id: scan.show_id,
            gate: scan.gate,
            scanned_at: Some(scan.scanned_at),
        }
    }
}

/// Scans collected offline, uploaded together.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCheckInBatch {
    #[schema(min_items = 1, max_items = 200)]
    pub scans: Vec<NewOfflineScan>,
}

/// The answer to one scan of a batch: `admitted`, or the problem a single scan would
/// have been answered with (`already-admitted`, `ticket-revoked`,
/// `invalid-ticket-code`, `wrong-show`, ...).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckInOutcome {
    /// The scan's position in the upload.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted: Option<CheckInAdmitted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<crate::Problem>,
}

/// One answer per scan, in the order uploaded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckInBatchResult {
    pub results: Vec<CheckInOutcome>,
}

/// Who gets a ticket.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// The customer id of the new holder (the `sub` of their token).
    #[schema(pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{1,128}$")]
    pub to_customer_id: String,
}

/// A ticket given away: its old code no longer admits; the new holder sees the new
/// one at `GET /v1/tickets/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketTransferred {
    pub ticket_id: Uuid,
    pub to_customer_id: String,
    pub generation: u32,
    pub transferred_at: DateTime<Utc>,
}
