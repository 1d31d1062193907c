//! Turning plans and runs into things people read: charts, report.json and the terminal
//! summary now; html, markdown and junit exporters later, one per file.
//!
//! This layer formats and draws; it measures nothing and decides nothing (gates do that).

pub mod chart;
pub mod json;
pub mod result;
pub mod rundir;
pub mod summary;

pub use result::{FinalStatus, RunResult};
