//! `flashcrowd report RUN_DIR`: re-renders every exporter (report.json, report.html,
//! summary.md, junit.xml, charts/*.png) from the run directory's report.json and latency.hlog,
//! prints the summary, and exits with the run's own code (0 passed, 1 failed, 3 aborted).

use super::{Failure, Outcome};
use crate::cli::ReportArgs;

pub fn report(a: ReportArgs) -> Outcome {
    let dir = &a.run_dir;
    let r = crate::report::load(dir).map_err(|e| Failure::BadInput(format!("{e:#}")))?;
    let files =
        crate::report::render_all(&r, dir).map_err(|e| Failure::BadInput(format!("{e:#}")))?;
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
