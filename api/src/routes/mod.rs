//! The routes, in the groups that the Lambda functions serve.

pub mod payments;
pub mod queries;
pub mod reservations;
pub mod sections;
pub mod shows;
pub mod tickets;
