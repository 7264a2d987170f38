//! DynamoDB for the suite: the shared harness of `ticketing_projector::testing`.

pub use ticketing_projector::testing::dynamodb::{client, test_url, with_dynamodb};
