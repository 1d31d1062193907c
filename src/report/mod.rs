//! Turning plans and runs into things people read and machines gate on.
//!
//! A run leaves two records in its directory: `report.json` (everything summarized, typed as
//! [`model::Report`]) and `latency.hlog` (the per-second histograms, written during the run by
//! [`hlog::HlogWriter`]). Every other file is an [`Exporter`] reading those two — the same code
//! at the end of a run and in `flashcrowd report RUN_DIR`, so a re-render is identical.
//!
//! This layer formats and draws; it measures nothing and decides nothing (gates do that).

pub mod chart;
pub mod charts;
pub mod glyphs;
pub mod hlog;
pub mod html;
pub mod journal;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod model;
pub mod rundir;
pub mod state;
pub mod summary;

use anyhow::Context;
use std::path::{Path, PathBuf};

/// A finished run as the exporters see it: report.json plus latency.hlog.
pub struct RunReport {
    pub report: model::Report,
    pub hlog: hlog::HlogData,
}

/// One output format: turns a finished run into files in the run directory.
pub trait Exporter {
    /// What it writes, for messages (`report.html`, `charts/*.png`).
    fn name(&self) -> &'static str;
    /// Writes its files (atomically) into `dir`; returns their paths.
    fn write(&self, r: &RunReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>>;
}

/// Every exporter, in the order they are written.
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::Json),
        Box::new(markdown::Markdown),
        Box::new(junit::Junit),
        Box::new(charts::Png),
        Box::new(html::Html),
    ]
}

/// Reads a run directory's report.json and latency.hlog.
pub fn load(dir: &Path) -> anyhow::Result<RunReport> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let report: model::Report = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a flashcrowd report (schema_version 1)",
            path.display()
        )
    })?;
    if report.schema_version != json::SCHEMA_VERSION {
        anyhow::bail!(
            "{}: schema_version {} is not supported (this flashcrowd reads {})",
            path.display(),
            report.schema_version,
            json::SCHEMA_VERSION
        );
    }
    let hlog = hlog::read(dir)?;
    Ok(RunReport { report, hlog })
}

/// Runs every exporter; returns the files written.
pub fn render_all(r: &RunReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in exporters() {
        out.extend(
            e.write(r, dir)
                .with_context(|| format!("cannot write {} in {}", e.name(), dir.display()))?,
        );
    }
    Ok(out)
}
