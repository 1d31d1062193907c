//! Turning plans and runs into things people read: charts now, the exporters (json, html,
//! markdown, junit) later, one per file.
//!
//! This layer formats and draws; it measures nothing and decides nothing (gates do that).

pub mod chart;
