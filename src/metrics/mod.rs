//! Measurement: the per-shard `Recorder` (hot path: a few array writes and histogram records per
//! request, no locks, no allocation after warm-up), the `Snapshot` a shard sends once per second,
//! and the `Collector` that merges snapshots into totals, phases and the per-second series;
//! beside them the `ScrapeRecord` of the target's own metrics, as the run records it.
//!
//! This module knows nothing about HTTP or scenarios; it counts what it is told.

pub mod catalog;
pub mod collector;
pub mod recorder;
pub mod scrape;

pub use catalog::Catalog;
pub use collector::{Collector, Point};
pub use recorder::{ErrorKind, Recorder, Snapshot};
pub use scrape::ScrapeRecord;
