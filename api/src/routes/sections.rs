//! Organizer commands on one section's escrow buckets: split it into more while it
//! sells, and spread its free seats evenly again.

use axum::extract::State;
use axum::Json;
use ticketing_domain::{SectionName, ShowId};
use uuid::Uuid;

use crate::auth::AsOrganizer;
use crate::dto::{SectionBucketsView, SplitSection};
use crate::extract::{command_context, ApiJson, ApiPath, IdempotencyKey};
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
    params(
        ("id" = Uuid, Path),
        ("section" = String, Path, description = "The section's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer"),
    ),
    responses(
        (status = 200, description = "Split", body = SectionBucketsView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Contention, or the show is cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No more buckets than now, more than 64 or than the seats, or an unknown section", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn split_section(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiPath((id, section)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<SplitSection>,
) -> Result<Json<SectionBucketsView>, ApiError> {
    let show_id = ShowId(id);
    let section = SectionName::parse(section)?;
    owned_show(&state, &principal, show_id).await?;
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
    params(
        ("id" = Uuid, Path),
        ("section" = String, Path, description = "The section's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Accepted; a rebalance that has nothing to move moves nothing"),
    ),
    responses(
        (status = 200, description = "Rebalanced", body = SectionBucketsView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Contention", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown section", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn rebalance_section(
    State(state): State<ApiState>,
    AsOrganizer(principal): AsOrganizer,
    key: IdempotencyKey,
    ApiPath((id, section)): ApiPath<(Uuid, String)>,
) -> Result<Json<SectionBucketsView>, ApiError> {
    let show_id = ShowId(id);
    let section = SectionName::parse(section)?;
    let show = owned_show(&state, &principal, show_id).await?;
    let spec = show
        .section(&section)
        .ok_or(ticketing_domain::DomainError::UnknownSection)?;
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
