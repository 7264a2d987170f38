//! Reads: shows and availability (public), sales (the organizer's), reservations and
//! history (the customer's).

use axum::extract::State;
use axum::Json;
use ticketing_domain::ShowId;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::dto::{Availability, ReservationList, ReservationView, Sales, ShowView};
use crate::extract::ApiPath;
use crate::routes::reservations::own_reservation;
use crate::routes::shows::owned_show;
use crate::{ApiError, ApiState, Problem};

/// A show, its sections and whether sales are open.
#[utoipa::path(
    get, path = "/v1/shows/{id}", tag = "queries",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ShowView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_show(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ShowView>, ApiError> {
    Ok(Json(state.ticketing.show(ShowId(id)).await?.into()))
}

/// Seats per section right now.
#[utoipa::path(
    get, path = "/v1/shows/{id}/availability", tag = "queries",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Availability), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn availability(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Availability>, ApiError> {
    let sections = state.ticketing.availability(ShowId(id)).await?;
    // Every section is priced in the show's one currency, and a show has a section.
    let currency = sections
        .first()
        .map(|s| s.unit_price.currency.to_string())
        .unwrap_or_default();
    Ok(Json(Availability {
        show_id: id,
        as_of: state.ticketing.now(),
        currency,
        sections: sections.into_iter().map(Into::into).collect(),
    }))
}

/// Tickets sold and revenue, for the show's organizer.
#[utoipa::path(
    get, path = "/v1/shows/{id}/sales", tag = "queries",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Sales),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn sales(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Sales>, ApiError> {
    owned_show(&state, &principal, ShowId(id)).await?;
    Ok(Json(state.ticketing.sales(ShowId(id)).await?.into()))
}

/// One of the caller's reservations.
#[utoipa::path(
    get, path = "/v1/reservations/{id}", tag = "queries",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = ReservationView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_reservation(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ReservationView>, ApiError> {
    Ok(Json(own_reservation(&state, &principal, id).await?.into()))
}

/// The caller's reservations, newest first.
#[utoipa::path(
    get, path = "/v1/customers/me/reservations", tag = "queries",
    responses(
        (status = 200, body = ReservationList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn my_reservations(
    State(state): State<ApiState>,
    principal: Principal,
) -> Result<Json<ReservationList>, ApiError> {
    principal.require(&[Role::Customer])?;
    let reservations = state
        .ticketing
        .customer_reservations(&principal.customer_id()?)
        .await?;
    Ok(Json(ReservationList {
        reservations: reservations.into_iter().map(Into::into).collect(),
    }))
}
