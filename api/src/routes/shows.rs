//! Organizer commands: create a show, open, close or cancel its sales.

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ticketing_domain::{ShowCommand, ShowId};
use uuid::Uuid;

use crate::auth::{AsOrganizer, Principal, Role};
use crate::dto::{CancelShow, NewShow, SalesState, ShowStatus, ShowView};
use crate::extract::{command_context, ApiJson, ApiPath, IdempotencyKey, IdempotencyKeyHeader};
use crate::{ApiError, ApiState, Problem};

/// Loads a show and checks that the caller may manage it.
pub(crate) async fn owned_show(
    state: &ApiState,
    principal: &Principal,
    show_id: ShowId,
) -> Result<ticketing_domain::show::ShowDetails, ApiError> {
    principal.require(&[Role::Organizer])?;
    let show = state.ticketing.show(show_id).await?;
    if !principal.is_admin() && show.organizer_id.as_str() != principal.subject {
        return Err(ApiError::forbidden(
            "only the show's organizer (or an admin) may do this",
        ));
    }
    Ok(show)
}

/// Create a show with its sections.
#[utoipa::path(
    post, path = "/v1/shows", tag = "shows",
    request_body = NewShow,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Created", body = ShowView),
        (status = 400, description = "Malformed JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this `Idempotency-Key` is still in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid show (a field out of its documented range, duplicate section names, a start in the past), or an `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn create_show(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<NewShow>,
) -> Result<(StatusCode, Json<ShowView>), ApiError> {
    let plan = body.into_plan()?;
    let ctx = command_context(&principal, key);
    let show_id = state
        .ticketing
        .create_show(&ctx, principal.organizer_id()?, plan)
        .await?;
    let show = state.ticketing.show(show_id).await?;
    Ok((StatusCode::CREATED, Json(show.into())))
}

async fn change_sales(
    state: ApiState,
    principal: Principal,
    key: IdempotencyKey,
    show_id: Uuid,
    command: ShowCommand,
) -> Result<Json<ShowStatus>, ApiError> {
    let show_id = ShowId(show_id);
    owned_show(&state, &principal, show_id).await?;
    let ctx = command_context(&principal, key);
    state.ticketing.change_sales(&ctx, show_id, command).await?;
    let show = state.ticketing.show(show_id).await?;
    Ok(Json(ShowStatus {
        show_id: show_id.0,
        sales: show.status.into(),
    }))
}

/// Open ticket sales.
#[utoipa::path(
    post, path = "/v1/shows/{id}/open-sales", tag = "shows",
    params(("id" = Uuid, Path), IdempotencyKeyHeader),
    responses(
        (status = 200, body = ShowStatus),
        (status = 400, description = "Malformed id or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not the show's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sales are already open, or the show is cancelled; or a request with this `Idempotency-Key` is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn open_sales(
    State(state): State<ApiState>,
    principal: Principal,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ShowStatus>, ApiError> {
    change_sales(state, principal, key, id, ShowCommand::OpenSales).await
}

/// Close ticket sales (they can be opened again).
#[utoipa::path(
    post, path = "/v1/shows/{id}/close-sales", tag = "shows",
    params(("id" = Uuid, Path), IdempotencyKeyHeader),
    responses(
        (status = 200, body = ShowStatus),
        (status = 400, description = "Malformed id or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not the show's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sales are not open, or the show is cancelled; or a request with this `Idempotency-Key` is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn close_sales(
    State(state): State<ApiState>,
    principal: Principal,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ShowStatus>, ApiError> {
    change_sales(state, principal, key, id, ShowCommand::CloseSales).await
}

/// Cancel the show: held seats are released and confirmed purchases refunded.
#[utoipa::path(
    post, path = "/v1/shows/{id}/cancel", tag = "shows",
    params(("id" = Uuid, Path), IdempotencyKeyHeader),
    request_body(content = Option<CancelShow>, description = "Optional: an empty body or `null` cancels with a default reason"),
    responses(
        (status = 200, body = ShowStatus),
        (status = 400, description = "Malformed id, JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not the show's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this `Idempotency-Key` is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A body of the wrong shape, or an `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the payment provider is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_show(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<ShowStatus>, ApiError> {
    // The body is optional: none, or `null`, is the same as `{}`.
    let body: Option<CancelShow> = crate::extract::optional_json(&body?)?;
    let reason = body
        .and_then(|b| b.reason)
        .unwrap_or_else(|| "cancelled by the organizer".into());
    let show_id = ShowId(id);
    owned_show(&state, &principal, show_id).await?;
    let ctx = command_context(&principal, key);
    state.ticketing.cancel_show(&ctx, show_id, reason).await?;
    Ok(Json(ShowStatus {
        show_id: id,
        sales: SalesState::Cancelled,
    }))
}
