//! Organizer commands on one section's escrow buckets: split it into more while it
//! sells, and spread its free seats evenly again.

use axum::extract::State;
use axum::Json;
use ticketing_domain::show::ShowDetails;
use ticketing_domain::{SectionName, ShowId};

use crate::auth::AsOrganizer;
use crate::dto::{SectionBucketsView, SectionPath, SplitSection};
use crate::extract::{command_context, ApiJson, ApiPath, IdempotencyKey, IdempotencyKeyHeader};
use crate::routes::shows::owned_show;
use crate::{ApiError, ApiState, Problem};

/// Split a section into more escrow buckets, on sale or not.
///
/// Holds in different buckets never wait for each other: a busy section sells faster
/// split. The new buckets start empty and the free seats are spread evenly over all
/// of them in one transaction; held and sold seats stay where they are.
#[utoipa::path(
    post, path = "/v1/shows/{id}/sections/{section}/buckets", tag = "shows",
    request_body = SplitSection,
    params(SectionPath, IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Split", body = SectionBucketsView),
        (status = 400, description = "Malformed id, section, JSON or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not the show's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show, or the show has no such section", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The section has that many buckets or more already, the show is cancelled, contention (retry after `Retry-After` seconds), or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More buckets than the section's seats, or an `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn split_section(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiPath(SectionPath { id, section }): ApiPath<SectionPath>,
    ApiJson(body): ApiJson<SplitSection>,
) -> Result<Json<SectionBucketsView>, ApiError> {
    let show_id = ShowId(id);
    let show = owned_show(&state, &principal, show_id).await?;
    let section = section_of(&show, section)?;
    let split = state
        .ticketing
        .split_section(
            &command_context(&principal, key),
            show_id,
            &section,
            body.buckets,
        )
        .await?;
    Ok(Json(SectionBucketsView {
        section: split.section.to_string(),
        buckets: split.buckets,
        moved: split.moved,
    }))
}

/// Spread a section's free seats evenly over its buckets again.
///
/// Released and expired seats return to the bucket they came from, so free seats can
/// end up in a few buckets; this moves them, in one transaction.
#[utoipa::path(
    post, path = "/v1/shows/{id}/sections/{section}/rebalance", tag = "shows",
    params(SectionPath, IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Rebalanced (`moved` is 0 when the buckets were even already)", body = SectionBucketsView),
        (status = 400, description = "Malformed id, section or `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller is not the show's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such show, or the show has no such section", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Contention (retry after `Retry-After` seconds), or a request with this `Idempotency-Key` in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An `Idempotency-Key` reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event store is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn rebalance_section(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiPath(SectionPath { id, section }): ApiPath<SectionPath>,
) -> Result<Json<SectionBucketsView>, ApiError> {
    let show_id = ShowId(id);
    let show = owned_show(&state, &principal, show_id).await?;
    let spec = show
        .section(&section_of(&show, section)?)
        .cloned()
        .ok_or_else(|| ApiError::not_found("the show has no such section"))?;
    let moved = state
        .ticketing
        .rebalance_section(&command_context(&principal, key), show_id, &spec.name)
        .await?;
    Ok(Json(SectionBucketsView {
        section: spec.name.to_string(),
        buckets: spec.buckets,
        moved,
    }))
}

/// The show's section named `name` in the path: a name the show does not have, or
/// cannot have, is a resource that does not exist (404).
fn section_of(show: &ShowDetails, name: String) -> Result<SectionName, ApiError> {
    SectionName::parse(name)
        .ok()
        .and_then(|name| show.section(&name).map(|spec| spec.name.clone()))
        .ok_or_else(|| ApiError::not_found("the show has no such section"))
}
