//! Reads: shows and availability (public), sales (the organizer's), reservations and
//! history (the customer's).
//!
//! Two sources: `GET /v1/shows/{id}` and `GET /v1/reservations/{id}` read the event
//! store, so they show every committed command at once. Availability, sales and the
//! history read the projected read models ([`ApiState::read_models`]), which follow
//! the store by a moment; their answers say so with `X-Read-Model: projected`.

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::Json;
use ticketing_domain::ShowId;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::dto::{
    encode_cursor, Availability, PageQuery, ReservationList, ReservationView, Sales,
    SalesFiguresView, SectionSeats, ShowView,
};
use crate::extract::ApiPath;
use crate::routes::reservations::own_reservation;
use crate::routes::shows::owned_show;
use crate::{ApiError, ApiState, Problem};

/// The header that marks an answer read from the read models.
pub const READ_MODEL_HEADER: &str = "x-read-model";

/// An answer from the read models, marked as such.
pub(crate) fn projected<T: serde::Serialize>(body: T) -> impl IntoResponse {
    ([(READ_MODEL_HEADER, "projected")], Json(body))
}

/// A show, its sections and whether sales are open.
#[utoipa::path(
    get, path = "/v1/shows/{id}", tag = "queries",
    description = "Read from the event store: always the latest committed state.",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = ShowView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn get_show(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ShowView>, ApiError> {
    Ok(Json(state.ticketing.show(ShowId(id)).await?.into()))
}

/// Seats per section right now, from the read models.
#[utoipa::path(
    get, path = "/v1/shows/{id}/availability", tag = "queries",
    description = "Projected (eventually consistent): a hold or a payment shows here once the projector has applied it, usually within a second. A show that exists but is not projected yet answers with every section fully available.",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Availability, headers(("X-Read-Model" = String, description = "`projected`"))),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the read models are unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn availability(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let show_id = ShowId(id);
    let now = state.ticketing.now();
    let projected_sections = state.read_models.section_availability(show_id, now).await?;
    // Every section is priced in the show's one currency, and a show has a section.
    let (currency, sections) = match projected_sections.first() {
        Some(first) => (
            first.unit_price.currency.to_string(),
            projected_sections.into_iter().map(Into::into).collect(),
        ),
        None => {
            // The read models do not know the show: either it does not exist (404 from
            // the store) or the projector has not applied its creation yet. Nothing
            // can be held or sold before the projector sees the sections initialised,
            // which comes first in their streams, so the definition's capacities are
            // the truth the projection would show; a client never gets a 404 for the
            // show it has just created.
            let show = state.ticketing.show(show_id).await?;
            let currency = show
                .sections
                .first()
                .map(|s| s.unit_price.currency.to_string())
                .unwrap_or_default();
            let sections = show
                .sections
                .into_iter()
                .map(|s| SectionSeats {
                    name: s.name.to_string(),
                    capacity: s.capacity,
                    held: 0,
                    sold: 0,
                    available: s.capacity,
                    unit_price_minor: s.unit_price.amount_minor,
                })
                .collect();
            (currency, sections)
        }
    };
    Ok(projected(Availability {
        show_id: id,
        as_of: now,
        currency,
        sections,
    }))
}

/// Tickets sold, refunds and revenue, in total, by section and by hour, for the
/// show's organizer.
#[utoipa::path(
    get, path = "/v1/shows/{id}/sales", tag = "queries",
    description = "Projected (eventually consistent): a payment or a refund counts here once the projector has applied it. A show with nothing projected yet has zero sales.",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Sales, headers(("X-Read-Model" = String, description = "`projected`"))),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not the show's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the read models are unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn sales(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    // Ownership (and existence) come from the store: an authorization decision does
    // not wait for the projector.
    let show = owned_show(&state, &principal, ShowId(id)).await?;
    let sales = match state.read_models.show_sales(ShowId(id)).await? {
        Some(sales) => sales.into(),
        None => Sales {
            show_id: id,
            currency: show
                .sections
                .first()
                .map(|s| s.unit_price.currency.to_string())
                .unwrap_or_default(),
            total: SalesFiguresView::ZERO,
            sections: show
                .sections
                .iter()
                .map(|s| crate::dto::SectionSalesView {
                    name: s.name.to_string(),
                    figures: SalesFiguresView::ZERO,
                })
                .collect(),
            by_hour: Vec::new(),
        },
    };
    Ok(projected(sales))
}

/// One of the caller's reservations.
#[utoipa::path(
    get, path = "/v1/reservations/{id}", tag = "queries",
    description = "Read from the event store: always the latest committed state.",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = ReservationView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such reservation of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
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

/// The caller's reservations, newest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/customers/me/reservations", tag = "queries",
    description = "Projected (eventually consistent): a new reservation or a change of state shows here once the projector has applied it. Items carry no `payment_id`; read the reservation for it.",
    params(PageQuery),
    responses(
        (status = 200, body = ReservationList, headers(("X-Read-Model" = String, description = "`projected`"))),
        (status = 400, description = "A malformed query: an unknown parameter, a `limit` that is not a number, a `cursor` no page handed out", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A `limit` outside 1 to 100", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read models are unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn my_reservations(
    State(state): State<ApiState>,
    principal: Principal,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(&[Role::Customer])?;
    let Query(query) = query?;
    let page = state
        .read_models
        .customer_reservations(
            &principal.customer_id()?,
            query.limit()?,
            query.reservation_cursor()?,
        )
        .await?;
    Ok(projected(ReservationList {
        reservations: page.reservations.into_iter().map(Into::into).collect(),
        next_cursor: page
            .next
            .map(|next| encode_cursor(next.placed_at, next.reservation_id.0)),
    }))
}
