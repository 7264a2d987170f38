//! DynamoDB's failures as [`ReadModelError`]s: what may succeed when retried
//! (throttling, timeouts, a transaction that collided with another) is
//! [`ReadModelError::ServiceUnavailable`], a failed applied-version condition is
//! [`ReadModelError::Conflict`], anything else [`ReadModelError::Service`].

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use crate::ReadModelError;

/// Error codes after which the same request may succeed.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// Classifies a failed request.
pub(crate) fn classify<E, R>(error: SdkError<E, R>) -> ReadModelError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
        // Construction failures are ours; everything else is the network or a timeout.
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Described(text));
    if transient {
        ReadModelError::ServiceUnavailable(boxed)
    } else {
        ReadModelError::Service(boxed)
    }
}

/// A cancelled transaction of `stream_id`: a [`ReadModelError::Conflict`] when its
/// applied-version condition failed (another writer moved the stream first), else
/// as [`classify`].
pub(crate) fn transaction(
    stream_id: &str,
    error: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> ReadModelError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    {
        let condition_failed = cancelled
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed"));
        if condition_failed {
            return ReadModelError::Conflict {
                stream_id: stream_id.to_owned(),
            };
        }
        // Cancelled for another reason (a concurrent transaction on the same items,
        // throttling): trying again may succeed.
        let reasons: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .filter_map(|reason| reason.code())
            .filter(|code| *code != "None")
            .collect();
        return ReadModelError::ServiceUnavailable(Box::new(Described(format!(
            "the transaction of {stream_id} was cancelled: {}",
            reasons.join(", ")
        ))));
    }
    classify(error)
}

/// A request that could not even be built (a missing required field): a bug here.
pub(crate) fn build(error: aws_sdk_dynamodb::error::BuildError) -> ReadModelError {
    ReadModelError::Service(Box::new(error))
}

/// An error as the text that describes it with its whole cause chain (the SDK's
/// errors hold the raw response, which need not be `Sync`).
#[derive(Debug)]
struct Described(String);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Described {}
