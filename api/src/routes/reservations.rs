//! Customer commands: hold seats, pay, cancel.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ticketing_app::payments::CardToken;
use ticketing_app::{HoldSeats, PaymentResult};
use ticketing_domain::reservation::ReservationDetails;
use ticketing_domain::{DomainError, Quantity, ReservationId, SectionName, ShowId};
use uuid::Uuid;

use crate::auth::{AsCustomer, Principal};
use crate::dto::{
    CancelledReservation, ConfirmedPurchase, HeldReservation, NewPayment, NewReservation,
    ReservationState,
};
use crate::extract::{command_context, ApiJson, ApiPath, IdempotencyKey};
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
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses(
        (status = 201, description = "Seats held", body = HeldReservation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sold out, sales not open, or contention", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
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
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, description = "Paid and confirmed", body = ConfirmedPurchase),
        (status = 402, description = "Card declined; seats released", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already paid, or a payment is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold expired and its seats are gone", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Payment provider unavailable; retry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn pay(
    State(state): State<ApiState>,
    AsCustomer(principal): AsCustomer,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewPayment>,
) -> Result<Json<ConfirmedPurchase>, ApiError> {
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
        })),
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
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = CancelledReservation),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already cancelled or refunded, or a payment is in progress", body = Problem, content_type = "application/problem+json"),
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
