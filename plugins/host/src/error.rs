//! The error every parser of this plugin returns.

pub use triage_sdk::parse::ParseError;
