//! Refunds, for a show's organizer or an admin.

use axum::extract::State;
use axum::Json;
use ticketing_domain::{PaymentId, RefundReason};
use uuid::Uuid;

use crate::auth::AsOrganizer;
use crate::dto::Refund;
use crate::extract::{command_context, ApiPath, IdempotencyKey, IdempotencyKeyHeader};
use crate::routes::shows::owned_show;
use crate::{ApiError, ApiState, Problem};

/// Refund a captured payment in full; its seats go back on sale.
#[utoipa::path(
    post, path = "/v1/payments/{id}/refund", tag = "payments",
    params(("id" = Uuid, Path), IdempotencyKeyHeader),
    responses(
        (status = 200, body = Refund),
        (status = 400, description = "Malformed id or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not the show's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already refunded, not captured, or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The payment provider refused the refund", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the payment provider is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn refund(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Refund>, ApiError> {
    let payment = state.ticketing.payment(PaymentId(id)).await?;
    let reservation = state.ticketing.reservation(payment.reservation_id).await?;
    owned_show(&state, &principal, reservation.show_id).await?;
    let amount = state
        .ticketing
        .refund_payment(
            &command_context(&principal, key),
            PaymentId(id),
            RefundReason::RefundedByOrganizer,
        )
        .await?;
    Ok(Json(Refund {
        payment_id: id,
        refunded_minor: amount.amount_minor,
        currency: amount.currency.to_string(),
    }))
}
