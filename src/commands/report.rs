//! `flashcrowd report RUN_DIR`: re-renders every exporter (report.json, report.html,
//! summary.md, junit.xml, charts/*.png) from the run directory's report.json and latency.hlog,
//! prints the summary, and exits with the run's own code (0 passed, 1 failed, 3 aborted).
//! A run killed before writing report.json is rebuilt from its journal (status `incomplete`,
//! exit 3), state.json and scenario.yaml included.

use super::{Failure, Outcome};
use crate::cli::ReportArgs;
use crate::report::{journal, RunReport};
use std::path::Path;

pub fn report(a: ReportArgs) -> Outcome {
    let dir = &a.run_dir;
    let bad = |e: anyhow::Error| Failure::BadInput(format!("{e:#}"));
    let r = if !dir.join("report.json").exists() && journal::exists(dir) {
        rebuild(dir, a.quiet).map_err(bad)?
    } else {
        crate::report::load(dir).map_err(bad)?
    };
    let files = crate::report::render_all(&r, dir).map_err(bad)?;
    print!("{}", crate::report::summary::render(&r.report, dir));
    if !a.quiet {
        eprintln!(
            "report: re-rendered {} file(s) in {}",
            files.len(),
            dir.display()
        );
    }
    Ok(r.report.exit_code())
}

/// A run that died before writing its report: every file rebuilt from the journal and
/// latency.hlog, status `incomplete`.
fn rebuild(dir: &Path, quiet: bool) -> anyhow::Result<RunReport> {
    let rb = journal::rebuild(dir)?;
    rb.write_records(dir)?;
    if !quiet {
        let last = match rb.last_second {
            Some(t) => format!("its last complete second is {t}"),
            None => "it recorded no complete second".into(),
        };
        eprintln!(
            "report: {} has no report.json (the run did not finish): rebuilding it from {} and \
             latency.hlog, status incomplete; {last}",
            dir.display(),
            journal::FILE
        );
    }
    rb.run_report(dir)
}
