//! Customer commands: hold seats, pay, cancel.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ticketing_app::payments::CardToken;
use ticketing_app::{HoldSeats, PaymentResult};
use ticketing_domain::reservation::ReservationDetails;
use ticketing_domain::{DomainError, Quantity, ReservationId, SectionName, ShowId};
use uuid::Uuid;

use crate::auth::{AsCustomer, Principal};
use crate::dto::{
    CancelledReservation, ConfirmedPurchase, HeldReservation, NewPayment, NewReservation,
    PaymentActionRequired, ReservationState,
};
use crate::extract::{command_context, ApiJson, ApiPath, IdempotencyKey, IdempotencyKeyHeader};
use crate::{ApiError, ApiState, Problem};

/// Loads a reservation that the caller may see: its customer's, or any for an admin.
/// Anyone else's is reported as not found, so ids cannot be probed.
pub(crate) async fn own_reservation(
    state: &ApiState,
    principal: &Principal,
    id: Uuid,
) -> Result<ReservationDetails, ApiError> {
    let reservation = state.ticketing.reservation(ReservationId(id)).await?;
    if principal.is_admin() || reservation.customer_id.as_str() == principal.subject {
        Ok(reservation)
    } else {
        Err(DomainError::ReservationNotFound.into())
    }
}

/// Hold seats in a section; pay before `expires_at`.
#[utoipa::path(
    post, path = "/v1/reservations", tag = "reservations",
    request_body = NewReservation,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Seats held", body = HeldReservation),
        (status = 400, description = "Malformed JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sold out (with `available`), sales not open, the show cancelled, contention (retry after `Retry-After` seconds), or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field out of its documented range, a section the show does not have, more seats than the show's `max_per_order`, or an `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn create_reservation(
    State(state): State<ApiState>,
    AsCustomer(principal): AsCustomer,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<NewReservation>,
) -> Result<(StatusCode, Json<HeldReservation>), ApiError> {
    let request = HoldSeats {
        show_id: ShowId(body.show_id),
        section: SectionName::parse(body.section)?,
        customer_id: principal.customer_id()?,
        quantity: Quantity::new(body.quantity)?,
    };
    let held = state
        .ticketing
        .hold_seats(&command_context(&principal, key), request)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(HeldReservation {
            reservation_id: held.reservation_id.0,
            show_id: held.show_id.0,
            section: held.section.to_string(),
            quantity: held.quantity,
            amount_minor: held.amount.amount_minor,
            currency: held.amount.currency.to_string(),
            expires_at: held.expires_at,
        }),
    ))
}

/// Pay for a reservation with a card token and confirm its seats.
#[utoipa::path(
    post, path = "/v1/reservations/{id}/payment", tag = "reservations",
    request_body = NewPayment,
    params(("id" = Uuid, Path), IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Paid and confirmed", body = ConfirmedPurchase),
        (status = 202, description = "The customer must authenticate the payment (3-D Secure) in their browser with `client_secret`; the seats stay held until `expires_at`, and the outcome arrives from the provider (poll `GET /v1/reservations/{id}`). Paying again with the same or another `Idempotency-Key` answers where the payment stands now", body = PaymentActionRequired),
        (status = 400, description = "Malformed id, JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 402, description = "Card declined; seats released", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already paid, cancelled or expired, a payment in progress, or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold expired and its seats are gone", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A card token out of its documented form, or an `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The payment provider refused the request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the payment provider is unavailable; retry (with the same `Idempotency-Key`) after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn pay(
    State(state): State<ApiState>,
    AsCustomer(principal): AsCustomer,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewPayment>,
) -> Result<Response, ApiError> {
    let card = CardToken::parse(body.card_token).map_err(|e| ApiError::invalid(e.to_string()))?;
    own_reservation(&state, &principal, id).await?;
    let result = state
        .ticketing
        .pay(&command_context(&principal, key), ReservationId(id), card)
        .await?;
    match result {
        PaymentResult::Confirmed {
            reservation_id,
            payment_id,
            amount,
        } => Ok(Json(ConfirmedPurchase {
            reservation_id: reservation_id.0,
            payment_id: payment_id.0,
            status: ReservationState::Confirmed,
            amount_minor: amount.amount_minor,
            currency: amount.currency.to_string(),
        })
        .into_response()),
        PaymentResult::ActionRequired {
            reservation_id,
            payment_id,
            client_secret,
            expires_at,
        } => Ok((
            StatusCode::ACCEPTED,
            Json(PaymentActionRequired {
                reservation_id: reservation_id.0,
                payment_id: payment_id.0,
                status: ReservationState::PaymentPending,
                next_action: "authenticate".into(),
                client_secret,
                expires_at,
            }),
        )
            .into_response()),
        PaymentResult::Declined { reason, .. } => Err(ApiError::payment_declined(&reason)),
        PaymentResult::Refunded { .. } => Err(ApiError::new(
            StatusCode::GONE,
            "hold-expired",
            "Hold expired",
            "the hold expired and its seats were taken while paying; the payment was refunded",
        )),
    }
}

/// Cancel a reservation: held seats are released; a confirmed purchase is refunded.
#[utoipa::path(
    post, path = "/v1/reservations/{id}/cancel", tag = "reservations",
    params(("id" = Uuid, Path), IdempotencyKeyHeader),
    responses(
        (status = 200, body = CancelledReservation),
        (status = 400, description = "Malformed id or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such reservation of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already cancelled or refunded, a payment in progress, or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The payment provider refused the refund", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the payment provider is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_reservation(
    State(state): State<ApiState>,
    principal: Principal,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CancelledReservation>, ApiError> {
    own_reservation(&state, &principal, id).await?;
    let cancelled = state
        .ticketing
        .cancel(&command_context(&principal, key), ReservationId(id))
        .await?;
    let status = state.ticketing.reservation(ReservationId(id)).await?.status;
    Ok(Json(CancelledReservation {
        reservation_id: id,
        status: status.into(),
        refunded_minor: cancelled.refunded.map(|m| m.amount_minor),
    }))
}
