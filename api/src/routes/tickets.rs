//! Tickets: a purchase's tickets and their QR codes (its customer), transfers (the
//! holder), the public keys (anyone) and check-in at the door (scanners).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ticketing_app::tickets::{CheckIn, ScanScope};
use ticketing_app::AppError;
use ticketing_domain::{CustomerId, DomainError, OrganizerId, ReservationId, ShowId, TicketId};
use uuid::Uuid;

use crate::auth::{AsCustomer, Principal, Role};
use crate::dto::{
    encode_cursor, Admissions, CheckInAdmitted, CheckInBatchResult, CheckInOutcome, HeldTicketList,
    NewCheckIn, NewCheckInBatch, NewTransfer, PageQuery, RevokedTicketList, RevokedTicketView,
    RevokedTicketsQuery, TicketKeySet, TicketList, TicketPublicKey, TicketTransferred, TicketView,
};
use crate::extract::{command_context, ApiJson, ApiPath, IdempotencyKey, IdempotencyKeyHeader};
use crate::routes::queries::projected;
use crate::routes::reservations::own_reservation;
use crate::{ApiError, ApiState, Problem};

/// The most scans one upload may carry.
pub const MAX_BATCH_SCANS: usize = 200;
/// The longest gate name accepted.
const MAX_GATE_CHARS: usize = 64;

/// A ticket that the caller holds (or any, for an admin). Anyone else's is reported as
/// not found, so ids cannot be probed.
async fn own_ticket(
    state: &ApiState,
    principal: &Principal,
    id: Uuid,
) -> Result<ticketing_app::tickets::TicketView, ApiError> {
    let ticket = state.ticketing.ticket(TicketId(id)).await?;
    if principal.is_admin() || ticket.holder.as_str() == principal.subject {
        Ok(ticket)
    } else {
        Err(DomainError::TicketNotFound.into())
    }
}

/// A reservation's tickets, one per seat, with their codes.
#[utoipa::path(
    get, path = "/v1/reservations/{id}/tickets", tag = "tickets",
    description = "Read from the event store. A confirmed purchase's tickets are issued with its confirmation; one confirmed before tickets existed gets them at its first listing. A ticket transferred to someone else is listed with its new holder and without its code.",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = TicketList),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such reservation of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many writers on the reservation at once; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable (retry after `Retry-After` seconds), or no ticket signing key is configured", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reservation_tickets(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TicketList>, ApiError> {
    own_reservation(&state, &principal, id).await?;
    let ctx = command_context(&principal, IdempotencyKey(None));
    let (details, tickets) = state
        .ticketing
        .reservation_tickets(&ctx, ReservationId(id))
        .await?;
    Ok(Json(TicketList {
        reservation_id: details.reservation_id.0,
        tickets: tickets.into_iter().map(TicketView::from).collect(),
    }))
}

/// One of the caller's tickets, with its code.
#[utoipa::path(
    get, path = "/v1/tickets/{id}", tag = "tickets",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = TicketView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such ticket of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn get_ticket(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TicketView>, ApiError> {
    Ok(Json(own_ticket(&state, &principal, id).await?.into()))
}

/// The ticket's code as a QR code, in SVG.
#[utoipa::path(
    get, path = "/v1/tickets/{id}/qr.svg", tag = "tickets",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The QR code", content_type = "image/svg+xml", body = String),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such ticket of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn ticket_qr_svg(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let ticket = own_ticket(&state, &principal, id).await?;
    let svg = crate::qr::svg(ticket.code.as_deref().unwrap_or_default())?;
    Ok(image("image/svg+xml", svg.into_bytes()))
}

/// The ticket's code as a QR code, in PNG.
#[utoipa::path(
    get, path = "/v1/tickets/{id}/qr.png", tag = "tickets",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The QR code", content_type = "image/png", body = Vec<u8>),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such ticket of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn ticket_qr_png(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let ticket = own_ticket(&state, &principal, id).await?;
    let png = crate::qr::png(ticket.code.as_deref().unwrap_or_default())?;
    Ok(image("image/png", png))
}

fn image(content_type: &'static str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // A code is its holder's: not for shared caches.
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        body,
    )
        .into_response()
}

/// Give a ticket to another customer: they get a new code, and the old one stops
/// admitting.
#[utoipa::path(
    post, path = "/v1/tickets/{id}/transfer", tag = "tickets",
    request_body = NewTransfer,
    params(("id" = Uuid, Path), IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Transferred", body = TicketTransferred),
        (status = 400, description = "Malformed id, JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket was used already (`already-admitted`) or revoked (`ticket-revoked`), or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A customer id out of its documented form, the ticket's own holder, or an `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable (retry after `Retry-After` seconds), or no ticket signing key is configured", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn transfer_ticket(
    State(state): State<ApiState>,
    AsCustomer(principal): AsCustomer,
    key: IdempotencyKey,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewTransfer>,
) -> Result<Json<TicketTransferred>, ApiError> {
    let to = CustomerId::parse(body.to_customer_id)?;
    let by = if principal.is_admin() {
        own_ticket(&state, &principal, id).await?.holder
    } else {
        principal.customer_id()?
    };
    let transferred = state
        .ticketing
        .transfer_ticket(&command_context(&principal, key), by, TicketId(id), to)
        .await?;
    Ok(Json(TicketTransferred {
        ticket_id: transferred.ticket_id.0,
        to_customer_id: transferred.to.to_string(),
        generation: transferred.generation,
        transferred_at: transferred.transferred_at,
    }))
}

/// The public keys that verify ticket codes, for scanners that check them offline.
#[utoipa::path(
    get, path = "/v1/keys", tag = "tickets",
    responses(
        (status = 200, body = TicketKeySet),
    ),
)]
pub async fn ticket_keys(State(state): State<ApiState>) -> Json<TicketKeySet> {
    let keys = state
        .ticketing
        .ticket_keys()
        .map(|keys| keys.public_keys())
        .unwrap_or_default()
        .into_iter()
        .map(|jwk| TicketPublicKey {
            kty: jwk.kty.into(),
            crv: jwk.crv.into(),
            alg: jwk.alg.into(),
            usage: jwk.usage.into(),
            kid: jwk.kid,
            x: jwk.x,
        })
        .collect();
    Json(TicketKeySet { keys })
}

/// Whose shows the caller checks tickets in for: a scanner's organizer (its token's
/// `org` claim), an organizer's own, or any for an admin.
fn scan_scope(principal: &Principal) -> Result<ScanScope, ApiError> {
    if principal.is_admin() {
        return Ok(ScanScope::AnyShow);
    }
    if principal.has(Role::Scanner) {
        let organization = principal.organization.clone().ok_or_else(|| {
            ApiError::forbidden("a scanner's token needs an `org` claim naming its organizer")
        })?;
        let organizer =
            OrganizerId::parse(organization).map_err(|e| ApiError::forbidden(e.to_string()))?;
        return Ok(ScanScope::Organizer(organizer));
    }
    if principal.has(Role::Organizer) {
        return Ok(ScanScope::Organizer(principal.organizer_id()?));
    }
    Err(ApiError::forbidden(
        "this needs the role scanner or organizer",
    ))
}

/// A show whose door the caller works: its scanners (by their `org` claim), its
/// organizer, an admin.
async fn door_of(
    state: &ApiState,
    principal: &Principal,
    show_id: ShowId,
) -> Result<ticketing_domain::show::ShowDetails, ApiError> {
    let scope = scan_scope(principal)?;
    let show = state.ticketing.show(show_id).await?;
    if !scope.covers(&show.organizer_id) {
        return Err(ApiError::forbidden(
            "only the show's scanners and organizer (or an admin) may read this",
        ));
    }
    Ok(show)
}

/// The tickets an offline scanner must refuse at a show's door.
#[utoipa::path(
    get, path = "/v1/shows/{id}/revoked-tickets", tag = "tickets",
    description = "Projected (eventually consistent). Tickets of refunded or cancelled purchases (refuse every code of the ticket) and transferred tickets (refuse a code whose generation is not `valid_generation`), oldest revocation first. Download the whole list before the doors open, then poll with `since` a few minutes before the last answer's `as_of`.",
    params(("id" = Uuid, Path), RevokedTicketsQuery),
    responses(
        (status = 200, body = RevokedTicketList, headers(("X-Read-Model" = String, description = "`projected`"))),
        (status = 400, description = "Malformed id, or a query with an unknown parameter or a `since` that is not an RFC 3339 instant", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a scanner or organizer of the show", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the read models are unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn revoked_tickets(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<RevokedTicketsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query?;
    let show = door_of(&state, &principal, ShowId(id)).await?;
    let as_of = state.ticketing.now();
    let revoked = state
        .read_models
        .revoked_tickets(show.show_id, query.since)
        .await?;
    Ok(projected(RevokedTicketList {
        show_id: id,
        as_of,
        revoked: revoked.into_iter().map(RevokedTicketView::from).collect(),
    }))
}

/// Tickets let in and still to come, in total and by section.
#[utoipa::path(
    get, path = "/v1/shows/{id}/admissions", tag = "tickets",
    description = "Projected (eventually consistent): a scan counts here once the projector has applied it.",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Admissions, headers(("X-Read-Model" = String, description = "`projected`"))),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a scanner or organizer of the show", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store or the read models are unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn admissions(
    State(state): State<ApiState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let show = door_of(&state, &principal, ShowId(id)).await?;
    let as_of = state.ticketing.now();
    let projected_sections = state.read_models.show_admissions(show.show_id).await?;
    Ok(projected(Admissions::of(&show, &projected_sections, as_of)))
}

/// The tickets the caller holds, bought or received, newest first.
#[utoipa::path(
    get, path = "/v1/customers/me/tickets", tag = "tickets",
    description = "Projected (eventually consistent): a ticket issued or received shows here once the projector has applied it. Without codes: read a ticket (`GET /v1/tickets/{id}`) for its code.",
    params(PageQuery),
    responses(
        (status = 200, body = HeldTicketList, headers(("X-Read-Model" = String, description = "`projected`"))),
        (status = 400, description = "A malformed query: an unknown parameter, a `limit` that is not a number, a `cursor` no page handed out", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A `limit` outside 1 to 100", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read models are unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn my_tickets(
    State(state): State<ApiState>,
    principal: Principal,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(&[Role::Customer])?;
    let Query(query) = query?;
    let page = state
        .read_models
        .holder_tickets(
            &principal.customer_id()?,
            query.limit()?,
            query.ticket_cursor()?,
        )
        .await?;
    Ok(projected(HeldTicketList {
        tickets: page.tickets.into_iter().map(TicketView::from).collect(),
        next_cursor: page
            .next
            .map(|next| encode_cursor(next.held_since, next.ticket_id.0)),
    }))
}

/// Whether `code` has the documented form `T1.<kid>.<claims>.<signature>` (what the
/// schema's pattern says), whatever its signature.
fn well_formed(code: &str) -> bool {
    let url_safe = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = code.split('.').collect();
    matches!(
        parts.as_slice(),
        ["T1", kid, claims, signature]
            if (1..=32).contains(&kid.len())
                && claims.len() == 48
                && signature.len() == 86
                && [kid, claims, signature].iter().all(|part| url_safe(part))
    )
}

fn check_in_request(scan: NewCheckIn) -> Result<CheckIn, ApiError> {
    if !well_formed(&scan.code) {
        return Err(ApiError::invalid(
            "code must be a ticket code: T1.<kid>.<claims>.<signature>",
        ));
    }
    if let Some(gate) = &scan.gate {
        if gate.is_empty() || gate.chars().count() > MAX_GATE_CHARS {
            return Err(ApiError::invalid(format!(
                "gate must be 1 to {MAX_GATE_CHARS} characters"
            )));
        }
    }
    Ok(CheckIn {
        code: scan.code,
        show_id: scan.show_id.map(ShowId),
        gate: scan.gate,
        scanned_at: scan.scanned_at,
    })
}

/// Check a ticket in at the door: it admits once.
#[utoipa::path(
    post, path = "/v1/checkins", tag = "tickets",
    params(IdempotencyKeyHeader),
    description = "The answer says what the door should do: `201` let in; `409 already-admitted` (with `admitted_at` and `gate`), `409 ticket-revoked` (with `reason`: refunded, cancelled, transferred), `404 invalid-ticket-code` (an unknown or retired key, a signature that does not match: no ticket has this code), `422 wrong-show`: turn away. Many gates scanning one ticket at once admit it exactly once.",
    request_body = NewCheckIn,
    responses(
        (status = 201, description = "Admitted", body = CheckInAdmitted),
        (status = 400, description = "Malformed JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a scanner or organizer of the ticket's show", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No ticket has this code (`invalid-ticket-code`: an unknown or retired key, or a signature that does not match), or its show no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already admitted, or revoked; too many scans of the ticket at once (retry after `Retry-After` seconds); or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A code not in the documented form, a ticket for another show, a scan time in the future, a field out of its documented range, or an `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable (retry after `Retry-After` seconds), or no ticket signing key is configured", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn check_in(
    State(state): State<ApiState>,
    principal: Principal,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<NewCheckIn>,
) -> Result<(StatusCode, Json<CheckInAdmitted>), ApiError> {
    let scope = scan_scope(&principal)?;
    let request = check_in_request(body)?;
    let ctx = command_context(&principal, key);
    let admitted = state.ticketing.check_in(&ctx, &scope, request).await?;
    Ok((StatusCode::CREATED, Json(admitted.into())))
}

/// Upload scans collected offline: the earliest scan of a ticket admits it, every
/// other is reported as a duplicate. Uploading the same scans again is safe.
#[utoipa::path(
    post, path = "/v1/checkins/batch", tag = "tickets",
    params(IdempotencyKeyHeader),
    description = "Each scan is answered as `POST /v1/checkins` would answer it alone, in `results` (in the order uploaded): `admitted`, or its `problem`. Scans are applied in the order they were made (`scanned_at`). When the event store fails midway the whole upload answers 503: upload it again, the scans already recorded answer as before.",
    request_body = NewCheckInBatch,
    responses(
        (status = 200, description = "Every scan answered", body = CheckInBatchResult),
        (status = 400, description = "Malformed JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not a scanner or organizer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many scans of one ticket at once; upload again after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No scans, more than 200, a scan without `scanned_at` or in the future, or a field out of its documented form", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable (retry after `Retry-After` seconds), or no ticket signing key is configured", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn check_in_batch(
    State(state): State<ApiState>,
    principal: Principal,
    // Accepted like on every POST; an upload is safe to repeat by its scans' instants.
    _key: IdempotencyKey,
    ApiJson(body): ApiJson<NewCheckInBatch>,
) -> Result<Json<CheckInBatchResult>, ApiError> {
    let scope = scan_scope(&principal)?;
    if body.scans.is_empty() || body.scans.len() > MAX_BATCH_SCANS {
        return Err(ApiError::invalid(format!(
            "an upload carries 1 to {MAX_BATCH_SCANS} scans"
        )));
    }
    let scans = body
        .scans
        .into_iter()
        .map(|scan| check_in_request(scan.into()))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = command_context(&principal, IdempotencyKey(None));
    let answers = state.ticketing.check_in_batch(&ctx, &scope, scans).await;
    let mut results = Vec::with_capacity(answers.len());
    for (index, answer) in answers.into_iter().enumerate() {
        results.push(match answer {
            Ok(admitted) => CheckInOutcome {
                index,
                admitted: Some(admitted.into()),
                problem: None,
            },
            // Nothing is lost: the upload is answered as failed, and uploaded again.
            Err(error)
                if error.is_transient() || matches!(error, AppError::TicketsNotConfigured) =>
            {
                return Err(error.into())
            }
            Err(error) => CheckInOutcome {
                index,
                admitted: None,
                problem: Some(ApiError::from(error).problem()),
            },
        });
    }
    Ok(Json(CheckInBatchResult { results }))
}
