//! Extractors whose rejections are problem+json like every other error.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;
use ticketing_app::CommandContext;

use crate::auth::Principal;
use crate::ApiError;

/// A JSON body. Unknown fields, wrong types and malformed JSON are 4xx problems.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// Path parameters; an id that does not parse is a 400 problem.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header, if the client sent one.
pub struct IdempotencyKey(pub Option<String>);

/// How the `Idempotency-Key` header is documented: every POST lists it with
/// `params(IdempotencyKeyHeader)`, with the limits [`IdempotencyKey`] enforces
/// (1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Never built: it only describes the header.
pub struct IdempotencyKeyHeader {
    /// Makes a retry return the first answer instead of running the command again;
    /// reusing a key for a different request is refused (422). 1 to 255 visible ASCII
    /// characters.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$",
        example = "3f0c9a52-7d1e-4b8a-9c36-1e5f0b2d4a77"
    )]
    key: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&k.len()))
            .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
                ))
            })?;
        Ok(Self(Some(key.to_owned())))
    }
}

/// The command context of a request: who sends it, its idempotency key, and the trace
/// its events belong to (the request's span, when traces are exported).
pub fn command_context(principal: &Principal, key: IdempotencyKey) -> CommandContext {
    let ctx = CommandContext::new(principal.subject.clone())
        .with_traceparent(ticketing_telemetry::current_traceparent());
    match key.0 {
        Some(key) => ctx.with_idempotency_key(key),
        None => ctx,
    }
}

/// A body that may be empty (then `T::default()`), or else JSON.
///
/// # Errors
/// 400 for malformed JSON, 422 for JSON of the wrong shape.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid(e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    })
}
