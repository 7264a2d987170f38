//! Every error the API answers with, as RFC 9457 `application/problem+json`.
//!
//! Each problem has a stable `type` (`urn:ticketing:problem:<slug>`) that clients can
//! match on; `title` is fixed per type and `detail` says what happened this time.
//! Anything unexpected is an opaque 500 whose cause is logged, never shown.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use ticketing_app::payments::GatewayError;
use ticketing_app::AppError;
use ticketing_domain::DomainError;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem, for clients to match on.
    #[serde(rename = "type")]
    #[schema(example = "urn:ticketing:problem:sold-out")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Seats still available, for `sold-out`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// When the ticket was let in, for `already-admitted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// At which gate, for `already-admitted` (when the scan named one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// Why, for `ticket-revoked`: `refunded`, `cancelled` or `transferred`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The members of [`Problem`] that only some problem types have.
#[derive(Debug, Clone, Default)]
struct Extras {
    available: Option<u32>,
    admitted_at: Option<chrono::DateTime<chrono::Utc>>,
    gate: Option<String>,
    reason: Option<String>,
}

/// An error answer: a status, a problem type and what happened.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    /// The members some problem types add, boxed: most answers carry none.
    extras: Option<Box<Extras>>,
    retry_after_seconds: Option<u32>,
    www_authenticate: bool,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            extras: None,
            retry_after_seconds: None,
            www_authenticate: false,
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        );
        error.www_authenticate = true;
        error
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Malformed request",
            detail,
        )
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            detail,
        )
    }

    pub fn payment_declined(reason: &str) -> Self {
        Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment-declined",
            "Payment declined",
            format!("the card was declined ({reason}); the seats were released"),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "something went wrong on our side; it has been logged",
        )
    }

    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn problem(&self) -> Problem {
        let extras = self.extras.as_deref().cloned().unwrap_or_default();
        Problem {
            kind: format!("urn:ticketing:problem:{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            available: extras.available,
            admitted_at: extras.admitted_at,
            gate: extras.gate,
            reason: extras.reason,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        use DomainError as D;
        let detail = error.to_string();
        let (status, slug, title) = match &error {
            D::QuantityZero | D::QuantityAboveLimit { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-quantity",
                "Invalid quantity",
            ),
            D::InvalidCurrency(_)
            | D::InvalidPrice(_)
            | D::InvalidCapacity(_)
            | D::InvalidBucketCount { .. }
            | D::InvalidSectionName(_)
            | D::InvalidPrincipal { .. }
            | D::InvalidShowText
            | D::InvalidSectionCount { .. }
            | D::DuplicateSection(_)
            | D::MixedCurrencies
            | D::InvalidPerOrderLimit(_)
            | D::ShowStartsInPast
            | D::InvalidHoldExpiry
            | D::CurrencyMismatch
            | D::AmountOverflow => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
            ),
            D::UnknownSection => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-section",
                "Unknown section",
            ),
            D::ShowNotFound
            | D::ReservationNotFound
            | D::PaymentNotFound
            | D::TicketNotFound
            // A ticket that is someone else's is not shown to exist.
            | D::NotTicketHolder => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            D::TicketAlreadyAdmitted { .. } => {
                (StatusCode::CONFLICT, "already-admitted", "Already admitted")
            }
            D::TicketRevoked(_) => (StatusCode::CONFLICT, "ticket-revoked", "Ticket revoked"),
            D::TicketForAnotherShow => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-show",
                "Ticket for another show",
            ),
            D::NotTheShowsOrganizer => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            D::TransferToHolder | D::InvalidScanTime => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
            ),
            D::SoldOut { .. } => (StatusCode::CONFLICT, "sold-out", "Sold out"),
            D::SalesNotOpen => (StatusCode::CONFLICT, "sales-not-open", "Sales are not open"),
            D::BucketsNotRaised { .. } => (
                StatusCode::CONFLICT,
                "buckets-not-raised",
                "The section has that many buckets already",
            ),
            D::ShowCancelled => (StatusCode::CONFLICT, "show-cancelled", "Show cancelled"),
            D::AlreadyPaid => (StatusCode::CONFLICT, "already-paid", "Already paid"),
            D::AlreadyRefunded => (StatusCode::CONFLICT, "already-refunded", "Already refunded"),
            D::PaymentInProgress => (
                StatusCode::CONFLICT,
                "payment-in-progress",
                "Payment in progress",
            ),
            D::HoldExpired => (StatusCode::GONE, "hold-expired", "Hold expired"),
            D::HoldNotFound
            | D::ShowAlreadyExists
            | D::SectionAlreadyInitialized
            | D::ReservationAlreadyExists
            | D::SalesAlreadyOpen
            | D::PaymentMismatch
            | D::NotPaid
            | D::HoldNotExpired
            | D::ReservationClosed(_)
            | D::AlreadyCancelled
            | D::RefundRequired
            | D::PaymentAlreadyRecorded
            | D::NotEnoughFreeSeats { .. }
            | D::NotRefundable
            | D::TicketAlreadyIssued
            | D::TicketsAlreadyIssued
            | D::TicketCountMismatch { .. }
            | D::StaleTicketGeneration => (
                StatusCode::CONFLICT,
                "state-conflict",
                "Not possible in the current state",
            ),
        };
        let mut api = ApiError::new(status, slug, title, detail);
        api.extras = match error {
            D::SoldOut { available, .. } => Some(Extras {
                available: Some(available),
                ..Extras::default()
            }),
            D::TicketAlreadyAdmitted { scanned_at, gate } => Some(Extras {
                admitted_at: Some(scanned_at),
                gate,
                ..Extras::default()
            }),
            D::TicketRevoked(reason) => Some(Extras {
                reason: Some(reason.to_string()),
                ..Extras::default()
            }),
            _ => None,
        }
        .map(Box::new);
        api
    }
}

impl From<ticketing_read_models::ReadModelError> for ApiError {
    fn from(error: ticketing_read_models::ReadModelError) -> Self {
        if error.is_transient() {
            tracing::warn!(error.cause_chain = ?error, "read models unavailable");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the read models are unavailable; try again",
            )
            .retry_after(2);
        }
        tracing::error!(error.cause_chain = ?error, "reading the read models failed");
        ApiError::internal()
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Domain(e) => e.into(),
            AppError::InvalidCardToken(e) => ApiError::invalid(e.to_string()),
            // A code in the documented form that does not verify names no ticket this
            // deployment issued: not found, as a scanner should read it.
            AppError::InvalidTicketCode(e) => ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid-ticket-code",
                "Invalid ticket code",
                format!("no ticket has this code: {e}"),
            ),
            AppError::TicketsNotConfigured => {
                tracing::error!("a ticket was asked for, and no TICKET_SIGNING_KEYS is configured");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "tickets-not-configured",
                    "Tickets not configured",
                    "this deployment has no ticket signing key; tickets cannot be issued or checked",
                )
            }
            AppError::Contention { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "contention",
                "Too much contention",
                "too many purchases at once in this section; try again",
            )
            .retry_after(1),
            AppError::RequestInProgress => ApiError::new(
                StatusCode::CONFLICT,
                "request-in-progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly for its answer",
            )
            .retry_after(1),
            AppError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                "this Idempotency-Key was already used with a different request",
            ),
            AppError::PaymentProvider(GatewayError::Rejected(reason)) => {
                tracing::error!(reason, "payment provider rejected a request");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "payment-provider",
                    "Payment provider error",
                    "the payment provider refused the request; it has been logged",
                )
            }
            AppError::PaymentProvider(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment-provider-unavailable",
                "Payment provider unavailable",
                format!("{e}; the payment is pending: retry with the same Idempotency-Key"),
            )
            .retry_after(5),
            AppError::Store(e) if e.is_transient() => {
                tracing::warn!(error.cause_chain = ?e, "event store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "the event store is unavailable; try again",
                )
                .retry_after(2)
            }
            other => {
                tracing::error!(error.cause_chain = ?other, "request failed");
                ApiError::internal()
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::invalid(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) => e.into(),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
            )
        } else {
            ApiError::bad_request(rejection.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(format!("invalid id in the path: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}
