//! The `ticketing` command line as a library, so that its commands can be tested
//! without spawning the binary.
//!
//! - [`demo`]: `ticketing demo`.
#![forbid(unsafe_code)]

pub mod demo;
