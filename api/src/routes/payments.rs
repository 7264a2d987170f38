//! Refunds, for a show's organizer or an admin.

use axum::extract::State;
use axum::Json;
use ticketing_domain::{PaymentId, RefundReason};
use uuid::Uuid;

use crate::auth::AsOrganizer;
use crate::dto::Refund;
use crate::extract::{command_context, ApiPath, IdempotencyKey};
use crate::routes::shows::owned_show;
use crate::{ApiError, ApiState, Problem};

/// Refund a captured payment in full; its seats go back on sale.
#[utoipa::path(
    post, path = "/v1/payments/{id}/refund", tag = "payments",
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = Refund),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already refunded, or not captured", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
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
