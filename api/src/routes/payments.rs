//! Refunds, for a show's organizer or an admin; Stripe's webhooks.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use ticketing_app::payments::stripe_webhook::{self, StripeEvent};
use ticketing_app::provider_reports::ReportOutcome;
use ticketing_app::CommandContext;
use ticketing_domain::{PaymentId, RefundReason};
use uuid::Uuid;

use crate::auth::AsOrganizer;
use crate::dto::{Refund, WebhookReceipt};
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

/// Stripe's events about our payments (configure the endpoint in Stripe with the
/// events `payment_intent.succeeded`, `payment_intent.payment_failed`,
/// `payment_intent.canceled`, `charge.refunded` and `charge.dispute.created`).
#[utoipa::path(
    post, path = "/v1/webhooks/stripe", tag = "payments",
    description = "Public, and checked by its `Stripe-Signature` (HMAC-SHA256 of the timestamp and the raw body under a secret of `STRIPE_WEBHOOK_SECRET`, within 5 minutes of now). A pending payment takes the reported outcome (`payment_intent.succeeded`, `payment_intent.payment_failed`, `payment_intent.canceled`); one already settled is left as it is, so an event sent twice, late or out of order changes nothing. A refund made in Stripe's dashboard (`charge.refunded`) is recorded on the payment, and refunds the purchase when it covers the whole amount; a dispute (`charge.dispute.created`) is recorded on the payment; each once. Events that are not about a payment of ours are acknowledged and ignored.",
    request_body(content = String, content_type = "application/json", description = "The event, exactly as Stripe sent it"),
    params(("Stripe-Signature" = String, Header, description = "`t=<timestamp>,v1=<signature>`")),
    responses(
        (status = 200, description = "Received", body = WebhookReceipt),
        (status = 400, description = "No valid signature, a timestamp outside the tolerance, or a body that is not a Stripe event", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No webhook secret is configured", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store (or, for a refund or a dispute, Stripe's API) is unavailable: Stripe sends the event again later", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn stripe_webhook(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceipt>, ApiError> {
    if state.stripe_webhook_secrets.is_empty() {
        return Err(ApiError::not_found(
            "no Stripe webhook secret is configured (STRIPE_WEBHOOK_SECRET)",
        ));
    }
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    stripe_webhook::verify(
        signature,
        &body,
        &state.stripe_webhook_secrets,
        state.ticketing.now().timestamp(),
        stripe_webhook::DEFAULT_TOLERANCE_SECONDS,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let event = StripeEvent::parse(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let ctx = CommandContext::new("stripe");
    let reported = if let Some(update) = event.payment_update() {
        Some(state.ticketing.apply_payment_report(&ctx, update).await?)
    } else if let Some(update) = event.charge_update() {
        Some(
            state
                .ticketing
                .apply_charge_report(&ctx, &update.payment_intent, update.report)
                .await?,
        )
    } else {
        None
    };
    let outcome = match reported {
        Some(ReportOutcome::Settled(_) | ReportOutcome::Recorded) => "applied",
        Some(ReportOutcome::AlreadySettled) => "already_settled",
        Some(ReportOutcome::NotOurs) | None => "ignored",
    };
    tracing::info!(event_id = %event.id, event_type = %event.kind, outcome, "Stripe event");
    Ok(Json(WebhookReceipt {
        event_id: event.id,
        outcome: outcome.to_owned(),
    }))
}
