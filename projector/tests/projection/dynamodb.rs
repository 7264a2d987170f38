//! DynamoDB for the suite: the shared harness of `ticketing_read_models::testing`.

pub use ticketing_read_models::testing::dynamodb::{dynamodb_trial, with_dynamodb};
