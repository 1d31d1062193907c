//! `flashcrowd merge DIR... --out DIR`: merges the run directories of `--segment i/n` runs into
//! one run directory identical in form to a single run's, prints its summary, and exits like a
//! run: 0 passed, 1 a threshold failed on the whole, 2 shards that cannot be merged, 3 a shard
//! was aborted or interrupted, or segments are missing (status `incomplete`; 1 if a threshold
//! failed on what is there). `--allow-partial` judges a partial merge on its thresholds alone.

use super::{Failure, Outcome};
use crate::cli::MergeArgs;
use crate::report::merge::{self, Shard};

pub fn merge(a: MergeArgs) -> Outcome {
    let bad = |e: anyhow::Error| Failure::BadInput(format!("merge: {e:#}"));
    let out_abs = std::path::absolute(&a.out).unwrap_or(a.out.clone());
    for d in &a.dirs {
        if std::path::absolute(d).unwrap_or(d.clone()) == out_abs {
            return Err(Failure::BadInput(format!(
                "merge: --out {} is one of the shards: choose another directory",
                a.out.display()
            )));
        }
    }
    let mut shards = a
        .dirs
        .iter()
        .map(|d| Shard::read(d))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(bad)?;
    let merged = merge::merge(&mut shards, a.allow_partial).map_err(bad)?;
    for w in &merged.warnings {
        eprintln!("merge: warning: {w}");
    }
    let files = merge::write(&merged, &shards[0].dir, &a.out).map_err(bad)?;
    print!("{}", crate::report::summary::render(&merged.report, &a.out));
    if !a.quiet {
        eprintln!(
            "merge: {} of {} segment(s) merged into {} ({} file(s))",
            shards.len(),
            shards[0].segment.count,
            a.out.display(),
            files.len()
        );
    }
    Ok(merged.report.exit_code())
}
