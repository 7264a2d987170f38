//! Organizer commands: create a show, open, close or cancel its sales.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ticketing_domain::{ShowCommand, ShowId};
use uuid::Uuid;

use crate::auth::{AsOrganizer, Principal, Role};
use crate::dto::{CancelShow, NewShow, SalesState, ShowStatus, ShowView};
use crate::extract::{command_context, ApiJson, ApiPath, IdempotencyKey};
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
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses(
        (status = 201, description = "Created", body = ShowView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
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
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = ShowStatus),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
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
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = ShowStatus),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
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
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = Option<CancelShow>),
    responses(
        (status = 200, body = ShowStatus),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_show(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<ShowStatus>, ApiError> {
    let body: CancelShow = crate::extract::optional_json(&body)?;
    let reason = body
        .reason
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
