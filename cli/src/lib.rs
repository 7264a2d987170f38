//! The `ticketing` command line as a library, so that its commands can be tested
//! without spawning the binary.
//!
//! - [`demo`]: `ticketing demo`.
//! - [`serve`]: `ticketing serve`, the whole API and the sweeper in one process.
//! - [`dev_secret`]: the development token secret of the embedded default.
#![forbid(unsafe_code)]

pub mod demo;
pub mod dev_secret;
pub mod serve;
