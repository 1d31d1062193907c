//! flashcrowd: load tests and capacity drills shaped like a Double-11 flash crowd.

pub mod capacity;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod engine;
pub mod gate;
pub mod metrics;
pub mod ops;
pub mod plan;
pub mod records;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shop;
pub mod template;
